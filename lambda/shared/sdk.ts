/**
 * AWS SDK client settings every handler uses. Retries are the SDK's own: `adaptive` mode backs off
 * exponentially with jitter and, once throttled, rate-limits the client's own requests (client-side
 * token bucket), which is what AWS recommends for KMS request quotas. No retry loop is stacked on
 * top: a call that is still throttled after the last attempt fails with the service's error name
 * (`ThrottlingException`), and the invocation fails, to be retried by its caller or alarmed.
 */

/** Attempts per call, the first included. */
export const SDK_MAX_ATTEMPTS = 8;

export interface SdkRetryConfig {
  readonly maxAttempts: number;
  readonly retryMode: 'adaptive';
}

/** Client configuration: `new KMSClient({ ...sdkRetries(), region })`. */
export function sdkRetries(maxAttempts: number = SDK_MAX_ATTEMPTS): SdkRetryConfig {
  return { maxAttempts, retryMode: 'adaptive' };
}

/** The error's name (an AWS SDK error's name is the service's error code), if it has one. */
export function errorName(e: unknown): string | undefined {
  if (typeof e === 'object' && e !== null && 'name' in e && typeof (e as { name: unknown }).name === 'string') {
    return (e as { name: string }).name;
  }
  return undefined;
}
