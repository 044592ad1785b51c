import { APP_ROLE, MIGRATOR_ROLE, startPostgres, type TestPostgres } from '../support/postgres';
import type { Migration } from '../../contracts/migrations';
import { applyMigrations } from '../../lambda/shared/migrations';
import { createHash } from 'node:crypto';

function migration(version: number, sql: string): Migration {
  return { version, name: `m${version}`, sql, checksum: createHash('sha256').update(sql).digest('hex') };
}

describe('PostgreSQL test harness and migration runner', () => {
  let pg: TestPostgres;
  beforeAll(async () => {
    pg = await startPostgres({ migrate: false });
  });
  afterAll(async () => pg?.stop());

  it('runs PostgreSQL 17 with an application role that is neither superuser nor BYPASSRLS', async () => {
    const c = await pg.client(APP_ROLE);
    try {
      const v = await c.query<{ server_version_num: string }>('SHOW server_version_num');
      expect(Number(v.rows[0]?.server_version_num)).toBeGreaterThanOrEqual(170000);
      const r = await c.query<{ rolsuper: boolean; rolbypassrls: boolean }>(
        'SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user',
      );
      expect(r.rows[0]).toEqual({ rolsuper: false, rolbypassrls: false });
    } finally {
      await c.end();
    }
  });

  it('applies migrations once, in order, and refuses an edited one', async () => {
    const c = await pg.client(MIGRATOR_ROLE);
    try {
      const first = [migration(2, 'CREATE TABLE t2 (id int)'), migration(1, 'CREATE TABLE t1 (id int)')];
      expect(await applyMigrations(c, first)).toEqual({ applied: [1, 2], skipped: [] });
      expect(await applyMigrations(c, first)).toEqual({ applied: [], skipped: [1, 2] });
      await expect(applyMigrations(c, [migration(1, 'CREATE TABLE t1 (id bigint)')])).rejects.toThrow(
        /was changed after it was applied/,
      );
    } finally {
      await c.end();
    }
  });

  it('rolls back a failing migration entirely', async () => {
    const c = await pg.client(MIGRATOR_ROLE);
    try {
      await expect(
        applyMigrations(c, [migration(3, 'CREATE TABLE t3 (id int); SELECT no_such_function()')]),
      ).rejects.toThrow(/migration 3_m3 failed/);
      const r = await c.query(
        "SELECT to_regclass('t3') AS t, (SELECT count(*) FROM schema_migrations WHERE version = 3) AS n",
      );
      expect(r.rows[0]).toEqual({ t: null, n: '0' });
    } finally {
      await c.end();
    }
  });
});
