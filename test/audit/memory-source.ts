/**
 * An in-memory `ShipperSource` with the semantics of migrations/0405's functions: organisations
 * with unshipped records leased longest-waiting first (by when their oldest unshipped record was
 * recorded, then id), live leases (the claimer's own included) skipped, releases by worker. Used
 * by the shipper's unit tests and by bench/audit-shipper.ts; the PostgreSQL functions themselves
 * are tested in test/audit/archive-fairness.test.ts.
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
