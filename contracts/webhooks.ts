/**
 * The webhook ingress's carriers, body limits, metrics and Telnyx key format: the construct and the
 * deployment schema check configuration with the function's own rules, and its alarms watch the
 * metrics it emits.
 */
import { createPublicKey, type KeyObject } from 'node:crypto';

/** Every webhook route is under this path (`POST /webhooks/<provider>`); the web ACL treats it apart. */
export const WEBHOOK_PATH_PREFIX = '/webhooks/';

/** The carriers with a route under `/webhooks/`. */
export const PROVIDERS = ['telnyx', 'frejun', 'didlogic'] as const;
export type Provider = (typeof PROVIDERS)[number];

/** Carriers that sign with a per-organisation shared secret (HMAC-SHA256 over the raw body). */
export const HMAC_PROVIDERS = ['frejun', 'didlogic'] as const;
export type HmacProvider = (typeof HMAC_PROVIDERS)[number];

export function isProvider(value: string): value is Provider {
  return (PROVIDERS as readonly string[]).includes(value);
}

export function isHmacProvider(value: Provider): value is HmacProvider {
  return (HMAC_PROVIDERS as readonly string[]).includes(value);
}

export const DEFAULT_MAX_BODY_BYTES = 256 * 1024;
/** Body limits the function accepts (the construct and the deployment schema check them at synth). */
export const MIN_BODY_BYTES = 1024;
export const MAX_BODY_BYTES = 6 * 1024 * 1024;

/**
 * What the function emits per request: `Requests` (count) and `Latency` (milliseconds), by the
 * dimension sets [Provider, Outcome], [Provider] and [Outcome]; [Outcome] lets one alarm watch a
 * refusal code across providers.
 */
export const WEBHOOK_METRICS = {
  namespace: 'Bulwark/Webhooks',
  requests: 'Requests',
  latency: 'Latency',
  provider: 'Provider',
  outcome: 'Outcome',
} as const;

const ED25519_KEY_BYTES = 32;
// DER SubjectPublicKeyInfo header for an Ed25519 key (RFC 8410): SEQUENCE { SEQUENCE { OID 1.3.101.112 }, BIT STRING }.
const ED25519_SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');

/**
 * Reads a Telnyx public key (the raw 32-byte Ed25519 key, canonical base64, as the Telnyx portal
 * shows it). The function imports its key with this at cold start, and the deployment schema checks
 * a configured key with it at synth, so both accept exactly the same keys.
 */
export function readTelnyxPublicKey(base64Key: string): { readonly key: KeyObject } | { readonly problem: string } {
  const text = base64Key.trim();
  const raw = Buffer.from(text, 'base64');
  // Re-encoding reproduces only the canonical spelling: whitespace, url-safe letters, missing or
  // stray padding and non-zero padding bits all fail, so one key has exactly one accepted text.
  if (raw.length !== ED25519_KEY_BYTES || raw.toString('base64') !== text) {
    return { problem: 'Telnyx public key must be 32 bytes of base64' };
  }
  try {
    return { key: createPublicKey({ key: Buffer.concat([ED25519_SPKI_PREFIX, raw]), format: 'der', type: 'spki' }) };
  } catch {
    return { problem: 'Telnyx public key is not an Ed25519 key' };
  }
}

/** Whether the function would accept `base64Key` as a Telnyx public key (for checks at synth). */
export function canImportTelnyxKey(base64Key: string): boolean {
  return !('problem' in readTelnyxPublicKey(base64Key));
}
