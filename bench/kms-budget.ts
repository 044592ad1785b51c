/**
 * KMS Decrypt budget of envelope opens: simulates Lambda containers, each with its own data key
 * cache on a simulated clock, serving tenant traffic (uniform, or Zipf-skewed), and prints the cache hit rate, KMS Decrypt/s and its monthly
 * price at 1,000 / 10,000 / 100,000 tenants for the former and current cache settings. It also
 * measures what one cached entry costs in memory (with the real `DataKeyCache`), which is how the
 * cache is sized.
 *
 * The containers' caches are the real `DataKeyCache`. It used to evict through a fresh `Map`
 * iterator, which walks every deleted entry V8 has not yet compacted: once 16,384 entries churned,
 * every miss paid for thousands of holes (27 µs an open against 6 µs now, uniform over 100,000
 * tenants, 84 % misses), which kept the 100,000-tenant rows running for many minutes; recency is now
 * a linked list (O(1) eviction), checked answer for answer against the Map-ordered LRU by
 * test/tenant-keys/data-key-cache-lru.test.ts.
 *
 * Traffic: every tenant opens its secret once a minute on average (the docs' example: a mailbox
 * poller), so the open rate grows with the tenants; requests go to a uniformly random warm
 * container (Lambda routes to any idle one). One sealed secret (one wrapped data key) per tenant.
 *
 *   npx tsx bench/kms-budget.ts [--containers 10] [--minutes 120] [--tenants 1000,10000,100000] [--traffic uniform,zipf]
 *   npx tsx bench/kms-budget.ts --write-docs    # rewrites the cost table in docs/tenant-keys.md
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import * as prettier from 'prettier';
import { DATA_KEY_CACHE_DEFAULTS, DataKeyCache } from '../lambda/tenant-keys/data-key-cache';
import { prng } from '../test/audit/fixtures';

const arg = (name: string, fallback: string): string => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? (process.argv[i + 1] ?? fallback) : fallback;
};
const CONTAINERS = Number(arg('containers', '10'));
/** Simulated minutes; the first half warms the caches and is not counted. */
const MINUTES = Number(arg('minutes', '120'));
const TENANTS = arg('tenants', '1000,10000,100000').split(',').map(Number);
/** `uniform`, `zipf` or both. */
const TRAFFIC = arg('traffic', 'uniform,zipf').split(',');
const OPENS_PER_TENANT_PER_MINUTE = 1;
const ZIPF_S = 1.0;
const PRICE_PER_10K = 0.03;
const SECONDS_PER_MONTH = 30 * 24 * 3600;
/** The budget this design is held to (docs/tenant-keys.md "KMS request budget"). */
const BUDGET_DECRYPT_PER_S_AT_10K = 30;

interface Setting {
  readonly name: string;
  readonly maxEntries: number;
  readonly ttlMs: number;
}

const SETTINGS: Setting[] = [
  { name: 'before (256 entries, 5 min)', maxEntries: 256, ttlMs: 5 * 60_000 },
  {
    name: `current (${DATA_KEY_CACHE_DEFAULTS.maxEntries.toLocaleString('en')} entries, ${DATA_KEY_CACHE_DEFAULTS.ttlMs / 60_000} min)`,
    maxEntries: DATA_KEY_CACHE_DEFAULTS.maxEntries,
    ttlMs: DATA_KEY_CACHE_DEFAULTS.ttlMs,
  },
];

/** Draws tenant indexes: uniform, or Zipf(s) by inverse CDF. */
function sampler(tenants: number, skewed: boolean, rnd: () => number): () => number {
  if (!skewed) return () => Math.floor(rnd() * tenants);
  const cdf = new Float64Array(tenants);
  let sum = 0;
  for (let i = 0; i < tenants; i++) cdf[i] = sum += 1 / Math.pow(i + 1, ZIPF_S);
  return () => {
    const u = rnd() * sum;
    let lo = 0;
    let hi = tenants - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if ((cdf[mid] as number) < u) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  };
}

interface Result {
  readonly hitRate: number;
  readonly decryptPerSecond: number;
  readonly opensPerSecond: number;
}

function simulate(tenants: number, skewed: boolean, setting: Setting): Result {
  const rnd = prng(tenants + (skewed ? 1 : 0));
  let clock = 0;
  const caches = Array.from(
    { length: CONTAINERS },
    () => new DataKeyCache({ maxEntries: setting.maxEntries, ttlMs: setting.ttlMs, now: () => clock }),
  );
  const wrapped = Buffer.alloc(184);
  // One plaintext buffer for every entry: what the bench counts is hits and misses, and allocating
  // 32 bytes per miss (millions at 100,000 tenants) cost more than the cache itself.
  const plaintext = Buffer.alloc(32);
  const keyArn = 'arn:aws:kms:eu-west-1:000000000000:key/bench';
  const pick = sampler(tenants, skewed, rnd);
  const keys = Array.from({ length: tenants }, (_, t) => `open\0${t}\0webhook_secret\0${keyArn}`);
  const opensPerMs = (tenants * OPENS_PER_TENANT_PER_MINUTE) / 60_000;
  const end = MINUTES * 60_000;
  const measureFrom = end / 2;
  let opens = 0;
  let misses = 0;
  // Poisson arrivals: exponential gaps.
  while (clock < end) {
    clock += -Math.log(1 - rnd()) / opensPerMs;
    const tenant = pick();
    const cache = caches[Math.floor(rnd() * CONTAINERS)] as DataKeyCache;
    const key = keys[tenant] as string;
    const hit = cache.get(key) !== undefined;
    if (!hit) cache.set(key, { plaintext, wrapped, keyArn });
    if (clock >= measureFrom) {
      opens++;
      if (!hit) misses++;
    }
  }
  const seconds = (end - measureFrom) / 1000;
  return { hitRate: 1 - misses / opens, decryptPerSecond: misses / seconds, opensPerSecond: opens / seconds };
}

/** Heap and buffer bytes one cached entry holds (realistic key, 32-byte key, 184-byte wrapped key). */
function bytesPerEntry(): number {
  const n = 20_000;
  global.gc?.();
  const before = process.memoryUsage();
  const cache = new DataKeyCache({ maxEntries: n, ttlMs: 3_600_000 });
  for (let i = 0; i < n; i++) {
    const org = `0000${i.toString(16).padStart(4, '0')}-0000-4000-8000-000000000000`;
    cache.set(`open\0${org}\0webhook_secret\0arn:aws:kms:eu-west-1:000000000000:key/${org}\0${'f'.repeat(64)}`, {
      plaintext: randomBytes(32),
      wrapped: randomBytes(184),
      keyArn: `arn:aws:kms:eu-west-1:000000000000:key/${org}`,
    });
  }
  global.gc?.();
  const after = process.memoryUsage();
  const bytes =
    after.heapUsed + after.external + after.arrayBuffers - (before.heapUsed + before.external + before.arrayBuffers);
  if (cache.size !== n) throw new Error('cache did not hold every entry');
  return bytes / n;
}

function money(decryptPerSecond: number): string {
  return `$${Math.round(((decryptPerSecond * SECONDS_PER_MONTH) / 10_000) * PRICE_PER_10K).toLocaleString('en')}`;
}

async function main(): Promise<void> {
  const perEntry = bytesPerEntry();
  const lines: string[] = [];
  const out = (s: string) => {
    lines.push(s);
    console.log(s);
  };
  out(
    `Generated by \`npx tsx bench/kms-budget.ts --write-docs\`: ${CONTAINERS} warm containers, each tenant opening ` +
      `its secret ${OPENS_PER_TENANT_PER_MINUTE}/min on average (uniform: every tenant alike; Zipf s=${ZIPF_S}: ` +
      `a few tenants carry most traffic), Poisson arrivals, requests spread uniformly over the containers, ` +
      `${MINUTES / 2} simulated minutes measured after ${MINUTES / 2} of warm-up. Decrypt at ` +
      `$${PRICE_PER_10K} per 10,000 requests, 30-day month. One cached entry holds ~${Math.round(perEntry)} bytes, ` +
      `so ${DATA_KEY_CACHE_DEFAULTS.maxEntries.toLocaleString('en')} entries are ` +
      `~${((perEntry * DATA_KEY_CACHE_DEFAULTS.maxEntries) / 2 ** 20).toFixed(0)} MiB per container.`,
  );
  out('');
  out('| tenants | opens/s | traffic | cache | hit rate | KMS Decrypt/s | Decrypt $/month |');
  out('| ------: | ------: | ------- | ----- | -------: | ------------: | --------------: |');
  let atBudget: Result | undefined;
  for (const tenants of TENANTS) {
    for (const skewed of [false, true].filter((z) => TRAFFIC.includes(z ? 'zipf' : 'uniform'))) {
      for (const setting of SETTINGS) {
        const r = simulate(tenants, skewed, setting);
        if (tenants === 10_000 && !skewed && setting === SETTINGS[1]) atBudget = r;
        out(
          `| ${tenants.toLocaleString('en')} | ${r.opensPerSecond.toFixed(0)} | ${skewed ? `Zipf ${ZIPF_S}` : 'uniform'} | ${setting.name} | ` +
            `${(r.hitRate * 100).toFixed(1)} % | ${r.decryptPerSecond.toFixed(1)} | ${money(r.decryptPerSecond)} |`,
        );
      }
    }
  }
  out('');
  if (atBudget === undefined) {
    out('Budget at 10,000 tenants, uniform traffic: not measured by this run (--tenants, --traffic).');
  } else {
    const within = atBudget.decryptPerSecond <= BUDGET_DECRYPT_PER_S_AT_10K;
    out(
      `Budget at 10,000 tenants, uniform traffic: at most ${BUDGET_DECRYPT_PER_S_AT_10K} Decrypt/s ` +
        `(${money(BUDGET_DECRYPT_PER_S_AT_10K)}/month): ${within ? 'met' : 'NOT met'} ` +
        `(${atBudget.decryptPerSecond.toFixed(1)} Decrypt/s).`,
    );
  }
  if (process.argv.includes('--write-docs')) {
    if (TENANTS.join() !== '1000,10000,100000' || TRAFFIC.join() !== 'uniform,zipf') {
      throw new Error('--write-docs writes the whole table: run it without --tenants or --traffic');
    }
    const doc = path.join(__dirname, '..', 'docs', 'tenant-keys.md');
    const text = fs.readFileSync(doc, 'utf8');
    const begin = '<!-- kms-budget:begin (bench/kms-budget.ts --write-docs) -->';
    const endMark = '<!-- kms-budget:end -->';
    const a = text.indexOf(begin);
    const b = text.indexOf(endMark);
    if (a < 0 || b < a) throw new Error(`docs/tenant-keys.md has no ${begin} ... ${endMark} section`);
    const updated = `${text.slice(0, a + begin.length)}\n\n${lines.join('\n')}\n\n${text.slice(b)}`;
    // Formatted as the repository formats Markdown, so `prettier --check` passes on the result.
    const options = (await prettier.resolveConfig(doc)) ?? {};
    fs.writeFileSync(doc, await prettier.format(updated, { ...options, filepath: doc }));
    console.log(`\nwrote ${path.relative(process.cwd(), doc)}`);
  }
  if (atBudget !== undefined && atBudget.decryptPerSecond > BUDGET_DECRYPT_PER_S_AT_10K) process.exitCode = 1;
}

void main();
