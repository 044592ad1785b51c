/**
 * Tenant lifecycle, export and key routes of the tenant API (docs/tenant-keys.md "HTTP routes"),
 * composed into `createApi`. Each runs inside the request's one transaction: the database functions
 * of migrations/0300 and 0302 re-check every rule (Owner only, never under a support grant, state
 * transitions), and each route's audit event is written in the same transaction.
 *
 * Two kinds of route:
 * - tenant routes run inside the entered tenant context (cancel, exports, bring-your-own-key);
 * - caller routes run on the authenticated caller without entering a tenant: reading and restoring
 *   a tenant must work in its grace period, when the organisation is suspended and no tenant
 *   context can be entered; creating an organisation is a platform action.
 */
import { InvokeCommand, type LambdaClient } from '@aws-sdk/client-lambda';
import { GetObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { z } from 'zod';
import type { SqlClient } from '../shared/migrations';
import { EXPORT_RETENTION_DAYS, MAX_URL_TTL_SECONDS } from '../tenant-keys/export';
import { GRACE_PERIOD_DAYS } from '../tenant-keys/lifecycle';
import { PROVISION_ERROR_STATUS } from '../tenant-keys/provision-status';
import { GuardError, parseInput } from './errors';
import { UUID, type Caller, type TenantContext } from './guard';

const DAY_MS = 86_400_000;
/** The longest billing period a cancellation may name (an annual plan, with slack). */
export const MAX_BILLING_PERIOD_DAYS = 400;

/** What the tenant-keys routes need beyond the database: the provisioner and the export bucket. */
export interface TenantKeysApiDeps {
  /** Invokes the tenant-keys provisioner function. */
  readonly lambda: LambdaClient;
  /** Name or ARN of the provisioner function. */
  readonly provisionerFunction: string;
  /** Signs export download URLs (the API role's credentials: s3:GetObject on exports/*). */
  readonly s3: S3Client;
  /** The tenant-keys export bucket. */
  readonly exportBucket: string;
  /** Download link lifetime in seconds, 1-900. @default 900 */
  readonly exportUrlTtlSeconds?: number;
}

export interface RouteRequest {
  readonly params: Readonly<Record<string, string>>;
  readonly body: unknown;
  readonly ip: string | null;
  readonly userAgent: string | null;
}

type Metadata = Record<string, unknown>;

export interface RouteResult {
  readonly status: number;
  readonly body: Record<string, unknown>;
  /**
   * Runs after COMMIT (never inside the transaction: nothing may act on rows that could still roll
   * back). Its result is merged into the body. It must not throw.
   */
  readonly afterCommit?: () => Promise<Record<string, unknown>>;
}

/** A route inside the entered tenant (the `Ctx` of api.ts satisfies it). */
export interface TenantRouteContext {
  readonly tx: SqlClient;
  readonly tenant: TenantContext;
  readonly req: RouteRequest;
  readonly emit: (
    event: string,
    entityType: string | null,
    entityId: string | null,
    metadata?: Metadata,
  ) => Promise<void>;
}

/** A route on the authenticated caller, no tenant entered. */
export interface CallerRouteContext {
  readonly tx: SqlClient;
  readonly caller: Caller;
  /** The organisation addressed: X-Bulwark-Org when given, else the credential's. */
  readonly orgId: string;
  /** Whether the request named a support grant (X-Bulwark-Support-Grant). */
  readonly supportGrant: boolean;
  readonly req: RouteRequest;
  /**
   * Audits as the caller (a person, or support staff acting under `supportGrantId`) in `orgId`'s
   * trail, in the request's transaction. The audit log takes rows only for the organisation of the
   * transaction's tenant context, so a route enters one (`enterForAudit`) before it emits.
   */
  readonly emit: (
    orgId: string,
    event: string,
    entityType: string | null,
    entityId: string | null,
    metadata?: Metadata,
    supportGrantId?: string,
  ) => Promise<void>;
}

export interface RouteSpec<C> {
  readonly method: string;
  readonly path: string;
  readonly run: (ctx: C) => Promise<RouteResult>;
}

const iso = (v: unknown): string | null => (v === null || v === undefined ? null : new Date(v as string).toISOString());

/** The Owner, acting as themself (not an API key, not support staff), in a writable context. */
export function requireOwner(t: TenantContext, write: boolean): void {
  if (t.actorType !== 'user' || t.supportGrantId !== null || t.role !== 'owner' || (write && !t.writable)) {
    throw new GuardError('PERMISSION_DENIED', 'owner only');
  }
}

/** People only, never under a support grant (these routes enter no tenant, so the header is refused). */
function requirePerson(ctx: CallerRouteContext): void {
  if (ctx.caller.apiKey || ctx.supportGrant) throw new GuardError('PERMISSION_DENIED', 'people only');
}

/**
 * Enters `orgId` as `userId` for the rest of the transaction, once the route's action is done, so
 * that its audit row can be appended (audit_log admits rows for the context's organisation only).
 * The database re-checks the membership as on every request.
 */
async function enterForAudit(tx: SqlClient, userId: string, orgId: string): Promise<void> {
  await tx.query('SELECT 1 FROM app.set_tenant_context($1, $2, NULL)', [userId, orgId]);
}

function need(deps: TenantKeysApiDeps | undefined): TenantKeysApiDeps {
  if (!deps) throw new GuardError('TENANT_KEYS_UNAVAILABLE');
  return deps;
}

const KEY_ARN = z.string().regex(/^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key\/[0-9a-f-]{36}$/);

/** The provisioner's answer (lambda/tenant-keys/provisioner-handler.ts), validated: it is an input. */
const provisionResponse = z.union([
  z.object({ ok: z.literal(true), keyArn: z.string(), source: z.string(), created: z.boolean() }),
  z.object({
    ok: z.literal(false),
    code: z.enum(Object.keys(PROVISION_ERROR_STATUS) as [keyof typeof PROVISION_ERROR_STATUS]),
    problems: z.array(z.string()).optional(),
  }),
]);

/** Routes inside the entered tenant. */
export function tenantKeyRoutes(deps: TenantKeysApiDeps | undefined, now: () => Date): RouteSpec<TenantRouteContext>[] {
  const ttl = deps?.exportUrlTtlSeconds ?? MAX_URL_TTL_SECONDS;
  if (!Number.isInteger(ttl) || ttl < 1 || ttl > MAX_URL_TTL_SECONDS) {
    throw new RangeError(`export URL lifetime must be 1-${MAX_URL_TTL_SECONDS} seconds`);
  }
  return [
    {
      method: 'POST',
      path: '/tenant/cancel',
      run: async (ctx) => {
        requireOwner(ctx.tenant, true);
        const b = parseInput(z.strictObject({ accessUntil: z.iso.datetime({ offset: true }) }), ctx.req.body);
        const until = new Date(b.accessUntil);
        const at = now();
        // The end of the paid billing period: not past, and not beyond the longest period sold.
        if (until.getTime() < at.getTime() || until.getTime() > at.getTime() + MAX_BILLING_PERIOD_DAYS * DAY_MS) {
          throw new GuardError('INVALID_BILLING_PERIOD');
        }
        const r = await ctx.tx.query(
          'SELECT org_id, lifecycle_state, cancelled_at, access_until FROM app.cancel_tenant($1)',
          [until],
        );
        const row = r.rows[0]!;
        await ctx.emit('tenant.cancelled', 'organisation', ctx.tenant.orgId, { accessUntil: iso(row['access_until']) });
        const accessUntil = new Date(row['access_until'] as string);
        return {
          status: 200,
          body: {
            tenant: {
              orgId: ctx.tenant.orgId,
              lifecycleState: row['lifecycle_state'],
              cancelledAt: iso(row['cancelled_at']),
              accessUntil: accessUntil.toISOString(),
              // Where the grace period will end if nobody restores the tenant.
              graceEndsAt: new Date(accessUntil.getTime() + GRACE_PERIOD_DAYS * DAY_MS).toISOString(),
            },
          },
        };
      },
    },
    {
      method: 'POST',
      path: '/tenant/exports',
      run: async (ctx) => {
        requireOwner(ctx.tenant, true);
        if (ctx.req.body !== undefined) parseInput(z.strictObject({}), ctx.req.body);
        const r = await ctx.tx.query('SELECT id, status, requested_at FROM app.request_tenant_export()');
        const row = r.rows[0]!;
        await ctx.emit('tenant.export_requested', 'tenant_export', String(row['id']));
        return {
          status: 202,
          body: { export: { id: row['id'], status: row['status'], requestedAt: iso(row['requested_at']) } },
        };
      },
    },
    {
      method: 'GET',
      path: '/tenant/exports/{id}',
      run: async (ctx) => {
        requireOwner(ctx.tenant, false);
        const id = parseInput(z.string().regex(UUID), ctx.req.params['id'], 'id').toLowerCase();
        const d = need(deps);
        const r = await ctx.tx.query(
          `SELECT id, status, object_key, row_count, requested_at, completed_at
             FROM tenant_exports WHERE id = $1 AND org_id = $2`,
          [id, ctx.tenant.orgId],
        );
        const row = r.rows[0];
        if (!row) throw new GuardError('EXPORT_NOT_FOUND');
        if (row['status'] === 'pending') throw new GuardError('EXPORT_NOT_READY');
        if (row['status'] === 'failed') throw new GuardError('EXPORT_FAILED');
        const key = String(row['object_key']);
        // Defence in depth: a link is only ever signed for this organisation's own prefix.
        if (!key.startsWith(`exports/${ctx.tenant.orgId}/`)) throw new GuardError('INTERNAL');
        const at = now();
        const completed = new Date(row['completed_at'] as string);
        if (at.getTime() - completed.getTime() >= EXPORT_RETENTION_DAYS * DAY_MS) {
          throw new GuardError('EXPORT_EXPIRED');
        }
        const url = await getSignedUrl(d.s3, new GetObjectCommand({ Bucket: d.exportBucket, Key: key }), {
          expiresIn: ttl,
          signingDate: at,
        });
        const expiresAt = new Date(at.getTime() + ttl * 1000).toISOString();
        // Who took the data out, from where and when: user, IP and time are in every event.
        await ctx.emit('tenant.export_downloaded', 'tenant_export', id, { ttlSeconds: ttl, expiresAt });
        return {
          status: 200,
          body: {
            export: {
              id,
              status: row['status'],
              rowCount: row['row_count'] === null ? null : Number(row['row_count']),
              requestedAt: iso(row['requested_at']),
              completedAt: completed.toISOString(),
            },
            url,
            expiresAt,
          },
        };
      },
    },
    {
      method: 'PUT',
      path: '/tenant/key',
      run: async (ctx) => {
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
        const d = need(deps);
        let payload: unknown;
        try {
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
      },
    },
  ];
}

const ORG_KINDS = ['store', 'dealer_group', 'network'] as const;
const PLANS = ['pro', 'business', 'enterprise'] as const;

/** Routes on the caller, entering no tenant. */
export function callerRoutes(deps: TenantKeysApiDeps | undefined): RouteSpec<CallerRouteContext>[] {
  return [
    {
      method: 'GET',
      path: '/tenant',
      run: async (ctx) => {
        requirePerson(ctx);
        // Any active member, in every lifecycle state; the ARN only to the Owner (database decides).
        const r = await ctx.tx.query('SELECT * FROM app.tenant_overview($1, $2)', [ctx.caller.userId, ctx.orgId]);
        const t = r.rows[0];
        if (!t) throw new GuardError('TENANT_NOT_FOUND');
        return {
          status: 200,
          body: {
            tenant: {
              orgId: t['org_id'],
              name: t['name'],
              plan: t['plan'],
              status: t['status'],
              role: t['role'],
              lifecycleState: t['lifecycle_state'],
              cancelledAt: iso(t['cancelled_at']),
              accessUntil: iso(t['access_until']),
              graceEndsAt: iso(t['grace_ends_at']),
              key: {
                expected: t['key_expected'],
                source: t['key_source'],
                set: t['key_set'] === true,
                ...(t['role'] === 'owner' ? { arn: t['key_arn'] } : {}),
              },
            },
          },
        };
      },
    },
    {
      method: 'POST',
      path: '/tenant/restore',
      run: async (ctx) => {
        requirePerson(ctx);
        if (ctx.req.body !== undefined) parseInput(z.strictObject({}), ctx.req.body);
        // The database checks the live Owner (or a platform owner) and the state and deadline.
        const r = await ctx.tx.query('SELECT org_id, previous_state FROM app.restore_tenant($1, $2)', [
          ctx.caller.userId,
          ctx.orgId,
        ]);
        const from = String(r.rows[0]!['previous_state']);
        // Active again, so the Owner can enter it (a platform owner, not a member, cannot: Owners only).
        await enterForAudit(ctx.tx, ctx.caller.userId, ctx.orgId);
        await ctx.emit(ctx.orgId, 'tenant.restored', 'organisation', ctx.orgId, { from });
        return { status: 200, body: { tenant: { orgId: ctx.orgId, lifecycleState: 'active', restoredFrom: from } } };
      },
    },
    {
      method: 'POST',
      path: '/organisations',
      run: async (ctx) => {
        if (ctx.caller.platformRole !== 'platform_owner' || ctx.caller.apiKey || ctx.supportGrant) {
          throw new GuardError('PERMISSION_DENIED');
        }
        const b = parseInput(
          z.strictObject({
            kind: z.enum(ORG_KINDS),
            name: z.string().trim().min(1).max(200),
            plan: z.enum(PLANS),
            parentId: z.string().regex(UUID).nullable().optional(),
            owner: z.strictObject({ subject: z.string().min(1).max(255), email: z.email().max(320) }),
            keySource: z.enum(['managed', 'byok']).optional(),
          }),
          ctx.req.body,
        );
        const keySource = b.keySource ?? 'managed';
        if (keySource === 'byok' && b.plan !== 'enterprise') throw new GuardError('BYOK_NOT_ENTITLED');
        const owner = await ctx.tx.query('SELECT id FROM app.resolve_user($1, $2)', [b.owner.subject, b.owner.email]);
        const ownerId = String(owner.rows[0]!['id']);
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
            if (code === '23514' || code === '23503')
              throw new GuardError('VALIDATION_FAILED', 'hierarchy', 'parentId');
            throw e;
          });
        const orgId = String(created.rows[0]!['id']);
        if (keySource === 'byok') {
          await ctx.tx.query('SELECT app.expect_tenant_byok($1, $2)', [ctx.caller.userId, orgId]);
        }
        // app.create_organisation left the platform owner a read-only context in the new tenant, so
        // its first audit row is appended there, naming the platform owner (migrations/0400).
        await ctx.emit(orgId, 'organisation.created', 'organisation', orgId, {
          kind: b.kind,
          plan: b.plan,
          parentId: b.parentId ?? null,
          ownerUserId: ownerId,
          keySource,
        });
        const body = {
          organisation: {
            id: orgId,
            kind: b.kind,
            name: b.name,
            plan: b.plan,
            parentId: b.parentId ?? null,
            keySource,
          },
        };
        if (keySource === 'byok') return { status: 201, body: { ...body, keyProvisioning: 'awaiting_byok' } };
        return {
          status: 201,
          body,
          // After COMMIT, fire and forget: the provisioner reads the committed row. A lost or refused
          // invocation is picked up by the provisioner's scheduled sweep (app.keyless_tenants).
          afterCommit: async () => {
            if (!deps) return { keyProvisioning: 'deferred' };
            try {
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
      },
    },
  ];
}
