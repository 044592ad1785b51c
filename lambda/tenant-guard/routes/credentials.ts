/**
 * The credentials vault (docs/credentials.md): tenant credentials are set, replaced and deleted,
 * never read back. A value is sealed under the tenant's own KMS key (envelope, `org_id` and
 * `purpose` = kind in the encryption context, through write-only.ts) before it reaches the
 * database; answers and audit events carry the kind, the scope, `<kind>_set`, `set_at` and
 * `set_by` only. The API role cannot even SELECT the sealed column (migrations/0409).
 */
import * as z from 'zod/mini';
import {
  CREDENTIAL_EVENTS,
  CREDENTIAL_KINDS,
  CREDENTIAL_SCOPE,
  MAX_CREDENTIAL_BYTES,
  isCredentialKind,
  type CredentialKind,
} from '../../../contracts/credentials';
import type { SecretPurpose } from '../../shared/secret-cipher';
import { sealUpdate } from '../../tenant-keys/write-only';
import { GuardError, parseInput } from '../errors';
import { tenantRoute, type Route, type RouteContext } from '../route';
import { iso, need } from './common';
import { sealing } from './webhook-secrets';

interface Row {
  readonly id: string;
  readonly kind: CredentialKind;
  readonly scope: string;
  readonly set_at: Date;
  readonly set_by: string;
}

/** The metadata columns: the only ones the API role may read. */
const COLUMNS = 'id, kind, scope, set_at, set_by';

/** What a set credential looks like to anyone: never the value, never the ciphertext. */
function setView(r: Row): Record<string, unknown> {
  return {
    kind: r.kind,
    scope_type: CREDENTIAL_KINDS[r.kind],
    scope: r.scope,
    [`${r.kind}_set`]: true,
    set_at: iso(r.set_at),
    set_by: r.set_by,
  };
}

/** Support staff never set, replace or delete a tenant's credential (the database refuses it too). */
function requireOwnStaff(ctx: RouteContext<'tenant'>): void {
  if (ctx.tenant.supportGrantId !== null) throw new GuardError('PERMISSION_DENIED', 'not under a support grant');
}

/** The credential a path addresses: an unknown kind is not found, a malformed scope a validation failure. */
function addressed(ctx: RouteContext<'tenant'>): { kind: CredentialKind; scope: string } {
  const kind = ctx.req.params['kind'];
  if (!isCredentialKind(kind)) throw new GuardError('NOT_FOUND', 'kind');
  const scope = ctx.req.params['scope'] ?? '';
  if (!CREDENTIAL_SCOPE.test(scope)) throw new GuardError('VALIDATION_FAILED', 'scope', 'scope');
  return { kind, scope };
}

async function find(ctx: RouteContext<'tenant'>, kind: CredentialKind, scope: string, lock = false) {
  const r = await ctx.tx.query(
    `SELECT ${COLUMNS} FROM tenant_credentials WHERE kind = $1 AND scope = $2${lock ? ' FOR UPDATE' : ''}`,
    [kind, scope],
  );
  return r.rows[0] as unknown as Row | undefined;
}

/** Seals `{ [kind]: value }` for the context's organisation; KMS or a missing key fail with their code. */
async function seal(ctx: RouteContext<'tenant'>, kind: CredentialKind, body: Record<string, unknown>) {
  const cipher = ctx.cipher;
  if (!cipher) throw new GuardError('KEY_UNAVAILABLE', 'no cipher configured');
  // Each kind is its own purpose: a value sealed as one kind never opens as another.
  const purpose: SecretPurpose = kind;
  const fields = { [kind]: purpose } as Record<CredentialKind, SecretPurpose>;
  const sealed = (await sealing(() => sealUpdate(cipher, ctx.tenant.orgId, body, fields)))[kind];
  if (typeof sealed !== 'string') throw new GuardError('INTERNAL', 'nothing sealed');
  return sealed;
}

export const CREDENTIAL_ROUTES: readonly Route[] = [
  tenantRoute('GET', '/credentials', async (ctx) => {
    need(ctx, 'settings', 'view');
    const r = await ctx.tx.query(`SELECT ${COLUMNS} FROM tenant_credentials ORDER BY kind, scope`);
    return { status: 200, body: { credentials: (r.rows as unknown as Row[]).map(setView) } };
  }),

  tenantRoute('GET', '/credentials/{kind}/{scope}', async (ctx) => {
    need(ctx, 'settings', 'view');
    const { kind, scope } = addressed(ctx);
    const row = await find(ctx, kind, scope);
    if (!row) throw new GuardError('CREDENTIAL_MISSING', kind);
    return { status: 200, body: { credential: setView(row) } };
  }),

  // Sets or replaces. The body names the kind: `{"sip_password": "..."}`; anything else is refused.
  tenantRoute('PUT', '/credentials/{kind}/{scope}', async (ctx) => {
    need(ctx, 'settings', 'edit');
    requireOwnStaff(ctx);
    const { kind, scope } = addressed(ctx);
    const body = parseInput(z.strictObject({ [kind]: z.string().check(z.minLength(1)) }), ctx.req.body);
    if (Buffer.byteLength(body[kind] ?? '', 'utf8') > MAX_CREDENTIAL_BYTES) {
      throw new GuardError('VALIDATION_FAILED', `${kind}: at most ${MAX_CREDENTIAL_BYTES} bytes`, kind);
    }
    const sealed = await seal(ctx, kind, body);
    // set_at and set_by are stamped by the database from the verified context (migrations/0409).
    const existing = await find(ctx, kind, scope, true);
    const r = existing
      ? await ctx.tx.query(
          `UPDATE tenant_credentials SET sealed = $3 WHERE kind = $1 AND scope = $2 RETURNING ${COLUMNS}`,
          [kind, scope, sealed],
        )
      : await ctx.tx.query(
          `INSERT INTO tenant_credentials (org_id, kind, scope, set_by, sealed) VALUES ($1, $2, $3, $4, $5)
           RETURNING ${COLUMNS}`,
          [ctx.tenant.orgId, kind, scope, ctx.tenant.userId, sealed],
        );
    const row = r.rows[0] as unknown as Row | undefined;
    // Never a fabricated success: a write the policies filtered out changed nothing.
    if (!row) throw new GuardError('PERMISSION_DENIED');
    await ctx.emit(existing ? CREDENTIAL_EVENTS.replaced : CREDENTIAL_EVENTS.set, 'credential', row.id, {
      kind,
      scope,
    });
    return { status: 200, body: { credential: setView(row) } };
  }),

  tenantRoute('DELETE', '/credentials/{kind}/{scope}', async (ctx) => {
    need(ctx, 'settings', 'delete');
    requireOwnStaff(ctx);
    const { kind, scope } = addressed(ctx);
    const row = await find(ctx, kind, scope);
    if (!row) throw new GuardError('CREDENTIAL_MISSING', kind);
    const gone = await ctx.tx.query('SELECT * FROM app.delete_tenant_rows($1::regclass, ARRAY[$2]::uuid[])', [
      'tenant_credentials',
      row.id,
    ]);
    if (gone.rows.length !== 1) throw new GuardError('PERMISSION_DENIED');
    await ctx.emit(CREDENTIAL_EVENTS.deleted, 'credential', row.id, { kind, scope });
    return {
      status: 200,
      body: { credential: { kind, scope_type: CREDENTIAL_KINDS[kind], scope, [`${kind}_set`]: false } },
    };
  }),
];
