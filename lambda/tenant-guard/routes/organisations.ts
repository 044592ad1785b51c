/**
 * Creating a tenant (`POST /organisations`): a platform action on the caller, entering no tenant.
 * The tenant's key is provisioned after COMMIT, or by the provisioner's scheduled sweep.
 */
import { firstRow } from '../../shared/rows';
import * as z from 'zod/mini';
import { GuardError, parseInput } from '../errors';
import { callerRoute, type Route } from '../route';
import { uuid } from './common';

const ORG_KINDS = ['store', 'dealer_group', 'network'] as const;
const PLANS = ['pro', 'business', 'enterprise'] as const;

export const ORGANISATION_ROUTES: readonly Route[] = [
  callerRoute('POST', '/organisations', async (ctx) => {
    if (ctx.caller.platformRole !== 'platform_owner' || ctx.caller.apiKey || ctx.supportGrant) {
      throw new GuardError('PERMISSION_DENIED');
    }
    const b = parseInput(
      z.strictObject({
        kind: z.enum(ORG_KINDS),
        name: z.string().check(z.trim(), z.minLength(1), z.maxLength(200)),
        plan: z.enum(PLANS),
        parentId: z.optional(z.nullable(uuid)),
        owner: z.strictObject({
          subject: z.string().check(z.minLength(1), z.maxLength(255)),
          email: z.email().check(z.maxLength(320)),
        }),
        keySource: z.optional(z.enum(['managed', 'byok'])),
      }),
      ctx.req.body,
    );
    const keySource = b.keySource ?? 'managed';
    if (keySource === 'byok' && b.plan !== 'enterprise') throw new GuardError('BYOK_NOT_ENTITLED');
    const owner = await ctx.tx.query('SELECT id FROM app.resolve_user($1, $2)', [b.owner.subject, b.owner.email]);
    const ownerId = String(firstRow(owner.rows)['id']);
    const created = await ctx.tx
      .query('SELECT app.create_organisation($1, $2, $3, $4, $5, $6) AS id', [
        ctx.caller.userId,
        b.kind,
        b.name,
        b.plan,
        b.parentId ?? null,
        ownerId,
      ])
      .catch((e: unknown) => {
        // The hierarchy check (23514) and the parent's existence (23503) are about parentId.
        const code = (e as { code?: unknown } | null)?.code;
        if (code === '23514' || code === '23503') throw new GuardError('VALIDATION_FAILED', 'hierarchy', 'parentId');
        throw e;
      });
    const orgId = String(firstRow(created.rows)['id']);
    if (keySource === 'byok') {
      await ctx.tx.query('SELECT app.expect_tenant_byok($1, $2)', [ctx.caller.userId, orgId]);
    }
    // app.create_organisation left the platform owner a read-only context in the new tenant, so
    // its first audit row is appended there, naming the platform owner (migrations/0400).
    ctx.entered(orgId);
    await ctx.emit('organisation.created', 'organisation', orgId, {
      kind: b.kind,
      plan: b.plan,
      parentId: b.parentId ?? null,
      ownerUserId: ownerId,
      keySource,
    });
    const body = {
      organisation: { id: orgId, kind: b.kind, name: b.name, plan: b.plan, parentId: b.parentId ?? null, keySource },
    };
    if (keySource === 'byok') return { status: 201, body: { ...body, keyProvisioning: 'awaiting_byok' } };
    const deps = ctx.tenantKeys;
    return {
      status: 201,
      body,
      // After COMMIT, fire and forget: the provisioner reads the committed row. A lost or refused
      // invocation is picked up by the provisioner's scheduled sweep (app.keyless_tenants).
      afterCommit: async () => {
        if (!deps) return { keyProvisioning: 'deferred' };
        try {
          // Loaded on first use (docs/ARCHITECTURE.md "Function bundles").
          const { InvokeCommand } = await import('@aws-sdk/client-lambda');
          await deps.lambda.send(
            new InvokeCommand({
              FunctionName: deps.provisionerFunction,
              InvocationType: 'Event',
              Payload: Buffer.from(JSON.stringify({ orgId })),
            }),
          );
          return { keyProvisioning: 'requested' };
        } catch {
          return { keyProvisioning: 'deferred' };
        }
      },
    };
  }),
];
