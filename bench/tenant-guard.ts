/**
 * Tenant guard benchmark (`npx tsx bench/tenant-guard.ts [rows] [tenants]`).
 *
 * 1. RLS cost: a tenant-scoped query under RLS (application role, verified context) against the
 *    same query with an explicit `WHERE org_id = ...` and RLS bypassed, on >= 1,000,000 rows
 *    across 1,000 tenants. Target: within 1.2x.
 * 2. The gate's server time (track_functions): app.enter_tenant (one statement) against the
 *    two-statement path (app.authenticate, then app.set_tenant_context), apart from the network.
 * 3. A guarded read through the tenant API (GET /leads on a pipelining pool, as the handler builds
 *    it): round trips and statements counted on the socket (test/support/wire.ts), p50/p99 against
 *    the same query sent bare, and whether the read wrote anything or took a transaction id.
 */
import type { APIGatewayProxyEvent } from 'aws-lambda';
import { createLocalJWKSet, exportJWK, generateKeyPair, SignJWT } from 'jose';
import { Client } from 'pg';
import { createApi, type PooledClient } from '../lambda/tenant-guard/api';
import { createVerifier, type TokenVerifier } from '../lambda/tenant-guard/jwt';
import { issueTicket } from '../lambda/tenant-guard/ticket';
import { startPostgres, TEST_GATE_KEY } from '../test/support/postgres';
import { defined } from '../test/support/defined';
import { countWire } from '../test/support/wire';

const ROWS = Number(process.argv[2] ?? 1_000_000);
const TENANTS = Number(process.argv[3] ?? 1_000);
const ITERATIONS = 400;

function stats(samples: number[]): { median: number; p95: number; p99: number; mean: number } {
  const s = [...samples].sort((a, b) => a - b);
  const at = (q: number): number => defined(s[Math.min(s.length - 1, Math.floor(q * s.length))]);
  return { median: at(0.5), p95: at(0.95), p99: at(0.99), mean: s.reduce((a, b) => a + b, 0) / s.length };
}

async function time(fn: () => Promise<unknown>): Promise<number> {
  const t = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - t) / 1e6;
}

const fmt = (ms: number): string => `${ms.toFixed(3)} ms`;

async function main(): Promise<void> {
  // No autovacuum: the tables are vacuumed and analysed once after seeding, and nothing else takes transaction ids.
  const pg = await startPostgres({ settings: { shared_buffers: '256MB', track_functions: 'all', autovacuum: 'off' } });
  try {
    console.log(`seeding ${TENANTS} tenants, ${ROWS} leads ...`);
    await pg.superuser(
      `INSERT INTO users (subject, email) SELECT 'bench-' || g, 'u' || g || '@example.test'
                        FROM generate_series(1, $1) g`,
      [TENANTS],
    );
    await pg.superuser(
      `INSERT INTO organisations (kind, name, plan) SELECT 'store', 'Store ' || g, 'business'
                        FROM generate_series(1, $1) g`,
      [TENANTS],
    );
    await pg.superuser(`INSERT INTO memberships (org_id, user_id, role)
                        SELECT o.id, u.id, 'owner'
                          FROM (SELECT id, row_number() OVER (ORDER BY id) n FROM organisations) o
                          JOIN (SELECT id, row_number() OVER (ORDER BY id) n FROM users) u USING (n)`);
    await pg.superuser(
      `INSERT INTO leads (org_id, name, status, source, created_at)
                        SELECT o.id, 'Lead ' || g, (ARRAY['new','contacted','qualified','won','lost'])[1 + g % 5],
                               'web', now() - make_interval(secs => g)
                          FROM generate_series(1, $1) g
                          JOIN (SELECT id, row_number() OVER (ORDER BY id) - 1 AS n FROM organisations) o
                            ON o.n = g % $2`,
      [ROWS, TENANTS],
    );
    await pg.superuser('VACUUM ANALYZE');
    const pairs = (await pg.superuser(
      `SELECT m.org_id, m.user_id, u.subject, u.email FROM memberships m JOIN users u ON u.id = m.user_id`,
    )) as { org_id: string; user_id: string; subject: string; email: string }[];
    const total = (await pg.superuser('SELECT count(*)::int AS n FROM leads')) as { n: number }[];
    console.log(`rows: ${defined(total[0]).n}, tenants: ${pairs.length}`);

    const app = await pg.client();
    const bypass = new Client({
      host: '127.0.0.1',
      port: pg.port,
      user: 'postgres',
      password: 'test-only-password',
      database: pg.database,
    });
    await bypass.connect();
    const pick = (i: number) => defined(pairs[(i * 7919) % pairs.length]);
    /** The gate ticket the authorizer would sign for a tenant's Owner (test gate key). */
    const ticket = (t: (typeof pairs)[number]) =>
      issueTicket(
        TEST_GATE_KEY,
        { subject: t.subject, email: t.email, orgId: t.org_id, notAfter: Date.now() / 1000 + 300 },
        Date.now() / 1000,
      );
    /** Proves the user and enters: one statement. */
    const enter = async (t: (typeof pairs)[number]) => {
      await app.query('SELECT 1 FROM app.enter_tenant($1, $2, NULL)', [ticket(t), t.org_id]);
    };

    const queries = {
      'latest 50 leads': {
        rls: 'SELECT id, name, status, created_at FROM leads ORDER BY created_at DESC LIMIT 50',
        explicit: 'SELECT id, name, status, created_at FROM leads WHERE org_id = $1 ORDER BY created_at DESC LIMIT 50',
      },
      'count by status': {
        rls: 'SELECT status, count(*) FROM leads GROUP BY status',
        explicit: 'SELECT status, count(*) FROM leads WHERE org_id = $1 GROUP BY status',
      },
    } as const;

    console.log('\n== RLS-scoped query vs explicit WHERE org_id (RLS bypassed), per query execution ==');
    for (const [name, q] of Object.entries(queries)) {
      const rls: number[] = [];
      const explicit: number[] = [];
      for (let i = 0; i < ITERATIONS + 20; i++) {
        const t = pick(i);
        await app.query('BEGIN');
        await enter(t);
        const a = await time(() => app.query(q.rls));
        await app.query('COMMIT');
        const b = await time(() => bypass.query(q.explicit, [t.org_id]));
        if (i >= 20) {
          rls.push(a);
          explicit.push(b);
        }
      }
      const r = stats(rls);
      const e = stats(explicit);
      console.log(
        `${name.padEnd(18)} RLS median ${fmt(r.median)} p95 ${fmt(r.p95)} | explicit median ${fmt(e.median)} p95 ${fmt(e.p95)} | ratio (median) ${(r.median / e.median).toFixed(2)}x ${r.median / e.median <= 1.2 ? '(within 1.2x)' : '(ABOVE 1.2x target)'}`,
      );
    }
    const plan = await (async () => {
      const t = pick(1);
      await app.query('BEGIN');
      await enter(t);
      const p = await app.query(`EXPLAIN (COSTS OFF) ${queries['latest 50 leads'].rls}`);
      await app.query('ROLLBACK');
      return p.rows.map((r) => String(r['QUERY PLAN'])).join('\n  ');
    })();
    console.log(`plan under RLS:\n  ${plan}`);

    console.log("\n== The gate's server time (track_functions) ==");
    await pg.superuser('SELECT pg_stat_reset()');
    for (let i = 0; i < ITERATIONS; i++) {
      const t = pick(i);
      const proof = ticket(t);
      await app.query('BEGIN');
      await app.query('SELECT 1 FROM app.enter_tenant($1, $2, NULL)', [proof, t.org_id]);
      await app.query('COMMIT');
      await app.query('BEGIN');
      await app.query('SELECT 1 FROM app.authenticate($1)', [proof]);
      await app.query('SELECT 1 FROM app.set_tenant_context($1, $2)', [t.user_id, t.org_id]);
      await app.query('COMMIT');
    }
    await app.query('SELECT pg_stat_force_next_flush()').catch(() => undefined);
    await app.query('SELECT 1');
    const server = (await pg.superuser(
      `SELECT funcname AS fn, calls, total_time / calls AS ms FROM pg_stat_user_functions
        WHERE schemaname = 'app' AND funcname IN ('enter_tenant', 'authenticate', 'set_tenant_context') ORDER BY 1`,
    )) as { fn: string; calls: number; ms: number }[];
    const ms = (fn: string): number => server.find((f) => f.fn === fn)?.ms ?? NaN;
    for (const f of server) console.log(`server time app.${f.fn.padEnd(20)} ${fmt(f.ms)} per call (${f.calls} calls)`);
    console.log(
      `entering a tenant: ${fmt(ms('enter_tenant'))} in one statement vs ${fmt(ms('authenticate') + ms('set_tenant_context'))} in two`,
    );

    const { publicKey, privateKey } = await generateKeyPair('RS256');
    const jwk = { ...(await exportJWK(publicKey)), kid: 'b', alg: 'RS256' };
    const issuer = 'https://issuer.example';
    const jwtVerify = createVerifier({ issuer, audience: 'bench', keys: createLocalJWKSet({ keys: [jwk] }) });
    // What the authorizer hands on: the verified identity with its gate ticket (signing included).
    const verify: TokenVerifier = async (token) => {
      const id = await jwtVerify(token);
      const now = Date.now() / 1000;
      const signed = issueTicket(
        TEST_GATE_KEY,
        { subject: id.subject, email: id.email, orgId: id.orgId, notAfter: id.expiresAt },
        now,
      );
      return { ...id, ticket: signed };
    };
    const tokens = await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        new SignJWT({ 'custom:org_id': pick(i).org_id, email: pick(i).email })
          .setProtectedHeader({ alg: 'RS256', kid: 'b' })
          .setSubject(pick(i).subject)
          .setIssuer(issuer)
          .setAudience('bench')
          .setExpirationTime('1h')
          .sign(privateKey),
      ),
    );
    const jwt: number[] = [];
    for (let i = 0; i < ITERATIONS; i++) jwt.push(await time(() => verify(defined(tokens[i % tokens.length]))));
    console.log(`JWT verification (RS256, cached JWKS) + ticket signing median ${fmt(stats(jwt).median)}`);

    // The handler's pool: pipelining, one connection (a Lambda environment serves one request at a time).
    const pool = pg.pool(undefined, { max: 1, pipeline: true });
    pool.on('error', () => undefined); // idle client terminated at shutdown
    let wire = { roundTrips: 0, statements: 0 };
    const counted = {
      connect: async () => {
        const c = await pool.connect();
        const counter = countWire(c);
        counter.reset();
        return {
          query: (sql: string, params?: unknown[]) => c.query(sql, params),
          release: (err?: Error | boolean) => {
            wire = counter.count();
            c.release(err);
          },
        } as PooledClient;
      },
    };
    const api = createApi({
      db: counted,
      verify,
      audit: { record: async () => undefined },
      logger: { error: (m) => console.error(m), warn: () => undefined },
    });
    const guarded: number[] = [];
    const bare: number[] = [];
    const trips = new Set<number>();
    const statements = new Set<number>();
    const LEADS =
      'SELECT id, org_id, name, email, phone, source, status, notes, created_at, updated_at FROM leads WHERE org_id = $1 ORDER BY created_at DESC, id LIMIT 100';
    const xmax = async () =>
      Number(
        ((await pg.superuser('SELECT pg_snapshot_xmax(pg_current_snapshot())::text AS x')) as { x: string }[])[0]?.x,
      );
    const xmaxBefore = await xmax();
    for (let i = 0; i < ITERATIONS + 20; i++) {
      const t = pick(i % tokens.length);
      const event = {
        httpMethod: 'GET',
        path: '/leads',
        headers: { Authorization: `Bearer ${tokens[i % tokens.length]}` },
        body: null,
        requestContext: { identity: { sourceIp: '127.0.0.1' } },
      } as unknown as APIGatewayProxyEvent;
      const g = await time(async () => {
        const r = await api(event);
        if (r.statusCode !== 200) throw new Error(`unexpected ${r.statusCode} ${r.body}`);
      });
      trips.add(wire.roundTrips);
      statements.add(wire.statements);
      // The same query, sent bare: one statement, one round trip, RLS bypassed.
      const b = await time(() => bypass.query(LEADS, [t.org_id]));
      if (i >= 20) {
        guarded.push(g);
        bare.push(b);
      }
    }
    const xids = (await xmax()) - xmaxBefore;
    // What a guarded read writes, by the server's own count inside the transaction.
    await app.query('BEGIN');
    const w0 = await app.query<{ n: number }>(
      'SELECT coalesce(sum(n_tup_ins + n_tup_upd + n_tup_del), 0)::int AS n FROM pg_stat_xact_all_tables',
    );
    await app.query('SELECT 1 FROM app.enter_tenant($1, $2, NULL)', [ticket(pick(1)), pick(1).org_id]);
    await app.query(queries['latest 50 leads'].rls);
    const w1 = await app.query<{ n: number; xid: string | null }>(
      `SELECT coalesce(sum(n_tup_ins + n_tup_upd + n_tup_del), 0)::int AS n,
              pg_current_xact_id_if_assigned()::text AS xid FROM pg_stat_xact_all_tables`,
    );
    await app.query('COMMIT');
    console.log('\n== A guarded read through the tenant API (GET /leads, pipelining pool) ==');
    console.log(
      `round trips per guarded read (counted on the socket): ${[...trips].join(', ')}; statements (Sync/Query messages): ${[...statements].join(', ')}`,
    );
    const gs = stats(guarded);
    const bs = stats(bare);
    console.log(
      `guarded read p50 ${fmt(gs.median)} p99 ${fmt(gs.p99)} | bare query p50 ${fmt(bs.median)} p99 ${fmt(bs.p99)} | gate overhead p50 ${fmt(gs.median - bs.median)}`,
    );
    console.log(
      `transaction ids consumed by ${ITERATIONS + 20} guarded reads: ${xids}; rows one guarded read wrote: ${defined(w1.rows[0]).n - defined(w0.rows[0]).n} (xid ${defined(w1.rows[0]).xid ?? 'none'})`,
    );
    await app.end();
    await bypass.end();
  } finally {
    await pg.stop();
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
