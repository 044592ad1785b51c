/**
 * The database is a gate of its own: a tenant context exists only when app.set_tenant_context
 * verified it, only for the transaction that set it, and nothing the application role can set
 * any other way is consulted.
 */
import type { Client } from 'pg';
import { startPostgres, type TestPostgres } from '../support/postgres';
import { asTenant, authenticateAs, buildWorld, createUser, type World } from './fixtures';
import { defined } from '../support/defined';

const pgErr = (e: unknown): { code?: string; message: string } => e as { code?: string; message: string };

describe('tenant-context gate', () => {
  let pg: TestPostgres;
  let w: World;
  let c: Client;
  beforeAll(async () => {
    pg = await startPostgres();
    w = await buildWorld(pg);
    c = await pg.client();
  });
  afterAll(async () => {
    await c?.end();
    await pg?.stop();
  });

  /** Runs `fn` in one committed transaction in which `user` is proven to the database. */
  const asUser = async <T>(user: string, fn: () => Promise<T>): Promise<T> => {
    await c.query('BEGIN');
    try {
      await authenticateAs(c, user);
      const r = await fn();
      await c.query('COMMIT');
      return r;
    } catch (e) {
      await c.query('ROLLBACK');
      throw e;
    }
  };

  const visibleOrgs = async (): Promise<string[]> =>
    (await c.query<{ id: string }>('SELECT id FROM organisations ORDER BY id')).rows.map((r) => r.id);

  it('a verified context sees its own organisation only', async () => {
    const seen = await asTenant(c, w.ownerA, w.storeA, visibleOrgs);
    expect(seen).toEqual([w.storeA]);
  });

  it('refuses a user with no membership in the organisation (an app bug cannot cross tenants)', async () => {
    await c.query('BEGIN');
    try {
      await authenticateAs(c, w.ownerA);
      await expect(c.query('SELECT app.set_tenant_context($1, $2)', [w.ownerA, w.storeB])).rejects.toMatchObject({
        code: 'BW002',
        message: 'MEMBERSHIP_REVOKED',
      });
    } finally {
      await c.query('ROLLBACK');
    }
  });

  it('refuses a revoked membership immediately', async () => {
    const u = await createUser(pg);
    await pg.superuser("INSERT INTO memberships (org_id, user_id, role) VALUES ($1, $2, 'member')", [w.storeA, u]);
    expect(await asTenant(c, u, w.storeA, visibleOrgs)).toEqual([w.storeA]);
    await pg.superuser("UPDATE memberships SET status = 'revoked', revoked_at = now() WHERE user_id = $1", [u]);
    await c.query('BEGIN');
    await authenticateAs(c, u);
    await expect(c.query('SELECT app.set_tenant_context($1, $2)', [u, w.storeA])).rejects.toMatchObject({
      code: 'BW002',
    });
    await c.query('ROLLBACK');
  });

  it('ignores contexts forged with set_config / SET by the application role', async () => {
    await c.query('BEGIN');
    try {
      for (const name of ['app.org_id', 'app.current_org_id', 'app.tenant_id', 'bulwark.org_id', 'request.org_id']) {
        await c.query('SELECT set_config($1, $2, true)', [name, w.storeA]);
      }
      expect(await visibleOrgs()).toEqual([]);
      expect((await c.query('SELECT app.current_org_id() AS o')).rows[0]).toEqual({ o: null });
    } finally {
      await c.query('ROLLBACK');
    }
  });

  it('gives the application role no way to write the context store or call internal helpers', async () => {
    for (const sql of [
      // The context lives in sealed transaction-local settings (0407): forging them is
      // lean-gate.test.ts's; what seals them is out of reach.
      'SELECT * FROM app_private.context_key',
      'TRUNCATE app_private.context_key',
      "SELECT app_private.seal_binding('ctx')",
      "SELECT app.protect_tenant_table('memberships')",
      'CREATE TABLE app.x (id int)',
      'CREATE TABLE public.x (id int)',
      'ALTER TABLE memberships DISABLE ROW LEVEL SECURITY',
      'ALTER TABLE memberships NO FORCE ROW LEVEL SECURITY',
      'DROP POLICY tenant_select ON memberships',
      "INSERT INTO organisations (kind, name, plan) VALUES ('store', 'x', 'pro')",
      "INSERT INTO users (subject, email) VALUES ('x', 'x@example.test')",
    ]) {
      await c.query('BEGIN');
      const err = await c.query(sql).then(
        () => null,
        (e: unknown) => pgErr(e),
      );
      await c.query('ROLLBACK');
      expect({ sql, code: err?.code }).toEqual({ sql, code: expect.stringMatching(/^(42501|42P01)$/) });
    }
  });

  it('a context never outlives its transaction on the same connection', async () => {
    await c.query('BEGIN');
    await authenticateAs(c, w.ownerA);
    await c.query('SELECT app.set_tenant_context($1, $2)', [w.ownerA, w.storeA]);
    expect(await visibleOrgs()).toEqual([w.storeA]);
    await c.query('COMMIT');
    expect(await visibleOrgs()).toEqual([]); // autocommit statement
    await c.query('BEGIN');
    await c.query('SELECT pg_current_xact_id()'); // even with an xid assigned
    expect(await visibleOrgs()).toEqual([]);
    await c.query('ROLLBACK');
  });

  it('rolling back to a savepoint undoes the context set after it', async () => {
    await c.query('BEGIN');
    try {
      await authenticateAs(c, w.ownerA);
      await c.query('SELECT app.set_tenant_context($1, $2)', [w.ownerA, w.storeA]);
      await c.query('SAVEPOINT s');
      await authenticateAs(c, w.ownerB);
      await c.query('SELECT app.set_tenant_context($1, $2)', [w.ownerB, w.storeB]);
      expect(await visibleOrgs()).toEqual([w.storeB]);
      await c.query('ROLLBACK TO SAVEPOINT s');
      expect(await visibleOrgs()).toEqual([w.storeA]);
    } finally {
      await c.query('ROLLBACK');
    }
  });

  it('oversight: a dealer group or network owner enters a member store read-only; a store never sees siblings', async () => {
    const ctx = async (): Promise<unknown> =>
      (await c.query('SELECT app.current_org_id() AS o, app.writable_org_id() AS wo')).rows[0];
    expect(await asTenant(c, w.groupOwner, w.storeA, visibleOrgs)).toEqual([w.storeA]);
    expect(await asTenant(c, w.groupOwner, w.storeA, ctx)).toEqual({ o: w.storeA, wo: null });
    expect(await asTenant(c, w.networkOwner, w.storeA, ctx)).toEqual({ o: w.storeA, wo: null });
    expect(await asTenant(c, w.networkOwner, w.storeC, ctx)).toEqual({ o: w.storeC, wo: null });
    // Its own organisation stays writable, and shows only itself.
    expect(await asTenant(c, w.groupOwner, w.group, visibleOrgs)).toEqual([w.group]);
    expect(await asTenant(c, w.groupOwner, w.group, ctx)).toEqual({ o: w.group, wo: w.group });
    // storeC sits under the network, not the group.
    await c.query('BEGIN');
    await authenticateAs(c, w.groupOwner);
    await expect(c.query('SELECT app.set_tenant_context($1, $2)', [w.groupOwner, w.storeC])).rejects.toMatchObject({
      code: 'BW002',
    });
    await c.query('ROLLBACK');
    // Siblings: the owner of store B cannot enter store A.
    await c.query('BEGIN');
    await authenticateAs(c, w.ownerB);
    await expect(c.query('SELECT app.set_tenant_context($1, $2)', [w.ownerB, w.storeA])).rejects.toMatchObject({
      code: 'BW002',
    });
    await c.query('ROLLBACK');
    expect(await asTenant(c, w.ownerB, w.storeB, visibleOrgs)).toEqual([w.storeB]);
  });

  it('oversight follows the role: a Member of the group cannot enter member stores; the grid is view-only', async () => {
    const m = await createUser(pg);
    await pg.superuser("INSERT INTO memberships (org_id, user_id, role) VALUES ($1, $2, 'member')", [w.group, m]);
    await c.query('BEGIN');
    await authenticateAs(c, m);
    await expect(c.query('SELECT app.set_tenant_context($1, $2)', [m, w.storeA])).rejects.toMatchObject({
      code: 'BW002',
    });
    await c.query('ROLLBACK');
    const grid = await asTenant(
      c,
      w.groupOwner,
      w.storeA,
      async () =>
        defined(
          (
            await c.query<{ permissions: string[] }>('SELECT permissions FROM app.set_tenant_context($1, $2)', [
              w.groupOwner,
              w.storeA,
            ])
          ).rows[0],
        ).permissions,
    );
    expect(grid.length).toBeGreaterThan(0);
    expect(grid.every((p) => p.endsWith(':view'))).toBe(true);
  });

  describe('support grants', () => {
    it('opens a reasoned grant of at most four hours, and only for platform_support', async () => {
      await expect(
        asUser(w.support, () =>
          c.query("SELECT app.open_support_grant($1, $2, 'ticket 42: lead import', interval '5 hours')", [
            w.support,
            w.storeA,
          ]),
        ),
      ).rejects.toMatchObject({ code: 'BW009' });
      await expect(
        asUser(w.ownerA, () =>
          c.query("SELECT app.open_support_grant($1, $2, 'ticket 42: lead import', interval '1 hour')", [
            w.ownerA,
            w.storeA,
          ]),
        ),
      ).rejects.toMatchObject({ code: 'BW008' });
      await expect(
        asUser(w.support, () =>
          c.query("SELECT app.open_support_grant($1, $2, 'short', interval '1 hour')", [w.support, w.storeA]),
        ),
      ).rejects.toMatchObject({ code: '23514' });
    });

    it('a live grant enters exactly one organisation, read-only; expired and revoked grants are refused', async () => {
      const g = defined(
        (
          await asUser(w.support, () =>
            c.query<{ id: string }>(
              "SELECT (app.open_support_grant($1, $2, 'ticket 42: lead import', interval '1 hour')).id AS id",
              [w.support, w.storeA],
            ),
          )
        ).rows[0],
      ).id;
      expect(await asTenant(c, w.support, w.storeA, visibleOrgs, g)).toEqual([w.storeA]);
      expect(
        await asTenant(
          c,
          w.support,
          w.storeA,
          async () => (await c.query('SELECT app.writable_org_id() AS o')).rows[0],
          g,
        ),
      ).toEqual({ o: null });
      // The grant is for storeA only.
      await c.query('BEGIN');
      await authenticateAs(c, w.support);
      await expect(
        c.query('SELECT app.set_tenant_context($1, $2, $3)', [w.support, w.storeB, g]),
      ).rejects.toMatchObject({ code: 'BW005' });
      await c.query('ROLLBACK');
      // Without a grant, platform staff have no way in.
      await c.query('BEGIN');
      await authenticateAs(c, w.support);
      await expect(c.query('SELECT app.set_tenant_context($1, $2)', [w.support, w.storeA])).rejects.toMatchObject({
        code: 'BW002',
      });
      await c.query('ROLLBACK');

      await pg.superuser(
        "UPDATE support_grants SET opened_at = now() - interval '2 hours', expires_at = now() - interval '1 second' WHERE id = $1",
        [g],
      );
      await c.query('BEGIN');
      await authenticateAs(c, w.support);
      await expect(
        c.query('SELECT app.set_tenant_context($1, $2, $3)', [w.support, w.storeA, g]),
      ).rejects.toMatchObject({ code: 'BW003', message: 'SUPPORT_GRANT_EXPIRED' });
      await c.query('ROLLBACK');

      const g2 = defined(
        (
          await asUser(w.support, () =>
            c.query<{ id: string }>(
              "SELECT (app.open_support_grant($1, $2, 'ticket 43: call routing', interval '30 minutes')).id AS id",
              [w.support, w.storeA],
            ),
          )
        ).rows[0],
      ).id;
      expect(
        (await asUser(w.support, () => c.query('SELECT app.close_support_grant($1, $2) AS ok', [w.support, g2])))
          .rows[0],
      ).toEqual({
        ok: true,
      });
      await c.query('BEGIN');
      await authenticateAs(c, w.support);
      await expect(
        c.query('SELECT app.set_tenant_context($1, $2, $3)', [w.support, w.storeA, g2]),
      ).rejects.toMatchObject({ code: 'BW007' });
      await c.query('ROLLBACK');
    });

    it("the organisation's Owner lists the grants on their organisation and nobody else's", async () => {
      await asUser(w.support, () =>
        c.query("SELECT app.open_support_grant($1, $2, 'ticket 44: billing question', interval '1 hour')", [
          w.support,
          w.storeB,
        ]),
      );
      const orgsOfGrants = await asTenant(c, w.ownerA, w.storeA, async () =>
        (await c.query<{ org_id: string }>('SELECT DISTINCT org_id FROM support_grants')).rows.map((r) => r.org_id),
      );
      expect(orgsOfGrants).toEqual([w.storeA]);
    });
  });
});
