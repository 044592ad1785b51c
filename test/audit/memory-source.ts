/**
 * An in-memory `ShipperSource` with the semantics of migrations/0405's functions: organisations
 * with unshipped records leased longest-waiting first (by when their oldest unshipped record was
 * recorded, then id), live leases (the claimer's own included) skipped, releases by worker. Used
 * by the shipper's unit tests and as the reference for `IndexedMemorySource` (below), which
 * bench/audit-shipper.ts runs on; the PostgreSQL functions themselves are tested in
 * test/audit/archive-fairness.test.ts.
 */
import { EMPTY_HEAD, type AuditRecord, type ChainHead } from '../../lambda/audit/chain';
import type { Backlog, PendingChain, ShipperSource } from '../../lambda/audit/shipper';
import type { Plan } from '../../contracts/plans';

export interface MemoryChain {
  readonly plan: Plan;
  readonly records: AuditRecord[];
  /** When each record was recorded (ms), by index; @default every record at 0 */
  readonly recordedAt?: number[];
}

export class MemorySource implements ShipperSource {
  readonly shipped = new Map<string, ChainHead>();
  private readonly leases = new Map<string, { worker: string; until: number }>();
  /** Calls of `claim`, for tests that count round trips. */
  claims = 0;

  constructor(
    readonly chains: Map<string, MemoryChain>,
    /** The database's clock (ms). @default () => 0 */
    private readonly clock: () => number = () => 0,
    private readonly leaseMs = 900_000,
  ) {}

  /** Every organisation owed, in no particular order, with when its oldest unshipped record was recorded (ms). */
  owed(): { orgId: string; plan: Plan; shipped: ChainHead; at: number }[] {
    const out: { orgId: string; plan: Plan; shipped: ChainHead; at: number }[] = [];
    for (const [orgId, c] of this.chains) {
      const shipped = this.shipped.get(orgId) ?? EMPTY_HEAD;
      if (c.records.length <= shipped.seq) continue;
      out.push({ orgId, plan: c.plan, shipped, at: c.recordedAt?.[shipped.seq] ?? 0 });
    }
    return out;
  }

  async claim(worker: string, limit: number): Promise<PendingChain[]> {
    this.claims++;
    const now = this.clock();
    const free = this.owed().filter((c) => {
      const l = this.leases.get(c.orgId);
      return !l || l.until <= now;
    });
    free.sort((a, b) => a.at - b.at || (a.orgId < b.orgId ? -1 : a.orgId > b.orgId ? 1 : 0));
    const taken = free.slice(0, limit);
    for (const c of taken) this.leases.set(c.orgId, { worker, until: now + this.leaseMs });
    return taken.map(({ orgId, plan, shipped, at }) => ({ orgId, plan, shipped, oldestAt: new Date(at) }));
  }

  async release(worker: string): Promise<void> {
    for (const [org, l] of [...this.leases]) if (l.worker === worker) this.leases.delete(org);
  }

  async read(orgId: string, after: number, limit: number): Promise<AuditRecord[]> {
    const records = this.chains.get(orgId)?.records ?? [];
    return records.slice(after, after + limit).filter((r) => r.seq > after);
  }

  async markShipped(orgId: string, head: ChainHead): Promise<void> {
    if ((this.shipped.get(orgId)?.seq ?? 0) < head.seq) this.shipped.set(orgId, head);
  }

  async backlog(): Promise<Backlog> {
    const owed = this.owed();
    const oldest = owed.reduce((m, c) => Math.min(m, c.at), Infinity);
    return {
      organisations: owed.length,
      oldestAt: owed.length > 0 ? new Date(oldest) : null,
      measuredAt: new Date(this.clock()),
    };
  }
}

interface Waiting {
  readonly orgId: string;
  readonly at: number;
  readonly version: number;
}

const before = (a: Waiting, b: Waiting): boolean => a.at < b.at || (a.at === b.at && a.orgId < b.orgId);

/**
 * `MemorySource`'s semantics at simulation scale (bench/audit-shipper.ts): the owed organisations
 * are kept in a heap by (oldest unshipped record, id) instead of being listed and sorted on every
 * claim, and leases are indexed by worker, so a claim costs O((limit + live leases passed over)
 * log n) instead of O(n log n). The price: it must be told of every record appended after it was
 * constructed (`appended`), since it cannot see a `push` on a chain. Records already in the
 * archive stay in the chains, as in PostgreSQL.
 *
 * test/audit/memory-source.test.ts drives both sources with the same random operations, and the
 * real `shipAuditLog` over both, and checks every answer is identical.
 */
export class IndexedMemorySource implements ShipperSource {
  readonly shipped = new Map<string, ChainHead>();
  private readonly leases = new Map<string, { worker: string; until: number }>();
  private readonly leasesOf = new Map<string, Set<string>>();
  /** Owed organisations: the version of their current heap entry. */
  private readonly owedVersion = new Map<string, number>();
  private readonly heap: Waiting[] = [];
  private versions = 0;
  claims = 0;

  constructor(
    readonly chains: Map<string, MemoryChain>,
    private readonly clock: () => number = () => 0,
    private readonly leaseMs = 900_000,
  ) {
    for (const orgId of chains.keys()) this.refresh(orgId);
  }

  /** To be called after records were pushed onto `orgId`'s chain. */
  appended(orgId: string): void {
    // An organisation already owed keeps its oldest unshipped record; one that was not is now owed.
    if (!this.owedVersion.has(orgId)) this.refresh(orgId);
  }

  async claim(worker: string, limit: number): Promise<PendingChain[]> {
    this.claims++;
    const now = this.clock();
    const taken: Waiting[] = [];
    const passed: Waiting[] = [];
    while (taken.length < limit) {
      const top = this.pop();
      if (!top) break;
      passed.push(top);
      const l = this.leases.get(top.orgId);
      if (l && l.until > now) continue;
      taken.push(top);
    }
    // Claiming does not settle what is owed: every live entry goes back.
    for (const w of passed) this.push(w);
    for (const { orgId } of taken) this.lease(orgId, worker, now + this.leaseMs);
    return taken.map(({ orgId, at }) => {
      const chain = this.chains.get(orgId) as MemoryChain;
      return { orgId, plan: chain.plan, shipped: this.shipped.get(orgId) ?? EMPTY_HEAD, oldestAt: new Date(at) };
    });
  }

  async release(worker: string): Promise<void> {
    for (const org of this.leasesOf.get(worker) ?? []) this.leases.delete(org);
    this.leasesOf.delete(worker);
  }

  async read(orgId: string, after: number, limit: number): Promise<AuditRecord[]> {
    const records = this.chains.get(orgId)?.records ?? [];
    return records.slice(after, after + limit).filter((r) => r.seq > after);
  }

  async markShipped(orgId: string, head: ChainHead): Promise<void> {
    if ((this.shipped.get(orgId)?.seq ?? 0) < head.seq) {
      this.shipped.set(orgId, head);
      this.refresh(orgId);
    }
  }

  async backlog(): Promise<Backlog> {
    const top = this.pop();
    if (top) this.push(top);
    return {
      organisations: this.owedVersion.size,
      oldestAt: top ? new Date(top.at) : null,
      measuredAt: new Date(this.clock()),
    };
  }

  private lease(orgId: string, worker: string, until: number): void {
    const previous = this.leases.get(orgId);
    if (previous) this.leasesOf.get(previous.worker)?.delete(orgId);
    this.leases.set(orgId, { worker, until });
    let mine = this.leasesOf.get(worker);
    if (!mine) this.leasesOf.set(worker, (mine = new Set()));
    mine.add(orgId);
  }

  /** Recomputes whether `orgId` is owed and since when; a changed answer gets a new heap entry. */
  private refresh(orgId: string): void {
    const c = this.chains.get(orgId);
    const shipped = this.shipped.get(orgId) ?? EMPTY_HEAD;
    if (!c || c.records.length <= shipped.seq) {
      this.owedVersion.delete(orgId);
      return;
    }
    const version = ++this.versions;
    this.owedVersion.set(orgId, version);
    this.push({ orgId, at: c.recordedAt?.[shipped.seq] ?? 0, version });
  }

  private live(w: Waiting): boolean {
    return this.owedVersion.get(w.orgId) === w.version;
  }

  /** The earliest live entry, removed from the heap; stale entries met on the way are dropped. */
  private pop(): Waiting | undefined {
    for (;;) {
      const top = this.heap[0];
      if (!top) return undefined;
      const last = this.heap.pop() as Waiting;
      if (this.heap.length > 0) {
        this.heap[0] = last;
        this.down(0);
      }
      if (this.live(top)) return top;
    }
  }

  private push(w: Waiting): void {
    const h = this.heap;
    let i = h.push(w) - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!before(w, h[parent] as Waiting)) break;
      h[i] = h[parent] as Waiting;
      i = parent;
    }
    h[i] = w;
  }

  private down(i: number): void {
    const h = this.heap;
    const w = h[i] as Waiting;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= h.length) break;
      const r = l + 1;
      const child = r < h.length && before(h[r] as Waiting, h[l] as Waiting) ? r : l;
      if (!before(h[child] as Waiting, w)) break;
      h[i] = h[child] as Waiting;
      i = child;
    }
    h[i] = w;
  }
}
