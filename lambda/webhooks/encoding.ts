/**
 * Strict decoders. `Buffer.from(s, 'base64')` silently skips invalid characters and accepts
 * truncated input, which would let many different header values decode to the same bytes; these
 * accept exactly one canonical spelling per byte string and return null for anything else.
 */

/** Standard-alphabet, padded base64; null unless `text` is the canonical encoding of its bytes. */
const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
const VALUE = new Int8Array(128).fill(-1);
for (let i = 0; i < ALPHABET.length; i++) VALUE[ALPHABET.charCodeAt(i)] = i;
const PAD = 61; // '='

/**
 * Canonical base64: whole quads of the standard alphabet, at most two '=' of padding, and zero
 * padding bits ("AA==", never "AB=="). Whitespace, url-safe letters, stray '=' and wrong padding
 * all fail, so exactly one spelling per byte string passes. One table-driven pass: this runs on
 * every webhook's signature (and base64 body), so it avoids a regex and a decode-and-re-encode.
 */
export function isCanonicalBase64(text: string): boolean {
  const n = text.length;
  if (n % 4 !== 0) return false;
  const pad = n === 0 || text.charCodeAt(n - 1) !== PAD ? 0 : text.charCodeAt(n - 2) === PAD ? 2 : 1;
  const end = n - pad;
  for (let i = 0; i < end; i++) {
    const c = text.charCodeAt(i);
    if (c > 127 || (VALUE[c] ?? -1) < 0) return false;
  }
  if (pad === 0) return true;
  // The last data character carries 2 (one '=') or 4 (two '=') bits that must be zero.
  const last = VALUE[text.charCodeAt(end - 1)] ?? -1; // valid: checked in the loop above
  return (last & (pad === 1 ? 0b11 : 0b1111)) === 0;
}

export function decodeBase64Strict(text: string): Buffer | null {
  return isCanonicalBase64(text) ? Buffer.from(text, 'base64') : null;
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
