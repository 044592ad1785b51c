import { AUDIT_PARAMETERS } from '../../lib/data/database';
import { startPostgres, type TestPostgres } from '../support/postgres';
import { defined } from '../support/defined';

/**
 * The parameter group is only applied by RDS at deploy time; checking every core PostgreSQL
 * setting against a real PostgreSQL 17 catches misspelt names and invalid values at test time.
 * `rds.*` (RDS-only) and `pgaudit.*` (extension) settings do not exist in stock PostgreSQL.
 */
describe('PostgreSQL parameter group against a real PostgreSQL 17', () => {
  let pg: TestPostgres;
  beforeAll(async () => {
    pg = await startPostgres({ migrate: false });
  });
  afterAll(async () => pg?.stop());

  const core = Object.entries(AUDIT_PARAMETERS).filter(([name]) => !/^(rds|pgaudit)\./.test(name));

  it('names only settings that exist', async () => {
    const rows = (await pg.superuser('SELECT name FROM pg_settings WHERE name = ANY($1)', [core.map(([n]) => n)])) as {
      name: string;
    }[];
    expect(rows.map((r) => r.name).sort()).toEqual(core.map(([n]) => n).sort());
  });

  it.each(core.filter(([name]) => name !== 'shared_preload_libraries'))(
    '%s = %s is a valid value',
    async (name, value) => {
      const [row] = (await pg.superuser('SELECT vartype, enumvals FROM pg_settings WHERE name = $1', [name])) as {
        vartype: string;
        enumvals: string[] | null;
      }[];
      expect(row).toBeDefined();
      if (defined(row).vartype === 'enum') expect(defined(row).enumvals).toContain(value);
      else if (defined(row).vartype === 'bool') expect(['0', '1', 'on', 'off']).toContain(value);
      else throw new Error(`unexpected type ${defined(row).vartype} for ${name}`);
    },
  );

  it('requires TLS 1.2 or later and SCRAM passwords', () => {
    expect(AUDIT_PARAMETERS['rds.force_ssl']).toBe('1');
    expect(AUDIT_PARAMETERS.ssl_min_protocol_version).toBe('TLSv1.2');
    expect(AUDIT_PARAMETERS.password_encryption).toBe('scram-sha-256');
  });
});
