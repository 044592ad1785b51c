/**
 * The attacker of docs/tenancy.md "Threat model": any SQL, repeatedly, on a connection of a
 * function's own role, knowing only their own store (A) and the ids it can see, among them store
 * B's and B's Owner's (audit rows, oversight, support staff name them). Generated from the catalog:
 * every function a role can EXECUTE is classified (a new grant fails here until it is), and every
 * function the tenant API can call is called with B's ids in every uuid argument, inside A's own
 * verified context; B must come out of it unseen and unchanged. Real PostgreSQL, never a superuser.
 */
import type { Client } from 'pg';
import { DATABASE_ROLES, FUNCTION_ROLES, type FunctionRole } from '../../contracts/database';
import { MIGRATOR_ROLE, startPostgres, type TestPostgres } from '../support/postgres';
import { asTenant, authenticateAs, buildWorld, createUser, ticketFor, type World } from './fixtures';

/** Every function each role may EXECUTE (schemas app, app_private, public; extensions' excluded). */
const ALLOWED: Readonly<Record<FunctionRole, readonly string[]>> = {
  [DATABASE_ROLES.app]: [
    'actions',
    'all_permissions',
    'append_audit_event',
    'authenticate',
    'builtin_role_oversight',
    'builtin_role_permissions',
    'cancel_tenant',
    'close_support_grant',
    'context_reads_all_agents',
    'context_tenant_files_key',
    'context_tenant_key',
    'create_organisation',
    'current_org_id',
    'current_support_grant_id',
    'current_user_id',
    'delete_tenant_rows',
    'enter_tenant',
    'expect_tenant_byok',
    'grid_org_id',
    'grid_writable_org_id',
    'membership_permissions',
    'modules',
    'open_support_grant',
    'owner_org_id',
    'readable_org_ids',
    'request_tenant_export',
    'resolve_user',
    'restore_tenant',
    'set_tenant_context',
    'tenant_overview',
    'valid_grid',
    'writable_org_id',
  ],
  [DATABASE_ROLES.auditShipper]: [
    'audit_archive_claim',
    'audit_archive_mark',
    'audit_archive_owed',
    'audit_archive_read',
    'audit_archive_release',
  ],
  [DATABASE_ROLES.webhooks]: [
    'current_org_id',
    'current_support_grant_id',
    'current_user_id',
    'grid_org_id',
    'grid_writable_org_id',
    'owner_org_id',
    'purge_webhook_events',
    'readable_org_ids',
    'tenant_status',
    'webhook_organisation_secret',
    'webhook_secret_accepts',
    'writable_org_id',
  ],
  [DATABASE_ROLES.keyProvisioner]: [
    'append_system_audit_event',
    'count_tenant_keys_behind_policy',
    'current_org_id',
    'current_support_grant_id',
    'current_user_id',
    'grid_org_id',
    'grid_writable_org_id',
    'keyless_tenants',
    'owner_org_id',
    'readable_org_ids',
    'record_key_policy_version',
    'record_tenant_key',
    'system_audit_head',
    'tenant_keys_behind_policy',
    'tenant_status',
    'writable_org_id',
  ],
  [DATABASE_ROLES.lifecycle]: [
    'advance_tenant_lifecycle',
    'append_system_audit_event',
    'context_reads_all_agents',
    'current_org_id',
    'current_support_grant_id',
    'current_user_id',
    'due_tenant_lifecycles',
    'enter_export_context',
    'erase_tenant_rows',
    'finish_tenant_export',
    'grid_org_id',
    'grid_writable_org_id',
    'owner_org_id',
    'pending_tenant_exports',
    'readable_org_ids',
    'system_audit_head',
    'tenant_rows_remaining',
    'tenant_status',
    'writable_org_id',
  ], // One definer function, which decides from what it is told and reads nothing back (migrations/0413).
  [DATABASE_ROLES.fileChecker]: ['record_file_check'],
};

interface Fn {
  readonly name: string;
  readonly args: string[];
  readonly signature: string;
}

/** Functions of our schemas `role` may execute (the catalog, read as that role itself). */
async function executable(c: Client): Promise<Fn[]> {
  const r = await c.query<{ name: string; args: string[] | null; signature: string }>(
    `SELECT p.proname AS name, p.oid::regprocedure::text AS signature,
            ARRAY(SELECT format_type(t, NULL) FROM unnest(p.proargtypes::oid[]) t) AS args
       FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
      WHERE n.nspname IN ('app', 'app_private', 'public') AND p.prokind = 'f'
        AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = p.oid AND d.deptype = 'e')
        AND has_function_privilege(current_user, p.oid, 'EXECUTE')
      ORDER BY 1, 2`,
  );
  return r.rows.map((x) => ({ name: x.name, args: x.args ?? [], signature: x.signature }));
}

describe('adversary on the function roles', () => {
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
  const as = async (role: FunctionRole | typeof MIGRATOR_ROLE): Promise<Client> => {
    const c = await pg.client(role);
    clients.push(c);
    return c;
  };

  it.each(FUNCTION_ROLES)('%s can execute exactly its classified functions', async (role) => {
    const names = [...new Set((await executable(await as(role))).map((f) => f.name))].sort();
    expect(names).toEqual([...ALLOWED[role]].sort());
  });

  /** What the migrator (the owner, through its gate policies) sees of B: it must not change. */
  async function snapshotOfB(): Promise<string> {
    const m = await as(MIGRATOR_ROLE);
    const q = async (sql: string) => JSON.stringify((await m.query(sql, [w.storeB, w.ownerB])).rows);
    const parts = [
      await q('SELECT * FROM organisations WHERE id = $1 OR $2::uuid IS NULL'),
      await q('SELECT * FROM memberships WHERE org_id = $1 OR user_id = $2 ORDER BY id'),
      await q('SELECT id, revoked_at, permissions FROM api_keys WHERE org_id = $1 OR created_by = $2 ORDER BY id'),
      await q('SELECT * FROM support_grants WHERE org_id = $1 OR granted_to = $2 ORDER BY id'),
      await q('SELECT * FROM users WHERE id = $2 OR $1::uuid IS NULL'),
      await q('SELECT count(*) FROM audit_log WHERE org_id = $1 OR actor_user_id = $2::text'),
    ];
    await m.end();
    return parts.join('\n');
  }

  /** A value of each argument type; every uuid is B's (the store, then its Owner). */
  const argumentsFor = (types: readonly string[], victim: string): unknown[] =>
    types.map((t) => {
      switch (t) {
        case 'uuid':
          return victim;
        case 'text':
          return 'read';
        case 'integer':
        case 'bigint':
          return 10;
        case 'interval':
          return '1 hour';
        case 'timestamp with time zone':
          return new Date(Date.now() + 86_400_000);
        case 'bytea':
          return Buffer.alloc(32);
        case 'text[]':
          return ['leads:view'];
        case 'jsonb':
          return '{}';
        case 'regclass':
          return 'leads';
        default:
          return null;
      }
    });

  it('every function the tenant API can execute, called with B’s ids from inside A’s own context, leaves B unseen and unchanged', async () => {
    const c = await as(DATABASE_ROLES.app);
    const before = await snapshotOfB();
    const fns = await executable(c);
    expect(fns.length).toBeGreaterThan(10);
    const leaks: string[] = [];
    for (const fn of fns) {
      for (const victim of [w.storeB, w.ownerB]) {
        for (const proven of [true, false]) {
          await c.query('BEGIN');
          try {
            if (proven) {
              await authenticateAs(c, w.ownerA, w.storeA);
              await c.query('SELECT app.set_tenant_context($1, $2)', [w.ownerA, w.storeA]);
            }
            const args = argumentsFor(fn.args, victim);
            const sql = `SELECT * FROM ${fn.signature.replace(/\(.*$/, '')}(${args.map((_, i) => `$${i + 1}`).join(', ')})`;
            const out = await c.query(sql, args).then(
              (r) => JSON.stringify(r.rows),
              () => '',
            );
            if (out.includes(w.storeB)) leaks.push(`${fn.signature} returned B's id`);
            // Commit whatever the call did: B must be unchanged all the same.
            await c.query('COMMIT').catch(() => undefined);
          } finally {
            await c.query('ROLLBACK').catch(() => undefined);
          }
        }
      }
    }
    expect(leaks).toEqual([]);
    expect(await snapshotOfB()).toBe(before);
  });

  it('direct DML on identity tables: a Member cannot make itself Owner elsewhere, nor un-revoke, nor re-home', async () => {
    const c = await as(DATABASE_ROLES.app);
    await c.query('BEGIN');
    await authenticateAs(c, w.ownerA, w.storeA);
    await c.query('SELECT app.set_tenant_context($1, $2)', [w.ownerA, w.storeA]);
    for (const sql of [
      `UPDATE memberships SET role = 'owner' WHERE org_id = '${w.storeB}'`,
      `UPDATE memberships SET org_id = '${w.storeB}' WHERE user_id = '${w.ownerA}'`,
      `UPDATE api_keys SET revoked_at = NULL WHERE org_id = '${w.storeB}'`,
      `UPDATE support_grants SET revoked_at = NULL WHERE org_id = '${w.storeB}'`,
      `DELETE FROM memberships WHERE org_id = '${w.storeB}'`,
    ]) {
      await c.query('SAVEPOINT s');
      const n = await c.query(sql).then(
        (r) => r.rowCount ?? 0,
        () => 0,
      );
      await c.query('ROLLBACK TO SAVEPOINT s');
      expect({ sql, n }).toEqual({ sql, n: 0 });
    }
    await c.query('ROLLBACK');
  });

  it('the role grid holds in the database: no self-promotion, no Admin over an Owner, revocations are final', async () => {
    const c = await as(DATABASE_ROLES.app);
    const member = await createUser(pg);
    const admin = await createUser(pg);
    await pg.superuser("INSERT INTO memberships (org_id, user_id, role) VALUES ($1, $2, 'member'), ($1, $3, 'admin')", [
      w.storeA,
      member,
      admin,
    ]);
    const attempt = async (user: string, sql: string, params: unknown[] = []) => {
      await c.query('BEGIN');
      try {
        await authenticateAs(c, user, w.storeA);
        await c.query('SELECT app.set_tenant_context($1, $2)', [user, w.storeA]);
        return await c.query(sql, [...params]).then(
          (r) => `rows:${r.rowCount}`,
          (e: { code?: string }) => e.code,
        );
      } finally {
        await c.query('ROLLBACK');
      }
    };
    expect(await attempt(member, "UPDATE memberships SET role = 'owner' WHERE user_id = $1", [member])).toBe('BW008');
    expect(await attempt(admin, "UPDATE memberships SET role = 'owner' WHERE user_id = $1", [admin])).toBe('BW008');
    expect(await attempt(admin, "UPDATE memberships SET role = 'member' WHERE user_id = $1", [w.ownerA])).toBe('BW008');
    // Memberships are revoked, never deleted: no role holds DELETE, and the delete function refuses the table.
    expect(await attempt(admin, 'DELETE FROM memberships WHERE user_id = $1', [w.ownerA])).toBe('42501');
    expect(
      await attempt(admin, "SELECT app.delete_tenant_rows('memberships', ARRAY(SELECT id FROM memberships))"),
    ).toBe('BW008');
    expect(await attempt(admin, "UPDATE memberships SET role = 'viewer' WHERE user_id = $1", [member])).toBe('rows:1');
    // A revoked key or grant stays revoked, whoever asks.
    await c.query('BEGIN');
    await authenticateAs(c, w.ownerA, w.storeA);
    await c.query('SELECT app.set_tenant_context($1, $2)', [w.ownerA, w.storeA]);
    const key = await c.query<{ id: string }>(
      "INSERT INTO api_keys (org_id, name, secret_hash, permissions) VALUES ($1, 'old', $2, ARRAY['leads:view']) RETURNING id",
      [w.storeA, Buffer.alloc(32)],
    );
    await c.query('UPDATE api_keys SET revoked_at = now() WHERE id = $1', [key.rows[0]!.id]);
    await c.query('COMMIT');
    expect(await attempt(w.ownerA, 'UPDATE api_keys SET revoked_at = NULL WHERE id = $1', [key.rows[0]!.id])).toBe(
      'BW008',
    );
    const grant = (await pg.superuser(
      "INSERT INTO support_grants (org_id, granted_to, reason, expires_at, revoked_at) VALUES ($1, $2, 'seeded and revoked', now() + interval '1 hour', now()) RETURNING id",
      [w.storeA, w.support],
    )) as { id: string }[];
    expect(
      await attempt(w.ownerA, 'UPDATE support_grants SET revoked_at = NULL, revoked_by = NULL WHERE id = $1', [
        grant[0]!.id,
      ]),
    ).toBe('BW008');
  });

  it('a replayed ticket of A never reaches B, and a function role cannot use another role’s gate', async () => {
    const c = await as(DATABASE_ROLES.app);
    const ticket = ticketFor(w.ownerA, w.storeA);
    for (let i = 0; i < 3; i++) {
      await c.query('BEGIN');
      await c.query('SELECT app.authenticate($1)', [ticket]);
      const e = await c.query('SELECT app.set_tenant_context($1, $2)', [w.ownerB, w.storeB]).then(
        () => null,
        (x: { code?: string }) => x.code,
      );
      await c.query('ROLLBACK');
      expect(e).toBe('BW011');
    }
    // The webhook, provisioner and lifecycle roles have no gate at all.
    for (const role of [DATABASE_ROLES.webhooks, DATABASE_ROLES.keyProvisioner, DATABASE_ROLES.lifecycle]) {
      const r = await as(role);
      const e = await r.query('SELECT app.authenticate($1)', [ticket]).then(
        () => null,
        (x: { code?: string }) => x.code,
      );
      expect({ role, e }).toEqual({ role, e: '42501' });
    }
  });

  /** Runs `sql` as `user` inside `org` (optionally under a support grant), rolled back; rows affected or the error code. */
  async function inContext(
    c: Client,
    user: string,
    org: string,
    sql: string,
    params: readonly unknown[] = [],
    grant: string | null = null,
  ): Promise<string | undefined> {
    await c.query('BEGIN');
    try {
      await authenticateAs(c, user, org);
      await c.query('SELECT app.set_tenant_context($1, $2, $3)', [user, org, grant]);
      return await c.query(sql, [...params]).then(
        (r) => `rows:${r.rowCount}`,
        (e: { code?: string }) => e.code,
      );
    } finally {
      await c.query('ROLLBACK');
    }
  }

  it('the domain grid holds in the database: a role without the permission cannot write, whatever SQL it sends', async () => {
    const c = await as(DATABASE_ROLES.app);
    const clerk = await createUser(pg);
    const viewer = await createUser(pg);
    const role = (await pg.superuser(
      "INSERT INTO custom_roles (org_id, name, permissions) VALUES ($1, 'clerk', ARRAY['leads:view','leads:create']) RETURNING id",
      [w.storeA],
    )) as { id: string }[];
    await pg.superuser(
      "INSERT INTO memberships (org_id, user_id, role, custom_role_id) VALUES ($1, $2, 'custom', $3), ($1, $4, 'viewer', NULL)",
      [w.storeA, clerk, role[0]!.id, viewer],
    );
    const lead = (await pg.superuser("INSERT INTO leads (org_id, name) VALUES ($1, 'grid probe') RETURNING id", [
      w.storeA,
    ])) as { id: string }[];
    const id = lead[0]!.id;
    const insert = ["INSERT INTO leads (org_id, name) VALUES ($1, 'x')", [w.storeA]] as const;
    const update = ["UPDATE leads SET name = 'changed' WHERE id = $1", [id]] as const;
    const remove = ["SELECT * FROM app.delete_tenant_rows('leads', ARRAY[$1]::uuid[])", [id]] as const;
    // The clerk creates but neither edits nor deletes; the Viewer only reads; the Owner does everything.
    expect(await inContext(c, clerk, w.storeA, ...insert)).toBe('rows:1');
    expect(await inContext(c, clerk, w.storeA, ...update)).toBe('rows:0');
    expect(await inContext(c, clerk, w.storeA, ...remove)).toBe('rows:0');
    expect(await inContext(c, viewer, w.storeA, ...insert)).toBe('42501');
    expect(await inContext(c, viewer, w.storeA, ...update)).toBe('rows:0');
    expect(await inContext(c, viewer, w.storeA, ...remove)).toBe('rows:0');
    expect(await inContext(c, viewer, w.storeA, 'SELECT 1 FROM leads WHERE id = $1', [id])).toBe('rows:1');
    expect(await inContext(c, w.ownerA, w.storeA, ...update)).toBe('rows:1');
    expect(await inContext(c, w.ownerA, w.storeA, ...remove)).toBe('rows:1');
    // Nor in another tenant, with every permission of its own.
    expect(await inContext(c, w.ownerB, w.storeB, ...remove)).toBe('rows:0');
    expect(await inContext(c, w.ownerB, w.storeB, update[0], update[1])).toBe('rows:0');
  });

  it('a membership is revoked with users:delete and changed with users:edit, as in the API', async () => {
    const c = await as(DATABASE_ROLES.app);
    const remover = await createUser(pg);
    const member = await createUser(pg);
    const role = (await pg.superuser(
      "INSERT INTO custom_roles (org_id, name, permissions) VALUES ($1, 'remover', ARRAY['users:view','users:delete']) RETURNING id",
      [w.storeA],
    )) as { id: string }[];
    await pg.superuser(
      "INSERT INTO memberships (org_id, user_id, role, custom_role_id) VALUES ($1, $2, 'custom', $3), ($1, $4, 'member', NULL)",
      [w.storeA, remover, role[0]!.id, member],
    );
    const revoke = "UPDATE memberships SET status = 'revoked', revoked_at = now() WHERE user_id = $1";
    expect(await inContext(c, remover, w.storeA, revoke, [member])).toBe('rows:1');
    expect(
      await inContext(c, remover, w.storeA, "UPDATE memberships SET role = 'viewer' WHERE user_id = $1", [member]),
    ).toBe('BW008');
    expect(
      await inContext(
        c,
        remover,
        w.storeA,
        "UPDATE memberships SET status = 'revoked', revoked_at = now(), role = 'viewer' WHERE user_id = $1",
        [member],
      ),
    ).toBe('BW008');
  });

  it('custom roles cannot escalate: no wider grid, no oversight from someone without it, no wider assignment', async () => {
    const c = await as(DATABASE_ROLES.app);
    const manager = await createUser(pg);
    const newcomer = await createUser(pg);
    const perms = ['settings:view', 'settings:create', 'settings:edit', 'users:view', 'users:create', 'users:edit'];
    const [own, wide, overseer] = (await pg.superuser(
      `INSERT INTO custom_roles (org_id, name, permissions, oversight) VALUES
         ($1, 'manager', $2, false), ($1, 'wide', ARRAY['leads:delete'], false), ($1, 'overseer', ARRAY['leads:view'], true)
       RETURNING id`,
      [w.group, [...perms, 'leads:view']],
    )) as { id: string }[];
    await pg.superuser(
      "INSERT INTO memberships (org_id, user_id, role, custom_role_id) VALUES ($1, $2, 'custom', $3)",
      [w.group, manager, own!.id],
    );
    const asManager = (sql: string, params: unknown[] = []) => inContext(c, manager, w.group, sql, params);
    const newRole = 'INSERT INTO custom_roles (org_id, name, permissions, oversight) VALUES ($1, $2, $3, $4)';
    expect(await asManager(newRole, [w.group, 'r1', ['leads:view'], false])).toBe('rows:1');
    expect(await asManager(newRole, [w.group, 'r2', ['leads:view'], true])).toBe('BW008');
    expect(await asManager(newRole, [w.group, 'r3', ['leads:delete'], false])).toBe('BW008');
    // Not onto their own role either (which would reach themself), nor by editing a wider role.
    expect(await asManager('UPDATE custom_roles SET oversight = true WHERE id = $1', [own!.id])).toBe('BW008');
    expect(await asManager("UPDATE custom_roles SET permissions = ARRAY['leads:view'] WHERE id = $1", [wide!.id])).toBe(
      'BW008',
    );
    const assign = "INSERT INTO memberships (org_id, user_id, role, custom_role_id) VALUES ($1, $2, 'custom', $3)";
    expect(await asManager(assign, [w.group, newcomer, overseer!.id])).toBe('BW008');
    expect(await asManager(assign, [w.group, newcomer, wide!.id])).toBe('BW008');
    expect(await asManager('UPDATE memberships SET custom_role_id = $2 WHERE user_id = $1', [manager, wide!.id])).toBe(
      'BW008',
    );
    // The group's Owner, who has oversight, may hand it out.
    expect(await inContext(c, w.groupOwner, w.group, newRole, [w.group, 'r4', ['leads:view'], true])).toBe('rows:1');
    expect(await inContext(c, w.groupOwner, w.group, assign, [w.group, newcomer, overseer!.id])).toBe('rows:1');
  });

  it('the tenant API reads no tenant’s key but its own writable context’s', async () => {
    const c = await as(DATABASE_ROLES.app);
    await pg.superuser(
      "UPDATE organisations SET kms_key_arn = 'arn:aws:kms:eu-west-1:111122223333:key/' || $2, kms_key_source = 'managed' WHERE id = $1 AND kms_key_arn IS NULL",
      [w.storeA, '0a1b2c3d-0000-4000-8000-00000000000a'],
    );
    expect(
      await c.query('SELECT * FROM app.tenant_status($1)', [w.storeA]).catch((e: { code?: string }) => e.code),
    ).toBe('42501');
    expect((await c.query('SELECT * FROM app.context_tenant_key()')).rowCount).toBe(0);
    const key = await asTenant(
      c,
      w.ownerA,
      w.storeA,
      async () => (await c.query('SELECT * FROM app.context_tenant_key()')).rows,
    );
    expect(key).toEqual([
      {
        org_id: w.storeA,
        key_arn: 'arn:aws:kms:eu-west-1:111122223333:key/0a1b2c3d-0000-4000-8000-00000000000a',
        key_source: 'managed',
      },
    ]);
    // Read-only oversight of store A from its group: no key (sealing is a write).
    const overseen = await asTenant(
      c,
      w.groupOwner,
      w.storeA,
      async () => (await c.query('SELECT * FROM app.context_tenant_key()')).rowCount,
    );
    expect(overseen).toBe(0);
  });

  it('no function role can LOCK any relation in a mode that blocks writes (generated from the catalog)', async () => {
    const relations = (
      (await pg.superuser(
        `SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname) AS rel
           FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast') AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
            AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = c.oid AND d.deptype = 'e')
          ORDER BY 1`,
      )) as { rel: string }[]
    ).map((r) => r.rel);
    expect(relations).toEqual(
      expect.arrayContaining(['public.leads', 'public.memberships', 'app_private.context_key']),
    );
    // Why it holds: table-level UPDATE, DELETE, TRUNCATE or MAINTAIN is what LOCK TABLE asks for; none is held.
    const held = (await pg.superuser(
      `SELECT r.rolname || ' ' || p || ' ' || c.oid::regclass AS g
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        CROSS JOIN unnest(ARRAY['UPDATE', 'DELETE', 'TRUNCATE', 'MAINTAIN']) p
        CROSS JOIN pg_roles r
        WHERE r.rolname = ANY ($1) AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')
          AND c.relkind IN ('r', 'p', 'v', 'm', 'f') AND has_table_privilege(r.oid, c.oid, p)`,
      [[...FUNCTION_ROLES]],
    )) as { g: string }[];
    expect(held.map((h) => h.g)).toEqual([]);
    const modes = ['SHARE UPDATE EXCLUSIVE', 'SHARE', 'SHARE ROW EXCLUSIVE', 'EXCLUSIVE', 'ACCESS EXCLUSIVE'];
    const locked: string[] = [];
    let tried = 0;
    for (const role of FUNCTION_ROLES) {
      const c = await as(role);
      await c.query('BEGIN');
      for (const rel of relations) {
        for (const mode of modes) {
          await c.query('SAVEPOINT l');
          const e = await c.query(`LOCK TABLE ${rel} IN ${mode} MODE NOWAIT`).then(
            () => null,
            (x: { code?: string }) => x.code,
          );
          await c.query('ROLLBACK TO SAVEPOINT l');
          tried++;
          if (e !== '42501') locked.push(`${role} ${rel} ${mode}: ${e ?? 'locked'}`);
        }
      }
      await c.query('ROLLBACK');
    }
    expect(locked).toEqual([]);
    expect(tried).toBe(FUNCTION_ROLES.length * relations.length * modes.length);
    // The check bites: column-level UPDATE does not let a role lock, table-level UPDATE does.
    await pg.superuser('CREATE TABLE public.lock_probe (id int, v int)');
    await pg.superuser(`GRANT UPDATE (v) ON public.lock_probe TO ${DATABASE_ROLES.app}`);
    const c = await as(DATABASE_ROLES.app);
    const lock = () =>
      c.query('BEGIN').then(() =>
        c
          .query('LOCK TABLE public.lock_probe IN SHARE ROW EXCLUSIVE MODE NOWAIT')
          .then(
            () => 'locked',
            (x: { code?: string }) => x.code,
          )
          .finally(() => c.query('ROLLBACK')),
      );
    expect(await lock()).toBe('42501');
    await pg.superuser(`GRANT UPDATE ON public.lock_probe TO ${DATABASE_ROLES.app}`);
    expect(await lock()).toBe('locked');
    await pg.superuser('DROP TABLE public.lock_probe');
  });

  it('side channels: no role can ALTER ROLE itself into privilege, LOCK tables, or read the dedup table unless it is the ingress', async () => {
    for (const role of FUNCTION_ROLES) {
      const c = await as(role);
      for (const sql of [
        `ALTER ROLE ${role} BYPASSRLS`,
        `ALTER ROLE ${role} CREATEROLE`,
        'LOCK TABLE organisations IN ACCESS EXCLUSIVE MODE',
        'LOCK TABLE app_private.context_key IN ACCESS EXCLUSIVE MODE',
        ...(role === DATABASE_ROLES.webhooks ? [] : ['SELECT * FROM webhook_event_dedup']),
      ]) {
        await c.query('BEGIN');
        const e = await c.query(sql).then(
          () => null,
          (x: { code?: string }) => x.code,
        );
        await c.query('ROLLBACK');
        expect({ role, sql, e }).toEqual({ role, sql, e: '42501' });
      }
      const settings = await c.query<{ name: string; setting: string }>(
        "SELECT name, setting FROM pg_settings WHERE name IN ('statement_timeout', 'lock_timeout', 'idle_in_transaction_session_timeout') ORDER BY name",
      );
      expect(settings.rows.every((s) => Number(s.setting) > 0)).toBe(true);
    }
  });
});
