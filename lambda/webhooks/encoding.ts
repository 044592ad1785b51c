/**
 * Strict decoders. `Buffer.from(s, 'base64')` silently skips invalid characters and accepts
 * truncated input, which would let many different header values decode to the same bytes; these
 * accept exactly one canonical spelling per byte string and return null for anything else.
 */

/** Standard-alphabet, padded base64; null unless `text` is the canonical encoding of its bytes. */
export function decodeBase64Strict(text: string): Buffer | null {
  if (text.length % 4 !== 0) return null;
  const bytes = Buffer.from(text, 'base64');
  // Re-encoding is the whole check: skipped characters, whitespace, url-safe letters, missing or
  // extra padding and non-zero padding bits ("AB==" vs "AA==") all re-encode differently.
  return bytes.toString('base64') === text ? bytes : null;
}

/** Upper- or lower-case hex with an even number of digits; null otherwise. */
export function decodeHexStrict(text: string): Buffer | null {
  if (text.length % 2 !== 0) return null;
  // Buffer.from stops at the first non-hex pair, so a full-length result means every digit was hex.
  const bytes = Buffer.from(text, 'hex');
  return bytes.length * 2 === text.length ? bytes : null;
}

/** Decoded size of a base64 string of `length` characters, without decoding it. */
export function base64DecodedLength(length: number): number {
  return Math.floor((length * 3) / 4);
}
