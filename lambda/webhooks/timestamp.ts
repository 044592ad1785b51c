import { WebhookError } from './errors';

/** How far a signed timestamp may be from now, either way. Telnyx documents 300 s; so do we for all. */
export const TIMESTAMP_TOLERANCE_SECONDS = 300;

// Plain decimal digits only: no sign, exponent, fraction, whitespace or hex. 15 digits keep it a safe integer.
const INTEGER_SECONDS = /^[0-9]{1,15}$/;

/**
 * Parses a signed Unix timestamp (seconds) and checks it is within `tolerance` of `nowSeconds`.
 * Accepts digits only: a header's text, or a body field's (a JSON string's content, or a JSON number's
 * source text, so `1.79e9` and `1790000000.0` are refused although JSON.parse reads them as integers).
 */
export function checkTimestamp(
  value: unknown,
  nowSeconds: number,
  tolerance: number = TIMESTAMP_TOLERANCE_SECONDS,
): number {
  if (typeof value !== 'string' || !INTEGER_SECONDS.test(value)) {
    throw new WebhookError('TIMESTAMP_INVALID', 'not a plain integer of seconds (no sign, fraction or exponent)');
  }
  const seconds = Number(value);
  if (Math.abs(nowSeconds - seconds) > tolerance) {
    throw new WebhookError('TIMESTAMP_OUT_OF_RANGE', `skew ${Math.round(nowSeconds - seconds)} s`);
  }
  return seconds;
}
