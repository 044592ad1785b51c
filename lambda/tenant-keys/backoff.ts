/**
 * Retry with capped exponential backoff and full jitter, for KMS request-rate throttling.
 *
 * KMS answers `ThrottlingException` when a request quota (per account, per region) is exceeded; the
 * AWS guidance is to back off exponentially with jitter rather than retry in lock-step. Sleep and
 * randomness are injected so tests can assert the exact schedule without waiting.
 */

/** Errors worth retrying: request-rate throttling and KMS's own transient failures. */
export const RETRYABLE_KMS_ERRORS: ReadonlySet<string> = new Set([
  'ThrottlingException',
  'KMSInternalException',
  'DependencyTimeoutException',
]);

export interface BackoffOptions {
  /** Total attempts, including the first. @default 8 */
  readonly maxAttempts?: number;
  /** Delay cap for the first retry, in ms. @default 100 */
  readonly baseDelayMs?: number;
  /** Upper bound of any single delay, in ms. @default 5000 */
  readonly maxDelayMs?: number;
  /** Sleeps for `ms`. @default real timer */
  readonly sleep?: (ms: number) => Promise<void>;
  /** Uniform random in [0, 1). @default Math.random */
  readonly random?: () => number;
  /** Which errors are retried. @default RETRYABLE_KMS_ERRORS by error name */
  readonly isRetryable?: (e: unknown) => boolean;
}

export function errorName(e: unknown): string | undefined {
  if (typeof e === 'object' && e !== null && 'name' in e && typeof (e as { name: unknown }).name === 'string') {
    return (e as { name: string }).name;
  }
  return undefined;
}

export const realSleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * Delay before retry `retry` (1-based): "full jitter", uniform in [0, min(max, base * 2^(retry-1))].
 * Full jitter spreads a burst of throttled callers out instead of synchronising their retries.
 */
export function backoffDelay(retry: number, random: () => number, baseDelayMs = 100, maxDelayMs = 5000): number {
  const cap = Math.min(maxDelayMs, baseDelayMs * 2 ** (retry - 1));
  return Math.floor(random() * cap);
}

/** Runs `fn`, retrying retryable failures; the last error is rethrown unchanged. */
export async function withBackoff<T>(fn: () => Promise<T>, options: BackoffOptions = {}): Promise<T> {
  const maxAttempts = options.maxAttempts ?? 8;
  const sleep = options.sleep ?? realSleep;
  const random = options.random ?? Math.random;
  const isRetryable = options.isRetryable ?? ((e: unknown) => RETRYABLE_KMS_ERRORS.has(errorName(e) ?? ''));
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (e) {
      if (attempt >= maxAttempts || !isRetryable(e)) throw e;
      await sleep(backoffDelay(attempt, random, options.baseDelayMs, options.maxDelayMs));
    }
  }
}
