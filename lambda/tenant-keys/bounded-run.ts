/**
 * One run of a scheduled KMS sweep (the keyless-tenant sweep, the key policy refresh): items one at
 * a time, page after page, for as long as the invocation has time, backing off (exponential, full
 * jitter) when KMS still throttles after the client's own retries, instead of failing the item.
 */
import { errorName } from '../shared/sdk';

export interface BoundedRunOptions {
  /** Milliseconds the invocation has left. @default - one page, no time limit */
  readonly remainingMs?: () => number;
  /** Stop starting items with less than this left (ms): one item and its retries fit. @default 30000 */
  readonly reserveMs?: number;
  /** First backoff after a throttled item (ms); doubles per consecutive throttle. @default 1000 */
  readonly backoffBaseMs?: number;
  /** @default 20000 */
  readonly backoffMaxMs?: number;
  /** Backoffs for one item before it counts as failed (`ThrottlingException`). @default 6 */
  readonly maxBackoffs?: number;
  /** @default setTimeout */
  readonly sleep?: (ms: number) => Promise<void>;
  /** Uniform in [0, 1). @default Math.random */
  readonly random?: () => number;
}

/** KMS's answers that mean "slow down", after the SDK's own retries. */
const THROTTLED = new Set(['ThrottlingException', 'LimitExceededException']);

export type Attempt<T> =
  | { readonly kind: 'done'; readonly value: T }
  | { readonly kind: 'failed'; readonly error: string }
  /** Time ran out before the item finished: it is left for the next run, not failed. */
  | { readonly kind: 'out_of_time' };

export class BoundedRun {
  /** Times KMS throttled an item after the client's retries, each followed by a backoff. */
  throttled = 0;
  private consecutiveThrottles = 0;
  private pages = 0;
  private readonly reserveMs: number;
  private readonly base: number;
  private readonly cap: number;
  private readonly maxBackoffs: number;
  private readonly sleep: (ms: number) => Promise<void>;
  private readonly random: () => number;

  constructor(private readonly options: BoundedRunOptions = {}) {
    this.reserveMs = options.reserveMs ?? 30_000;
    this.base = options.backoffBaseMs ?? 1000;
    this.cap = options.backoffMaxMs ?? 20_000;
    this.maxBackoffs = options.maxBackoffs ?? 6;
    this.sleep = options.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
    this.random = options.random ?? Math.random;
  }

  /** Whether a new item may start. */
  timeLeft(): boolean {
    return this.options.remainingMs === undefined || this.options.remainingMs() > this.reserveMs;
  }

  /** Whether to read another page: while time is left; without a clock, the first page only. */
  nextPage(): boolean {
    if (!this.timeLeft() || (this.options.remainingMs === undefined && this.pages > 0)) return false;
    this.pages++;
    return true;
  }

  /**
   * Runs one item; a throttled attempt is retried after a backoff, at most `maxBackoffs` times.
   * `codeOf` names a refusal the item itself explains (its own error class), else the SDK's name.
   */
  async attempt<T>(run: () => Promise<T>, codeOf: (e: unknown) => string | undefined): Promise<Attempt<T>> {
    for (let backoffs = 0; ; backoffs++) {
      if (!this.timeLeft()) return { kind: 'out_of_time' };
      try {
        const value = await run();
        this.consecutiveThrottles = 0;
        return { kind: 'done', value };
      } catch (e) {
        const error = codeOf(e) ?? errorName(e) ?? 'Error';
        if (!THROTTLED.has(error) || backoffs >= this.maxBackoffs) return { kind: 'failed', error };
        this.throttled++;
        const ceiling = Math.min(this.cap, this.base * 2 ** this.consecutiveThrottles++);
        await this.sleep(Math.floor(this.random() * ceiling));
      }
    }
  }
}
