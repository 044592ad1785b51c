/**
 * Application-layer encryption of per-tenant secrets (webhook secrets and the credentials vault's
 * kinds, contracts/credentials.ts: each kind is its own purpose). The tenant-keys capability
 * implements it with envelope encryption under the tenant's own KMS key; callers depend only on
 * this type, so the implementation plugs in without reshaping them.
 */

export const SECRET_PURPOSES = [
  'webhook_secret',
  'mailbox_password',
  'oauth_refresh_token',
  'sip_password',
  'carrier_token',
  'ai_provider_key',
] as const;
export type SecretPurpose = (typeof SECRET_PURPOSES)[number];

/** Opaque, self-describing ciphertext (safe to store in a bytea/text column). */
export type SealedSecret = string;

export interface SecretCipher {
  /** Encrypts `plaintext` bound to (orgId, purpose): it can only be opened with the same pair. */
  seal(orgId: string, purpose: SecretPurpose, plaintext: Uint8Array): Promise<SealedSecret>;
  /** Decrypts; throws if the ciphertext was tampered with or was sealed for another org or purpose. */
  open(orgId: string, purpose: SecretPurpose, sealed: SealedSecret): Promise<Uint8Array>;
}
