import { WebhookError } from './errors';

/** How far a signed timestamp may be from now, either way. Telnyx documents 300 s; so do we for all. */
export const TIMESTAMP_TOLERANCE_SECONDS = 300;

// Plain decimal digits only: no sign, exponent, fraction, whitespace or hex. 15 digits keep it a safe integer.
const INTEGER_SECONDS = /^[0-9]{1,15}$/;

/**
 * Parses a signed Unix timestamp (seconds) and checks it is within `tolerance` of `nowSeconds`.
 * Accepts a digit string (header) or a JSON integer (signed body field); anything else is refused.
 */
export function checkTimestamp(
  value: unknown,
  nowSeconds: number,
  tolerance: number = TIMESTAMP_TOLERANCE_SECONDS,
): number {
  let seconds: number;
  if (typeof value === 'string' && INTEGER_SECONDS.test(value)) seconds = Number(value);
  else if (typeof value === 'number' && Number.isSafeInteger(value) && value >= 0) seconds = value;
  else throw new WebhookError('TIMESTAMP_INVALID');
  if (Math.abs(nowSeconds - seconds) > tolerance) {
    throw new WebhookError('TIMESTAMP_OUT_OF_RANGE', `skew ${Math.round(nowSeconds - seconds)} s`);
  }
  return seconds;
}
