/**
 * What one archive claim costs in PostgreSQL 17 at 10,000 and 100,000 organisations
 * (`npx tsx bench/audit-claim.ts [--orgs 10000,100000] [--repeat 10]`; docs/audit.md "What
 * breaks first beyond that").
 *
 * Runs `app.audit_archive_claim(worker, 500, 900)` and `app.audit_archive_owed()` of migration 0405
 * as the shipper's own role (`bulwark_audit_shipper`) on the test server (test/support/postgres.ts,
 * fsync off), with every organisation holding 3 audit records:
 *   - every organisation owed (the first archive run after an outage, or the first deployment);
 *   - 1 % owed (steady state: the archive keeps up, a few organisations wrote since the last run).
 * Successive claims are by different workers and keep their leases, so each takes the next 500.
 *
 * It also times the claim's read alone (the backlog, minus live leases, ordered, first 500) and, for
 * the fix docs/audit.md proposes (a per-organisation "pending since" kept by the append), the same
 * read against a scratch table of that shape, built by this bench only
 * (no migration): `(org_id, pending_since)` with an index on `(pending_since, org_id)`, the same
 * lease anti-join, ordering and limit.
 */
import type { Pool } from 'pg';
import { DATABASE_ROLES } from '../contracts/database';
import { startPostgres, type TestPostgres } from '../test/support/postgres';

const arg = (name: string, fallback: string): string => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? (process.argv[i + 1] ?? fallback) : fallback;
};
const ORG_COUNTS = arg('orgs', '10000,100000').split(',').map(Number);
const REPEAT = Number(arg('repeat', '10'));
const RECORDS = 3;
const CLAIM = 500;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
}

async function timed(fn: () => Promise<unknown>): Promise<number> {
  const t = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - t) / 1e6;
}

async function seed(pg: TestPostgres, orgs: number): Promise<void> {
  await pg.superuser('TRUNCATE app.audit_archive_lease, app.audit_archive_state');
  await pg.superuser('ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_truncate');
  await pg.superuser('TRUNCATE audit_log');
  await pg.superuser('ALTER TABLE audit_log ENABLE TRIGGER audit_log_no_truncate');
  await pg.superuser("DELETE FROM organisations WHERE name LIKE 'claim-bench-%'");
  await pg.superuser(
    `INSERT INTO organisations (kind, name, plan) SELECT 'store', 'claim-bench-' || g, 'pro' FROM generate_series(1, $1) g`,
    [orgs],
  );
  // As the superuser the link trigger leaves rows alone (no tenant context): the hashes are
  // well-formed placeholders; the claim never reads them. Recorded over the last hour.
  await pg.superuser(
    `INSERT INTO audit_log (org_id, seq, occurred_at, actor_type, event, prev_hash, hash, recorded_at)
     SELECT o.id, s, now(), 'system', 'lead.updated', md5(o.id::text || (s - 1)) || md5((s - 1) || o.id::text),
            md5(o.id::text || s) || md5(s || o.id::text), now() - (random() * interval '1 hour')
       FROM organisations o CROSS JOIN generate_series(1, $1) s
      WHERE o.name LIKE 'claim-bench-%'`,
    [RECORDS],
  );
  await pg.superuser('VACUUM ANALYZE organisations, audit_log, app.audit_archive_state, app.audit_archive_lease');
}

/** Marks all but `owedShare` of the organisations as archived up to their last record. */
async function archiveAllBut(pg: TestPostgres, owedShare: number): Promise<number> {
  await pg.superuser('TRUNCATE app.audit_archive_lease, app.audit_archive_state');
  await pg.superuser(
    `INSERT INTO app.audit_archive_state (org_id, shipped_seq, shipped_hash)
     SELECT a.org_id, a.seq, a.hash FROM audit_log a
      WHERE a.seq = $1 AND abs(hashtext(a.org_id::text)) % 10000 >= $2`,
    [RECORDS, Math.round(owedShare * 10_000)],
  );
  await pg.superuser('VACUUM ANALYZE app.audit_archive_state');
  const [row] = (await pg.superuser('SELECT count(*)::int AS n FROM app.audit_archive_backlog()')) as { n: number }[];
  return row?.n ?? 0;
}

/** The proposed shape, on a scratch table: what a claim would read with "pending since" kept per organisation. */
async function pendingSince(pg: TestPostgres): Promise<void> {
  await pg.superuser('DROP TABLE IF EXISTS bench_pending');
  await pg.superuser(`CREATE TABLE bench_pending AS
    SELECT b.org_id, b.plan, b.shipped_seq, b.shipped_hash, b.oldest_at AS pending_since FROM app.audit_archive_backlog() b`);
  await pg.superuser('ALTER TABLE bench_pending ADD PRIMARY KEY (org_id)');
  await pg.superuser('CREATE INDEX ON bench_pending (pending_since, org_id)');
  await pg.superuser('VACUUM ANALYZE bench_pending');
}

async function claims(pool: Pool, label: string): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < REPEAT; i++) {
    let n = 0;
    out.push(
      await timed(async () => {
        n =
          (await pool.query('SELECT * FROM app.audit_archive_claim($1, $2, 900)', [`${label}-${i}`, CLAIM])).rowCount ??
          0;
      }),
    );
    if (n === 0) break;
  }
  return out;
}

async function main(): Promise<void> {
  const pg = await startPostgres({ ownServer: true });
  try {
    const shipper = pg.pool(DATABASE_ROLES.auditShipper, { max: 1 });
    console.log(
      `archive claim on PostgreSQL 17 (test server, fsync off), as ${DATABASE_ROLES.auditShipper}; ` +
        `${RECORDS} records per organisation; claim of ${CLAIM}, median of up to ${REPEAT} successive claims (each leasing the next ${CLAIM})`,
    );
    console.log(
      '| organisations | owed | claim of 500 (ms) | owed() (ms) | claim\'s read of 500 (ms) | same read, "pending since" (ms) |',
    );
    console.log('| ---: | ---: | ---: | ---: | ---: | ---: |');
    for (const orgs of ORG_COUNTS) {
      await seed(pg, orgs);
      for (const share of [1, 0.01]) {
        const owed = await archiveAllBut(pg, share);
        const owedMs: number[] = [];
        for (let i = 0; i < REPEAT; i++) {
          owedMs.push(await timed(() => shipper.query('SELECT * FROM app.audit_archive_owed()')));
        }
        // The claim's read alone, today and as proposed, on the same state with no leases yet (both
        // read the same 500), through the same connection pool.
        await pendingSince(pg);
        const read = async (sql: string): Promise<number[]> => {
          const out: number[] = [];
          for (let i = 0; i < REPEAT; i++) out.push(await timed(() => pg.superuser(sql, [CLAIM])));
          return out;
        };
        const current = await read(`SELECT b.* FROM app.audit_archive_backlog() b
                   LEFT JOIN app.audit_archive_lease l ON l.org_id = b.org_id
                  WHERE l.org_id IS NULL OR l.leased_until <= now()
                  ORDER BY b.oldest_at, b.org_id LIMIT $1`);
        const indexed = await read(`SELECT p.* FROM bench_pending p
                   LEFT JOIN app.audit_archive_lease l ON l.org_id = p.org_id
                  WHERE l.org_id IS NULL OR l.leased_until <= now()
                  ORDER BY p.pending_since, p.org_id LIMIT $1`);
        const claimMs = await claims(shipper, `bench-${orgs}-${share}`);
        console.log(
          `| ${orgs.toLocaleString('en')} | ${owed.toLocaleString('en')} | ${median(claimMs).toFixed(1)} | ` +
            `${median(owedMs).toFixed(1)} | ${median(current).toFixed(1)} | ${median(indexed).toFixed(2)} |`,
        );
      }
    }
    const [plan] = (await pg.superuser(
      `EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) SELECT * FROM app.audit_archive_backlog() b ORDER BY b.oldest_at, b.org_id LIMIT 500`,
    )) as { 'QUERY PLAN': { 'Execution Time': number }[] }[];
    console.log(
      `\nbacklog scan, ordered, first 500 (EXPLAIN ANALYZE, last state): ${plan?.['QUERY PLAN'][0]?.['Execution Time'].toFixed(1)} ms`,
    );
  } finally {
    await pg.stop();
  }
}

void main();
