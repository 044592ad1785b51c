/**
 * Everything the RLS suites know about the schema is read from the PostgreSQL catalog, so a table
 * added by any migration is discovered, checked and attacked without editing the tests.
 */
import type { ClientBase } from 'pg';
import { defined } from '../support/defined';
import { FUNCTION_ROLES } from '../../contracts/database';
import { MODULES } from '../../lambda/tenant-guard/permissions';

export const APP = 'bulwark_app';

/** Tables in `public` with an `org_id` column: the tenant tables. */
export async function tenantTables(c: ClientBase): Promise<string[]> {
  const r = await c.query<{ t: string }>(
    `SELECT c.relname AS t FROM pg_class c
       JOIN pg_namespace n ON n.oid = c.relnamespace
       JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'org_id' AND NOT a.attisdropped
      WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')
      ORDER BY 1`,
  );
  return r.rows.map((x) => x.t);
}

export interface ForeignKey {
  readonly name: string;
  readonly table: string;
  readonly columns: readonly string[];
  readonly refTable: string;
  readonly refColumns: readonly string[];
}

export async function foreignKeys(c: ClientBase): Promise<ForeignKey[]> {
  const r = await c.query<{ name: string; tbl: string; cols: string[]; ref: string; refcols: string[] }>(
    `SELECT con.conname AS name, cl.relname AS tbl, rc.relname AS ref,
            ARRAY(SELECT a.attname FROM unnest(con.conkey) WITH ORDINALITY k(n, i)
                   JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.n ORDER BY k.i)::text[] AS cols,
            ARRAY(SELECT a.attname FROM unnest(con.confkey) WITH ORDINALITY k(n, i)
                   JOIN pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.n ORDER BY k.i)::text[] AS refcols
       FROM pg_constraint con
       JOIN pg_class cl ON cl.oid = con.conrelid
       JOIN pg_class rc ON rc.oid = con.confrelid
       JOIN pg_namespace n ON n.oid = cl.relnamespace
      WHERE con.contype = 'f' AND n.nspname = 'public'`,
  );
  return r.rows.map((x) => ({ name: x.name, table: x.tbl, columns: x.cols, refTable: x.ref, refColumns: x.refcols }));
}

export interface UniqueIndex {
  readonly table: string;
  readonly index: string;
  readonly columns: readonly string[];
  readonly primary: boolean;
}

export async function uniqueIndexes(c: ClientBase, table: string): Promise<UniqueIndex[]> {
  const r = await c.query<{ index: string; cols: string[]; primary: boolean }>(
    `SELECT ic.relname AS index, i.indisprimary AS primary,
            ARRAY(SELECT a.attname FROM unnest(i.indkey::int2[]) WITH ORDINALITY k(n, o)
                   JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.n ORDER BY k.o)::text[] AS cols
       FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid
      WHERE i.indrelid = ('public.' || quote_ident($1))::regclass AND i.indisunique`,
    [table],
  );
  return r.rows.map((x) => ({ table, index: x.index, columns: x.cols, primary: x.primary }));
}

/** The column naming the agent who handled a row: Members and Viewers see only their own (migrations/0410). */
export const AGENT_COLUMN = 'agent_user_id';

/**
 * Tenant tables scoped to the agent: those with an `agent_user_id` column, and (transitively)
 * those whose rows belong to such a row through a tenant foreign key (a call's recordings).
 */
export async function agentScopedTables(c: ClientBase): Promise<{ table: string; parent: string | null }[]> {
  const tables = await tenantTables(c);
  const withAgent = await c.query<{ t: string }>(
    `SELECT c.relname AS t FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
       JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = $1 AND NOT a.attisdropped
      WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')`,
    [AGENT_COLUMN],
  );
  const out = withAgent.rows
    .filter((r) => tables.includes(r.t))
    .map((r) => ({ table: r.t, parent: null as string | null }));
  const fks = await foreignKeys(c);
  for (let grew = true; grew;) {
    grew = false;
    for (const fk of fks) {
      if (!fk.columns.includes('org_id') || fk.columns.includes(AGENT_COLUMN)) continue;
      if (out.some((o) => o.table === fk.refTable) && !out.some((o) => o.table === fk.table)) {
        out.push({ table: fk.table, parent: fk.refTable });
        grew = true;
      }
    }
  }
  return out.sort((a, b) => a.table.localeCompare(b.table));
}

/** Every way the schema breaks the tenancy contract (docs/tenancy.md); empty when sound. */
export async function catalogProblems(c: ClientBase): Promise<string[]> {
  const problems: string[] = [];
  const tables = await tenantTables(c);
  if (tables.length === 0) problems.push('no tenant tables found');
  for (const t of tables) {
    const rel = defined(
      (
        await c.query<{ rls: boolean; force: boolean; owner: string; notnull: boolean; typ: string }>(
          `SELECT c.relrowsecurity AS rls, c.relforcerowsecurity AS force, pg_get_userbyid(c.relowner) AS owner,
                a.attnotnull AS notnull, format_type(a.atttypid, a.atttypmod) AS typ
           FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'org_id'
          WHERE c.oid = ('public.' || quote_ident($1))::regclass`,
          [t],
        )
      ).rows[0],
    );
    if (!rel.rls) problems.push(`${t}: row level security not enabled`);
    if (!rel.force) problems.push(`${t}: row level security not forced`);
    if (rel.owner === APP) problems.push(`${t}: owned by the application role`);
    if (!rel.notnull || rel.typ !== 'uuid') problems.push(`${t}: org_id must be uuid NOT NULL`);

    const led = await c.query(
      `SELECT 1 FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
        WHERE i.indrelid = ('public.' || quote_ident($1))::regclass AND a.attname = 'org_id' AND i.indisvalid`,
      [t],
    );
    if (led.rowCount === 0) problems.push(`${t}: no index led by org_id`);

    for (const u of await uniqueIndexes(c, t)) {
      const pkOnId = u.primary && u.columns.length === 1 && u.columns[0] === 'id';
      if (!pkOnId && u.columns[0] !== 'org_id') {
        problems.push(`${t}: unique index ${u.index} (${u.columns.join(', ')}) does not lead with org_id`);
      }
    }

    // Every command the app may run must be covered by a policy that reads the gate.
    const policies = await c.query<{ name: string; cmd: string; roles: string[]; qual: string; check: string }>(
      `SELECT policyname AS name, cmd, roles::text[] AS roles, coalesce(qual, '') AS qual,
              coalesce(with_check, '') AS check
         FROM pg_policies WHERE schemaname = 'public' AND tablename = $1`,
      [t],
    );
    for (const p of policies.rows) {
      const appliesToApp = p.roles.includes('public') || p.roles.includes(APP);
      const expr = `${p.qual} ${p.check}`;
      if (
        appliesToApp &&
        !/app\.(readable_org_ids|writable_org_id|current_org_id|owner_org_id)\(\)|app\.grid_(writable_)?org_id\('/.test(
          expr,
        )
      ) {
        problems.push(`${t}: policy ${p.name} does not compare with the tenant context`);
      }
      // Domain tables (named after their module) check the context's grid in every tenant policy.
      if (
        (MODULES as readonly string[]).includes(t) &&
        p.name.startsWith('tenant_') &&
        !/app\.grid_(writable_)?org_id\('/.test(expr)
      ) {
        problems.push(`${t}: policy ${p.name} does not check the grid`);
      }
    }
    // Agent-scoped tables: every tenant policy lets Members and Viewers reach their own rows only.
    const scoped = (await agentScopedTables(c)).find((x) => x.table === t);
    for (const p of scoped ? policies.rows.filter((x) => x.name.startsWith('tenant_')) : []) {
      const expr = `${p.qual} ${p.check}`;
      const own = scoped?.parent
        ? new RegExp(`FROM (public\\.)?${scoped.parent} `).test(expr)
        : /app\.context_reads_all_agents\(\)/.test(expr) &&
          new RegExp(`${AGENT_COLUMN} = \\( SELECT app\\.current_user_id\\(\\)`).test(expr);
      if (!own) problems.push(`${t}: policy ${p.name} does not scope rows to their agent`);
    }
    for (const [priv, cmd] of [
      ['SELECT', 'SELECT'],
      ['INSERT', 'INSERT'],
      ['UPDATE', 'UPDATE'],
      ['DELETE', 'DELETE'],
    ] as const) {
      // Column grants count for UPDATE (the function roles' UPDATE is column-level: migrations/0403).
      const granted = defined(
        (
          await c.query<{ g: boolean }>(
            `SELECT CASE WHEN $3 = 'DELETE' THEN has_table_privilege($1, ('public.' || quote_ident($2))::regclass, $3)
                         ELSE has_any_column_privilege($1, ('public.' || quote_ident($2))::regclass, $3) END AS g`,
            [APP, t, priv],
          )
        ).rows[0],
      ).g;
      const covered = policies.rows.some(
        (p) => (p.cmd === cmd || p.cmd === 'ALL') && (p.roles.includes('public') || p.roles.includes(APP)),
      );
      if (granted && !covered) problems.push(`${t}: ${priv} granted to ${APP} without a tenant policy`);
    }
    const publicGrant = await c.query(
      `SELECT 1 FROM information_schema.role_table_grants WHERE table_schema = 'public' AND table_name = $1 AND grantee = 'PUBLIC'`,
      [t],
    );
    if ((publicGrant.rowCount ?? 0) > 0) problems.push(`${t}: privileges granted to PUBLIC`);
  }

  // LOCK TABLE in a mode that blocks writes needs one of these at table level: no function role holds any.
  const lockers = await c.query<{ g: string }>(
    `SELECT r.rolname || ' ' || p || ' ' || cl.oid::regclass AS g
       FROM pg_class cl JOIN pg_namespace n ON n.oid = cl.relnamespace
      CROSS JOIN unnest(ARRAY['UPDATE', 'DELETE', 'TRUNCATE', 'MAINTAIN']) p
      CROSS JOIN pg_roles r
      WHERE r.rolname = ANY ($1) AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')
        AND cl.relkind IN ('r', 'p', 'v', 'm', 'f') AND has_table_privilege(r.oid, cl.oid, p)
      ORDER BY 1`,
    [[...FUNCTION_ROLES]],
  );
  for (const l of lockers.rows) problems.push(`table-level privilege lets a function role lock: ${l.g}`);

  const views = await c.query<{ v: string }>(
    `SELECT c.relname AS v FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname IN ('public', 'app') AND c.relkind IN ('v', 'm')
        AND NOT coalesce('security_invoker=true' = ANY (c.reloptions), false)`,
  );
  for (const v of views.rows) problems.push(`view ${v.v} is not security_invoker`);

  const definers = await c.query<{ f: string }>(
    `SELECT p.oid::regprocedure::text AS f FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
      WHERE n.nspname IN ('public', 'app') AND p.prosecdef
        AND NOT EXISTS (SELECT 1 FROM unnest(coalesce(p.proconfig, ARRAY[]::text[])) s
                         WHERE s LIKE 'search_path=%' AND s NOT LIKE '%public%' AND s NOT LIKE '%"$user"%')`,
  );
  for (const f of definers.rows) problems.push(`SECURITY DEFINER ${f.f} does not pin a safe search_path`);

  const role = (
    await c.query<{ rolsuper: boolean; rolbypassrls: boolean }>(
      'SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = $1',
      [APP],
    )
  ).rows[0];
  if (!role || role.rolsuper || role.rolbypassrls) problems.push(`${APP} is superuser or bypasses RLS`);
  return problems;
}
