/**
 * Every refusal the webhook ingress can return, with its stable HTTP status. Carriers retry on 5xx
 * and give up on 4xx, so the status says who must act: 4xx the sender (bad or forged request), 5xx us
 * (configuration, database), in which case the carrier's retry delivers the event once we are fixed.
 */
export const WEBHOOK_ERROR_STATUS = {
  /** A required header (signature, timestamp) is absent or empty. */
  HEADER_MISSING: 400,
  /** A signature or timestamp header was sent more than once (any case variant counts). */
  HEADER_DUPLICATED: 400,
  /** The timestamp is not a plain non-negative integer number of seconds. */
  TIMESTAMP_INVALID: 400,
  /** The timestamp is more than the tolerance (300 s) away from now, in either direction. */
  TIMESTAMP_OUT_OF_RANGE: 401,
  /** The signature is not valid base64/hex, or decodes to the wrong length. */
  SIGNATURE_MALFORMED: 401,
  /**
   * The signature does not verify over the exact bytes received, the organisation is unknown or
   * inactive (answered identically: no oracle), or the secret that verified has since been revoked.
   */
  SIGNATURE_INVALID: 401,
  /** The request has no body; every carrier event has one. */
  BODY_EMPTY: 400,
  /** The body is larger than the configured limit. */
  BODY_TOO_LARGE: 413,
  /** API Gateway flagged the body as base64 but it is not valid base64. */
  BODY_MALFORMED: 400,
  /** The (verified) body is not the JSON event the provider documents, or lacks an event id. */
  PAYLOAD_INVALID: 400,
  /** The per-organisation route was called without a well-formed `org` query parameter. */
  ORGANISATION_INVALID: 400,
  /** The path is not one of the webhook routes. */
  ROUTE_UNKNOWN: 404,
  /** No key is configured for this provider, or a known organisation has no secret: refused, never accepted. */
  WEBHOOK_SECRET_MISSING: 503,
  /** A key or secret is configured but cannot be decrypted or parsed. */
  WEBHOOK_SECRET_UNREADABLE: 503,
  /**
   * Another delivery of the same event holds its dedup row past the lock timeout (e.g. a frozen first
   * delivery); the carrier's retry finds it committed (a duplicate) or rolled back (processed).
   */
  DELIVERY_IN_PROGRESS: 503,
  /** The event verified but recording or processing it failed; the carrier's retry redelivers it. */
  PROCESSING_FAILED: 500,
} as const;

export type WebhookErrorCode = keyof typeof WEBHOOK_ERROR_STATUS;

export class WebhookError extends Error {
  public readonly status: number;

  /** `detail` is for logs: it must never contain a body, signature or secret. */
  constructor(
    public readonly code: WebhookErrorCode,
    public readonly detail?: string,
    options?: ErrorOptions,
  ) {
    super(detail ? `${code}: ${detail}` : code, options);
    this.name = 'WebhookError';
    this.status = WEBHOOK_ERROR_STATUS[code];
  }
}

export function isWebhookError(e: unknown): e is WebhookError {
  return e instanceof WebhookError;
}
