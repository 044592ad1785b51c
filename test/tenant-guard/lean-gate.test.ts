/**
 * The lean gate of migrations/0407: one statement proves the caller and enters the tenant, a read
 * request writes nothing and consumes no transaction id, and a guarded read through the API is two
 * round trips (counted on the socket). The sealed context is attacked as docs/tenancy.md "Threat
 * model" says: forged, tampered, replayed into a later transaction or another backend, set at
 * session level, resurrected after a savepoint rollback. Real PostgreSQL, as the API's own role.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { Client, Pool } from 'pg';
import type { AuditEvent, AuditSink } from '../../lambda/shared/audit';
import { createApi, type PooledClient } from '../../lambda/tenant-guard/api';
import { ROUTES } from '../../lambda/tenant-guard/routes';
import { startPostgres, type TestPostgres } from '../support/postgres';
import { RecordingLog } from '../support/observability';
import { defined } from '../support/defined';
import { countWire, type WireCount } from '../support/wire';
import { buildWorld, createUser, ticketFor, type World } from './fixtures';
import { proxyEvent, testIdentity, type TestIdentity } from './http';

const ENTER = 'SELECT * FROM app.enter_tenant($1, $2, $3)';

describe('lean gate', () => {
  let pg: TestPostgres;
  let w: World;
  let c: Client;
  let other: Client;
  let leadA: string;
  let apiKey: { id: string; proof: string };

  /** Rows written (inserted, updated, deleted) in every table, by the server's count for this backend. */
  const written = async (): Promise<number> =>
    Number(
      defined(
        (
          await c.query<{ n: string }>(
            'SELECT coalesce(sum(n_tup_ins + n_tup_upd + n_tup_del), 0)::text AS n FROM pg_stat_xact_all_tables',
          )
        ).rows[0],
      ).n,
    );
  /**
   * What `fn` (run inside the open transaction) wrote, and whether the transaction holds an id. The
   * counts are taken before and after: the server's per-transaction view also holds counts of
   * earlier transactions it has not flushed yet.
   */
  const footprint = async (fn: () => Promise<unknown>) => {
    const before = await written();
    await fn();
    const writes = (await written()) - before;
    const xid = defined(
      (await c.query<{ x: string | null }>('SELECT pg_current_xact_id_if_assigned()::text AS x')).rows[0],
    ).x;
    return { xid, writes };
  };
  const visibleLeadOrgs = async (on: Client = c): Promise<string[]> =>
    (await on.query<{ org_id: string }>('SELECT DISTINCT org_id FROM leads ORDER BY 1')).rows.map((r) => r.org_id);
  const setting = async (name: string, on: Client = c): Promise<string> =>
    defined((await on.query<{ v: string | null }>('SELECT current_setting($1, true) AS v', [name])).rows[0]).v ?? '';
  const code = (p: Promise<unknown>): Promise<string | null> =>
    p.then(
      () => null,
      (e: { code?: string }) => e.code ?? 'no code',
    );

  beforeAll(async () => {
    pg = await startPostgres();
    w = await buildWorld(pg);
    c = await pg.client();
    other = await pg.client();
    for (const org of [w.storeA, w.storeB]) {
      await pg.superuser(
        "INSERT INTO leads (org_id, name, status, source) SELECT $1, 'Lead ' || g, 'new', 'web' FROM generate_series(1, 3) g",
        [org],
      );
    }
    leadA = defined(
      ((await pg.superuser('SELECT id FROM leads WHERE org_id = $1 LIMIT 1', [w.storeA])) as { id: string }[])[0],
    ).id;
    // An API key of store A's Owner, minted in a verified context as the API mints it.
    const secret = randomBytes(32).toString('base64url');
    await c.query('BEGIN');
    await c.query(ENTER, [ticketFor(w.ownerA, w.storeA), null, null]);
    const key = await c.query<{ id: string }>(
      "INSERT INTO api_keys (org_id, name, secret_hash, permissions) VALUES ($1, 'lean', $2, ARRAY['leads:view']) RETURNING id",
      [w.storeA, createHash('sha256').update(secret, 'utf8').digest()],
    );
    await c.query('COMMIT');
    const id = defined(key.rows[0]).id;
    apiKey = { id, proof: `bwk_${id.replace(/-/g, '')}_${secret}` };
  });
  afterAll(async () => {
    await c?.end();
    await other?.end();
    await pg?.stop();
  });

  it('one statement proves the caller, re-checks the membership and enters; nothing survives the transaction', async () => {
    await c.query('BEGIN');
    const r = defined((await c.query(ENTER, [ticketFor(w.ownerA, w.storeA), null, null])).rows[0]);
    expect(r).toMatchObject({
      user_id: w.ownerA,
      proof_org_id: w.storeA,
      org_id: w.storeA,
      role: 'owner',
      writable: true,
      api_key_id: null,
      support_grant_id: null,
    });
    expect(r['permissions']).toEqual(expect.arrayContaining(['leads:view', 'billing:edit']));
    expect(await visibleLeadOrgs()).toEqual([w.storeA]);
    await c.query('COMMIT');
    expect(await setting('bulwark.ctx')).toBe('');
    expect(await setting('bulwark.principal')).toBe('');
    expect(await visibleLeadOrgs()).toEqual([]);

    // The membership is checked live: a store the caller does not belong to is refused, as before.
    await c.query('BEGIN');
    expect(await code(c.query(ENTER, [ticketFor(w.ownerA, w.storeA), w.storeB, null]))).toBe('BW002');
    await c.query('ROLLBACK');
    // Oversight from the dealer group enters a member store read-only, with the view half of the grid.
    await c.query('BEGIN');
    const o = defined((await c.query(ENTER, [ticketFor(w.groupOwner, w.group), w.storeB, null])).rows[0]);
    expect(o).toMatchObject({ org_id: w.storeB, role: 'owner', writable: false });
    expect((o['permissions'] as string[]).every((p) => p.endsWith(':view'))).toBe(true);
    await c.query('ROLLBACK');
  });

  it('an API key enters its own organisation only, narrowed to its grid, never under a support grant', async () => {
    await c.query('BEGIN');
    const r = defined((await c.query(ENTER, [apiKey.proof, null, null])).rows[0]);
    expect(r).toMatchObject({
      user_id: w.ownerA,
      org_id: w.storeA,
      api_key_id: apiKey.id,
      permissions: ['leads:view'],
    });
    expect(await visibleLeadOrgs()).toEqual([w.storeA]);
    await c.query('ROLLBACK');
    await c.query('BEGIN');
    expect(await code(c.query(ENTER, [apiKey.proof, w.storeB, null]))).toBe('BW008');
    await c.query('ROLLBACK');
    await c.query('BEGIN');
    expect(await code(c.query(ENTER, [apiKey.proof, null, w.storeA]))).toBe('BW005');
    await c.query('ROLLBACK');
  });

  it('a guarded read writes no row and consumes no transaction id (ticket and API key)', async () => {
    const xmax = async () =>
      ((await pg.superuser('SELECT pg_snapshot_xmax(pg_current_snapshot())::text AS x')) as { x: string }[])[0]!.x;
    // The key was last used an hour ago: its first use stamps last_used_at (a write), later ones do not.
    await pg.superuser("UPDATE api_keys SET last_used_at = now() - interval '61 minutes' WHERE id = $1", [apiKey.id]);
    await c.query('BEGIN');
    expect(await footprint(() => c.query(ENTER, [apiKey.proof, null, null]))).toEqual({
      xid: expect.any(String),
      writes: 1,
    });
    await c.query('COMMIT');

    const before = await xmax();
    for (const proof of [ticketFor(w.ownerA, w.storeA), apiKey.proof, ticketFor(w.ownerA, w.storeA), apiKey.proof]) {
      await c.query('BEGIN');
      const read = await footprint(async () => {
        await c.query(ENTER, [proof, null, null]);
        expect(await visibleLeadOrgs()).toEqual([w.storeA]);
      });
      expect(read).toEqual({ xid: null, writes: 0 });
      await c.query('COMMIT');
    }
    // The same through the two-statement path the audit sink and the lifecycle commands use.
    await c.query('BEGIN');
    const twoStatements = await footprint(async () => {
      await c.query('SELECT app.authenticate($1)', [ticketFor(w.ownerA, w.storeA)]);
      await c.query('SELECT app.set_tenant_context($1, $2)', [w.ownerA, w.storeA]);
      expect(await visibleLeadOrgs()).toEqual([w.storeA]);
    });
    expect(twoStatements).toEqual({ xid: null, writes: 0 });
    await c.query('COMMIT');
    expect(await xmax()).toBe(before);

    // First login still creates the user (the one write a read may make).
    const subject = `sub-new-${randomBytes(4).toString('hex')}`;
    await c.query('BEGIN');
    expect(
      await footprint(() => c.query('SELECT app.authenticate($1)', [ticketFor(w.ownerA, w.storeA, { subject })])),
    ).toEqual({ xid: expect.any(String), writes: 1 });
    await c.query('ROLLBACK');
  });

  describe('the sealed context resists the attacker on the connection', () => {
    /** The sealed values of a fresh entry as A's Owner, in the open transaction of `on`. */
    const enterA = async (on: Client = c) => {
      await on.query(ENTER, [ticketFor(w.ownerA, w.storeA), null, null]);
      return { ctx: await setting('bulwark.ctx', on), principal: await setting('bulwark.principal', on) };
    };
    const seesNothing = async (on: Client = c) => {
      expect(await visibleLeadOrgs(on)).toEqual([]);
      const r = defined(
        (
          await on.query(
            "SELECT app.current_org_id() AS o, app.grid_org_id('leads:view') AS g, app.writable_org_id() AS wr, app.current_user_id() AS u",
          )
        ).rows[0],
      );
      expect(r).toEqual({ o: null, g: null, wr: null, u: null });
    };

    it('a forged value (any payload, any MAC) is no context', async () => {
      await c.query('BEGIN');
      for (const forged of [
        `(${w.storeB},${w.ownerB},,t,owner,"{leads:view}",)~${'0'.repeat(64)}`,
        `(${w.storeB},${w.ownerB},,t,owner,"{leads:view}",)`,
        'garbage',
        `~${'a'.repeat(64)}`,
      ]) {
        await c.query("SELECT set_config('bulwark.ctx', $1, true)", [forged]);
        await seesNothing();
      }
      await c.query('ROLLBACK');
    });

    it('a tampered field keeping the old MAC is no context', async () => {
      await c.query('BEGIN');
      const { ctx } = await enterA();
      expect(ctx).toContain(w.storeA);
      for (const tampered of [
        ctx.replace(w.storeA, w.storeB),
        ctx.replace(',t,owner,', ',t,admin,'),
        ctx.replace('{', '{billing:delete,'),
      ]) {
        expect(tampered).not.toBe(ctx);
        await c.query("SELECT set_config('bulwark.ctx', $1, true)", [tampered]);
        await seesNothing();
      }
      // The untouched value still works in its own transaction (the test would pass for the wrong reason otherwise).
      await c.query("SELECT set_config('bulwark.ctx', $1, true)", [ctx]);
      expect(await visibleLeadOrgs()).toEqual([w.storeA]);
      await c.query('ROLLBACK');
    });

    it('a sealed value copied into a later transaction on the same connection, locally or at session level, is no context', async () => {
      await c.query('BEGIN');
      const { ctx, principal } = await enterA();
      // Session level inside the transaction: it outlives the COMMIT as a setting, but not as a context.
      await c.query("SELECT set_config('bulwark.ctx', $1, false)", [ctx]);
      await c.query("SELECT set_config('bulwark.principal', $1, false)", [principal]);
      expect(await visibleLeadOrgs()).toEqual([w.storeA]);
      await c.query('COMMIT');
      expect(await setting('bulwark.ctx')).toBe(ctx);
      await c.query('BEGIN');
      await seesNothing();
      // Nor can the stale principal enter anything.
      expect(await code(c.query('SELECT app.set_tenant_context($1, $2)', [w.ownerA, w.storeA]))).toBe('BW011');
      await c.query('ROLLBACK');
      await c.query('BEGIN');
      await c.query("SELECT set_config('bulwark.ctx', $1, true)", [ctx]);
      await seesNothing();
      await c.query('ROLLBACK');
      await seesNothing(); // autocommit statements too
      await c.query('RESET bulwark.ctx');
      await c.query('RESET bulwark.principal');
    });

    it('a sealed value copied into another backend is no context, even while its own transaction is open', async () => {
      await c.query('BEGIN');
      const { ctx, principal } = await enterA();
      await other.query('BEGIN');
      await other.query("SELECT set_config('bulwark.ctx', $1, true), set_config('bulwark.principal', $2, true)", [
        ctx,
        principal,
      ]);
      await seesNothing(other);
      expect(await code(other.query('SELECT app.set_tenant_context($1, $2)', [w.ownerA, w.storeA]))).toBe('BW011');
      await other.query('ROLLBACK');
      expect(await visibleLeadOrgs()).toEqual([w.storeA]);
      await c.query('ROLLBACK');
    });

    it('rolling back to a savepoint takes the context entered after it', async () => {
      await c.query('BEGIN');
      await c.query('SAVEPOINT s');
      await enterA();
      expect(await visibleLeadOrgs()).toEqual([w.storeA]);
      await c.query('ROLLBACK TO SAVEPOINT s');
      expect(await setting('bulwark.ctx')).toBe('');
      await seesNothing();
      expect(await code(c.query('SELECT app.set_tenant_context($1, $2)', [w.ownerA, w.storeA]))).toBe('BW011');
      await c.query('ROLLBACK');
    });

    it('the sealing key and the sealing functions are out of every application role’s reach', async () => {
      for (const sql of [
        'SELECT * FROM app_private.context_key',
        'SELECT app_private.enter_principal(NULL)',
        'SELECT app_private.enter_context(NULL)',
        'SELECT app_private.context()',
      ]) {
        expect({ sql, e: await code(c.query(sql)) }).toEqual({ sql, e: '42501' });
      }
    });
  });

  it('pipelined behind BEGIN, a refused entry aborts the transaction: the query sent behind it never runs', async () => {
    const pool = pg.pool(undefined, { pipeline: true, max: 1 });
    const client = await pool.connect();
    try {
      const sent = [
        client.query('BEGIN'),
        client.query(ENTER, [ticketFor(w.ownerB, w.storeA), null, null]),
        client.query('SELECT org_id FROM leads'),
        client.query('COMMIT'),
      ].map((p) =>
        p.then(
          (r) => ({ ok: r.command }),
          (e: { code?: string }) => ({ error: e.code }),
        ),
      );
      const out = await Promise.all(sent);
      // B's ticket names store A, where B's Owner is no member.
      expect(out).toEqual([{ ok: 'BEGIN' }, { error: 'BW002' }, { error: '25P02' }, { ok: 'ROLLBACK' }]);
    } finally {
      client.release();
      await pool.end();
    }
  });

  describe('through the API on a pipelining pool', () => {
    let pool: Pool;
    let id: TestIdentity;
    const recorded: AuditEvent[] = [];
    const audit: AuditSink = {
      record: async (e) => {
        recorded.push(e);
      },
    };
    let wire: WireCount = { roundTrips: 0, statements: 0 };
    let api: ReturnType<typeof createApi>;

    beforeAll(async () => {
      id = await testIdentity(pg);
      pool = pg.pool(undefined, { pipeline: true, max: 1 });
      pool.on('error', () => undefined);
      const db = {
        connect: async (): Promise<PooledClient> => {
          const client = await pool.connect();
          const counter = countWire(client);
          counter.reset();
          return {
            query: (sql: string, params?: unknown[]) => client.query(sql, params),
            release: (err?: Error | boolean) => {
              wire = counter.count();
              client.release(err);
            },
          };
        },
      };
      api = createApi({ db, verify: id.verify, audit, logger: new RecordingLog() });
    });
    afterAll(async () => pool?.end());

    const get = async (path: string, userId = w.ownerA, org = w.storeA, headers: Record<string, string> = {}) =>
      api(proxyEvent('GET', path, { auth: await id.bearer(userId, org), headers }));

    it('a guarded read is two round trips and four statements (BEGIN, enter | query, COMMIT)', async () => {
      const res = await get('/leads');
      expect(res.statusCode).toBe(200);
      expect((JSON.parse(res.body) as { leads: { org_id: string }[] }).leads.map((l) => l.org_id)).toEqual([
        w.storeA,
        w.storeA,
        w.storeA,
      ]);
      expect(wire).toEqual({ roundTrips: 2, statements: 4 });
    });

    it('every one-statement read answers through the API (none sends a second statement)', async () => {
      const paths: Record<string, string> = { '/leads/{id}': `/leads/${leadA}` };
      const listed = ROUTES.filter((r) => r.oneStatement);
      // The reads declared with tenantRead: losing one would cost it a round trip unnoticed.
      expect(listed.map((r) => `${r.method} ${r.path}`).sort()).toEqual([
        'GET /leads',
        'GET /leads/{id}',
        'GET /memberships',
        'GET /roles',
        'GET /support-grants',
      ]);
      for (const r of listed) {
        const res = await get(paths[r.path] ?? r.path);
        expect({ route: r.path, status: res.statusCode }).toEqual({ route: r.path, status: 200 });
        expect({ route: r.path, wire }).toEqual({ route: r.path, wire: { roundTrips: 2, statements: 4 } });
      }
    });

    it('writes still commit, and a refusal by the gate is still attributed to the caller', async () => {
      const created = await api(
        proxyEvent('POST', '/leads', { auth: await id.bearer(w.ownerA, w.storeA), body: { name: 'Lean' } }),
      );
      expect(created.statusCode).toBe(201);
      const outsider = await createUser(pg);
      recorded.length = 0;
      const refused = await get('/leads', outsider, w.storeB);
      expect(refused.statusCode).toBe(403);
      expect(JSON.parse(refused.body)).toEqual({ error: 'MEMBERSHIP_REVOKED' });
      expect(recorded).toEqual([
        expect.objectContaining({ event: 'access.refused', actorUserId: outsider, orgId: w.storeB }),
      ]);
    });
  });
});
