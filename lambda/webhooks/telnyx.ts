/**
 * Telnyx: Ed25519 over `${telnyx-timestamp}|${raw body}`, signature base64 in
 * `telnyx-signature-ed25519`, public key (32 raw bytes, base64) from the Telnyx portal.
 */
import { verify, type KeyObject } from 'node:crypto';
import { readTelnyxPublicKey } from '../../contracts/webhooks';
import { decodeBase64Strict } from './encoding';
import { WebhookError } from './errors';
import type { HeaderBag } from './request';
import { checkTimestamp, TIMESTAMP_TOLERANCE_SECONDS } from './timestamp';

export const TELNYX_SIGNATURE_HEADER = 'telnyx-signature-ed25519';
export const TELNYX_TIMESTAMP_HEADER = 'telnyx-timestamp';
const ED25519_SIGNATURE_BYTES = 64;

/**
 * Imports the raw base64 public key. Called once per cold start; a key that is not exactly 32 bytes
 * of canonical base64 is refused with WEBHOOK_SECRET_UNREADABLE (never treated as "no verification").
 */
export function importTelnyxPublicKey(base64Key: string): KeyObject {
  const read = readTelnyxPublicKey(base64Key);
  if ('problem' in read) throw new WebhookError('WEBHOOK_SECRET_UNREADABLE', read.problem);
  return read.key;
}

export interface SignedRequest {
  readonly body: Buffer;
  readonly headers: HeaderBag;
}

/**
 * Throws a WebhookError unless the request is signed, within the tolerance, by one of `publicKeys`
 * (the current key, then during a key rotation the previous one).
 */
export function verifyTelnyx(
  request: SignedRequest,
  publicKeys: readonly KeyObject[],
  nowSeconds: number,
  tolerance: number = TIMESTAMP_TOLERANCE_SECONDS,
): void {
  const signatureText = request.headers.single(TELNYX_SIGNATURE_HEADER);
  const timestamp = request.headers.single(TELNYX_TIMESTAMP_HEADER);
  checkTimestamp(timestamp, nowSeconds, tolerance);
  const signature = decodeBase64Strict(signatureText);
  if (!signature || signature.length !== ED25519_SIGNATURE_BYTES) throw new WebhookError('SIGNATURE_MALFORMED');
  // The timestamp header is exactly digits (checked above), so its UTF-8 bytes are the signed prefix.
  const signed = Buffer.allocUnsafe(timestamp.length + 1 + request.body.length);
  signed.write(timestamp, 0, 'latin1');
  signed[timestamp.length] = 0x7c; // '|'
  request.body.copy(signed, timestamp.length + 1);
  for (const key of publicKeys) {
    if (verify(null, signed, key, signature)) return;
  }
  throw new WebhookError('SIGNATURE_INVALID');
}
