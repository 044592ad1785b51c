/**
 * HMAC-SHA256 over the raw body, for carriers that sign with a shared per-organisation secret.
 * Comparison is constant-time (`timingSafeEqual`) after a length check, so neither a wrong byte's
 * position nor a wrong length leaks through timing beyond "the length is wrong".
 */
import { createHmac, timingSafeEqual, type KeyObject } from 'node:crypto';
import { decodeBase64Strict, decodeHexStrict } from './encoding';
import { WebhookError } from './errors';

export type SignatureEncoding = 'hex' | 'base64';
const SHA256_BYTES = 32;

export function decodeHmacSignature(text: string, encoding: SignatureEncoding): Buffer {
  const bytes =
    encoding === 'hex' ? (text.length === SHA256_BYTES * 2 ? decodeHexStrict(text) : null) : decodeBase64Strict(text);
  if (!bytes || bytes.length !== SHA256_BYTES) throw new WebhookError('SIGNATURE_MALFORMED');
  return bytes;
}

/**
 * Returns the index of the secret that verified (0 current, 1 previous during a rotation window);
 * throws SIGNATURE_INVALID when none did. `secrets` must not be empty: an organisation without a
 * secret is a configuration error the caller reports as WEBHOOK_SECRET_MISSING.
 */
export function verifyHmacSha256(body: Buffer, signature: Buffer, secrets: readonly KeyObject[]): number {
  if (secrets.length === 0) throw new WebhookError('WEBHOOK_SECRET_MISSING');
  if (signature.length !== SHA256_BYTES) throw new WebhookError('SIGNATURE_MALFORMED');
  for (const [i, secret] of secrets.entries()) {
    const expected = createHmac('sha256', secret).update(body).digest();
    if (timingSafeEqual(expected, signature)) return i;
  }
  throw new WebhookError('SIGNATURE_INVALID');
}
