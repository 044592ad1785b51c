/**
 * Side channels of a shared database (docs/tenancy.md "Threat model" and "Known limits"), tried as
 * each function's own role against a real PostgreSQL: what one role's session can do to other
 * roles' sessions, to its own role, and to another tenant's audit appends. What PostgreSQL cannot
 * prevent within one role is pinned here too, so a change in either direction is noticed.
 */
import { Client, type Pool } from 'pg';
import { DATABASE_ROLES, FUNCTION_ROLES, type FunctionRole } from '../../contracts/database';
import { PgAuditSink } from '../../lambda/audit/pg-sink';
import { createApi, type PooledClient } from '../../lambda/tenant-guard/api';
import type { TokenVerifier } from '../../lambda/tenant-guard/jwt';
import type { AuditEvent } from '../../lambda/shared/audit';
import { startPostgres, type TestPostgres } from '../support/postgres';
import { defined } from '../support/defined';
import { RecordingLog } from '../support/observability';
import { authenticateAs, buildWorld, proving, type World } from './fixtures';
import { proxyEvent, testIdentity } from './http';

let pg: TestPostgres;
let w: World;
const clients: Client[] = [];
beforeAll(async () => {
  pg = await startPostgres();
  w = await buildWorld(pg);
});
afterAll(async () => {
  await Promise.all(clients.map((c) => c.end().catch(() => undefined)));
  await pg?.stop();
});

async function as(role: FunctionRole): Promise<Client> {
  const c = await pg.client(role);
  clients.push(c);
  return c;
}

const outcome = (p: Promise<unknown>): Promise<string> =>
  p.then(
    () => 'ok',
    (e: { code?: string }) => e.code ?? 'error',
  );

/** Runs `sql` in a transaction that is rolled back (ALTER ROLE is transactional): what would happen. */
async function attempt(c: Client, sql: string, params: unknown[] = []): Promise<string> {
  await c.query('BEGIN');
  try {
    return await outcome(c.query(sql, params));
  } finally {
    await c.query('ROLLBACK');
  }
}

const OTHER = (role: FunctionRole): FunctionRole => defined(FUNCTION_ROLES.find((r) => r !== role));

describe.each(FUNCTION_ROLES)('%s', (role) => {
  it('cannot alter its own role’s attributes, nor any other role at all', async () => {
    const c = await as(role);
    const other = OTHER(role);
    for (const sql of [
      `ALTER ROLE ${role} SUPERUSER`,
      `ALTER ROLE ${role} BYPASSRLS`,
      `ALTER ROLE ${role} CREATEROLE`,
      `ALTER ROLE ${role} CREATEDB`,
      `ALTER ROLE ${role} REPLICATION`,
      `ALTER ROLE ${role} INHERIT`,
      `ALTER ROLE ${role} CONNECTION LIMIT 1`,
      `ALTER ROLE ${role} VALID UNTIL '2000-01-01'`,
      `ALTER ROLE ${other} RENAME TO bulwark_renamed`,
      `GRANT bulwark_migrator TO ${role}`,
      `GRANT ${other} TO ${role}`,
      `ALTER ROLE ${other} SET statement_timeout = '1ms'`,
      `ALTER ROLE ${other} RESET ALL`,
      `ALTER ROLE ${other} PASSWORD 'taken-over-password'`,
      'ALTER ROLE bulwark_migrator SET default_transaction_read_only = on',
      `ALTER DATABASE ${pg.database} SET default_transaction_read_only = on`,
    ]) {
      expect({ sql, e: await attempt(c, sql) }).toEqual({ sql, e: '42501' });
    }
  });

  it('Known limit, pinned: PostgreSQL lets a role change its own session defaults and password', async () => {
    // docs/tenancy.md "Known limits": no privilege withholds these from a role; on RDS,
    // rds.restrict_password_commands withholds the password change. Rolled back here.
    const c = await as(role);
    for (const sql of [
      `ALTER ROLE ${role} SET statement_timeout = 0`,
      `ALTER ROLE ${role} RESET ALL`,
      `ALTER ROLE ${role} PASSWORD 'rotated-by-itself'`,
    ]) {
      expect({ sql, e: await attempt(c, sql) }).toEqual({ sql, e: 'ok' });
    }
  });

  it('cannot create temporary objects', async () => {
    const c = await as(role);
    for (const sql of [
      'CREATE TEMP TABLE shadow (id uuid)',
      'CREATE TEMP VIEW shadow AS SELECT 1 AS x',
      'CREATE TEMP SEQUENCE shadow',
      'CREATE FUNCTION pg_temp.current_org_id() RETURNS uuid LANGUAGE sql AS $$ SELECT NULL::uuid $$',
    ]) {
      expect({ sql, e: await attempt(c, sql) }).toEqual({ sql, e: '42501' });
    }
  });

  it('sees no other role’s query text and cannot signal other roles’ backends', async () => {
    const c = await as(role);
    const marker = `side-channel-marker-${role}`;
    const victims: { role: string; pid: number }[] = [];
    for (const v of FUNCTION_ROLES.filter((r) => r !== role)) {
      const vc = await as(v);
      await vc.query(`SELECT '${marker}' AS secret`); // idle now: its last query stays in pg_stat_activity
      victims.push({
        role: v,
        pid: defined((await vc.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]).pid,
      });
    }
    const seen = await c.query<{ pid: number; query: string | null; usename: string | null }>(
      'SELECT pid, query, usename FROM pg_stat_activity WHERE pid = ANY ($1)',
      [victims.map((v) => v.pid)],
    );
    expect(seen.rows).toHaveLength(victims.length);
    for (const r of seen.rows)
      expect({ pid: r.pid, query: r.query }).toEqual({ pid: r.pid, query: '<insufficient privilege>' });
    expect(JSON.stringify((await c.query('SELECT * FROM pg_stat_activity')).rows)).not.toContain(marker);
    for (const v of victims) {
      for (const fn of ['pg_cancel_backend', 'pg_terminate_backend']) {
        expect({ fn, victim: v.role, e: await outcome(c.query(`SELECT ${fn}($1)`, [v.pid])) }).toEqual({
          fn,
          victim: v.role,
          e: '42501',
        });
      }
    }
  });

  it('has statement, lock, idle-in-transaction and transaction timeouts by default', async () => {
    const c = await as(role);
    const settings = await c.query<{ name: string; setting: string }>(
      `SELECT name, setting FROM pg_settings WHERE name IN
         ('statement_timeout', 'lock_timeout', 'idle_in_transaction_session_timeout', 'transaction_timeout') ORDER BY name`,
    );
    expect(settings.rows.map((s) => s.name)).toHaveLength(4);
    for (const s of settings.rows)
      expect({ name: s.name, positive: Number(s.setting) > 0 }).toEqual({ name: s.name, positive: true });
  });
});

describe('the per-organisation audit chain lock', () => {
  /** B's Owner appends through the sink on connections that give up on any lock wait after 1 s. */
  function victimSink(): { sink: PgAuditSink; pool: Pool } {
    const pool = pg.pool(DATABASE_ROLES.app, { options: '-c lock_timeout=1s -c statement_timeout=10s' });
    pool.on('error', () => undefined);
    return { sink: new PgAuditSink({ pool }), pool };
  }
  const event = (org: string, user: string, entityId: string): AuditEvent => ({
    orgId: org,
    actorType: 'user',
    actorUserId: user,
    actorEmail: null,
    event: 'lead.updated',
    entityType: 'lead',
    entityId,
    ip: null,
    userAgent: null,
    supportGrantId: null,
    metadata: {},
    occurredAt: new Date(),
  });
  const countOf = async (org: string, entityId: string): Promise<number> =>
    defined(
      (await pg.superuser('SELECT count(*)::int AS n FROM audit_log WHERE org_id = $1 AND entity_id = $2', [
        org,
        entityId,
      ])) as { n: number }[],
    )[0]?.n ?? 0;

  it.each(FUNCTION_ROLES)(
    'an attacker session of %s holding any advisory lock (the old chain key included) delays no other tenant’s append',
    async (role) => {
      const attacker = await as(role);
      const oldKey = "hashtextextended('bulwark.audit:' || $1, 0)";
      await attacker.query(`SELECT pg_advisory_lock(${oldKey}), pg_advisory_lock_shared(${oldKey} + 1)`, [w.storeB]);
      await attacker.query('BEGIN');
      await attacker.query(`SELECT pg_advisory_xact_lock(${oldKey})`, [w.storeA]);
      await attacker.query('SELECT pg_advisory_xact_lock(k) FROM generate_series(-50, 50) k');
      const { sink } = victimSink();
      const id = `advisory-${role}`;
      try {
        await proving(sink).record(event(w.storeB, w.ownerB, id));
        await proving(sink).record(event(w.storeA, w.ownerA, id));
      } finally {
        await attacker.query('ROLLBACK');
        await attacker.query('SELECT pg_advisory_unlock_all()');
      }
      expect([await countOf(w.storeB, id), await countOf(w.storeA, id)]).toEqual([1, 1]);
    },
  );

  it('the API role holds only its own tenant’s chain: B appends while A’s lock is held, A’s other writers wait', async () => {
    const attacker = await as(DATABASE_ROLES.app);
    await attacker.query('BEGIN');
    await authenticateAs(attacker, w.ownerA, w.storeA);
    await attacker.query('SELECT app.set_tenant_context($1, $2)', [w.ownerA, w.storeA]);
    // Link now instead of at COMMIT, then keep the transaction (and A's chain row) open.
    await attacker.query('SET CONSTRAINTS ALL IMMEDIATE');
    await attacker.query("SELECT app.append_audit_event($1, now(), 'lead.updated', 'lead', 'held', null, null, '{}')", [
      w.storeA,
    ]);
    const { sink } = victimSink();
    try {
      await proving(sink).record(event(w.storeB, w.ownerB, 'while-a-held'));
      // The lock is real: A's own next writer gives up after its 1 s lock_timeout (55P03).
      await expect(proving(sink).record(event(w.storeA, w.ownerA, 'while-a-held'))).rejects.toMatchObject({
        code: 'AUDIT_WRITE_FAILED',
        cause: { code: '55P03' },
      });
    } finally {
      await attacker.query('ROLLBACK');
    }
    expect([await countOf(w.storeB, 'while-a-held'), await countOf(w.storeA, 'while-a-held')]).toEqual([1, 0]);
  });
});

describe('secrets in query text', () => {
  it('a guarded request sends tickets and API key secrets only as bind parameters: a second session of the role finds neither', async () => {
    const id = await testIdentity(pg);
    const tickets: string[] = [];
    const verify: TokenVerifier = async (token) => {
      const v = await id.verify(token);
      if (v.ticket) tickets.push(v.ticket);
      return v;
    };
    const pool = pg.pool();
    pool.on('error', () => undefined);
    const observer = await as(DATABASE_ROLES.app);
    const texts: string[] = [];
    // After every statement of the request, the observer reads that backend's query text.
    const db = {
      connect: async (): Promise<PooledClient> => {
        const client = await pool.connect();
        const pid = defined((await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]).pid;
        return {
          query: async (sql: string, params?: unknown[]) => {
            try {
              return await client.query(sql, params);
            } finally {
              const r = await observer.query<{ query: string }>('SELECT query FROM pg_stat_activity WHERE pid = $1', [
                pid,
              ]);
              texts.push(defined(r.rows[0]).query);
            }
          },
          release: (err?: Error | boolean) => client.release(err),
        } as PooledClient;
      },
    };
    const api = createApi({ db, verify, audit: new PgAuditSink({ pool }), logger: new RecordingLog() });
    const call = async (method: string, path: string, auth: string, body?: unknown) => {
      const r = await api(proxyEvent(method, path, { auth, body }));
      return { status: r.statusCode, body: JSON.parse(r.body) as Record<string, unknown> };
    };
    const bearer = `Bearer ${await id.token(w.ownerA, w.storeA)}`;
    const minted = await call('POST', '/api-keys', bearer, { name: 'observer', permissions: ['leads:view'] });
    expect(minted.status).toBe(201);
    const key = String(minted.body['key']);
    expect((await call('GET', '/leads', bearer)).status).toBe(200);
    expect((await call('GET', '/leads', `ApiKey ${key}`)).status).toBe(200);

    const secret = defined(/^bwk_[0-9a-f]{32}_(.+)$/.exec(key))[1];
    expect(tickets.length).toBeGreaterThan(0);
    // The observer really sees this role's query text: the gate call is there, its argument is not.
    expect(texts.some((t) => t.includes('app.enter_tenant($1, $2, $3)'))).toBe(true);
    const all = texts.join('\n');
    for (const t of tickets) expect(all).not.toContain(t.split('.')[3]);
    expect(all).not.toContain(defined(secret));
  });
});
