/**
 * Applies versioned SQL migrations (`migrations/NNNN_name.sql`, read by contracts/migrations.ts) in order, each in its own
 * transaction, recorded with a checksum in `schema_migrations`. Applying is idempotent; a migration
 * whose file changed after it was applied is refused rather than silently skipped.
 *
 * Used by the deploy-time migration function and by the tests, so both apply the same SQL the same way.
 */
import type { Migration } from '../../contracts/migrations';

/** What the runner needs from a connection: `pg.Client` and `pg.PoolClient` both fit. */
export interface SqlClient {
  query(sql: string, params?: unknown[]): Promise<{ rows: Record<string, unknown>[] }>;
}

export interface MigrationResult {
  readonly applied: readonly number[];
  readonly skipped: readonly number[];
}

// Any constant works; it only has to be the same for every runner of this schema.
const LOCK_KEY = 0x6275_6c77;

export async function applyMigrations(client: SqlClient, migrations: readonly Migration[]): Promise<MigrationResult> {
  // Serialise concurrent runners (two deploys, or a retry overlapping a slow first attempt).
  await client.query('SELECT pg_advisory_lock($1)', [LOCK_KEY]);
  try {
    await client.query(`CREATE TABLE IF NOT EXISTS schema_migrations (
      version integer PRIMARY KEY,
      name text NOT NULL,
      checksum text NOT NULL,
      applied_at timestamptz NOT NULL DEFAULT now()
    )`);
    const done = new Map<number, string>();
    for (const r of (await client.query('SELECT version, checksum FROM schema_migrations')).rows) {
      done.set(Number(r['version']), String(r['checksum']));
    }
    const applied: number[] = [];
    const skipped: number[] = [];
    for (const m of [...migrations].sort((a, b) => a.version - b.version)) {
      const previous = done.get(m.version);
      if (previous !== undefined) {
        if (previous !== m.checksum) {
          throw new Error(
            `migration ${m.version}_${m.name} was changed after it was applied; add a new migration instead`,
          );
        }
        skipped.push(m.version);
        continue;
      }
      await client.query('BEGIN');
      try {
        await client.query(m.sql);
        await client.query('INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)', [
          m.version,
          m.name,
          m.checksum,
        ]);
        await client.query('COMMIT');
      } catch (e) {
        await client.query('ROLLBACK');
        throw new Error(`migration ${m.version}_${m.name} failed: ${(e as Error).message}`, { cause: e });
      }
      applied.push(m.version);
    }
    return { applied, skipped };
  } finally {
    await client.query('SELECT pg_advisory_unlock($1)', [LOCK_KEY]);
  }
}
