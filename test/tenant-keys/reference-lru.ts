/**
 * The obvious LRU a data key cache could be (recency as a `Map`'s insertion order, eviction by
 * `keys().next()`): what `DataKeyCache` was before it kept recency in a linked list. Kept as the
 * reference test/tenant-keys/data-key-cache-lru.test.ts compares the real cache against.
 */
import {
  DATA_KEY_CACHE_DEFAULTS,
  type CachedDataKey,
  type DataKeyCacheOptions,
} from '../../lambda/tenant-keys/data-key-cache';

interface Entry {
  readonly value: CachedDataKey;
  readonly createdAt: number;
  uses: number;
}

export class ReferenceLru {
  private readonly entries = new Map<string, Entry>();
  private readonly maxEntries: number;
  private readonly ttlMs: number;
  private readonly maxUses: number;
  private readonly now: () => number;

  constructor(options: DataKeyCacheOptions = {}) {
    this.maxEntries = options.maxEntries ?? DATA_KEY_CACHE_DEFAULTS.maxEntries;
    this.ttlMs = options.ttlMs ?? DATA_KEY_CACHE_DEFAULTS.ttlMs;
    this.maxUses = options.maxUses ?? DATA_KEY_CACHE_DEFAULTS.maxUses;
    this.now = options.now ?? Date.now;
  }

  get size(): number {
    return this.entries.size;
  }

  get(key: string): CachedDataKey | undefined {
    const e = this.entries.get(key);
    if (!e) return undefined;
    if (this.now() - e.createdAt >= this.ttlMs || e.uses >= this.maxUses) {
      this.delete(key);
      return undefined;
    }
    e.uses++;
    this.entries.delete(key);
    this.entries.set(key, e);
    return e.value;
  }

  set(key: string, value: CachedDataKey): void {
    this.delete(key);
    this.entries.set(key, { value, createdAt: this.now(), uses: 1 });
    while (this.entries.size > this.maxEntries) {
      const oldest = this.entries.keys().next().value;
      if (oldest === undefined) break;
      this.delete(oldest);
    }
  }

  delete(key: string): void {
    const e = this.entries.get(key);
    if (!e) return;
    e.value.plaintext.fill(0);
    this.entries.delete(key);
  }
}
