/**
 * The shipper's view of PostgreSQL: the owner-only `app.audit_archive_*` functions of migrations
 * 0100 and 0405, executed as the shipper's own login role (granted by name, never `bulwark_app`).
 */
import type { Pool } from 'pg';
import { PLANS, type Plan } from '../../contracts/plans';
import type { ChainHead } from './chain';
import { AUDIT_COLUMNS, rowToRecord } from './pg-sink';
import type { Backlog, PendingChain, ShipperSource } from './shipper';

export interface PgShipperSourceOptions {
  /**
   * How long a claimed chain stays leased to its worker when the worker never releases it (a crash):
   * at least the function's timeout. @default 900
   */
  readonly leaseSeconds?: number;
}

export class PgShipperSource implements ShipperSource {
  private readonly leaseSeconds: number;

  constructor(
    private readonly pool: Pick<Pool, 'query'>,
    options: PgShipperSourceOptions = {},
  ) {
    this.leaseSeconds = options.leaseSeconds ?? 900;
  }

  async claim(worker: string, limit: number): Promise<PendingChain[]> {
    const r = await this.pool.query('SELECT * FROM app.audit_archive_claim($1, $2, $3)', [
      worker,
      limit,
      this.leaseSeconds,
    ]);
    return r.rows.map((row: Record<string, unknown>) => {
      const plan = String(row['plan']);
      if (!(PLANS as string[]).includes(plan)) throw new Error(`organisation ${String(row['org_id'])}: unknown plan`);
      return {
        orgId: String(row['org_id']),
        plan: plan as Plan,
        shipped: { seq: Number(row['shipped_seq']), hash: String(row['shipped_hash']) },
        oldestAt: row['oldest_at'] as Date,
      };
    });
  }

  async release(worker: string): Promise<void> {
    await this.pool.query('SELECT app.audit_archive_release($1)', [worker]);
  }

  async read(orgId: string, afterSeq: number, limit: number) {
    const r = await this.pool.query(`SELECT ${AUDIT_COLUMNS} FROM app.audit_archive_read($1, $2, $3)`, [
      orgId,
      afterSeq,
      limit,
    ]);
    return r.rows.map(rowToRecord);
  }

  async markShipped(orgId: string, head: ChainHead): Promise<void> {
    await this.pool.query('SELECT app.audit_archive_mark($1, $2, $3)', [orgId, head.seq, head.hash]);
  }

  async backlog(): Promise<Backlog> {
    const r = await this.pool.query('SELECT organisations, oldest_at, measured_at FROM app.audit_archive_owed()');
    const row = r.rows[0] as { organisations: string; oldest_at: Date | null; measured_at: Date };
    return { organisations: Number(row.organisations), oldestAt: row.oldest_at, measuredAt: row.measured_at };
  }
}
