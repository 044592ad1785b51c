/**
 * Reading the versioned SQL migrations (`migrations/NNNN_name.sql`) and their checksums. The CDK
 * app puts the checksums in the schema resource's properties (a changed file re-runs it); the
 * migration function applies the same files (lambda/shared/migrations.ts). Node.js built-ins only.
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

const FILE = /^(\d{4})_([a-z0-9_]+)\.sql$/;

/** The repository's migrations folder (the migration function bundles a copy next to itself). */
export const DEFAULT_MIGRATIONS_DIR = path.join(__dirname, '..', 'migrations');

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
