import { DataKeyCache, type CachedDataKey } from '../../lambda/tenant-keys/data-key-cache';
import { prng } from '../audit/fixtures';
import { DataKeyCacheModel } from './data-key-cache-model';

/**
 * bench/kms-budget.ts simulates containers with `DataKeyCacheModel` instead of the real cache (see
 * the model's header for why); its figures hold only if the two behave alike. Both are driven with
 * the same random operations on a shared clock, over few keys and small bounds so that hits, LRU
 * evictions, expiry by age and by uses all happen often, and every observable answer is compared.
 */
describe('data key cache model (bench/kms-budget.ts)', () => {
  const cases = [
    { maxEntries: 1, ttlMs: 50, maxUses: 3 },
    { maxEntries: 4, ttlMs: 100, maxUses: 5 },
    { maxEntries: 8, ttlMs: 1_000, maxUses: 10_000 },
    { maxEntries: 16, ttlMs: 30, maxUses: 2 },
  ];

  it.each(cases)('answers as DataKeyCache does: %o', (bounds) => {
    for (let seed = 1; seed <= 20; seed++) {
      const rnd = prng(seed * 7919 + bounds.maxEntries);
      let clock = 0;
      const real = new DataKeyCache({ ...bounds, now: () => clock });
      const model = new DataKeyCacheModel({ ...bounds, now: () => clock });
      const realKeys: Buffer[] = [];
      const modelKeys: Buffer[] = [];
      const value = (id: number, plaintext: Buffer): CachedDataKey => ({
        plaintext,
        wrapped: Buffer.alloc(0),
        keyArn: `key-${id}`,
      });
      const realTrace: string[] = [];
      const modelTrace: string[] = [];
      let hits = 0;
      let misses = 0;
      let evicted = 0;
      for (let op = 0; op < 3_000; op++) {
        clock += Math.floor(rnd() * 10);
        const key = `k${Math.floor(rnd() * (bounds.maxEntries * 3))}`;
        const r = rnd();
        if (r < 0.6) {
          const a = real.get(key);
          const b = model.get(key);
          realTrace.push(`get ${key}: ${a?.keyArn}`);
          modelTrace.push(`get ${key}: ${b?.keyArn}`);
          if (a) hits++;
          else misses++;
        } else if (r < 0.95) {
          realKeys.push(Buffer.alloc(4, 1));
          modelKeys.push(Buffer.alloc(4, 1));
          const sizeBefore = real.size;
          real.set(key, value(op, realKeys[realKeys.length - 1] as Buffer));
          model.set(key, value(op, modelKeys[modelKeys.length - 1] as Buffer));
          if (real.size === sizeBefore && sizeBefore === bounds.maxEntries) evicted++;
        } else {
          real.delete(key);
          model.delete(key);
        }
        realTrace.push(`size ${real.size}`);
        modelTrace.push(`size ${model.size}`);
      }
      expect(modelTrace).toEqual(realTrace);
      // The same plaintext keys were zeroed (evicted, expired, replaced or deleted) by both.
      expect(modelKeys.map((k) => k[0])).toEqual(realKeys.map((k) => k[0]));
      // The operations exercised what they are meant to.
      expect(hits).toBeGreaterThan(0);
      expect(misses).toBeGreaterThan(0);
      expect(evicted).toBeGreaterThan(0);
    }
  });

  it('rejects the bounds DataKeyCache rejects', () => {
    expect(() => new DataKeyCacheModel({ maxEntries: 0 })).toThrow(RangeError);
    expect(() => new DataKeyCacheModel({ ttlMs: 0 })).toThrow(RangeError);
    expect(() => new DataKeyCacheModel({ maxUses: 0 })).toThrow(RangeError);
  });
});
