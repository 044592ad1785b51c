/**
 * The cross-tenant matrix, generated from the catalog: every tenant table x operation x context.
 * Each case runs in its own transaction on ONE application-role connection (so the "previous
 * transaction" context is real), and is rolled back.
 */
import type { Client } from 'pg';
import { randomUUID } from 'node:crypto';
import type { TestPostgres } from '../support/postgres';
import { APP, foreignKeys, tenantTables, type ForeignKey } from './catalog';
import { defined } from '../support/defined';
import { authenticateAs, createUser } from './fixtures';

export const OPERATIONS = ['select', 'insert', 'update', 'rehome', 'delete'] as const;
/** Read-only contexts in `me`'s organisation: every write must fail there, every read succeed. */
export const READ_ONLY_CONTEXTS = ['read_grant', 'oversight', 'viewer'] as const;
export const CONTEXTS = ['own', 'other', 'unset', 'empty', 'forged', 'previous', ...READ_ONLY_CONTEXTS] as const;
export type Operation = (typeof OPERATIONS)[number];
export type Context = (typeof CONTEXTS)[number];

export interface MatrixCase {
  readonly table: string;
  readonly op: Operation;
  readonly ctx: Context;
  /** What the database did: rows affected, or the error code it refused with. */
  readonly outcome: Outcome;
}

export interface Tenant {
  readonly org: string;
  readonly user: string;
}

/**
 * Who enters `me`'s organisation read-only: a support engineer under a live `read` grant, an
 * Owner of an ancestor dealer group (oversight), and a Viewer member of the store itself.
 */
export interface ReadOnlyActors {
  readonly support: string;
  readonly readGrant: string;
  readonly overseer: string;
  readonly viewer: string;
}

/** Sets up the read-only actors for `org` (a Viewer and a `read` grant; `overseer` must own an ancestor). */
export async function readOnlyActors(
  pg: TestPostgres,
  org: string,
  overseer: string,
  support: string,
): Promise<ReadOnlyActors> {
  const viewer = await createUser(pg);
  await su(pg, "INSERT INTO memberships (org_id, user_id, role) VALUES ($1, $2, 'viewer')", [org, viewer]);
  const grant = await su<{ id: string }>(
    pg,
    "INSERT INTO support_grants (org_id, granted_to, reason, scope, expires_at) VALUES ($1, $2, 'matrix read-only grant', 'read', now() + interval '4 hours') RETURNING id",
    [org, support],
  );
  return { support, readGrant: defined(grant[0]).id, overseer, viewer };
}

/**
 * Writes a read-only context may still make: its own audit trail (actions taken read-only are
 * audited in the context's organisation, migrations/0100 `audit_append_in_context`).
 */
const READ_ONLY_EXEMPT = new Set(['audit_log insert']);

export interface MatrixResult {
  readonly cases: readonly MatrixCase[];
  readonly failures: readonly string[];
}

type Row = Record<string, unknown>;

interface TablePlan {
  readonly table: string;
  /** UPDATE: any column; DELETE: through app.delete_tenant_rows (no role holds DELETE, migrations/0403). */
  readonly privileges: Readonly<Record<'SELECT' | 'INSERT' | 'UPDATE' | 'DELETE', boolean>>;
  /** A column the application may update (the update case sets it to itself), if any. */
  readonly updatable: string | undefined;
  /** The columns the application may insert (a column grant names only some: the rest default). */
  readonly insertable: readonly string[];
  /** Whether the application may update org_id (it never may). */
  readonly rehomable: boolean;
  /** Per org: a row anyone may point at, and a row nothing references (safe to delete). */
  readonly anchor: Readonly<Record<string, Row>>;
  readonly spare: Readonly<Record<string, Row>>;
  readonly fks: readonly ForeignKey[];
}

const GUC_NAMES = ['app.org_id', 'app.current_org_id', 'app.tenant_id', 'bulwark.org_id', 'request.jwt.claim.org_id'];
const REFUSED = /^(42501|BW0\d\d)$/;

async function su<T extends Row>(pg: TestPostgres, sql: string, params: unknown[] = []): Promise<T[]> {
  return (await pg.superuser(sql, params)) as T[];
}

async function plan(pg: TestPostgres, app: Client, tenants: readonly Tenant[]): Promise<TablePlan[]> {
  const tables = await tenantTables(app);
  const allFks = await foreignKeys(app);
  const plans: TablePlan[] = [];
  for (const table of tables) {
    const q = `"${table.replace(/"/g, '""')}"`;
    const privileges = { SELECT: false, INSERT: false, UPDATE: false, DELETE: false };
    // Column grants count (the vault's API role reads its metadata columns only, migrations/0409).
    for (const p of ['SELECT', 'INSERT'] as const) {
      privileges[p] = defined(
        (
          await su<{ g: boolean }>(pg, `SELECT has_any_column_privilege($1, $2::regclass, $3) AS g`, [
            APP,
            `public.${q}`,
            p,
          ])
        )[0],
      ).g;
    }
    const cols = await su<{ col: string }>(
      pg,
      `SELECT a.attname AS col FROM pg_attribute a
        WHERE a.attrelid = $2::regclass AND a.attnum > 0 AND NOT a.attisdropped
          AND has_column_privilege($1, a.attrelid, a.attnum, 'UPDATE') ORDER BY a.attnum`,
      [APP, `public.${q}`],
    );
    privileges.UPDATE = cols.length > 0;
    const insertable = (
      await su<{ col: string }>(
        pg,
        `SELECT a.attname AS col FROM pg_attribute a
          WHERE a.attrelid = $2::regclass AND a.attnum > 0 AND NOT a.attisdropped
            AND has_column_privilege($1, a.attrelid, a.attnum, 'INSERT') ORDER BY a.attnum`,
        [APP, `public.${q}`],
      )
    ).map((c) => c.col);
    privileges.DELETE = defined(
      (
        await su<{ g: boolean }>(
          pg,
          'SELECT EXISTS (SELECT 1 FROM app_private.deletable_tables d WHERE d.tbl = $1::regclass) AS g',
          [`public.${q}`],
        )
      )[0],
    ).g;
    const updatable = cols[0]?.col;
    const rehomable = cols.some((c) => c.col === 'org_id');
    // Rows of `table` nothing points at, from every foreign key that references it.
    const referencing = allFks.filter((f) => f.refTable === table);
    const unreferenced = referencing
      .map(
        (f, i) =>
          `NOT EXISTS (SELECT 1 FROM public."${f.table}" r${i} WHERE ${f.columns
            .map((col, k) => `r${i}."${col}" = t."${f.refColumns[k]}"`)
            .join(' AND ')})`,
      )
      .join(' AND ');
    const anchor: Record<string, Row> = {};
    const spare: Record<string, Row> = {};
    for (const { org } of tenants) {
      const a = await su(pg, `SELECT to_jsonb(t) AS j FROM public.${q} t WHERE org_id = $1 ORDER BY id LIMIT 1`, [org]);
      const s = await su(
        pg,
        `SELECT to_jsonb(t) AS j FROM public.${q} t WHERE org_id = $1 ${unreferenced ? `AND ${unreferenced}` : ''} ORDER BY id DESC LIMIT 1`,
        [org],
      );
      if (!a[0] || !s[0]) {
        throw new Error(`tenant table ${table} has no seed rows for ${org}: add it to test/tenant-guard/seed.ts`);
      }
      anchor[org] = a[0]['j'] as Row;
      spare[org] = s[0]['j'] as Row;
    }
    plans.push({
      table,
      privileges,
      updatable,
      insertable,
      rehomable,
      anchor,
      spare,
      fks: allFks.filter((f) => f.table === table),
    });
  }
  return plans;
}

/**
 * A new row for `target` org, copied from `source`'s anchor row: fresh id, tenant foreign keys
 * re-pointed at the target org's rows. Other unique values (emails, VINs, names) come from the source
 * tenant's seed, which the target tenant does not hold, so only RLS can refuse the row.
 */
function newRow(p: TablePlan, plans: readonly TablePlan[], source: string, target: string): Row {
  const row: Row = { ...defined(p.anchor[source]), id: randomUUID(), org_id: target };
  for (const fk of p.fks) {
    if (!fk.columns.includes('org_id')) continue;
    const ref = plans.find((x) => x.table === fk.refTable)?.anchor[target];
    fk.columns.forEach((col, k) => {
      if (col === 'org_id' || row[col] === null || row[col] === undefined) return;
      if (!ref) throw new Error(`${p.table}.${col}: no ${fk.refTable} row for the target org`);
      row[col] = ref[defined(fk.refColumns[k])];
    });
  }
  return row;
}

export interface Outcome {
  readonly rows?: number;
  readonly code?: string;
}

async function attempt(app: Client, sql: string, params: unknown[]): Promise<Outcome> {
  await app.query('SAVEPOINT op');
  try {
    const r = await app.query(sql, params);
    await app.query('RELEASE SAVEPOINT op');
    return { rows: r.rowCount ?? 0 };
  } catch (e) {
    await app.query('ROLLBACK TO SAVEPOINT op');
    return { code: (e as { code?: string }).code ?? 'unknown' };
  }
}

/**
 * Runs every case. `me` and `them` are two unrelated stores (each with an Owner); the acting user
 * is always `me.user`.
 */
export async function runMatrix(
  pg: TestPostgres,
  app: Client,
  me: Tenant,
  them: Tenant,
  readers: ReadOnlyActors,
): Promise<MatrixResult> {
  const plans = await plan(pg, app, [me, them]);
  const cases: MatrixCase[] = [];
  const failures: string[] = [];

  for (const p of plans) {
    const q = `public."${p.table.replace(/"/g, '""')}"`;
    for (const op of OPERATIONS) {
      for (const ctx of CONTEXTS) {
        // The row the operation targets: the other tenant's for `other`, otherwise our own
        // (which only a verified context for `me` may touch).
        const victim = ctx === 'other' ? them.org : me.org;
        const allowed = ctx === 'own';
        const readOnly = (READ_ONLY_CONTEXTS as readonly string[]).includes(ctx);

        if (ctx === 'previous') {
          await app.query('BEGIN');
          await authenticateAs(app, me.user, me.org);
          await app.query('SELECT app.set_tenant_context($1, $2)', [me.user, me.org]);
          await app.query('COMMIT');
        }
        await app.query('BEGIN');
        try {
          if (ctx === 'own' || ctx === 'other') {
            await authenticateAs(app, me.user, me.org);
            await app.query('SELECT app.set_tenant_context($1, $2)', [me.user, me.org]);
          } else if (readOnly) {
            const [who, grant] =
              ctx === 'read_grant'
                ? [readers.support, readers.readGrant]
                : [ctx === 'oversight' ? readers.overseer : readers.viewer, null];
            await authenticateAs(app, who, me.org);
            await app.query('SELECT app.set_tenant_context($1, $2, $3)', [who, me.org, grant]);
          } else if (ctx === 'empty' || ctx === 'forged') {
            for (const name of GUC_NAMES) {
              await app.query('SELECT set_config($1, $2, true)', [name, ctx === 'empty' ? '' : me.org]);
            }
          }
          let outcome: Outcome;
          let expectRows: number;
          let priv: boolean;
          switch (op) {
            case 'select':
              priv = p.privileges.SELECT;
              outcome = await attempt(app, `SELECT 1 FROM ${q} WHERE id = $1`, [defined(p.anchor[victim])['id']]);
              expectRows = 1;
              break;
            case 'insert': {
              priv = p.privileges.INSERT;
              const source = victim === me.org ? them.org : me.org;
              const row = newRow(p, plans, source, victim);
              // Every column the role may insert (all of them, unless a column grant names fewer).
              const columns = p.insertable.length > 0 ? p.insertable.map((c) => `"${c.replace(/"/g, '""')}"`) : ['*'];
              const list = columns.join(', ');
              outcome = await attempt(
                app,
                `INSERT INTO ${q} ${columns[0] === '*' ? '' : `(${list}) `}SELECT ${list} FROM jsonb_populate_record(NULL::${q}, $1)`,
                [JSON.stringify(row)],
              );
              expectRows = 1;
              break;
            }
            case 'update': {
              priv = p.privileges.UPDATE;
              const col = `"${(p.updatable ?? 'org_id').replace(/"/g, '""')}"`;
              outcome = await attempt(app, `UPDATE ${q} SET ${col} = ${col} WHERE id = $1`, [
                defined(p.anchor[victim])['id'],
              ]);
              expectRows = 1;
              break;
            }
            case 'rehome':
              // Moving a row into another tenant is never allowed, not even from a verified context
              // (no role may even update org_id).
              priv = p.rehomable;
              outcome = await attempt(app, `UPDATE ${q} SET org_id = $2 WHERE id = $1`, [
                defined(p.anchor[victim])['id'],
                victim === me.org ? them.org : me.org,
              ]);
              expectRows = 0;
              break;
            case 'delete':
              priv = p.privileges.DELETE;
              outcome = priv
                ? await attempt(app, 'SELECT * FROM app.delete_tenant_rows($1::regclass, ARRAY[$2]::uuid[])', [
                    q,
                    defined(p.spare[victim])['id'],
                  ])
                : await attempt(app, `DELETE FROM ${q} WHERE id = $1`, [defined(p.spare[victim])['id']]);
              expectRows = 1;
              break;
          }
          // Recorded only once the operation really ran, so a case that never executes is missing.
          cases.push({ table: p.table, op, ctx, outcome });
          const label = `${p.table} ${op} ${ctx}`;
          if (!priv) {
            if (!outcome.code || !REFUSED.test(outcome.code)) {
              failures.push(`${label}: ${APP} lacks the privilege, expected refusal, got ${JSON.stringify(outcome)}`);
            }
          } else if (op === 'rehome' && allowed) {
            if (!outcome.code || !REFUSED.test(outcome.code)) {
              failures.push(`${label}: expected refusal, got ${JSON.stringify(outcome)}`);
            }
          } else if (readOnly && op === 'select') {
            // What it reads depends on its grid (rls.test.ts checks the reads); it never errs.
            if (outcome.rows === undefined || outcome.rows > 1) {
              failures.push(`${label}: expected a read, got ${JSON.stringify(outcome)}`);
            }
          } else if (allowed) {
            if (outcome.rows !== expectRows)
              failures.push(`${label}: expected ${expectRows} row(s), got ${JSON.stringify(outcome)}`);
          } else if (readOnly && READ_ONLY_EXEMPT.has(`${p.table} ${op}`)) {
            // Recorded above; not a write to tenant data.
          } else if (op === 'insert') {
            if (!outcome.code || !REFUSED.test(outcome.code)) {
              failures.push(`${label}: expected refusal, got ${JSON.stringify(outcome)}`);
            }
          } else if (outcome.rows !== 0 && !(outcome.code && REFUSED.test(outcome.code))) {
            failures.push(`${label}: expected nothing, got ${JSON.stringify(outcome)}`);
          }
        } finally {
          await app.query('ROLLBACK');
        }
      }
    }
  }
  return { cases, failures };
}
