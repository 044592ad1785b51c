/**
 * Gate tickets: the proof the database gate asks for before it lets a transaction act as a user
 * (docs/tenancy.md "Entering a tenant needs proof"). The REQUEST authorizer, the one place a bearer
 * token is verified, signs a ticket for the verified identity with the gate key (HMAC-SHA256); the
 * API function only relays it, and `app.authenticate(ticket)` verifies it inside PostgreSQL
 * (pgcrypto `hmac`) with a copy of the key that no application role can read. So SQL run on the
 * API's connection cannot claim a user it holds no ticket for.
 *
 *   bwt1.<kid>.<base64url(JSON payload)>.<base64url(HMAC-SHA256(key, "bwt1.<kid>.<payload>"))>
 *
 * Payload: `sub` and `email` (the identity provider's), `org` (the organisation claim), `iat`, `exp`
 * (Unix seconds; at most MAX_TICKET_SECONDS after `iat` and never after the token's own expiry) and
 * `rid` (the request it was issued for, for the logs). Pure: the key is injected.
 */
import { createHash, createHmac, randomUUID } from 'node:crypto';

export const TICKET_VERSION = 'bwt1';
/** The database refuses tickets living longer than this (migrations/0400). */
export const MAX_TICKET_SECONDS = 300;
const KID = /^[A-Za-z0-9_-]{1,64}$/;

export interface GateKey {
  /** Key id, stored with the key in `app_private.gate_keys` (rotation: several may be live). */
  readonly kid: string;
  /** At least 32 random bytes. */
  readonly secret: Buffer;
}

export interface TicketClaims {
  readonly subject: string;
  readonly email: string;
  readonly orgId: string;
  /** Unix seconds after which the ticket must not be honoured (the token's `exp`). */
  readonly notAfter: number;
  /** Request id. @default a random UUID */
  readonly requestId?: string;
}

export interface TicketPayload {
  readonly sub: string;
  readonly email: string;
  readonly org: string;
  readonly iat: number;
  readonly exp: number;
  readonly rid: string;
}

const b64url = (b: Buffer | string): string => Buffer.from(b).toString('base64url');

function sign(key: GateKey, unsigned: string): string {
  return createHmac('sha256', key.secret).update(unsigned, 'utf8').digest('base64url');
}

/** Checks a key's shape once (a short or oddly named key would be refused by the database too). */
export function checkGateKey(key: GateKey): GateKey {
  if (!KID.test(key.kid)) throw new Error('GATE_KEY_INVALID: kid must be 1-64 of [A-Za-z0-9_-]');
  if (key.secret.length < 32) throw new Error('GATE_KEY_INVALID: the secret must be at least 32 bytes');
  return key;
}

/**
 * Signs a ticket valid from `now` until the earlier of `claims.notAfter` and `now + MAX_TICKET_SECONDS`.
 * `now` is Unix seconds (injected clock).
 */
export function issueTicket(key: GateKey, claims: TicketClaims, now: number): string {
  checkGateKey(key);
  const iat = Math.floor(now);
  const exp = Math.min(Math.floor(claims.notAfter), iat + MAX_TICKET_SECONDS);
  if (exp <= iat) throw new Error('TICKET_EXPIRED: the identity has already expired');
  const payload: TicketPayload = {
    sub: claims.subject,
    email: claims.email,
    org: claims.orgId,
    iat,
    exp,
    rid: claims.requestId ?? randomUUID(),
  };
  const unsigned = `${TICKET_VERSION}.${key.kid}.${b64url(JSON.stringify(payload))}`;
  return `${unsigned}.${sign(key, unsigned)}`;
}

/**
 * The gate-key secret (Secrets Manager, `{"key": "<64 random characters>"}`) as a key. The kid is
 * derived from the key, so a rotated secret is a new kid without anyone naming it.
 */
export function parseGateKeySecret(secretString: string | undefined): GateKey {
  let key: unknown;
  try {
    key = (JSON.parse(secretString ?? '') as { key?: unknown }).key;
  } catch {
    key = undefined;
  }
  if (typeof key !== 'string' || key.length < 32) throw new Error('GATE_KEY_INVALID: the secret has no key');
  const secret = Buffer.from(key, 'utf8');
  return checkGateKey({ kid: createHash('sha256').update(secret).digest('hex').slice(0, 16), secret });
}
