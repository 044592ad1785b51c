/**
 * Row-level security against a real PostgreSQL, connected as the application role: the generated
 * cross-tenant matrix, leak probes, catalog checks, and proof that the suite bites.
 */
import type { Client } from 'pg';
import { MIGRATOR_ROLE, startPostgres, type TestPostgres } from '../support/postgres';
import { agentScopedTables, catalogProblems, tenantTables } from './catalog';
import { asTenant, authenticateAs, buildWorld, type World } from './fixtures';
import { CONTEXTS, OPERATIONS, READ_ONLY_CONTEXTS, readOnlyActors, runMatrix, type ReadOnlyActors } from './matrix';
import { seedTenant, vin } from './seed';
import { defined } from '../support/defined';
import { MODULES } from '../../lambda/tenant-guard/permissions';
import { DATABASE_ROLES } from '../../contracts/database';

describe('row-level security', () => {
  let pg: TestPostgres;
  let w: World;
  let app: Client;
  let migrator: Client;
  let readers: ReadOnlyActors;
  beforeAll(async () => {
    pg = await startPostgres();
    w = await buildWorld(pg);
    for (const [org, owner] of [
      [w.storeA, w.ownerA],
      [w.storeB, w.ownerB],
    ] as const) {
      await seedTenant(pg, org, owner, w.support);
    }
    // Store A sits under the group, whose Owner oversees it read-only.
    readers = await readOnlyActors(pg, w.storeA, w.groupOwner, w.support);
    app = await pg.client();
    migrator = await pg.client(MIGRATOR_ROLE);
    await migrator.query("SET lock_timeout = '10s'");
  });
  afterAll(async () => {
    await app?.end();
    await migrator?.end();
    await pg?.stop();
  });

  const me = (): { org: string; user: string } => ({ org: w.storeA, user: w.ownerA });
  const them = (): { org: string; user: string } => ({ org: w.storeB, user: w.ownerB });

  it('the catalog holds: every tenant table has RLS enabled and forced, an org_id-led index, gated policies', async () => {
    const tables = await tenantTables(app);
    expect(tables).toEqual(
      expect.arrayContaining([
        'api_keys',
        'calls',
        'custom_roles',
        'customers',
        'deals',
        'leads',
        'memberships',
        'messages',
        'support_grants',
        'vehicles',
      ]),
    );
    expect(await catalogProblems(app)).toEqual([]);
  });

  it('no function of the app schema is executable by PUBLIC; roles call only what they were granted by name', async () => {
    const rows = (await pg.superuser(
      `SELECT p.oid::regprocedure::text AS fn FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
        WHERE n.nspname = 'app' AND EXISTS (
                SELECT 1 FROM aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) a
                 WHERE a.grantee = 0 AND a.privilege_type = 'EXECUTE')
        ORDER BY 1`,
    )) as { fn: string }[];
    expect(rows.map((r) => r.fn)).toEqual([]);
    // A role that was granted nothing but USAGE on the schema (as the shipper's role is) calls nothing.
    await pg.superuser('CREATE ROLE probe_nobody NOLOGIN');
    await pg.superuser('GRANT USAGE ON SCHEMA app TO probe_nobody');
    const callable = (await pg.superuser(
      `SELECT p.oid::regprocedure::text AS fn FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
        WHERE n.nspname = 'app' AND has_function_privilege('probe_nobody', p.oid, 'EXECUTE') ORDER BY 1`,
    )) as { fn: string }[];
    expect(callable.map((r) => r.fn)).toEqual([]);
  });

  it('cross-tenant matrix: every tenant table x SELECT/INSERT/UPDATE/DELETE x every context', async () => {
    const { cases, failures } = await runMatrix(pg, app, me(), them(), readers);
    expect(failures).toEqual([]);
    // Every combination ran exactly once and was observed.
    const tables = await tenantTables(app);
    const expected = tables.flatMap((t) => OPERATIONS.flatMap((op) => CONTEXTS.map((ctx) => `${t} ${op} ${ctx}`)));
    expect(cases.map((c) => `${c.table} ${c.op} ${c.ctx}`).sort()).toEqual(expected.sort());
    expect(cases.length).toBeGreaterThanOrEqual(100);
    // And the matrix is not vacuous: in its own context the tenant reads its row of every table,
    // while with no context at all nothing of anyone's is visible.
    const outcome = (t: string, op: string, ctx: string) =>
      cases.find((c) => c.table === t && c.op === op && c.ctx === ctx)?.outcome;
    // Agent-scoped tables (calls and their recordings): the Viewer handled none of the seeded rows,
    // so it reads none (own-calls.test.ts checks the rows it does read).
    const scoped = (await agentScopedTables(app)).map((s) => s.table);
    expect(scoped.length).toBeGreaterThan(0);
    for (const t of tables) {
      expect({ t, outcome: outcome(t, 'select', 'own') }).toEqual({ t, outcome: { rows: 1 } });
      expect({ t, outcome: outcome(t, 'select', 'unset') }).toEqual({ t, outcome: { rows: 0 } });
      // Read-only contexts are real (they read) and write nothing: every insert, update, re-home and
      // delete of every table is refused or touches no row (their own audit trail excepted).
      for (const ctx of READ_ONLY_CONTEXTS) {
        // Support and oversight read with every module's view; the Viewer with its domain modules'.
        if (ctx !== 'viewer' || (MODULES as readonly string[]).includes(t)) {
          const rows = ctx === 'viewer' && scoped.includes(t) ? 0 : 1;
          expect({ t, ctx, outcome: outcome(t, 'select', ctx) }).toEqual({ t, ctx, outcome: { rows } });
        }
        for (const op of ['insert', 'update', 'rehome', 'delete'] as const) {
          if (t === 'audit_log' && op === 'insert') continue;
          const o = outcome(t, op, ctx);
          expect({ t, ctx, op, wrote: (o?.rows ?? 0) > 0 }).toEqual({ t, ctx, op, wrote: false });
        }
      }
    }
  });

  it('leaky-function probe: a cheap side-effecting function in WHERE never sees another tenant', async () => {
    const seen: string[] = [];
    const onNotice = (n: { message?: string }): void => {
      if (n.message?.startsWith('saw ')) seen.push(n.message.slice(4));
    };
    app.on('notice', onNotice);
    try {
      // Function roles cannot create functions (no CREATE, no TEMPORARY): the probe is installed
      // for them, an ordinary invoker's function that an attacker would wish for.
      await pg.superuser(`CREATE SCHEMA leak_probe;
        CREATE FUNCTION leak_probe.leak(o uuid, v text) RETURNS boolean LANGUAGE plpgsql COST 0.0000001 AS
         $$ BEGIN RAISE NOTICE 'saw %', o; RETURN true; END $$;
        GRANT USAGE ON SCHEMA leak_probe TO ${DATABASE_ROLES.app};
        GRANT EXECUTE ON FUNCTION leak_probe.leak(uuid, text) TO ${DATABASE_ROLES.app}`);
      for (const t of await tenantTables(app)) {
        // The whole row where the role may read it all; else every column it may read.
        const cols = (await pg.superuser(
          `SELECT a.attname AS c FROM pg_attribute a WHERE a.attrelid = $1::regclass AND a.attnum > 0
              AND NOT a.attisdropped AND has_column_privilege($2, a.attrelid, a.attnum, 'SELECT') ORDER BY a.attnum`,
          [`public."${t}"`, DATABASE_ROLES.app],
        )) as { c: string }[];
        const all = (await pg.superuser('SELECT has_table_privilege($2, $1::regclass, $3) AS g', [
          `public."${t}"`,
          DATABASE_ROLES.app,
          'SELECT',
        ])) as { g: boolean }[];
        const row = all[0]?.g ? 'x::text' : `concat_ws(',', ${cols.map((c) => `x."${c.c}"`).join(', ')})`;
        await asTenant(app, w.ownerA, w.storeA, () =>
          app.query(`SELECT 1 FROM public."${t}" x WHERE leak_probe.leak(x.org_id, ${row})`),
        );
      }
      // An error raised by another tenant's value would leak it too.
      await asTenant(app, w.ownerA, w.storeA, () =>
        app.query(`SELECT 1 FROM customers WHERE 1 / (CASE WHEN org_id = $1 THEN 0 ELSE 1 END) = 1`, [w.storeB]),
      );
    } finally {
      app.off('notice', onNotice);
      await pg.superuser('DROP SCHEMA IF EXISTS leak_probe CASCADE');
    }
    expect(seen.length).toBeGreaterThan(0);
    expect([...new Set(seen)]).toEqual([w.storeA]);
  });

  it('unique-constraint existence probe: another tenant cannot learn a value exists by colliding with it', async () => {
    const aCustomer = (await pg.superuser('SELECT email FROM customers WHERE org_id = $1 LIMIT 1', [w.storeA])) as {
      email: string;
    }[];
    const aVin = (await pg.superuser('SELECT vin FROM vehicles WHERE org_id = $1 LIMIT 1', [w.storeA])) as {
      vin: string;
    }[];
    await asTenant(app, w.ownerB, w.storeB, async () => {
      const c = await app.query("INSERT INTO customers (org_id, name, email) VALUES ($1, 'Probe', $2)", [
        w.storeB,
        defined(aCustomer[0]).email,
      ]);
      expect(c.rowCount).toBe(1);
      const v = await app.query(
        "INSERT INTO vehicles (org_id, vin, make, model, year) VALUES ($1, $2, 'M', 'M', 2020)",
        [w.storeB, defined(aVin[0]).vin],
      );
      expect(v.rowCount).toBe(1);
      // Within one tenant the constraint still holds.
      await expect(
        app.query("INSERT INTO vehicles (org_id, vin, make, model, year) VALUES ($1, $2, 'M', 'M', 2020)", [
          w.storeB,
          defined(aVin[0]).vin,
        ]),
      ).rejects.toMatchObject({ code: '23505' });
    });
    // And no row may point into another tenant: composite keys refuse it even though RI bypasses RLS.
    const bCustomer = (await pg.superuser('SELECT id FROM customers WHERE org_id = $1 LIMIT 1', [w.storeB])) as {
      id: string;
    }[];
    await asTenant(app, w.ownerA, w.storeA, async () => {
      await expect(
        app.query("INSERT INTO leads (org_id, customer_id, name) VALUES ($1, $2, 'cross')", [
          w.storeA,
          defined(bCustomer[0]).id,
        ]),
      ).rejects.toMatchObject({ code: '23503' });
    });
  });

  it('views run with the caller’s rights: the pipeline view shows one tenant', async () => {
    const orgs = await asTenant(app, w.ownerA, w.storeA, async () =>
      (await app.query<{ org_id: string }>('SELECT DISTINCT org_id FROM lead_pipeline')).rows.map((r) => r.org_id),
    );
    expect(orgs).toEqual([w.storeA]);
    const none = await app.query('SELECT * FROM lead_pipeline');
    expect(none.rowCount).toBe(0);
  });

  it('API keys: the grid can only narrow the minting user’s role, and created_by is the verified user', async () => {
    const member = (await pg.superuser(
      "SELECT user_id FROM memberships WHERE org_id = $1 AND role = 'custom' LIMIT 1",
      [w.storeA],
    )) as { user_id: string }[];
    const mint =
      "INSERT INTO api_keys (org_id, name, secret_hash, permissions) VALUES ($1, 'k', $2, ARRAY['leads:view'])";
    // Minting needs settings:create in the database too (migrations/0403); give the member's role that.
    await asTenant(app, defined(member[0]).user_id, w.storeA, async () => {
      await expect(app.query(mint, [w.storeA, Buffer.alloc(32)])).rejects.toMatchObject({ code: '42501' });
    });
    await pg.superuser(
      "UPDATE custom_roles SET permissions = permissions || ARRAY['settings:create'] WHERE id = (SELECT custom_role_id FROM memberships WHERE org_id = $1 AND user_id = $2)",
      [w.storeA, defined(member[0]).user_id],
    );
    await asTenant(app, defined(member[0]).user_id, w.storeA, async () => {
      await app.query('SAVEPOINT wide');
      await expect(
        app.query(
          "INSERT INTO api_keys (org_id, created_by, name, secret_hash, permissions) VALUES ($1, $2, 'k', $3, $4)",
          [w.storeA, w.ownerA, Buffer.alloc(32), ['leads:view', 'leads:delete']],
        ),
      ).rejects.toMatchObject({ code: 'BW010' });
      await app.query('ROLLBACK TO SAVEPOINT wide');
      const ok = await app.query<{ created_by: string }>(
        "INSERT INTO api_keys (org_id, created_by, name, secret_hash, permissions) VALUES ($1, $2, 'k', $3, $4) RETURNING created_by",
        [w.storeA, w.ownerA, Buffer.alloc(32), ['leads:view']],
      );
      expect(defined(ok.rows[0]).created_by).toBe(defined(member[0]).user_id);
    });
    await pg.superuser(
      "UPDATE custom_roles SET permissions = array_remove(permissions, 'settings:create') WHERE id = (SELECT custom_role_id FROM memberships WHERE org_id = $1 AND user_id = $2)",
      [w.storeA, defined(member[0]).user_id],
    );
  });

  it('column grants: an application bug cannot extend a support grant or re-point an API key', async () => {
    for (const sql of [
      "UPDATE support_grants SET expires_at = now() + interval '4 hours', opened_at = now()",
      'UPDATE api_keys SET created_by = $1',
      "UPDATE api_keys SET secret_hash = '\\x00'",
    ]) {
      await asTenant(app, w.ownerA, w.storeA, async () => {
        await expect(app.query(sql, sql.includes('$1') ? [w.ownerA] : [])).rejects.toMatchObject({ code: '42501' });
      });
    }
    const revoked = await asTenant(
      app,
      w.ownerA,
      w.storeA,
      async () =>
        (await app.query('UPDATE support_grants SET revoked_at = now(), revoked_by = $1', [w.ownerA])).rowCount,
    );
    expect(revoked).toBeGreaterThan(0);
  });

  it('a pooled connection never carries one request’s tenant into the next', async () => {
    const pool = pg.pool(undefined, { max: 1 });
    const mine = (await pg.superuser('SELECT count(*)::int AS n FROM leads WHERE org_id = $1', [w.storeA])) as {
      n: number;
    }[];
    const c1 = await pool.connect();
    let seen: unknown;
    let backend: unknown;
    try {
      backend = (await c1.query('SELECT pg_backend_pid() AS p')).rows[0];
      await c1.query('BEGIN');
      await authenticateAs(c1, w.ownerA, w.storeA);
      await c1.query('SELECT app.set_tenant_context($1, $2)', [w.ownerA, w.storeA]);
      seen = (await c1.query('SELECT count(*)::int AS n FROM leads')).rows[0];
      await c1.query('COMMIT');
    } finally {
      c1.release();
    }
    expect(seen).toEqual({ n: defined(mine[0]).n });
    expect(defined(mine[0]).n).toBeGreaterThan(0);
    const c2 = await pool.connect();
    try {
      // The same server session (one pooled connection), now serving the next request.
      expect((await c2.query('SELECT pg_backend_pid() AS p')).rows[0]).toEqual(backend);
      expect((await c2.query('SELECT count(*)::int AS n FROM leads')).rows[0]).toEqual({ n: 0 });
      await c2.query('BEGIN');
      expect((await c2.query('SELECT count(*)::int AS n FROM leads')).rows[0]).toEqual({ n: 0 });
      await c2.query('ROLLBACK');
    } finally {
      c2.release();
    }
  });

  describe('the suite bites', () => {
    it('weakening one SELECT policy makes the matrix fail', async () => {
      await migrator.query('DROP POLICY tenant_select ON leads');
      await migrator.query('CREATE POLICY tenant_select ON leads FOR SELECT USING (true)');
      try {
        const { failures } = await runMatrix(pg, app, me(), them(), readers);
        expect(failures).toEqual(expect.arrayContaining([expect.stringMatching(/^leads select other: /)]));
        expect(failures).toEqual(expect.arrayContaining([expect.stringMatching(/^leads select unset: /)]));
        expect(await catalogProblems(app)).toContain(
          'leads: policy tenant_select does not compare with the tenant context',
        );
      } finally {
        await migrator.query('DROP POLICY tenant_select ON leads');
        await migrator.query(
          "CREATE POLICY tenant_select ON leads FOR SELECT USING (org_id = (SELECT app.grid_org_id('leads:view')))",
        );
      }
      expect((await runMatrix(pg, app, me(), them(), readers)).failures).toEqual([]);
    });

    it('weakening one write policy (insert check that still mentions the gate) makes the matrix fail', async () => {
      await migrator.query('DROP POLICY tenant_insert ON deals');
      await migrator.query(
        "CREATE POLICY tenant_insert ON deals FOR INSERT WITH CHECK (org_id = (SELECT app.grid_writable_org_id('deals:create')) OR true)",
      );
      try {
        const { failures } = await runMatrix(pg, app, me(), them(), readers);
        expect(failures).toEqual(expect.arrayContaining([expect.stringMatching(/^deals insert other: /)]));
        // The catalog regex alone would not have caught this one: the matrix does.
        expect(await catalogProblems(app)).toEqual([]);
      } finally {
        await migrator.query('DROP POLICY tenant_insert ON deals');
        await migrator.query(
          "CREATE POLICY tenant_insert ON deals FOR INSERT WITH CHECK (org_id = (SELECT app.grid_writable_org_id('deals:create')))",
        );
      }
    });

    /** Runs the matrix with one policy weakened by `weaken`, then restores it with `restore`. */
    async function weakened(weaken: string, restore: string): Promise<readonly string[]> {
      await migrator.query(weaken);
      try {
        // The catalog sees a domain policy without the grid too; the matrix sees what it lets through.
        if (!weaken.includes('grid_')) {
          expect(await catalogProblems(app)).toEqual([
            expect.stringMatching(/^(leads|customers): policy tenant_\w+ does not check the grid$/),
          ]);
        }
        return (await runMatrix(pg, app, me(), them(), readers)).failures;
      } finally {
        await migrator.query(restore);
      }
    }

    it('weakening one UPDATE policy (the grid dropped, writable kept) makes the matrix fail for the Viewer', async () => {
      const failures = await weakened(
        'ALTER POLICY tenant_update ON leads USING (org_id = (SELECT app.writable_org_id())) WITH CHECK (org_id = (SELECT app.writable_org_id()))',
        "SELECT app.apply_tenant_grid('leads', NULL, NULL, 'leads:edit', NULL)",
      );
      expect(failures).toEqual([expect.stringMatching(/^leads update viewer: /)]);
    });

    it('weakening one DELETE policy (context only) makes the matrix fail in every read-only context', async () => {
      const failures = await weakened(
        'ALTER POLICY tenant_delete ON leads USING (org_id = (SELECT app.current_org_id()))',
        "SELECT app.apply_tenant_grid('leads', NULL, NULL, NULL, 'leads:delete')",
      );
      expect(failures).toEqual(
        expect.arrayContaining(
          READ_ONLY_CONTEXTS.map((ctx) => expect.stringMatching(new RegExp(`^leads delete ${ctx}: `)) as unknown),
        ),
      );
      expect(failures).toHaveLength(READ_ONLY_CONTEXTS.length);
    });

    it('weakening one policy to ignore read-only contexts makes the matrix fail for the grant and oversight', async () => {
      const failures = await weakened(
        'ALTER POLICY tenant_insert ON customers WITH CHECK (org_id = (SELECT app.current_org_id()))',
        "SELECT app.apply_tenant_grid('customers', NULL, 'customers:create', NULL, NULL)",
      );
      expect(failures).toEqual(
        expect.arrayContaining([
          expect.stringMatching(/^customers insert read_grant: /),
          expect.stringMatching(/^customers insert oversight: /),
          expect.stringMatching(/^customers insert viewer: /),
        ]),
      );
      expect((await runMatrix(pg, app, me(), them(), readers)).failures).toEqual([]);
    });

    it('a tenant table without forced RLS or an org_id index fails the catalog check', async () => {
      await migrator.query('ALTER TABLE calls NO FORCE ROW LEVEL SECURITY');
      await migrator.query(
        `CREATE TABLE scratch (id uuid PRIMARY KEY, org_id uuid NOT NULL, vin text UNIQUE DEFAULT '${vin()}')`,
      );
      try {
        const problems = await catalogProblems(app);
        expect(problems).toEqual(
          expect.arrayContaining([
            'calls: row level security not forced',
            'scratch: row level security not enabled',
            'scratch: no index led by org_id',
            expect.stringMatching(/^scratch: unique index scratch_vin_key/),
          ]),
        );
      } finally {
        await migrator.query('DROP TABLE scratch');
        await migrator.query('ALTER TABLE calls FORCE ROW LEVEL SECURITY');
      }
    });
  });
});
