/**
 * Every refusal the tenant guard can produce: an explicit code with a stable HTTP status. Handlers
 * never leak driver errors; unknown failures map to INTERNAL.
 */
import * as z from 'zod/mini';
import { CALL_ERROR_STATUS } from '../../contracts/calls';
import { CREDENTIAL_MISSING_STATUS } from '../../contracts/credentials';
import { FILE_ERROR_STATUS } from '../../contracts/tenant-files';

export const ERROR_STATUS = {
  TOKEN_MISSING: 401,
  TOKEN_INVALID: 401,
  TOKEN_EXPIRED: 401,
  TENANT_CONTEXT_MISSING: 401,
  USER_DISABLED: 403,
  MEMBERSHIP_REVOKED: 403,
  ORGANISATION_INACTIVE: 403,
  PERMISSION_DENIED: 403,
  API_KEY_EXCEEDS_ROLE: 403,
  SUPPORT_GRANT_INVALID: 403,
  SUPPORT_GRANT_EXPIRED: 403,
  SUPPORT_GRANT_REVOKED: 403,
  SUPPORT_GRANT_TOO_LONG: 400,
  VALIDATION_FAILED: 400,
  EXPORT_TOO_LARGE: 413,
  NOT_FOUND: 404,
  CONFLICT: 409,
  /** POST /memberships for an active member: a role changes through PATCH /memberships/{id}. */
  MEMBERSHIP_EXISTS: 409,
  /** The organisation has no tenant key yet (provisioning pending), so nothing can be sealed for it. */
  TENANT_KEY_MISSING: 409,
  INTERNAL: 500,
  /**
   * The caller's organisation has spent its request budget for the current window
   * (tenant-budget.ts); the answer carries `Retry-After`.
   */
  TENANT_RATE_LIMITED: 429,
  /** KMS (or no cipher) could not seal: retry later; nothing was stored. */
  KEY_UNAVAILABLE: 503,
  // Tenant lifecycle, exports and keys (lambda/tenant-guard/routes/tenant*.ts, docs/tenant-keys.md).
  INVALID_TRANSITION: 409,
  INVALID_BILLING_PERIOD: 400,
  TENANT_NOT_FOUND: 404,
  TENANT_SHREDDED: 410,
  KEY_ALREADY_SET: 409,
  BYOK_NOT_ENTITLED: 403,
  EXPORT_NOT_FOUND: 404,
  EXPORT_NOT_READY: 409,
  EXPORT_FAILED: 409,
  EXPORT_EXPIRED: 410,
  PROVISIONER_FAILED: 502,
  PROVISIONER_UNAVAILABLE: 503,
  TENANT_KEYS_UNAVAILABLE: 503,
  // Calls and recordings (routes/calls.ts, contracts/calls.ts).
  ...CALL_ERROR_STATUS,
  /** The credentials vault holds no credential of this kind and scope (routes/credentials.ts). */
  CREDENTIAL_MISSING: CREDENTIAL_MISSING_STATUS,
  // Tenant files (routes/files.ts, docs/tenant-files.md).
  ...FILE_ERROR_STATUS,
} as const;

export type ErrorCode = keyof typeof ERROR_STATUS;

export class GuardError extends Error {
  public readonly status: number;
  /** Seconds until a retry may succeed, sent as `Retry-After` (TENANT_RATE_LIMITED). */
  public retryAfterSeconds?: number;
  /**
   * @param field what the caller must fix: the body field(s), path parameter or header at fault,
   * returned with the code (a name, never a value)
   */
  constructor(
    public readonly code: ErrorCode,
    message: string = code,
    public readonly field?: string,
  ) {
    super(message);
    this.name = 'GuardError';
    this.status = ERROR_STATUS[code];
  }
}

/** SQLSTATEs raised by the database gate (migrations/0001, docs/tenancy.md). */
const SQLSTATE: Readonly<Record<string, ErrorCode>> = {
  BW001: 'TENANT_CONTEXT_MISSING',
  BW002: 'MEMBERSHIP_REVOKED',
  BW003: 'SUPPORT_GRANT_EXPIRED',
  BW004: 'ORGANISATION_INACTIVE',
  BW005: 'SUPPORT_GRANT_INVALID',
  BW006: 'USER_DISABLED',
  BW007: 'SUPPORT_GRANT_REVOKED',
  BW008: 'PERMISSION_DENIED',
  BW009: 'SUPPORT_GRANT_TOO_LONG',
  BW010: 'API_KEY_EXCEEDS_ROLE',
  BW011: 'TOKEN_INVALID',
  BW012: 'TOKEN_EXPIRED',
  BW301: 'TENANT_SHREDDED',
  BW302: 'KEY_ALREADY_SET',
  BW303: 'TENANT_NOT_FOUND',
  BW304: 'INVALID_TRANSITION',
  BW305: 'INVALID_BILLING_PERIOD',
  BW308: 'BYOK_NOT_ENTITLED',
  '42501': 'PERMISSION_DENIED',
  '23505': 'CONFLICT',
  '23503': 'VALIDATION_FAILED',
  '23514': 'VALIDATION_FAILED',
  '22P02': 'VALIDATION_FAILED',
};

/** The fields a zod failure is about: `a.b` paths, unknown keys by name, `fallback` for the value itself. */
function fieldsOf(
  error: { issues: readonly { path: readonly PropertyKey[]; code: string; keys?: readonly string[] }[] },
  fallback: string,
): string {
  const names = error.issues.flatMap((i) =>
    i.code === 'unrecognized_keys' && i.keys
      ? i.keys.map((k) => [...i.path.map(String), k].join('.'))
      : [i.path.map(String).join('.') || fallback],
  );
  return [...new Set(names)].join(',');
}

/**
 * Validates request input (the body, or the path parameter `name`) against `schema`; a refusal is
 * VALIDATION_FAILED naming the fields at fault.
 */
export function parseInput<T>(schema: z.core.$ZodType<T>, value: unknown, name = 'body'): T {
  const r = z.safeParse(schema, value);
  if (!r.success) {
    const field = fieldsOf(r.error, name);
    throw new GuardError('VALIDATION_FAILED', field, field);
  }
  return r.data;
}

/** Narrows anything caught to a GuardError. */
export function toGuardError(e: unknown): GuardError {
  if (e instanceof GuardError) return e;
  const code = typeof e === 'object' && e !== null && 'code' in e ? (e as { code: unknown }).code : undefined;
  if (typeof code === 'string' && SQLSTATE[code]) return new GuardError(SQLSTATE[code]);
  return new GuardError('INTERNAL');
}
