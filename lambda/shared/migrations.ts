/**
 * Versioned SQL migrations: `migrations/NNNN_name.sql`, applied in order, each in its own
 * transaction, recorded with a checksum in `schema_migrations`. Applying is idempotent; a migration
 * whose file changed after it was applied is refused rather than silently skipped.
 *
 * Used by the deploy-time migration function and by the tests, so both apply the same SQL the same way.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';

export interface Migration {
  readonly version: number;
  readonly name: string;
  readonly sql: string;
  readonly checksum: string;
}

/** What the runner needs from a connection: `pg.Client` and `pg.PoolClient` both fit. */
export interface SqlClient {
  query(sql: string, params?: unknown[]): Promise<{ rows: Record<string, unknown>[] }>;
}

const FILE = /^(\d{4})_([a-z0-9_]+)\.sql$/;

export const DEFAULT_MIGRATIONS_DIR = path.join(__dirname, '..', '..', 'migrations');

export function loadMigrations(dir: string = DEFAULT_MIGRATIONS_DIR): Migration[] {
  const out: Migration[] = [];
  for (const file of fs.readdirSync(dir).sort()) {
    if (!file.endsWith('.sql')) continue;
    const m = FILE.exec(file);
    if (!m || !m[1] || !m[2]) throw new Error(`migrations/${file}: name must be NNNN_lower_snake.sql`);
    const sql = fs.readFileSync(path.join(dir, file), 'utf8');
    out.push({
      version: Number(m[1]),
      name: m[2],
      sql,
      checksum: createHash('sha256').update(sql).digest('hex'),
    });
  }
  const versions = new Set<number>();
  for (const m of out) {
    if (versions.has(m.version)) throw new Error(`migrations: version ${m.version} is used twice`);
    versions.add(m.version);
  }
  return out;
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
