/**
 * Bring your own KMS key (`PUT /tenant/key`): the Owner of an enterprise tenant names a key, which
 * the tenant-keys provisioner checks and records (migrations/0302 re-checks the rules).
 */
import * as z from 'zod/mini';
import { PROVISION_ERROR_STATUS } from '../../tenant-keys/provision-status';
import { GuardError, parseInput } from '../errors';
import { tenantRoute, type Route } from '../route';
import { requireOwner, requireTenantKeys } from './common';

const KEY_ARN = z.string().check(z.regex(/^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key\/[0-9a-f-]{36}$/));

/** The provisioner's answer (lambda/tenant-keys/provisioner-handler.ts), validated: it is an input. */
const provisionResponse = z.union([
  z.object({ ok: z.literal(true), keyArn: z.string(), source: z.string(), created: z.boolean() }),
  z.object({
    ok: z.literal(false),
    code: z.enum(Object.keys(PROVISION_ERROR_STATUS) as [keyof typeof PROVISION_ERROR_STATUS]),
    problems: z.optional(z.array(z.string())),
  }),
]);

export const TENANT_KEY_ROUTES: readonly Route[] = [
  tenantRoute('PUT', '/tenant/key', async (ctx) => {
    requireOwner(ctx.tenant, true);
    const { keyArn } = parseInput(z.strictObject({ keyArn: KEY_ARN }), ctx.req.body);
    const org = (
      await ctx.tx.query('SELECT plan, kms_key_arn, kms_key_source FROM organisations WHERE id = $1', [
        ctx.tenant.orgId,
      ])
    ).rows[0];
    if (!org) throw new GuardError('TENANT_NOT_FOUND');
    if (org['plan'] !== 'enterprise') throw new GuardError('BYOK_NOT_ENTITLED');
    if (org['kms_key_arn'] !== null) {
      // A recorded key never changes (ciphertexts name it); repeating the same request is fine.
      if (org['kms_key_arn'] === keyArn && org['kms_key_source'] === 'byok') {
        return { status: 200, body: { key: { source: 'byok', keyArn, changed: false } } };
      }
      throw new GuardError('KEY_ALREADY_SET');
    }
    const d = requireTenantKeys(ctx);
    let payload: unknown;
    try {
      // Loaded on first use (docs/ARCHITECTURE.md "Function bundles").
      const { InvokeCommand } = await import('@aws-sdk/client-lambda');
      const out = await d.lambda.send(
        new InvokeCommand({
          FunctionName: d.provisionerFunction,
          InvocationType: 'RequestResponse',
          Payload: Buffer.from(JSON.stringify({ orgId: ctx.tenant.orgId, externalKeyArn: keyArn })),
        }),
      );
      if (out.FunctionError || !out.Payload) {
        await ctx.emit('tenant_key.byok_failed', 'organisation', ctx.tenant.orgId, { keyArn });
        return { status: 502, body: { error: 'PROVISIONER_FAILED' } };
      }
      payload = JSON.parse(Buffer.from(out.Payload).toString('utf8'));
    } catch {
      // Throttled, denied or unreachable: nothing was recorded; the Owner may retry.
      throw new GuardError('PROVISIONER_UNAVAILABLE');
    }
    const res = provisionResponse.safeParse(payload);
    if (!res.success || (res.data.ok && (res.data.keyArn !== keyArn || res.data.source !== 'byok'))) {
      await ctx.emit('tenant_key.byok_failed', 'organisation', ctx.tenant.orgId, { keyArn });
      return { status: 502, body: { error: 'PROVISIONER_FAILED' } };
    }
    if (!res.data.ok) {
      const { code, problems } = res.data;
      // The status is ours (stable), never taken from the payload.
      await ctx.emit('tenant_key.byok_refused', 'organisation', ctx.tenant.orgId, { keyArn, code });
      return { status: PROVISION_ERROR_STATUS[code], body: { error: code, ...(problems ? { problems } : {}) } };
    }
    await ctx.emit('tenant_key.byok_set', 'organisation', ctx.tenant.orgId, { keyArn });
    return { status: 200, body: { key: { source: 'byok', keyArn, changed: true } } };
  }),
];
