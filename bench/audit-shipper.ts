/**
 * Runs the real `shipAuditLog` over 10,000 and 100,000 simulated organisations, every organisation
 * starting with a few unshipped records and new events arriving all the time (uniform over the
 * organisations), and prints how many runs (and how much scheduled time) pass until every
 * organisation's starting backlog is in the archive, and the oldest unshipped record's age on the
 * way. The source is the in-memory twin of migrations/0405 (test/audit/memory-source.ts: oldest
 * first, leases), indexed (`IndexedMemorySource`, checked call for call against `MemorySource` by
 * test/audit/memory-source.test.ts) so that a claim does not list and sort every organisation: with
 * a claim per 500 organisations served that made the simulation O(n²), and the 100,000-organisation
 * rows ran for 15 minutes and more; S3 and PostgreSQL are simulated as fixed costs per call on a simulated clock, so
 * the run's time budget (`remainingMs`) binds as it would in Lambda.
 *
 * For comparison it also runs the shipper as it was before (the first 1,000 organisations by id,
 * no per-organisation cap, 500 batches a run, one invocation), through the same function.
 *
 *   npx tsx bench/audit-shipper.ts [--orgs 10000,100000] [--rate 20] [--hours 24] [--workers 1,2,5] [--claim-us 1]
 */
import type { S3Client } from '@aws-sdk/client-s3';
import { link, type AuditRecord, type ChainHead } from '../lambda/audit/chain';
import { shipAuditLog, type PendingChain, type ShipperConfig, type ShipperSource } from '../lambda/audit/shipper';
import { IndexedMemorySource, MemorySource, type MemoryChain } from '../test/audit/memory-source';
import { prng } from '../test/audit/fixtures';

const arg = (name: string, fallback: string): string => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? (process.argv[i + 1] ?? fallback) : fallback;
};
const ORG_COUNTS = arg('orgs', '10000,100000').split(',').map(Number);
/** New audit events per second per 10,000 organisations. */
const RATE = Number(arg('rate', '20'));
const HOURS = Number(arg('hours', '24'));
/** Worker counts of the current shipper to run (the legacy row runs with 1 worker when 1 is listed). */
const WORKERS = arg('workers', '1,2,5').split(',').map(Number);

// Simulated costs (ms): an S3 PutObject of one batch; a PostgreSQL round trip through RDS Proxy; a
// claim, which probes every organisation's (org_id, seq) index once: 1 µs each by default, as first
// estimated; bench/audit-claim.ts measures the real claim at 12-18 µs per organisation on the shared
// 2-core machine (docs/audit.md), which `--claim-us 15` replays.
const S3_PUT_MS = 25;
const DB_MS = 2;
const CLAIM_MS_PER_ORG = Number(arg('claim-us', '1')) / 1000;
const INTERVAL_MS = 5 * 60_000;
const TIMEOUT_MS = 5 * 60_000;
const START_RECORDS = 3;

const CONFIG: ShipperConfig = {
  bucket: 'archive',
  kmsKeyArn: 'arn:aws:kms:eu-west-1:000000000000:key/bench',
  retentionMonths: { pro: 12, business: 24, enterprise: 84 },
};

function orgId(i: number): string {
  return `00000000-0000-4000-8000-${i.toString(16).padStart(12, '0')}`;
}

class World {
  readonly chains = new Map<string, MemoryChain & { recordedAt: number[] }>();
  readonly heads = new Map<string, ChainHead>();
  readonly ids: string[] = [];
  /** Sequence each organisation must reach in the archive: its starting backlog. */
  readonly target = new Map<string, number>();
  private readonly rnd = prng(42);
  clock = 0;
  /** Told of every record appended once the source exists. */
  onAppend: (id: string) => void = () => undefined;

  constructor(count: number) {
    for (let i = 0; i < count; i++) {
      const id = orgId(i);
      this.ids.push(id);
      this.chains.set(id, { plan: 'pro', records: [], recordedAt: [] });
      for (let r = 0; r < START_RECORDS; r++) this.append(id, -Math.floor(this.rnd() * INTERVAL_MS));
      this.target.set(id, START_RECORDS);
    }
  }

  append(id: string, at: number): void {
    const chain = this.chains.get(id) as MemoryChain & { recordedAt: number[] };
    const head = this.heads.get(id) ?? { seq: 0, hash: '0'.repeat(64) };
    const record: AuditRecord = link(head, {
      orgId: id,
      actorType: 'system',
      actorUserId: null,
      actorEmail: null,
      event: 'lead.updated',
      entityType: 'lead',
      entityId: String(head.seq + 1),
      ip: null,
      userAgent: null,
      supportGrantId: null,
      metadata: {},
      occurredAt: new Date(Math.max(0, at)),
    });
    chain.records.push(record);
    chain.recordedAt.push(at);
    this.heads.set(id, record);
    this.onAppend(id);
  }

  /** New events over one interval, each to a uniformly chosen organisation. */
  traffic(from: number): void {
    const events = Math.round(((RATE * this.ids.length) / 10_000) * (INTERVAL_MS / 1000));
    for (let e = 0; e < events; e++) {
      const id = this.ids[Math.floor(this.rnd() * this.ids.length)] as string;
      this.append(id, from + Math.floor(this.rnd() * INTERVAL_MS));
    }
  }
}

/** A source whose every call costs simulated time on the invocation's clock. */
class Timed implements ShipperSource {
  elapsed = 0;
  constructor(
    private readonly inner: ShipperSource,
    private readonly orgs: number,
  ) {}
  async claim(worker: string, limit: number) {
    this.elapsed += DB_MS + CLAIM_MS_PER_ORG * this.orgs;
    return this.inner.claim(worker, limit);
  }
  async release(worker: string) {
    this.elapsed += DB_MS;
    return this.inner.release(worker);
  }
  async read(orgId: string, afterSeq: number, limit: number) {
    this.elapsed += DB_MS;
    return this.inner.read(orgId, afterSeq, limit);
  }
  async markShipped(orgId: string, head: ChainHead) {
    this.elapsed += DB_MS;
    return this.inner.markShipped(orgId, head);
  }
  async backlog() {
    this.elapsed += DB_MS + CLAIM_MS_PER_ORG * this.orgs;
    return this.inner.backlog();
  }
}

/** The shipper before issue 18: the first 1,000 owed organisations by id, once per run, no lease. */
class FirstByIdSource extends MemorySource {
  private claimedBy = new Set<string>();
  override async claim(worker: string): Promise<PendingChain[]> {
    if (this.claimedBy.has(worker)) return [];
    this.claimedBy.add(worker);
    return this.owed()
      .sort((a, b) => (a.orgId < b.orgId ? -1 : 1))
      .slice(0, 1000)
      .map(({ orgId, plan, shipped, at }) => ({ orgId, plan, shipped, oldestAt: new Date(at) }));
  }
}

interface Outcome {
  readonly runs: number | null;
  readonly left: number;
  readonly worstAgeMinutes: number;
  readonly seconds: number;
}

async function simulate(
  count: number,
  workers: number,
  config: ShipperConfig,
  legacy: boolean,
  hours: number,
): Promise<Outcome> {
  const started = process.hrtime.bigint();
  const world = new World(count);
  let memory: MemorySource | IndexedMemorySource;
  if (legacy) {
    // One claim a run: listing and sorting every organisation once is what it did, and is cheap here.
    memory = new FirstByIdSource(world.chains, () => world.clock);
  } else {
    const indexed = new IndexedMemorySource(world.chains, () => world.clock);
    world.onAppend = (id) => indexed.appended(id);
    memory = indexed;
  }
  let worstAge = 0;
  const maxRuns = Math.round((hours * 3_600_000) / INTERVAL_MS);
  const done = () => world.ids.every((id) => (memory.shipped.get(id)?.seq ?? 0) >= (world.target.get(id) ?? 0));
  let run = 0;
  while (run < maxRuns && !done()) {
    const start = run * INTERVAL_MS;
    world.traffic(start - INTERVAL_MS);
    run++;
    for (let w = 0; w < workers; w++) {
      const timed = new Timed(memory, count);
      let s3Ms = 0;
      const s3 = {
        send: async () => {
          s3Ms += S3_PUT_MS;
          return {};
        },
      } as unknown as S3Client;
      world.clock = start;
      const elapsed = () => timed.elapsed + s3Ms;
      const result = await shipAuditLog(s3, timed, config, {
        worker: `run-${run}-worker-${w}`,
        remainingMs: () => TIMEOUT_MS - elapsed(),
      });
      world.clock = start + elapsed();
      worstAge = Math.max(worstAge, result.owed.oldestAgeSeconds);
    }
  }
  const left = world.ids.filter((id) => (memory.shipped.get(id)?.seq ?? 0) < (world.target.get(id) ?? 0)).length;
  return {
    runs: left === 0 ? run : null,
    left,
    worstAgeMinutes: worstAge / 60,
    seconds: Number(process.hrtime.bigint() - started) / 1e9,
  };
}

async function main(): Promise<void> {
  console.log(
    `audit shipper: ${START_RECORDS} unshipped records per organisation at the start, then ${RATE} events/s per ` +
      `10,000 organisations; runs every ${INTERVAL_MS / 60_000} min, ${TIMEOUT_MS / 1000} s timeout; ` +
      `simulated S3 put ${S3_PUT_MS} ms, DB round trip ${DB_MS} ms, claim ${CLAIM_MS_PER_ORG * 1000} µs/organisation; ` +
      `stop after ${HOURS} h`,
  );
  console.log('| organisations | shipper | runs until all archived | time | worst oldest-unshipped age | bench s |');
  console.log('| ---: | --- | ---: | ---: | ---: | ---: |');
  const legacy = { ...CONFIG, maxBatches: 500, maxBatchesPerOrganisation: Infinity, reserveMs: 0 };
  const cases: { name: string; workers: number; config: ShipperConfig; legacy: boolean; hours: number }[] = [
    // Two hours are enough to show it starving (as issue 18 measured), and keep the bench short.
    { name: 'before: first 1,000 by id, 500 batches, 1 worker', workers: 1, config: legacy, legacy: true, hours: 2 },
    { name: 'oldest first, leased, 1 worker', workers: 1, config: CONFIG, legacy: false, hours: HOURS },
    { name: 'oldest first, leased, 2 workers (default)', workers: 2, config: CONFIG, legacy: false, hours: HOURS },
    { name: 'oldest first, leased, 5 workers', workers: 5, config: CONFIG, legacy: false, hours: HOURS },
  ];
  for (const count of ORG_COUNTS) {
    for (const c of cases.filter((k) => WORKERS.includes(k.workers))) {
      const o = await simulate(count, c.workers, c.config, c.legacy, c.hours);
      const time = o.runs === null ? `> ${c.hours} h` : `${((o.runs * INTERVAL_MS) / 60_000).toFixed(0)} min`;
      const runs = o.runs === null ? `never (${o.left.toLocaleString('en')} left)` : String(o.runs);
      console.log(
        `| ${count.toLocaleString('en')} | ${c.name} | ${runs} | ${time} | ${o.worstAgeMinutes.toFixed(0)} min | ${o.seconds.toFixed(1)} |`,
      );
    }
  }
}

void main();
