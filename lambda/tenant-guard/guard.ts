/**
 * The request guard, the only place the API enters a tenant: one statement, app.enter_tenant,
 * proves the caller to the database (the authorizer's gate ticket or the API key's secret),
 * re-checks membership (or a live support grant) and enters the tenant transaction-locally, in a
 * sealed setting that writes nothing (migrations/0407). Caller routes and refusals prove the caller
 * alone (app.authenticate). Pure over its injected dependencies.
 */
import { createHash } from 'node:crypto';
import type { SqlClient } from '../shared/migrations';
import { GuardError, toGuardError } from './errors';
import { UUID } from '../../contracts/ids';
import type { TokenVerifier, VerifiedIdentity } from './jwt';
import { isPermission, type Grid } from './permissions';

const API_KEY = /^bwk_([0-9a-f]{32})_([A-Za-z0-9_-]{43})$/;

export type Credential =
  | { readonly kind: 'jwt'; readonly token: string }
  /** A token the edge authorizer already verified (lambda/tenant-guard/authorizer.ts). */
  | { readonly kind: 'identity'; readonly identity: VerifiedIdentity }
  | { readonly kind: 'api_key'; readonly keyId: string; readonly secret: string };

/** `Authorization: Bearer <jwt>` or `Authorization: ApiKey bwk_<id>_<secret>`. */
export function parseAuthorization(header: string | undefined): Exclude<Credential, { kind: 'identity' }> {
  if (!header) throw new GuardError('TOKEN_MISSING');
  const [scheme, value, extra] = header.trim().split(/\s+/);
  if (!value || extra !== undefined) throw new GuardError('TOKEN_INVALID');
  if (scheme?.toLowerCase() === 'bearer') return { kind: 'jwt', token: value };
  if (scheme?.toLowerCase() === 'apikey') {
    const m = API_KEY.exec(value);
    if (!m || !m[1] || !m[2]) throw new GuardError('TOKEN_INVALID');
    const h = m[1];
    const keyId = `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
    return { kind: 'api_key', keyId, secret: m[2] };
  }
  throw new GuardError('TOKEN_INVALID');
}

export const hashSecret = (secret: string): Buffer => createHash('sha256').update(secret, 'utf8').digest();

/** Who is calling, before any tenant is entered. */
export interface Caller {
  readonly userId: string;
  readonly email: string | null;
  readonly platformRole: string | null;
  /** Organisation the credential names (JWT `org_id` claim, or the key's organisation). */
  readonly orgId: string;
  readonly apiKey: { readonly id: string; readonly permissions: readonly string[] } | null;
  /** What proved the caller to the database, for a transaction of its own (a refusal's audit row). */
  readonly proof: string;
}

export interface TenantContext extends Grid {
  readonly orgId: string;
  readonly userId: string;
  readonly email: string | null;
  readonly supportGrantId: string | null;
  readonly writable: boolean;
  readonly actorType: 'user' | 'api_key' | 'support_grant';
  readonly apiKeyId: string | null;
}

/** The proof `app.authenticate` verifies: an API key's full secret, or a verified identity's gate ticket. */
function proofOf(credential: Exclude<Credential, { kind: 'jwt' }>): string {
  if (credential.kind === 'api_key') return `bwk_${credential.keyId.replace(/-/g, '')}_${credential.secret}`;
  const ticket = credential.identity.ticket;
  if (!ticket) throw new GuardError('TOKEN_INVALID', 'a verified identity without a gate ticket');
  return ticket;
}

/** A credential with its proof, before the database has seen it. */
export interface Proven {
  readonly credential: Exclude<Credential, { kind: 'jwt' }>;
  readonly proof: string;
}

/**
 * The proof of a credential. `verify` checks raw bearer tokens (and must attach a ticket); without
 * it only identities the edge authorizer verified, and API keys, are accepted.
 */
export async function proofFor(credential: Credential, verify: TokenVerifier | undefined): Promise<Proven> {
  let resolved: Exclude<Credential, { kind: 'jwt' }>;
  if (credential.kind === 'jwt') {
    if (!verify) throw new GuardError('TOKEN_INVALID', 'bearer tokens are verified by the authorizer');
    resolved = { kind: 'identity', identity: await verify(credential.token) };
  } else resolved = credential;
  return { credential: resolved, proof: proofOf(resolved) };
}

/**
 * Authenticates inside `tx` (which the caller has BEGun): the database verifies the proof (gate
 * ticket or API key secret) and holds the caller as this transaction's principal, so only this
 * caller can be entered (migrations/0400, 0407). For caller routes and refusals; tenant routes
 * prove and enter in one statement (`enter`).
 */
export async function authenticate(tx: SqlClient, proven: Proven): Promise<Caller> {
  const { credential: resolved, proof } = proven;
  let row: Record<string, unknown> | undefined;
  try {
    row = (
      await tx.query('SELECT user_id, status, platform_role, org_id, permissions FROM app.authenticate($1)', [proof])
    ).rows[0];
  } catch (e) {
    throw toGuardError(e);
  }
  if (!row || row['status'] !== 'active') throw new GuardError('USER_DISABLED');
  if (resolved.kind === 'identity') {
    return {
      userId: String(row['user_id']),
      email: resolved.identity.email,
      platformRole: (row['platform_role'] as string | null) ?? null,
      orgId: resolved.identity.orgId,
      apiKey: null,
      proof,
    };
  }
  return {
    userId: String(row['user_id']),
    email: null,
    platformRole: null,
    orgId: String(row['org_id']),
    apiKey: { id: resolved.keyId, permissions: (row['permissions'] as string[]).filter(isPermission) },
    proof,
  };
}

const ENTER =
  'SELECT user_id, platform_role, proof_org_id, api_key_permissions, org_id, role, permissions, support_grant_id, writable ' +
  'FROM app.enter_tenant($1, $2, $3)';

/**
 * Proves the caller and enters `orgId` (default: the credential's own organisation) for the
 * current transaction, in one statement: the database verifies the proof, re-checks the membership
 * (or the support grant) live and narrows an API key's grid; its refusals become explicit error
 * codes. `tx` must be in a transaction; a pipelining client may send this right behind BEGIN.
 */
export async function enter(
  tx: SqlClient,
  proven: Proven,
  orgId: string | undefined,
  supportGrantId: string | null,
): Promise<{ readonly caller: Caller; readonly tenant: TenantContext }> {
  const { credential, proof } = proven;
  const apiKey = credential.kind === 'api_key';
  if (supportGrantId !== null && (!UUID.test(supportGrantId) || apiKey)) {
    throw new GuardError('SUPPORT_GRANT_INVALID');
  }
  if (orgId !== undefined && !UUID.test(orgId)) throw new GuardError('PERMISSION_DENIED');
  let row: Record<string, unknown> | undefined;
  try {
    row = (await tx.query(ENTER, [proof, orgId ?? null, supportGrantId])).rows[0];
  } catch (e) {
    throw toGuardError(e);
  }
  if (!row) throw new GuardError('TENANT_CONTEXT_MISSING');
  const identity = credential.kind === 'identity' ? credential.identity : null;
  const keyPermissions = ((row['api_key_permissions'] as string[] | null) ?? []).filter(isPermission);
  const caller: Caller = {
    userId: String(row['user_id']),
    email: identity?.email ?? null,
    platformRole: identity ? ((row['platform_role'] as string | null) ?? null) : null,
    orgId: identity ? identity.orgId : String(row['proof_org_id']),
    apiKey: credential.kind === 'api_key' ? { id: credential.keyId, permissions: keyPermissions } : null,
    proof,
  };
  const rolePermissions = (row['permissions'] as string[] | null) ?? [];
  return {
    caller,
    tenant: {
      orgId: String(row['org_id']),
      userId: caller.userId,
      email: caller.email,
      role: String(row['role']),
      // The database narrowed an API key's grid already; narrowing again here costs nothing.
      permissions: caller.apiKey
        ? rolePermissions.filter((p) => (keyPermissions as readonly string[]).includes(p))
        : rolePermissions,
      supportGrantId: (row['support_grant_id'] as string | null) ?? null,
      writable: row['writable'] === true,
      actorType: supportGrantId ? 'support_grant' : caller.apiKey ? 'api_key' : 'user',
      apiKeyId: caller.apiKey?.id ?? null,
    },
  };
}
