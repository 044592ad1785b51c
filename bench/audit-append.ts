/**
 * Audit append throughput (`npx tsx bench/audit-append.ts [seconds] [--durable] [--gap-ms N]`).
 *
 * 16 writers, each on its own connection as the tenant API's role, each transaction the API's:
 * BEGIN; app.authenticate(ticket); app.set_tenant_context; app.append_audit_event; COMMIT.
 *   - one organisation: all 16 writers append to the same chain (the per-organisation ceiling);
 *   - 16 organisations: one writer each (no chain contention);
 *   - the gate alone (same transactions without the append), for what the append itself costs.
 * `--gap-ms N` waits N ms between the append and COMMIT, as a request that records its event and then
 * does more work (or a 1 ms network round trip to RDS) would: the chain lock is taken at COMMIT, so
 * the gap should not lower the one-organisation figure. `--durable` runs with fsync and
 * synchronous_commit on (the test server's defaults are off), which is what a chain's lock hold
 * includes in production: the commit's WAL flush.
 */
import { Pool, type PoolClient } from 'pg';
import { issueTicket } from '../lambda/tenant-guard/ticket';
import { startPostgres, TEST_GATE_KEY } from '../test/support/postgres';
import { defined } from '../test/support/defined';

const args = process.argv.slice(2);
const gapAt = args.indexOf('--gap-ms');
const GAP_MS = gapAt >= 0 ? Number(args[gapAt + 1]) : 0;
const SECONDS = Number(args.find((a, i) => /^\d+$/.test(a) && i !== gapAt + 1) ?? 10);
const DURABLE = args.includes('--durable');
const WRITERS = 16;

interface Tenant {
  readonly org: string;
  readonly user: string;
  readonly subject: string;
  readonly email: string;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function main(): Promise<void> {
  const settings: Record<string, string> = DURABLE ? { fsync: 'on', synchronous_commit: 'on' } : {};
  const pg = await startPostgres({ settings, ownServer: true });
  try {
    await pg.superuser(
      `INSERT INTO users (subject, email) SELECT 'bench-' || g, 'u' || g || '@example.test' FROM generate_series(1, $1) g`,
      [WRITERS],
    );
    await pg.superuser(
      `INSERT INTO organisations (kind, name, plan) SELECT 'store', 'Store ' || g, 'business' FROM generate_series(1, $1) g`,
      [WRITERS],
    );
    await pg.superuser(`INSERT INTO memberships (org_id, user_id, role)
                        SELECT o.id, u.id, 'owner'
                          FROM (SELECT id, row_number() OVER (ORDER BY id) n FROM organisations) o
                          JOIN (SELECT id, row_number() OVER (ORDER BY id) n FROM users) u USING (n)`);
    const tenants = (
      (await pg.superuser(
        'SELECT m.org_id, m.user_id, u.subject, u.email FROM memberships m JOIN users u ON u.id = m.user_id ORDER BY 1',
      )) as { org_id: string; user_id: string; subject: string; email: string }[]
    ).map((r): Tenant => ({ org: r.org_id, user: r.user_id, subject: r.subject, email: r.email }));

    const pool: Pool = pg.pool(undefined, { max: WRITERS });
    pool.on('error', () => undefined);
    const clients: PoolClient[] = await Promise.all(Array.from({ length: WRITERS }, () => pool.connect()));

    const transaction = async (c: PoolClient, t: Tenant, append: boolean, n: number): Promise<void> => {
      const now = Date.now() / 1000;
      const ticket = issueTicket(
        TEST_GATE_KEY,
        { subject: t.subject, email: t.email, orgId: t.org, notAfter: now + 300 },
        now,
      );
      await c.query('BEGIN');
      await c.query('SELECT app.authenticate($1)', [ticket]);
      await c.query('SELECT app.set_tenant_context($1, $2)', [t.user, t.org]);
      if (append) {
        await c.query('SELECT app.append_audit_event($1, $2, $3, $4, $5, $6, $7, $8)', [
          t.org,
          new Date(),
          'lead.updated',
          'lead',
          `lead-${n}`,
          '203.0.113.9',
          'bench/1',
          JSON.stringify({ field: 'status', from: 'new', to: 'contacted', n }),
        ]);
      }
      if (GAP_MS > 0) await sleep(GAP_MS);
      await c.query('COMMIT');
    };

    /** Runs the writers for SECONDS; writer i works for tenantOf(i). Returns transactions per second. */
    const run = async (tenantOf: (i: number) => Tenant, append: boolean): Promise<number> => {
      const until = Date.now() + SECONDS * 1000;
      const counts = await Promise.all(
        clients.map(async (c, i) => {
          let n = 0;
          while (Date.now() < until) await transaction(c, tenantOf(i), append, n++);
          return n;
        }),
      );
      return counts.reduce((a, b) => a + b, 0) / SECONDS;
    };

    /**
     * One writer, no contention: the COMMIT that links a queued event holds the organisation's chain
     * row from the trigger's lock to the end of the commit (WAL flush included), so its latency
     * bounds the lock hold from above, and 1 / hold bounds the per-organisation ceiling from below.
     */
    const commitLatency = async (append: boolean): Promise<number> => {
      const c = defined(clients[0]);
      const t = defined(tenants[1]);
      const samples: number[] = [];
      for (let i = 0; i < 300; i++) {
        const now = Date.now() / 1000;
        const ticket = issueTicket(
          TEST_GATE_KEY,
          { subject: t.subject, email: t.email, orgId: t.org, notAfter: now + 300 },
          now,
        );
        await c.query('BEGIN');
        await c.query('SELECT app.authenticate($1)', [ticket]);
        await c.query('SELECT app.set_tenant_context($1, $2)', [t.user, t.org]);
        if (append) {
          await c.query("SELECT app.append_audit_event($1, now(), 'lead.updated', 'lead', $2, null, null, '{}')", [
            t.org,
            `hold-${i}`,
          ]);
        }
        const start = process.hrtime.bigint();
        await c.query('COMMIT');
        samples.push(Number(process.hrtime.bigint() - start) / 1e6);
      }
      samples.sort((a, b) => a - b);
      return defined(samples[Math.floor(samples.length / 2)]);
    };

    const one = defined(tenants[0]);
    // Warm up plans and caches on every connection.
    await Promise.all(clients.map((c, i) => transaction(c, defined(tenants[i]), true, -1)));

    const gate = await run((i) => defined(tenants[i]), false);
    const spread = await run((i) => defined(tenants[i]), true);
    const single = await run(() => one, true);

    const chain = (await pg.superuser(
      'SELECT count(*)::int AS n, max(seq)::int AS head FROM audit_log WHERE org_id = $1',
      [one.org],
    )) as { n: number; head: number }[];
    if (defined(chain[0]).n !== defined(chain[0]).head) throw new Error('the chain has a gap');

    console.log(
      `audit append throughput, ${WRITERS} writers, ${SECONDS} s each, ${DURABLE ? 'fsync + synchronous_commit on' : 'fsync off (test server)'}` +
        `${GAP_MS > 0 ? `, ${GAP_MS} ms between append and COMMIT` : ''}`,
    );
    console.log(`gate only (no append), 16 organisations: ${gate.toFixed(0)} transactions/s`);
    console.log(`16 organisations, one writer each:     ${spread.toFixed(0)} events/s`);
    console.log(
      `1 organisation, 16 writers:            ${single.toFixed(0)} events/s (${((single / spread) * 100).toFixed(0)} % of 16 organisations)`,
    );
    const hold = await commitLatency(true);
    const plain = await commitLatency(false);
    console.log(
      `COMMIT latency, one writer: ${hold.toFixed(3)} ms linking one event vs ${plain.toFixed(3)} ms without; ` +
        `chain lock held <= ${hold.toFixed(3)} ms per event: per-organisation ceiling >= ${(1000 / hold).toFixed(0)} events/s on this server`,
    );
    clients.forEach((c) => c.release());
  } finally {
    await pg.stop();
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
