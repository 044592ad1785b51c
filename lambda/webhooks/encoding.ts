/**
 * Strict decoders. `Buffer.from(s, 'base64')` silently skips invalid characters and accepts
 * truncated input, which would let many different header values decode to the same bytes; these
 * accept exactly one canonical spelling per byte string and return null for anything else.
 */

/** Standard-alphabet, padded base64; null unless `text` is the canonical encoding of its bytes. */
// Canonical base64: whole quads, then at most one padded quad whose padding bits are zero ("AA==",
// never "AB=="). Skipped characters, whitespace, url-safe letters and wrong padding all fail it, so
// exactly one spelling per byte string passes; it is the same test as decode-and-re-encode, without
// the second allocation on the hot path.
const CANONICAL_BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}[AEIMQUYcgkosw048]=|[A-Za-z0-9+/][AQgw]==)?$/;

export function decodeBase64Strict(text: string): Buffer | null {
  if (text.length % 4 !== 0 || !CANONICAL_BASE64.test(text)) return null;
  return Buffer.from(text, 'base64');
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
