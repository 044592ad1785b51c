/**
 * The gate key as a warm authorizer sees it: re-read from its secret every `ttlSeconds`, so a
 * rotated key is picked up by running instances too (docs/tenancy.md "Gate key rotation"). The
 * database keeps the previous key for ten minutes after installing a new one; refreshing well
 * within that (default two minutes, plus at most a ticket's five-minute life) keeps every ticket an
 * instance signs verifiable. Pure: the loader and the clock are injected.
 */
import type { GateKey } from './ticket';

/** Where tickets get their signing key (each call may return a newer one). */
export type GateKeySource = () => Promise<GateKey>;

export interface RefreshingGateKeyOptions {
  /** Re-read the secret once the cached key is this old. @default 120 */
  readonly ttlSeconds?: number;
  /**
   * While re-reading fails, keep signing with the cached key until it is this old; then refuse
   * (the database may no longer accept it). Must stay under the database's ten-minute overlap minus
   * a ticket's life. @default 300
   */
  readonly maxStaleSeconds?: number;
  /** Milliseconds since the epoch. @default Date.now */
  readonly now?: () => number;
}

/** Refresh-ahead cache over `load`: one read at a time, the cached key while a refresh fails. */
export function refreshingGateKey(load: () => Promise<GateKey>, options: RefreshingGateKeyOptions = {}): GateKeySource {
  const ttl = (options.ttlSeconds ?? 120) * 1000;
  const maxStale = (options.maxStaleSeconds ?? 300) * 1000;
  if (!(ttl > 0) || !(maxStale >= ttl) || maxStale > 300_000) {
    throw new RangeError('gate key cache: 0 < ttlSeconds <= maxStaleSeconds <= 300');
  }
  const now = options.now ?? Date.now;
  let cached: { key: GateKey; at: number } | undefined;
  let inFlight: Promise<GateKey> | undefined;

  const refresh = (): Promise<GateKey> => {
    inFlight ??= load()
      .then((key) => {
        cached = { key, at: now() };
        return key;
      })
      .finally(() => {
        inFlight = undefined;
      });
    return inFlight;
  };

  return async () => {
    const current = cached;
    if (current && now() - current.at < ttl) return current.key;
    try {
      return await refresh();
    } catch (e) {
      // A failed read keeps the last key for a bounded time; a key too old (or none) is an error.
      if (current && now() - current.at < maxStale) return current.key;
      throw e;
    }
  };
}
