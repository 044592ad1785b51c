/**
 * The shipper's view of PostgreSQL: the owner-only `app.audit_archive_*` functions of migration
 * 0100, executed as the shipper's own login role (granted at provisioning, never `bulwark_app`).
 */
import type { Pool } from 'pg';
import { PLANS, type Plan } from '../../contracts/plans';
import type { ChainHead } from './chain';
import { AUDIT_COLUMNS, rowToRecord } from './pg-sink';
import type { PendingChain, ShipperSource } from './shipper';

export class PgShipperSource implements ShipperSource {
  constructor(
    private readonly pool: Pick<Pool, 'query'>,
    /** Organisations considered per run. @default 1000 */
    private readonly maxOrganisations = 1000,
  ) {}

  async pending(): Promise<PendingChain[]> {
    const r = await this.pool.query('SELECT * FROM app.audit_archive_pending($1)', [this.maxOrganisations]);
    return r.rows.map((row: Record<string, unknown>) => {
      const plan = String(row['plan']);
      if (!(PLANS as string[]).includes(plan)) throw new Error(`organisation ${String(row['org_id'])}: unknown plan`);
      return {
        orgId: String(row['org_id']),
        plan: plan as Plan,
        shipped: { seq: Number(row['shipped_seq']), hash: String(row['shipped_hash']) },
      };
    });
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
}
