/**
 * A bounded in-memory cache of plaintext data keys: LRU by entry count, expiry by age, and (for keys
 * used to encrypt) a cap on uses. Plaintext key bytes are zeroed when an entry leaves the cache, so
 * a warm Lambda holds at most `maxEntries` keys for at most `ttlMs`. Plaintext keys never leave the
 * process: nothing here serialises, logs or shares an entry.
 */

/**
 * Sized for the KMS request budget of docs/tenant-keys.md ("KMS request budget", measured by
 * bench/kms-budget.ts): enough entries for every tenant of a 10,000-tenant deployment in each
 * container (~1.3 KB an entry: ~20 MiB), for an hour, which is also the longest a function may
 * keep a shredded tenant's data key after the shred.
 */
export const DATA_KEY_CACHE_DEFAULTS = {
  maxEntries: 16_384,
  ttlMs: 3_600_000,
  maxUses: 10_000,
} as const;

export interface DataKeyCacheOptions {
  /** Most entries held at once; the least recently used is evicted first. @default 16384 */
  readonly maxEntries?: number;
  /** Entry lifetime from creation, in ms. @default 3600000 (1 hour: the key-shred bound) */
  readonly ttlMs?: number;
  /** Uses after which an entry is dropped (bounds messages per data key). @default 10000 */
  readonly maxUses?: number;
  /** Milliseconds since the epoch. @default Date.now */
  readonly now?: () => number;
}

export interface CachedDataKey {
  readonly plaintext: Buffer;
  readonly wrapped: Buffer;
  readonly keyArn: string;
}

interface Entry {
  readonly key: string;
  readonly value: CachedDataKey;
  readonly createdAt: number;
  uses: number;
  /** Towards the least recently used. */
  prev: Entry | null;
  /** Towards the most recently used. */
  next: Entry | null;
}

/**
 * Recency is a doubly linked list beside the `Map`, not the `Map`'s insertion order: V8 leaves a
 * hole for every deleted `Map` entry until it rehashes, and `keys().next()` walks every hole at the
 * front, so under constant eviction (a container serving more tenants than it holds) each `set`
 * skipped thousands of holes (27 µs against 6 µs per open at 16,384 entries, bench/kms-budget.ts).
 */
export class DataKeyCache {
  private readonly entries = new Map<string, Entry>();
  /** Least recently used. */
  private head: Entry | null = null;
  /** Most recently used. */
  private tail: Entry | null = null;
  readonly maxEntries: number;
  readonly ttlMs: number;
  readonly maxUses: number;
  private readonly now: () => number;

  constructor(options: DataKeyCacheOptions = {}) {
    this.maxEntries = options.maxEntries ?? DATA_KEY_CACHE_DEFAULTS.maxEntries;
    this.ttlMs = options.ttlMs ?? DATA_KEY_CACHE_DEFAULTS.ttlMs;
    this.maxUses = options.maxUses ?? DATA_KEY_CACHE_DEFAULTS.maxUses;
    this.now = options.now ?? Date.now;
    if (!(this.maxEntries >= 1 && this.ttlMs > 0 && this.maxUses >= 1)) {
      throw new RangeError('data key cache bounds must be positive');
    }
  }

  get size(): number {
    return this.entries.size;
  }

  /** Returns a live entry and counts one use; refreshes its recency. */
  get(key: string): CachedDataKey | undefined {
    const e = this.entries.get(key);
    if (!e) return undefined;
    if (this.now() - e.createdAt >= this.ttlMs || e.uses >= this.maxUses) {
      this.delete(key);
      return undefined;
    }
    e.uses++;
    this.unlink(e);
    this.append(e);
    return e.value;
  }

  /** Stores an entry (counted as one use); evicts the least recently used beyond `maxEntries`. */
  set(key: string, value: CachedDataKey): void {
    this.delete(key);
    const e: Entry = { key, value, createdAt: this.now(), uses: 1, prev: null, next: null };
    this.entries.set(key, e);
    this.append(e);
    while (this.entries.size > this.maxEntries && this.head) this.delete(this.head.key);
  }

  delete(key: string): void {
    const e = this.entries.get(key);
    if (!e) return;
    e.value.plaintext.fill(0);
    this.entries.delete(key);
    this.unlink(e);
  }

  /** Drops every entry of one organisation (e.g. when its key is shredded). */
  deleteWhere(predicate: (key: string) => boolean): void {
    for (const k of [...this.entries.keys()]) if (predicate(k)) this.delete(k);
  }

  clear(): void {
    for (const k of [...this.entries.keys()]) this.delete(k);
  }

  private append(e: Entry): void {
    e.prev = this.tail;
    e.next = null;
    if (this.tail) this.tail.next = e;
    else this.head = e;
    this.tail = e;
  }

  private unlink(e: Entry): void {
    if (e.prev) e.prev.next = e.next;
    else this.head = e.next;
    if (e.next) e.next.prev = e.prev;
    else this.tail = e.prev;
    e.prev = null;
    e.next = null;
  }
}
