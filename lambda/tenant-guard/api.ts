/**
 * The tenant API: leads (CRUD, bulk delete), memberships and roles, API key minting, support
 * grants, and the tenant's lifecycle, exports and key (tenant-routes.ts). One transaction per request: authenticate, enter the tenant (the database re-checks the
 * membership or grant), `requirePermission`, act, audit in the same transaction, commit.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import type { APIGatewayProxyEvent, APIGatewayProxyResult } from 'aws-lambda';
import { z } from 'zod';
import type { AuditEvent, AuditSink } from '../shared/audit';
import type { SqlClient } from '../shared/migrations';
import { GuardError, parseInput, toGuardError } from './errors';
import {
  authenticate,
  enterTenant,
  hashSecret,
  parseAuthorization,
  UUID,
  type Caller,
  type Credential,
  type TenantContext,
} from './guard';
import type { TokenVerifier } from './jwt';
import {
  ExportError,
  parseExportRequest,
  writeAuditCsv,
  type ExportRequest,
  type ParsedExportRequest,
} from '../audit/export';
import type { SecretCipher } from '../shared/secret-cipher';
import { withSecurityHeaders } from '../shared/security-headers';
import { ProvisionError } from '../tenant-keys/provisioner';
import { PgWebhookSecretStore } from '../webhooks/pg-secret-store';
import { HMAC_PROVIDERS, type HmacProvider } from '../webhooks/providers';
import { MAX_SECRET_BYTES, MIN_SECRET_BYTES, WebhookSecretService } from '../webhooks/secrets';
import { ALL_PERMISSIONS, narrow, requirePermission, type Action, type Module } from './permissions';
import {
  callerRoutes,
  requireOwner,
  tenantKeyRoutes,
  type CallerRouteContext,
  type RouteSpec,
  type TenantKeysApiDeps,
} from './tenant-routes';

export interface PooledClient extends SqlClient {
  release(err?: Error | boolean): void;
}

export interface ApiDeps {
  readonly db: { connect(): Promise<PooledClient> };
  /**
   * Verifies a bearer token that reaches the function without the edge authorizer's verdict (the
   * function behind another gateway, or called directly in tests).
   * @default - such tokens are refused with TOKEN_INVALID: in a deployment every tenant route is
   * behind the REQUEST authorizer, which verifies tokens (lambda/tenant-guard/authorizer.ts)
   */
  readonly verify?: TokenVerifier;
  readonly audit: AuditSink;
  /**
   * Seals per-organisation secrets under the tenant's own key (tenant keys' EnvelopeCipher).
   * @default - the webhook secret routes answer 503 KEY_UNAVAILABLE
   */
  readonly cipher?: SecretCipher;
  /** @default () => new Date() */
  readonly now?: () => Date;
  /**
   * The tenant-keys provisioner and export bucket, for BYOK, export downloads and key provisioning
   * at tenant creation. Without them those routes answer 503 TENANT_KEYS_UNAVAILABLE and new
   * tenants get their key from the provisioner's scheduled sweep.
   * @default - not wired
   */
  readonly tenantKeys?: TenantKeysApiDeps;
}

interface Req {
  readonly method: string;
  readonly path: string;
  readonly params: Readonly<Record<string, string>>;
  readonly body: unknown;
  readonly query: Readonly<Record<string, string | undefined>>;
  readonly ip: string | null;
  readonly userAgent: string | null;
}

type Json = Record<string, unknown> | unknown[];
interface Res {
  readonly status: number;
  readonly body: Json;
  /** A CSV document instead of JSON (the audit export); `body` is then ignored. */
  readonly csv?: { readonly filename: string; readonly text: string };
  /** Work after COMMIT (never throws); its result is merged into the JSON body. */
  readonly afterCommit?: () => Promise<Record<string, unknown>>;
}

interface Ctx {
  readonly tx: SqlClient;
  readonly tenant: TenantContext;
  readonly req: Req;
  readonly cipher: SecretCipher | undefined;
  readonly now: () => Date;
  readonly emit: (event: string, entityType: string | null, entityId: string | null, metadata?: Json) => Promise<void>;
}

const MAX_BULK = 500;
const uuid = z.string().regex(UUID);
const leadBody = z.strictObject({
  name: z.string().min(1).max(200),
  email: z.email().max(320).optional(),
  phone: z.string().max(32).optional(),
  source: z.enum(['manual', 'web', 'phone', 'email', 'walk_in', 'partner']).optional(),
  status: z.enum(['new', 'contacted', 'qualified', 'won', 'lost']).optional(),
  notes: z.string().max(10000).optional(),
});
const BUILTIN_ROLES = ['owner', 'admin', 'member', 'viewer'] as const;
const roleAssignment = z.union([
  z.strictObject({ role: z.enum(BUILTIN_ROLES) }),
  z.strictObject({ role: z.literal('custom'), customRoleId: uuid }),
]);
const permissionList = z.array(z.string()).max(ALL_PERMISSIONS.length);

function need(ctx: Ctx, module: Module, action: Action): void {
  requirePermission(ctx.tenant, module, action);
}

/** The grid of a role assignment in this organisation (built-in or custom). */
async function gridOf(ctx: Ctx, a: z.infer<typeof roleAssignment>): Promise<string[]> {
  const r =
    a.role === 'custom'
      ? await ctx.tx.query('SELECT permissions FROM custom_roles WHERE id = $1 AND org_id = $2', [
          a.customRoleId,
          ctx.tenant.orgId,
        ])
      : await ctx.tx.query('SELECT app.builtin_role_permissions($1) AS permissions', [a.role]);
  const grid = r.rows[0]?.['permissions'] as string[] | undefined;
  if (!grid) throw new GuardError('NOT_FOUND', 'role');
  return grid;
}

/** A custom role's grid, locked for change; nobody edits or deletes a role holding more than they do. */
async function roleWithinReach(ctx: Ctx, id: string): Promise<string[]> {
  const r = await ctx.tx.query('SELECT permissions FROM custom_roles WHERE id = $1 AND org_id = $2 FOR UPDATE', [
    id,
    ctx.tenant.orgId,
  ]);
  const held = r.rows[0]?.['permissions'] as string[] | undefined;
  if (!held) throw new GuardError('NOT_FOUND');
  if (!held.every((p) => ctx.tenant.permissions.includes(p))) throw new GuardError('PERMISSION_DENIED');
  return held;
}

/** Nobody hands out more than they hold; only an Owner makes Owners. */
async function assertAssignable(ctx: Ctx, a: z.infer<typeof roleAssignment>): Promise<void> {
  if (a.role === 'owner' && ctx.tenant.role !== 'owner') throw new GuardError('PERMISSION_DENIED');
  const grid = await gridOf(ctx, a);
  if (!grid.every((p) => ctx.tenant.permissions.includes(p))) throw new GuardError('PERMISSION_DENIED');
}

function hmacProvider(value: string | undefined): HmacProvider {
  const found = HMAC_PROVIDERS.find((p) => p === value);
  if (!found) throw new GuardError('NOT_FOUND', 'provider');
  return found;
}

/** The secret service on this request's transaction; its audit events go through `ctx.emit`. */
function webhookSecrets(ctx: Ctx): WebhookSecretService {
  const cipher = ctx.cipher;
  return new WebhookSecretService({
    store: new PgWebhookSecretStore(ctx.tx),
    cipher: cipher ?? {
      seal: () => Promise.reject(new GuardError('KEY_UNAVAILABLE', 'no cipher configured')),
      open: () => Promise.reject(new GuardError('KEY_UNAVAILABLE', 'no cipher configured')),
    },
    // Actor, IP, user agent and support grant come from the request, as for every other event.
    audit: { record: (e) => ctx.emit(e.event, e.entityType, e.entityId, e.metadata as Json) },
    clock: () => ctx.now().getTime(),
  });
}

/** Sealing needs the tenant's key: a tenant without one yet, or KMS failing, gets an explicit code. */
async function sealing<T>(run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (e) {
    if (e instanceof GuardError) throw e;
    if (e instanceof ProvisionError) throw new GuardError('TENANT_KEY_MISSING', e.code);
    // PostgreSQL errors (a five-character SQLSTATE) are mapped by toGuardError like everywhere else.
    const code = typeof e === 'object' && e !== null && 'code' in e ? (e as { code: unknown }).code : undefined;
    if (typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code)) throw e;
    throw new GuardError('KEY_UNAVAILABLE');
  }
}

type Route<C = Ctx> = (ctx: C) => Promise<Res>;
interface RouteDef<C = Ctx> {
  readonly method: string;
  readonly pattern: RegExp;
  readonly keys: readonly string[];
  readonly run: Route<C>;
}

function route<C = Ctx>(method: string, path: string, run: Route<C>): RouteDef<C> {
  const keys: string[] = [];
  const pattern = new RegExp(
    `^${path.replace(/\{(\w+)\}/g, (_m, k: string) => {
      keys.push(k);
      return '([^/]+)';
    })}$`,
  );
  return { method, pattern, keys, run };
}

const LEAD_COLUMNS = 'id, org_id, name, email, phone, source, status, notes, created_at, updated_at';

const TENANT_ROUTES: readonly RouteDef[] = [
  route('GET', '/leads', async (ctx) => {
    need(ctx, 'leads', 'view');
    const r = await ctx.tx.query(
      `SELECT ${LEAD_COLUMNS} FROM leads WHERE org_id = $1 ORDER BY created_at DESC, id LIMIT 100`,
      [ctx.tenant.orgId],
    );
    return { status: 200, body: { leads: r.rows } };
  }),
  route('POST', '/leads', async (ctx) => {
    need(ctx, 'leads', 'create');
    const b = parseInput(leadBody, ctx.req.body);
    const r = await ctx.tx.query(
      `INSERT INTO leads (org_id, name, email, phone, source, status, notes)
       VALUES ($1, $2, $3, $4, coalesce($5, 'manual'), coalesce($6, 'new'), $7) RETURNING ${LEAD_COLUMNS}`,
      [ctx.tenant.orgId, b.name, b.email ?? null, b.phone ?? null, b.source ?? null, b.status ?? null, b.notes ?? null],
    );
    const lead = r.rows[0]!;
    await ctx.emit('lead.created', 'lead', String(lead['id']));
    return { status: 201, body: { lead } };
  }),
  route('GET', '/leads/{id}', async (ctx) => {
    need(ctx, 'leads', 'view');
    const id = parseInput(uuid, ctx.req.params['id'], 'id');
    // Oversight contexts may read member stores' leads by id (RLS decides what is readable).
    const r = await ctx.tx.query(`SELECT ${LEAD_COLUMNS} FROM leads WHERE id = $1`, [id]);
    if (!r.rows[0]) throw new GuardError('NOT_FOUND');
    return { status: 200, body: { lead: r.rows[0] } };
  }),
  route('PATCH', '/leads/{id}', async (ctx) => {
    need(ctx, 'leads', 'edit');
    const id = parseInput(uuid, ctx.req.params['id'], 'id');
    const b = parseInput(leadBody.partial(), ctx.req.body);
    const fields = Object.entries(b).filter(([, v]) => v !== undefined);
    if (fields.length === 0) throw new GuardError('VALIDATION_FAILED', 'empty update', 'body');
    const sets = fields.map(([k], i) => `${k} = $${i + 3}`).join(', ');
    const r = await ctx.tx.query(`UPDATE leads SET ${sets} WHERE id = $1 AND org_id = $2 RETURNING ${LEAD_COLUMNS}`, [
      id,
      ctx.tenant.orgId,
      ...fields.map(([, v]) => v),
    ]);
    if (!r.rows[0]) throw new GuardError('NOT_FOUND');
    await ctx.emit('lead.updated', 'lead', id, { fields: fields.map(([k]) => k) });
    return { status: 200, body: { lead: r.rows[0] } };
  }),
  route('DELETE', '/leads/{id}', async (ctx) => {
    need(ctx, 'leads', 'delete');
    const id = parseInput(uuid, ctx.req.params['id'], 'id');
    const r = await ctx.tx.query('DELETE FROM leads WHERE id = $1 AND org_id = $2 RETURNING id', [
      id,
      ctx.tenant.orgId,
    ]);
    if (!r.rows[0]) throw new GuardError('NOT_FOUND');
    await ctx.emit('lead.deleted', 'lead', id);
    return { status: 200, body: { deleted: id } };
  }),
  route('POST', '/leads/bulk-delete', async (ctx) => {
    need(ctx, 'leads', 'delete');
    const { ids } = parseInput(z.strictObject({ ids: z.array(uuid).min(1).max(MAX_BULK) }), ctx.req.body);
    const unique = [...new Set(ids.map((i) => i.toLowerCase()))];
    // Scope first: only ids of the caller's own organisation are ever acted on.
    const scoped = await ctx.tx.query('SELECT id FROM leads WHERE org_id = $1 AND id = ANY ($2::uuid[])', [
      ctx.tenant.orgId,
      unique,
    ]);
    const inScope = scoped.rows.map((r) => String(r['id']));
    const del = await ctx.tx.query('DELETE FROM leads WHERE org_id = $1 AND id = ANY ($2::uuid[]) RETURNING id', [
      ctx.tenant.orgId,
      inScope,
    ]);
    const dropped = unique.length - inScope.length;
    await ctx.emit('lead.bulk_deleted', 'lead', null, { requested: unique.length, deleted: del.rows.length, dropped });
    return { status: 200, body: { deleted: del.rows.map((r) => r['id']), dropped } };
  }),

  route('GET', '/memberships', async (ctx) => {
    need(ctx, 'users', 'view');
    const r = await ctx.tx.query(
      `SELECT m.id, m.user_id, u.email, m.role, m.custom_role_id, m.status, m.created_at
         FROM memberships m JOIN users u ON u.id = m.user_id WHERE m.org_id = $1 ORDER BY m.created_at`,
      [ctx.tenant.orgId],
    );
    return { status: 200, body: { memberships: r.rows } };
  }),
  route('POST', '/memberships', async (ctx) => {
    need(ctx, 'users', 'create');
    const b = parseInput(
      z.intersection(
        z.object({ subject: z.string().min(1).max(255), email: z.email().max(320) }),
        z.union([
          z.object({ role: z.enum(BUILTIN_ROLES) }),
          z.object({ role: z.literal('custom'), customRoleId: uuid }),
        ]),
      ),
      ctx.req.body,
    );
    const assignment = b.role === 'custom' ? { role: b.role, customRoleId: b.customRoleId } : { role: b.role };
    await assertAssignable(ctx, assignment);
    const user = await ctx.tx.query('SELECT id FROM app.resolve_user($1, $2)', [b.subject, b.email]);
    const r = await ctx.tx.query(
      `INSERT INTO memberships (org_id, user_id, role, custom_role_id) VALUES ($1, $2, $3, $4)
       ON CONFLICT (org_id, user_id) DO UPDATE SET role = EXCLUDED.role, custom_role_id = EXCLUDED.custom_role_id,
         status = 'active', revoked_at = NULL
       RETURNING id, user_id, role, custom_role_id, status`,
      [ctx.tenant.orgId, user.rows[0]!['id'], b.role, b.role === 'custom' ? b.customRoleId : null],
    );
    await ctx.emit('membership.granted', 'membership', String(r.rows[0]!['id']), { role: b.role });
    return { status: 201, body: { membership: r.rows[0] } };
  }),
  route('PATCH', '/memberships/{id}', async (ctx) => {
    need(ctx, 'users', 'edit');
    const id = parseInput(uuid, ctx.req.params['id'], 'id');
    const a = parseInput(roleAssignment, ctx.req.body);
    await assertAssignable(ctx, a);
    const current = await ctx.tx.query('SELECT role FROM memberships WHERE id = $1 AND org_id = $2', [
      id,
      ctx.tenant.orgId,
    ]);
    if (!current.rows[0]) throw new GuardError('NOT_FOUND');
    if (current.rows[0]['role'] === 'owner' && ctx.tenant.role !== 'owner') throw new GuardError('PERMISSION_DENIED');
    const r = await ctx.tx.query(
      'UPDATE memberships SET role = $3, custom_role_id = $4 WHERE id = $1 AND org_id = $2 RETURNING id, role, custom_role_id',
      [id, ctx.tenant.orgId, a.role, a.role === 'custom' ? a.customRoleId : null],
    );
    await ctx.emit('membership.role_changed', 'membership', id, { role: a.role });
    return { status: 200, body: { membership: r.rows[0] } };
  }),
  route('DELETE', '/memberships/{id}', async (ctx) => {
    need(ctx, 'users', 'delete');
    const id = parseInput(uuid, ctx.req.params['id'], 'id');
    const current = await ctx.tx.query('SELECT role FROM memberships WHERE id = $1 AND org_id = $2', [
      id,
      ctx.tenant.orgId,
    ]);
    if (!current.rows[0]) throw new GuardError('NOT_FOUND');
    if (current.rows[0]['role'] === 'owner' && ctx.tenant.role !== 'owner') throw new GuardError('PERMISSION_DENIED');
    await ctx.tx.query(
      "UPDATE memberships SET status = 'revoked', revoked_at = now() WHERE id = $1 AND org_id = $2 AND status = 'active'",
      [id, ctx.tenant.orgId],
    );
    await ctx.emit('membership.revoked', 'membership', id);
    return { status: 200, body: { revoked: id } };
  }),
  route('GET', '/roles', async (ctx) => {
    need(ctx, 'settings', 'view');
    const r = await ctx.tx.query(
      'SELECT id, name, permissions, oversight FROM custom_roles WHERE org_id = $1 ORDER BY name',
      [ctx.tenant.orgId],
    );
    return { status: 200, body: { roles: r.rows } };
  }),
  route('POST', '/roles', async (ctx) => {
    need(ctx, 'settings', 'create');
    const b = parseInput(
      z.strictObject({
        name: z.string().min(1).max(100),
        permissions: permissionList,
        oversight: z.boolean().optional(),
      }),
      ctx.req.body,
    );
    // A custom role can only hold what its creator holds.
    const grid = narrow(b.permissions, ctx.tenant.permissions, 'PERMISSION_DENIED');
    const r = await ctx.tx.query(
      'INSERT INTO custom_roles (org_id, name, permissions, oversight) VALUES ($1, $2, $3, $4) RETURNING id, name, permissions, oversight',
      [ctx.tenant.orgId, b.name, grid, b.oversight ?? false],
    );
    await ctx.emit('role.created', 'custom_role', String(r.rows[0]!['id']), { permissions: grid });
    return { status: 201, body: { role: r.rows[0] } };
  }),

  route('PATCH', '/roles/{id}', async (ctx) => {
    need(ctx, 'settings', 'edit');
    const id = parseInput(uuid, ctx.req.params['id'], 'id');
    const b = parseInput(
      z.strictObject({
        name: z.string().min(1).max(100).optional(),
        permissions: permissionList.optional(),
        oversight: z.boolean().optional(),
      }),
      ctx.req.body,
    );
    if (b.name === undefined && b.permissions === undefined && b.oversight === undefined) {
      throw new GuardError('VALIDATION_FAILED', 'empty update', 'body');
    }
    // Nor gives it more than they hold: members of the role gain at most what the editor has.
    const held = await roleWithinReach(ctx, id);
    const grid =
      b.permissions === undefined ? undefined : narrow(b.permissions, ctx.tenant.permissions, 'PERMISSION_DENIED');
    const r = await ctx.tx.query(
      `UPDATE custom_roles SET name = coalesce($3, name), permissions = coalesce($4, permissions),
              oversight = coalesce($5, oversight)
        WHERE id = $1 AND org_id = $2 RETURNING id, name, permissions, oversight`,
      [id, ctx.tenant.orgId, b.name ?? null, grid ?? null, b.oversight ?? null],
    );
    await ctx.emit('role.updated', 'custom_role', id, {
      fields: Object.keys(b),
      ...(grid ? { permissions: grid, previous: held } : {}),
    });
    return { status: 200, body: { role: r.rows[0] } };
  }),
  route('DELETE', '/roles/{id}', async (ctx) => {
    need(ctx, 'settings', 'delete');
    const id = parseInput(uuid, ctx.req.params['id'], 'id');
    const held = await roleWithinReach(ctx, id);
    // A role still assigned (to a live or revoked membership) stays: reassign first, so no history points nowhere.
    const used = await ctx.tx.query(
      'SELECT count(*)::int AS n FROM memberships WHERE org_id = $1 AND custom_role_id = $2',
      [ctx.tenant.orgId, id],
    );
    if (Number(used.rows[0]?.['n'] ?? 0) > 0) throw new GuardError('CONFLICT', 'role is assigned');
    await ctx.tx.query('DELETE FROM custom_roles WHERE id = $1 AND org_id = $2', [id, ctx.tenant.orgId]);
    await ctx.emit('role.deleted', 'custom_role', id, { permissions: held });
    return { status: 200, body: { deleted: id } };
  }),

  route('POST', '/api-keys', async (ctx) => {
    need(ctx, 'settings', 'create');
    if (ctx.tenant.actorType !== 'user') throw new GuardError('PERMISSION_DENIED', 'only people mint keys');
    const b = parseInput(
      z.strictObject({
        name: z.string().min(1).max(100),
        permissions: permissionList.min(1),
        expiresInDays: z.number().int().min(1).max(365).optional(),
      }),
      ctx.req.body,
    );
    const grid = narrow(b.permissions, ctx.tenant.permissions);
    const id = randomUUID();
    const secret = randomBytes(32).toString('base64url');
    await ctx.tx.query(
      `INSERT INTO api_keys (id, org_id, created_by, name, secret_hash, permissions, expires_at)
       VALUES ($1, $2, $3, $4, $5, $6, now() + make_interval(days => $7))`,
      [id, ctx.tenant.orgId, ctx.tenant.userId, b.name, hashSecret(secret), grid, b.expiresInDays ?? 90],
    );
    await ctx.emit('api_key.minted', 'api_key', id, { permissions: grid });
    // The secret is returned once and never stored.
    return { status: 201, body: { id, key: `bwk_${id.replace(/-/g, '')}_${secret}`, permissions: grid } };
  }),
  route('DELETE', '/api-keys/{id}', async (ctx) => {
    need(ctx, 'settings', 'delete');
    const id = parseInput(uuid, ctx.req.params['id'], 'id');
    const r = await ctx.tx.query(
      'UPDATE api_keys SET revoked_at = now() WHERE id = $1 AND org_id = $2 AND revoked_at IS NULL RETURNING id',
      [id, ctx.tenant.orgId],
    );
    if (!r.rows[0]) throw new GuardError('NOT_FOUND');
    await ctx.emit('api_key.revoked', 'api_key', id);
    return { status: 200, body: { revoked: id } };
  }),

  route('GET', '/audit/export', async (ctx) => {
    // RBAC here; row-level security keeps the rows to this organisation; the export audits itself.
    need(ctx, 'audit', 'view');
    const q = ctx.req.query;
    let req: ParsedExportRequest;
    try {
      req = parseExportRequest({
        orgId: ctx.tenant.orgId,
        userId: ctx.tenant.userId,
        supportGrantId: ctx.tenant.supportGrantId,
        from: q['from'],
        to: q['to'],
        actorUserId: q['actor'],
        actorType: q['actor_type'] as ExportRequest['actorType'],
        events: q['event'] ? q['event'].split(',') : undefined,
        ip: ctx.req.ip,
        userAgent: ctx.req.userAgent,
      });
    } catch (e) {
      if (e instanceof ExportError) throw new GuardError('VALIDATION_FAILED', e.message, e.field);
      throw e;
    }
    let out;
    try {
      out = await writeAuditCsv(ctx.tx, req);
    } catch (e) {
      if (e instanceof ExportError && e.code === 'EXPORT_TOO_LARGE')
        throw new GuardError('EXPORT_TOO_LARGE', e.message);
      throw e;
    }
    return {
      status: 200,
      body: {},
      csv: { filename: `audit-${ctx.tenant.orgId}${out.filtered ? '-filtered' : ''}.csv`, text: out.csv },
    };
  }),
  // Per-organisation carrier webhook secrets (docs/webhooks.md): write-only. Answers carry
  // `secret_set` and never the secret; the secret is sealed under the tenant's own key before it
  // reaches the database, and every change is audited in this transaction.
  route('GET', '/webhook-secrets', async (ctx) => {
    need(ctx, 'settings', 'view');
    const service = webhookSecrets(ctx);
    return {
      status: 200,
      body: { secrets: await Promise.all(HMAC_PROVIDERS.map((p) => service.status(ctx.tenant.orgId, p))) },
    };
  }),
  route('PUT', '/webhook-secrets/{provider}', async (ctx) => {
    need(ctx, 'settings', 'edit');
    const provider = hmacProvider(ctx.req.params['provider']);
    const { secret } = parseInput(z.strictObject({ secret: z.string() }), ctx.req.body);
    const bytes = Buffer.from(secret, 'utf8');
    if (bytes.length < MIN_SECRET_BYTES || bytes.length > MAX_SECRET_BYTES) {
      throw new GuardError('VALIDATION_FAILED', `secret: ${MIN_SECRET_BYTES}-${MAX_SECRET_BYTES} bytes`, 'secret');
    }
    const status = await sealing(() =>
      webhookSecrets(ctx).setSecret(ctx.tenant.orgId, provider, bytes, {
        userId: ctx.tenant.userId,
        email: ctx.tenant.email,
      }),
    );
    return { status: 200, body: { secret: status } };
  }),
  route('DELETE', '/webhook-secrets/{provider}/previous', async (ctx) => {
    need(ctx, 'settings', 'edit');
    const provider = hmacProvider(ctx.req.params['provider']);
    const status = await webhookSecrets(ctx).endRotation(ctx.tenant.orgId, provider, {
      userId: ctx.tenant.userId,
      email: ctx.tenant.email,
    });
    return { status: 200, body: { secret: status } };
  }),

  route('GET', '/support-grants', async (ctx) => {
    // The Owner in person: never an API key (its role is its minter's), never under a grant.
    requireOwner(ctx.tenant, false);
    const r = await ctx.tx.query(
      `SELECT g.id, g.granted_to, u.email AS granted_to_email, g.reason, g.scope, g.opened_at, g.expires_at,
              g.revoked_at FROM support_grants g LEFT JOIN users u ON u.id = g.granted_to
        WHERE g.org_id = $1 ORDER BY g.opened_at DESC`,
      [ctx.tenant.orgId],
    );
    return { status: 200, body: { grants: r.rows } };
  }),
  route('DELETE', '/support-grants/{id}', async (ctx) => {
    requireOwner(ctx.tenant, true);
    const id = parseInput(uuid, ctx.req.params['id'], 'id');
    const r = await ctx.tx.query(
      `UPDATE support_grants SET revoked_at = now(), revoked_by = $3
        WHERE id = $1 AND org_id = $2 AND revoked_at IS NULL RETURNING id`,
      [id, ctx.tenant.orgId, ctx.tenant.userId],
    );
    if (!r.rows[0]) throw new GuardError('NOT_FOUND');
    await ctx.emit('support_grant.revoked', 'support_grant', id);
    return { status: 200, body: { revoked: id } };
  }),
];

/**
 * Opening a support grant: platform_support staff on the caller, no tenant entered (they are no
 * member); the database function checks the platform role and the 4-hour limit again.
 */
const SUPPORT_GRANT_ROUTES: readonly RouteSpec<CallerRouteContext>[] = [
  {
    method: 'POST',
    path: '/support-grants',
    run: async (ctx) => {
      if (ctx.caller.platformRole !== 'platform_support' || ctx.caller.apiKey)
        throw new GuardError('PERMISSION_DENIED');
      const b = parseInput(
        z.strictObject({
          orgId: uuid,
          reason: z.string().trim().min(10).max(1000),
          durationMinutes: z.number().int().min(1),
          scope: z.enum(['read', 'read_write']).optional(),
        }),
        ctx.req.body,
      );
      if (b.durationMinutes > 240) throw new GuardError('SUPPORT_GRANT_TOO_LONG');
      const r = await ctx.tx.query(
        `SELECT (g).id, (g).org_id, (g).expires_at, (g).scope
           FROM (SELECT app.open_support_grant($1, $2, $3, make_interval(mins => $4), $5) AS g) s`,
        [ctx.caller.userId, b.orgId, b.reason, b.durationMinutes, b.scope ?? 'read'],
      );
      const grant = r.rows[0]!;
      const grantId = String(grant['id']);
      // audit_log admits rows only for the verified context's organisation: enter it under the new
      // grant (the gate checks the grant is live), so the opening is recorded in its own chain.
      await ctx.tx.query('SELECT 1 FROM app.set_tenant_context($1, $2, $3)', [ctx.caller.userId, b.orgId, grantId]);
      await ctx.emit(b.orgId, 'support_grant.opened', 'support_grant', grantId, {}, grantId);
      return { status: 201, body: { grant } };
    },
  },
];

const requestOf = (e: APIGatewayProxyEvent): Omit<Req, 'params'> => {
  let body: unknown = undefined;
  if (e.body) {
    try {
      body = JSON.parse(e.isBase64Encoded ? Buffer.from(e.body, 'base64').toString('utf8') : e.body);
    } catch {
      throw new GuardError('VALIDATION_FAILED', 'body is not JSON', 'body');
    }
  }
  return {
    method: e.httpMethod.toUpperCase(),
    path: e.path.replace(/\/+$/, '') || '/',
    body,
    query: e.queryStringParameters ?? {},
    ip: e.requestContext?.identity?.sourceIp ?? null,
    userAgent: header(e, 'user-agent') ?? null,
  };
};

const header = (e: APIGatewayProxyEvent, name: string): string | undefined =>
  Object.entries(e.headers ?? {}).find(([k]) => k.toLowerCase() === name)?.[1];

/**
 * The caller's credential. Behind the edge authorizer, `requestContext.authorizer` (set by API
 * Gateway, never by the client) carries its verdict: a verified token's identity, which is honoured
 * only until the token's own expiry (verdicts are cached), or an API key's id, which must match the
 * key presented (its secret is checked in the database by `authenticate`). Without a verdict the
 * Authorization header is parsed and verified here.
 */
function credentialOf(event: APIGatewayProxyEvent, now: Date): Credential {
  const verdict = event.requestContext?.authorizer as Record<string, unknown> | null | undefined;
  const kind = verdict?.['kind'];
  if (verdict === null || verdict === undefined || kind === undefined) {
    return parseAuthorization(header(event, 'authorization'));
  }
  if (kind === 'jwt') {
    const [subject, email, orgId, exp, ticket] = ['subject', 'email', 'orgId', 'exp', 'ticket'].map((k) => verdict[k]);
    const expiresAt = Number(exp);
    if (
      typeof subject !== 'string' ||
      !subject ||
      typeof email !== 'string' ||
      typeof orgId !== 'string' ||
      typeof ticket !== 'string'
    ) {
      throw new GuardError('TOKEN_INVALID', 'incomplete authorizer verdict');
    }
    if (!UUID.test(orgId)) throw new GuardError('TENANT_CONTEXT_MISSING');
    if (!Number.isFinite(expiresAt) || expiresAt * 1000 <= now.getTime()) throw new GuardError('TOKEN_EXPIRED');
    return { kind: 'identity', identity: { subject, email, orgId: orgId.toLowerCase(), expiresAt, ticket } };
  }
  if (kind === 'api_key') {
    const credential = parseAuthorization(header(event, 'authorization'));
    if (credential.kind !== 'api_key' || credential.keyId !== verdict['keyId']) {
      throw new GuardError('TOKEN_INVALID', 'credential differs from the authorizer verdict');
    }
    return credential;
  }
  throw new GuardError('TOKEN_INVALID', 'unknown authorizer verdict');
}

// API Gateway cannot add headers to Lambda proxy responses: every answer sets HSTS and friends itself.
const respond = (status: number, body: Json): APIGatewayProxyResult =>
  withSecurityHeaders({
    statusCode: status,
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });

/** Refusals about a request header name it (lower case, as HTTP/2 sends it). */
const HEADER_AT_FAULT: Partial<Record<GuardError['code'], string>> = {
  TOKEN_MISSING: 'authorization',
  TOKEN_INVALID: 'authorization',
  TOKEN_EXPIRED: 'authorization',
  SUPPORT_GRANT_INVALID: 'x-bulwark-support-grant',
};

const refusal = (e: GuardError): APIGatewayProxyResult => {
  const header = HEADER_AT_FAULT[e.code];
  return respond(e.status, { error: e.code, ...(e.field ? { field: e.field } : {}), ...(header ? { header } : {}) });
};

/** Builds the API Gateway proxy handler over injected dependencies. */
export function createApi(deps: ApiDeps): (event: APIGatewayProxyEvent) => Promise<APIGatewayProxyResult> {
  const now = deps.now ?? (() => new Date());
  const tenantRoutes: readonly RouteDef[] = [
    ...TENANT_ROUTES,
    ...tenantKeyRoutes(deps.tenantKeys, now).map((r) => route(r.method, r.path, r.run)),
  ];
  // Routes on the authenticated caller that enter no tenant (tenant-routes.ts).
  const outsideRoutes = [...SUPPORT_GRANT_ROUTES, ...callerRoutes(deps.tenantKeys)].map((r) =>
    route<CallerRouteContext>(r.method, r.path, r.run),
  );

  return async (event) => {
    let req: Omit<Req, 'params'>;
    try {
      req = requestOf(event);
    } catch (e) {
      return refusal(toGuardError(e));
    }
    const match = <C>(defs: readonly RouteDef<C>[]): { def: RouteDef<C>; params: Record<string, string> } | null => {
      for (const def of defs) {
        const m = def.pattern.exec(req.path);
        if (m && def.method === req.method) {
          return { def, params: Object.fromEntries(def.keys.map((k, i) => [k, decodeURIComponent(m[i + 1] ?? '')])) };
        }
      }
      return null;
    };
    // Routes on the caller (no tenant entered) first: opening a support grant, tenant status and
    // restore, tenant creation; then the routes inside the caller's tenant.
    const outside = match(outsideRoutes);
    const tenantRoute = outside ? null : match(tenantRoutes);
    if (!outside && !tenantRoute) return respond(404, { error: 'NOT_FOUND' });

    let client: PooledClient;
    try {
      client = await deps.db.connect();
    } catch {
      return respond(503, { error: 'INTERNAL' });
    }
    let caller: Caller | null = null;
    let broken = false;
    let released = false;
    try {
      await client.query('BEGIN');
      caller = await authenticate(client, credentialOf(event, now()), deps.verify);
      const who = caller;
      const base = (orgId: string, actorType: AuditEvent['actorType'], grant: string | null) =>
        ({
          orgId,
          actorType,
          actorUserId: who.userId,
          actorEmail: who.email,
          ip: req.ip,
          userAgent: req.userAgent,
          supportGrantId: grant,
          occurredAt: now(),
        }) as const;

      // A person may address another organisation they belong to, or a member store they oversee
      // (read-only), with X-Bulwark-Org; the database decides whether that is allowed.
      const target = header(event, 'x-bulwark-org');
      if (target !== undefined && (!UUID.test(target) || who.apiKey)) throw new GuardError('PERMISSION_DENIED');

      let res: Res;
      if (outside) {
        res = await outside.def.run({
          tx: client,
          caller: who,
          orgId: target ? target.toLowerCase() : who.orgId,
          supportGrant: header(event, 'x-bulwark-support-grant') !== undefined,
          req: { ...req, params: outside.params },
          emit: (orgId, name, entityType, entityId, metadata = {}, grant) =>
            deps.audit.record(
              {
                ...base(orgId, grant ? 'support_grant' : 'user', grant ?? null),
                event: name,
                entityType,
                entityId,
                metadata: { ...metadata },
              },
              client,
            ),
        });
      } else {
        const tenant = await enterTenant(
          client,
          target ? { ...who, orgId: target.toLowerCase() } : who,
          header(event, 'x-bulwark-support-grant') ?? null,
        );
        const ctx: Ctx = {
          tx: client,
          tenant,
          req: { ...req, params: tenantRoute!.params },
          cipher: deps.cipher,
          now,
          emit: (name, entityType, entityId, metadata = {}) =>
            deps.audit.record(
              {
                ...base(tenant.orgId, tenant.actorType, tenant.supportGrantId),
                event: name,
                entityType,
                entityId,
                metadata: { ...(metadata as object), ...(tenant.apiKeyId ? { apiKeyId: tenant.apiKeyId } : {}) },
              },
              client,
            ),
        };
        res = await tenantRoute!.def.run(ctx);
      }
      await client.query('COMMIT');
      const after = res.afterCommit;
      if (after) {
        const extra = await after().catch(() => ({}));
        return respond(res.status, { ...(res.body as Record<string, unknown>), ...extra });
      }
      if (res.csv) {
        return withSecurityHeaders({
          statusCode: res.status,
          headers: {
            'content-type': 'text/csv; charset=utf-8',
            'content-disposition': `attachment; filename="${res.csv.filename}"`,
          },
          body: res.csv.text,
        });
      }
      return respond(res.status, res.body);
    } catch (e) {
      const err = toGuardError(e);
      try {
        await client.query('ROLLBACK');
      } catch {
        broken = true;
      }
      // Give the connection back before recording a refusal, which opens a transaction of its own:
      // it then reuses this connection instead of holding a second one.
      client.release(broken);
      released = true;
      if (caller && err.status === 403) {
        // Refusals of an authenticated caller are security events; recorded outside the
        // rolled-back transaction.
        await deps.audit
          .record(
            {
              orgId: caller.orgId,
              actorType: caller.apiKey ? 'api_key' : 'user',
              actorUserId: caller.userId,
              actorEmail: caller.email,
              event: 'access.refused',
              entityType: null,
              entityId: null,
              ip: req.ip,
              userAgent: req.userAgent,
              supportGrantId: null,
              metadata: { code: err.code, method: req.method, path: req.path },
              occurredAt: now(),
            },
            undefined,
            caller.proof,
          )
          .catch(() => undefined);
      }
      return refusal(err);
    } finally {
      if (!released) client.release(broken);
    }
  };
}
