import { DataKeyCache, type CachedDataKey } from '../../lambda/tenant-keys/data-key-cache';
import { prng } from '../audit/fixtures';
import { ReferenceLru } from './reference-lru';

/**
 * DataKeyCache keeps recency in a linked list (O(1) eviction, see its header); it must answer
 * exactly as the obvious Map-ordered LRU does. Both are driven with the same random operations on
 * a shared clock, over few keys and small bounds so that hits, LRU evictions, expiry by age and by
 * uses all happen often, and every observable answer is compared.
 */
describe('data key cache LRU', () => {
  const cases = [
    { maxEntries: 1, ttlMs: 50, maxUses: 3 },
    { maxEntries: 4, ttlMs: 100, maxUses: 5 },
    { maxEntries: 8, ttlMs: 1_000, maxUses: 10_000 },
    { maxEntries: 16, ttlMs: 30, maxUses: 2 },
  ];

  it.each(cases)('answers as the Map-ordered reference LRU does: %o', (bounds) => {
    for (let seed = 1; seed <= 20; seed++) {
      const rnd = prng(seed * 7919 + bounds.maxEntries);
      let clock = 0;
      const real = new DataKeyCache({ ...bounds, now: () => clock });
      const reference = new ReferenceLru({ ...bounds, now: () => clock });
      const realKeys: Buffer[] = [];
      const referenceKeys: Buffer[] = [];
      const value = (id: number, plaintext: Buffer): CachedDataKey => ({
        plaintext,
        wrapped: Buffer.alloc(0),
        keyArn: `key-${id}`,
      });
      const realTrace: string[] = [];
      const referenceTrace: string[] = [];
      let hits = 0;
      let misses = 0;
      let evicted = 0;
      for (let op = 0; op < 3_000; op++) {
        clock += Math.floor(rnd() * 10);
        const key = `k${Math.floor(rnd() * (bounds.maxEntries * 3))}`;
        const r = rnd();
        if (r < 0.6) {
          const a = real.get(key);
          const b = reference.get(key);
          realTrace.push(`get ${key}: ${a?.keyArn}`);
          referenceTrace.push(`get ${key}: ${b?.keyArn}`);
          if (a) hits++;
          else misses++;
        } else if (r < 0.95) {
          realKeys.push(Buffer.alloc(4, 1));
          referenceKeys.push(Buffer.alloc(4, 1));
          const sizeBefore = real.size;
          real.set(key, value(op, realKeys[realKeys.length - 1] as Buffer));
          reference.set(key, value(op, referenceKeys[referenceKeys.length - 1] as Buffer));
          if (real.size === sizeBefore && sizeBefore === bounds.maxEntries) evicted++;
        } else {
          real.delete(key);
          reference.delete(key);
        }
        realTrace.push(`size ${real.size}`);
        referenceTrace.push(`size ${reference.size}`);
      }
      expect(referenceTrace).toEqual(realTrace);
      // The same plaintext keys were zeroed (evicted, expired, replaced or deleted) by both.
      expect(referenceKeys.map((k) => k[0])).toEqual(realKeys.map((k) => k[0]));
      // The operations exercised what they are meant to.
      expect(hits).toBeGreaterThan(0);
      expect(misses).toBeGreaterThan(0);
      expect(evicted).toBeGreaterThan(0);
    }
  });

  it('rejects bounds that are not positive', () => {
    expect(() => new DataKeyCache({ maxEntries: 0 })).toThrow(RangeError);
    expect(() => new DataKeyCache({ ttlMs: 0 })).toThrow(RangeError);
    expect(() => new DataKeyCache({ maxUses: 0 })).toThrow(RangeError);
  });
});
