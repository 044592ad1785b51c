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

/** The part of an SDK client the logic calls. */
export interface Sender {
  send(...args: never[]): unknown;
}

/**
 * A client built on its first `send`, for a client only some invocations need (the API's KMS and
 * Lambda clients: most requests call neither). `build` imports the client package, so the package
 * loads then, not at cold start: a request that needs it pays the load (docs/ARCHITECTURE.md,
 * "Function bundles"). A failed build is retried on the next call.
 */
export function onFirstUse<C extends Sender>(build: () => Promise<C>): Pick<C, 'send'> {
  let client: Promise<C> | undefined;
  const send = (...args: never[]): Promise<unknown> => {
    client ??= build().catch((e: unknown) => {
      client = undefined;
      throw e;
    });
    return client.then((c) => c.send(...args));
  };
  return { send } as Pick<C, 'send'>;
}
