/**
 * Write-only secrets: an API accepts a secret, stores it sealed, and afterwards only ever reports
 * whether it is set (`<field>_set: true|false`), never the value nor the ciphertext.
 *
 * OAuth access tokens are short-lived bearer credentials: they are held in memory for the duration
 * of a call and never persisted. Only refresh tokens (purpose `oauth_refresh_token`) are sealed.
 */
import type { SealedSecret, SecretCipher, SecretPurpose } from '../shared/secret-cipher';

export type WriteOnlyView<T, K extends keyof T & string> = Omit<T, K> & { readonly [P in K as `${P}_set`]: boolean };

/** Replaces each secret field with `<field>_set`. The values never leave this function. */
export function writeOnlyView<T extends object, K extends keyof T & string>(
  record: T,
  secretFields: readonly K[],
): WriteOnlyView<T, K> {
  const out: Record<string, unknown> = { ...(record as Record<string, unknown>) };
  for (const f of secretFields) {
    const v = out[f];
    delete out[f];
    out[`${f}_set`] = v !== null && v !== undefined && v !== '';
  }
  return out as WriteOnlyView<T, K>;
}

/** Field names that must never be persisted or echoed, whatever their shape. */
const NEVER_PERSISTED = /^(oauth_)?access_token$|^accessToken$/;

/**
 * Seals the secret fields of an update for storage. A field set to `null` clears the secret;
 * an absent field leaves it unchanged. Refuses any OAuth access token outright.
 */
export async function sealUpdate<K extends string>(
  cipher: SecretCipher,
  orgId: string,
  input: Readonly<Record<string, unknown>>,
  fields: Readonly<Record<K, SecretPurpose>>,
): Promise<Partial<Record<K, SealedSecret | null>>> {
  for (const name of Object.keys(input)) {
    if (NEVER_PERSISTED.test(name)) throw new TypeError(`${name}: OAuth access tokens are never persisted`);
  }
  const out: Partial<Record<K, SealedSecret | null>> = {};
  for (const [name, purpose] of Object.entries(fields) as [K, SecretPurpose][]) {
    if (!(name in input)) continue;
    const v = input[name];
    if (v === null) {
      out[name] = null;
    } else if (typeof v === 'string' && v.length > 0) {
      out[name] = await cipher.seal(orgId, purpose, Buffer.from(v, 'utf8'));
    } else {
      throw new TypeError(`${name}: a secret is a non-empty string, or null to clear it`);
    }
  }
  return out;
}
