/**
 * The credentials vault (docs/credentials.md): the kinds of tenant credential the API accepts, what
 * each is scoped to, and their limits. The database (migrations/0409_credentials_vault.sql) checks
 * the same kinds and scope format; a test keeps the two equal.
 */

/** What a credential belongs to inside its organisation. */
export type CredentialScopeType = 'mailbox' | 'agent' | 'workspace';

/**
 * Every kind, with the identifier it is scoped to. The kind is also the sealing purpose (encryption
 * context `purpose`), so a credential sealed as one kind never opens as another.
 */
export const CREDENTIAL_KINDS = {
  /** SMTP/IMAP password of a mailbox. */
  mailbox_password: 'mailbox',
  /** OAuth refresh token of a mailbox (access tokens are never stored: derived on demand). */
  oauth_refresh_token: 'mailbox',
  /** SIP password of an agent's endpoint. */
  sip_password: 'agent',
  /** An agent's carrier API token. */
  carrier_token: 'agent',
  /** A workspace's own AI provider key (bring your own key). */
  ai_provider_key: 'workspace',
} as const satisfies Readonly<Record<string, CredentialScopeType>>;

export type CredentialKind = keyof typeof CREDENTIAL_KINDS;
export const CREDENTIAL_KIND_NAMES = Object.keys(CREDENTIAL_KINDS) as readonly CredentialKind[];

export function isCredentialKind(value: unknown): value is CredentialKind {
  return typeof value === 'string' && Object.prototype.hasOwnProperty.call(CREDENTIAL_KINDS, value);
}

/**
 * The scope identifier: the mailbox, agent or workspace id in the tenant's own terms (a UUID, a slug
 * or a mailbox address). Never a secret: it appears in responses and audit events.
 */
export const CREDENTIAL_SCOPE = /^[A-Za-z0-9][A-Za-z0-9_.:@+-]{0,127}$/;

/** Largest credential accepted, in UTF-8 bytes (long OAuth refresh tokens fit). */
export const MAX_CREDENTIAL_BYTES = 4096;

/** Status of `CREDENTIAL_MISSING`, the refusal for a credential that is not set (never a fabricated success). */
export const CREDENTIAL_MISSING_STATUS = 404;

/** Audit events of the vault: they name the kind and scope, never the value. */
export const CREDENTIAL_EVENTS = {
  set: 'credential.set',
  replaced: 'credential.replaced',
  deleted: 'credential.deleted',
} as const;
