/**
 * The deploy-time migration custom resource against a real PostgreSQL, with the superuser as the
 * stand-in RDS master: bootstraps the login roles from their secrets, applies the repository's
 * migrations as the schema owner, is idempotent, never puts a password in SQL text or responses,
 * and reports failures to CloudFormation.
 */
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import type { CloudFormationCustomResourceEvent } from 'aws-lambda';
import { mockClient } from 'aws-sdk-client-mock';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Client } from 'pg';
import { DEFAULT_MIGRATIONS_DIR } from '../../contracts/migrations';
import { DATABASE_ROLES, FUNCTION_ROLES } from '../../contracts/database';
import { bootstrapRoles, scramVerifier } from '../../lambda/tenant-guard/bootstrap';
import { RecordingLog } from '../support/observability';
import { migrate } from '../../lambda/tenant-guard/migrate';
import { startPostgres, type TestPostgres } from '../support/postgres';
import { defined } from '../support/defined';

const ARN = {
  master: 'arn:aws:secretsmanager:eu-west-1:111111111111:secret:master',
  migrator: 'arn:aws:secretsmanager:eu-west-1:111111111111:secret:migrator',
  app: 'arn:aws:secretsmanager:eu-west-1:111111111111:secret:app',
  auditShipper: 'arn:aws:secretsmanager:eu-west-1:111111111111:secret:shipper',
  webhooks: 'arn:aws:secretsmanager:eu-west-1:111111111111:secret:webhooks',
  keyProvisioner: 'arn:aws:secretsmanager:eu-west-1:111111111111:secret:provisioner',
  lifecycle: 'arn:aws:secretsmanager:eu-west-1:111111111111:secret:lifecycle',
  fileChecker: 'arn:aws:secretsmanager:eu-west-1:111111111111:secret:file-checker',
  gateKey: 'arn:aws:secretsmanager:eu-west-1:111111111111:secret:gate',
};
const GATE_KEY = 'g'.repeat(64);

describe('migration custom resource', () => {
  let pg: TestPostgres;
  const sm = mockClient(SecretsManagerClient);
  /** Every SQL text the resource sent, to prove no password is ever in one. */
  const sent: string[] = [];
  /** Everything the resource logged, to prove no password is ever in it. */
  const log = new RecordingLog();
  beforeAll(async () => {
    pg = await startPostgres({ migrate: false, ownServer: true });
    // The bootstrap creates a role that does not exist yet (the shipper's), and re-aligns the others.
    await pg.superuser('DROP OWNED BY bulwark_audit_shipper');
    await pg.superuser('DROP ROLE bulwark_audit_shipper');
  });
  afterAll(async () => pg?.stop());

  const passwords = {
    migrator: 'migrator-password-0123456789abcdef',
    app: 'app-password-0123456789abcdefghij',
    auditShipper: 'shipper-password-0123456789abcdef',
    webhooks: 'webhooks-password-0123456789abcdef',
    keyProvisioner: 'provisioner-password-0123456789abcd',
    lifecycle: 'lifecycle-password-0123456789abcdef',
    fileChecker: 'file-checker-password-0123456789abcd',
  };
  function secrets(over: Partial<Record<keyof typeof ARN, { username: string; password: string }>> = {}): void {
    sm.reset();
    const all = {
      master: { username: 'postgres', password: 'test-only-password' },
      migrator: { username: DATABASE_ROLES.migrator, password: passwords.migrator },
      app: { username: DATABASE_ROLES.app, password: passwords.app },
      auditShipper: { username: DATABASE_ROLES.auditShipper, password: passwords.auditShipper },
      webhooks: { username: DATABASE_ROLES.webhooks, password: passwords.webhooks },
      keyProvisioner: { username: DATABASE_ROLES.keyProvisioner, password: passwords.keyProvisioner },
      lifecycle: { username: DATABASE_ROLES.lifecycle, password: passwords.lifecycle },
      fileChecker: { username: DATABASE_ROLES.fileChecker, password: passwords.fileChecker },
      gateKey: { key: GATE_KEY },
      ...over,
    };
    for (const k of Object.keys(ARN) as (keyof typeof ARN)[]) {
      sm.on(GetSecretValueCommand, { SecretId: ARN[k] }).resolves({ SecretString: JSON.stringify(all[k]) });
    }
  }

  const event = (type: 'Create' | 'Update' | 'Delete'): CloudFormationCustomResourceEvent =>
    ({
      RequestType: type,
      ResponseURL: 'https://cloudformation-custom-resource-response.example/put',
      StackId: 'arn:aws:cloudformation:eu-west-1:111111111111:stack/Guard/1',
      RequestId: 'r1',
      LogicalResourceId: 'Schema',
      ResourceType: 'Custom::BulwarkSchema',
      ServiceToken: 'arn:aws:lambda:eu-west-1:111111111111:function:x',
      ResourceProperties: { ServiceToken: 'x' },
    }) as unknown as CloudFormationCustomResourceEvent;

  async function run(type: 'Create' | 'Update' | 'Delete', dir = DEFAULT_MIGRATIONS_DIR) {
    const responses: Record<string, unknown>[] = [];
    await migrate(
      event(type),
      {
        DB_HOST: '127.0.0.1',
        DB_PORT: pg.port,
        DB_NAME: pg.database,
        MASTER_SECRET_ARN: ARN.master,
        MIGRATOR_SECRET_ARN: ARN.migrator,
        APP_SECRET_ARN: ARN.app,
        AUDIT_SHIPPER_SECRET_ARN: ARN.auditShipper,
        WEBHOOKS_SECRET_ARN: ARN.webhooks,
        KEY_PROVISIONER_SECRET_ARN: ARN.keyProvisioner,
        LIFECYCLE_SECRET_ARN: ARN.lifecycle,
        FILE_CHECKER_SECRET_ARN: ARN.fileChecker,
        GATE_KEY_SECRET_ARN: ARN.gateKey,
      },
      {
        secrets: new SecretsManagerClient({ region: 'eu-west-1' }),
        connect: async (c) => {
          const client = new Client(c);
          await client.connect();
          return {
            query: (sql: string, params?: unknown[]) => {
              sent.push(sql);
              return client.query(sql, params);
            },
            end: () => client.end(),
          };
        },
        respond: async (_url, body) => {
          responses.push(JSON.parse(body) as Record<string, unknown>);
        },
        migrationsDir: dir,
        log,
      },
    );
    return responses;
  }

  async function roleAttributes() {
    return pg.superuser(
      `SELECT rolname, rolsuper, rolbypassrls, rolcreatedb, rolcreaterole, rolinherit, rolreplication, rolcanlogin
         FROM pg_roles WHERE rolname = ANY($1) ORDER BY rolname`,
      [Object.values(DATABASE_ROLES)],
    );
  }

  async function canLogin(user: string, password: string): Promise<boolean> {
    const c = new Client({ host: '127.0.0.1', port: pg.port, database: pg.database, user, password });
    try {
      await c.connect();
      return true;
    } catch {
      return false;
    } finally {
      await c.end().catch(() => undefined);
    }
  }

  const expectedAttributes = [
    { rolname: 'bulwark_app', rolinherit: false },
    { rolname: 'bulwark_audit_shipper', rolinherit: false },
    { rolname: 'bulwark_file_checker', rolinherit: false },
    { rolname: 'bulwark_key_provisioner', rolinherit: false },
    { rolname: 'bulwark_lifecycle', rolinherit: false },
    { rolname: 'bulwark_migrator', rolinherit: true },
    { rolname: 'bulwark_webhooks', rolinherit: false },
  ].map((r) => ({
    ...r,
    rolsuper: false,
    rolbypassrls: false,
    rolcreatedb: false,
    rolcreaterole: false,
    rolreplication: false,
    rolcanlogin: true,
  }));

  it('bootstraps the roles, applies every migration on create, nothing on a repeat', async () => {
    secrets();
    const [first] = await run('Create');
    expect(first).toMatchObject({ Status: 'SUCCESS', PhysicalResourceId: 'bulwark-schema', RequestId: 'r1' });
    expect((defined(first)['Data'] as { Applied: string }).Applied).toMatch(/^1,2,3/);
    expect(await roleAttributes()).toEqual(expectedAttributes);
    const owner = await pg.superuser(
      "SELECT nspowner::regrole::text AS owner FROM pg_namespace WHERE nspname = 'public'",
    );
    expect(owner).toEqual([{ owner: DATABASE_ROLES.migrator }]);
    expect(await pg.superuser("SELECT extname FROM pg_extension WHERE extname = 'pgcrypto'")).toHaveLength(1);
    for (const k of ['migrator', 'app', 'auditShipper'] as const) {
      expect(await canLogin(DATABASE_ROLES[k], passwords[k])).toBe(true);
    }

    const [again] = await run('Update');
    expect(again).toMatchObject({ Status: 'SUCCESS', Data: { Applied: '' } });
    expect(await roleAttributes()).toEqual(expectedAttributes);
    const tables = (await pg.superuser("SELECT to_regclass('public.leads') AS t")) as { t: string }[];
    expect(defined(tables[0]).t).toBe('leads');
  });

  it('never sends a password in SQL text: the server receives SCRAM verifiers', async () => {
    expect(sent.length).toBeGreaterThan(10);
    for (const sql of sent) {
      for (const p of Object.values(passwords)) expect(sql).not.toContain(p);
    }
    expect(sent.some((s) => /^CREATE ROLE bulwark_audit_shipper .*PASSWORD 'SCRAM-SHA-256\$4096:/.test(s))).toBe(true);
    const stored = (await pg.superuser("SELECT rolpassword FROM pg_authid WHERE rolname = 'bulwark_app'")) as {
      rolpassword: string;
    }[];
    expect(defined(stored[0]).rolpassword).toMatch(/^SCRAM-SHA-256\$4096:/);
  });

  it('re-aligns drifted roles and a rotated password on the next run', async () => {
    await pg.superuser('ALTER ROLE bulwark_app INHERIT CREATEDB');
    const rotated = 'app-password-rotated-0123456789abc';
    secrets({ app: { username: DATABASE_ROLES.app, password: rotated } });
    const [r] = await run('Update');
    expect(r).toMatchObject({ Status: 'SUCCESS' });
    expect(await roleAttributes()).toEqual(expectedAttributes);
    expect(await canLogin(DATABASE_ROLES.app, rotated)).toBe(true);
    expect(await canLogin(DATABASE_ROLES.app, passwords.app)).toBe(false);
  });

  it('gives the shipper the archive functions and no table', async () => {
    const c = new Client({
      host: '127.0.0.1',
      port: pg.port,
      database: pg.database,
      user: DATABASE_ROLES.auditShipper,
      password: passwords.auditShipper,
    });
    await c.connect();
    try {
      await expect(c.query('SELECT * FROM app.audit_archive_owed()')).resolves.toBeDefined();
      await expect(c.query('SELECT 1 FROM public.audit_log LIMIT 1')).rejects.toThrow(/permission denied/);
    } finally {
      await c.end();
    }
  });

  it('refuses a secret naming another user, and a role a superuser made privileged', async () => {
    secrets({ app: { username: 'postgres', password: passwords.app } });
    const [mismatch] = await run('Update');
    expect(mismatch).toMatchObject({ Status: 'FAILED', Reason: expect.stringMatching(/bulwark_app/) });

    await pg.superuser('ALTER ROLE bulwark_audit_shipper BYPASSRLS');
    secrets();
    const [privileged] = await run('Update');
    expect(privileged).toMatchObject({
      Status: 'FAILED',
      Reason: expect.stringMatching(/bulwark_audit_shipper is SUPERUSER, BYPASSRLS or REPLICATION/),
    });
    for (const p of Object.values(passwords)) expect(JSON.stringify(privileged)).not.toContain(p);
    expect(log.entries.at(-1)).toMatchObject({ level: 'error', message: 'schema migration failed' });
    const logged = JSON.stringify(log.entries);
    for (const p of [...Object.values(passwords), 'test-only-password']) expect(logged).not.toContain(p);
    await pg.superuser('ALTER ROLE bulwark_audit_shipper NOBYPASSRLS');
  });

  it('reports a failing migration as FAILED, naming it, and never touches the schema on delete', async () => {
    secrets();
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bulwark-mig-'));
    for (const f of fs.readdirSync(DEFAULT_MIGRATIONS_DIR))
      fs.copyFileSync(path.join(DEFAULT_MIGRATIONS_DIR, f), path.join(dir, f));
    fs.writeFileSync(path.join(dir, '0099_broken.sql'), 'SELECT no_such_function();');
    const [failed] = await run('Update', dir);
    expect(failed).toMatchObject({ Status: 'FAILED', Reason: expect.stringMatching(/^migration 99_broken failed/) });
    for (const p of ['test-only-password', ...Object.values(passwords)]) {
      expect(String(defined(failed)['Reason'])).not.toContain(p);
    }
    sm.reset();
    const [deleted] = await run('Delete');
    expect(deleted).toMatchObject({ Status: 'SUCCESS' });
    expect(sm.commandCalls(GetSecretValueCommand)).toHaveLength(0);
    fs.rmSync(dir, { recursive: true, force: true });
  });
});

describe('scramVerifier', () => {
  it('matches the RFC 7677 test vector', () => {
    // RFC 7677 section 3: user "user", password "pencil", salt W22ZaJ0SNY7soEsUEjb6gQ==, 4096 iterations.
    const v = scramVerifier('pencil', Buffer.from('W22ZaJ0SNY7soEsUEjb6gQ==', 'base64'), 4096);
    expect(v).toBe(
      'SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=',
    );
  });
});

describe('bootstrapRoles as a non-superuser master (the RDS shape)', () => {
  let pg: TestPostgres;
  beforeAll(async () => {
    pg = await startPostgres({ migrate: false, ownServer: true });
  });
  afterAll(async () => pg?.stop());

  const secrets = {
    migrator: { username: DATABASE_ROLES.migrator, password: 'migrator-password-0123456789abcdef' },
    app: { username: DATABASE_ROLES.app, password: 'app-password-0123456789abcdefghij' },
    auditShipper: { username: DATABASE_ROLES.auditShipper, password: 'shipper-password-0123456789abcdef' },
    webhooks: { username: DATABASE_ROLES.webhooks, password: 'webhooks-password-0123456789abcdef' },
    keyProvisioner: { username: DATABASE_ROLES.keyProvisioner, password: 'provisioner-password-0123456789abc' },
    lifecycle: { username: DATABASE_ROLES.lifecycle, password: 'lifecycle-password-0123456789abcdef' },
    fileChecker: { username: DATABASE_ROLES.fileChecker, password: 'file-checker-password-0123456789abcd' },
  };

  /**
   * Like rds_superuser's master: CREATEROLE and CREATEDB, not SUPERUSER; it owns the application
   * database and holds only ADMIN OPTION on the roles (what PostgreSQL 16+ gives a role's creator).
   */
  async function standInMaster(name: string, database: string): Promise<Client> {
    await pg.superuser(`CREATE ROLE ${name} LOGIN CREATEROLE CREATEDB PASSWORD 'stand-in-master-password'`);
    await pg.superuser(`CREATE DATABASE ${database} OWNER ${name}`);
    await pg.superuser(
      `GRANT bulwark_migrator, ${FUNCTION_ROLES.join(', ')} TO ${name} WITH ADMIN OPTION, INHERIT FALSE, SET FALSE`,
    );
    const master = new Client({
      host: '127.0.0.1',
      port: pg.port,
      database,
      user: name,
      password: 'stand-in-master-password',
    });
    await master.connect();
    return master;
  }

  it('converges without superuser rights and keeps no lasting membership of the migrator', async () => {
    const master = await standInMaster('stand_in_master', 'boot_rds');
    try {
      await bootstrapRoles(master, 'boot_rds', secrets);
      await bootstrapRoles(master, 'boot_rds', secrets);
      const owner = await master.query(
        "SELECT nspowner::regrole::text AS owner FROM pg_namespace WHERE nspname = 'public'",
      );
      expect(owner.rows).toEqual([{ owner: DATABASE_ROLES.migrator }]);
      // Only the original ADMIN OPTION grant remains: no SET, no INHERIT.
      const membership = await pg.superuser(
        `SELECT grantor::regrole::text AS grantor, admin_option, inherit_option, set_option FROM pg_auth_members
          WHERE member = 'stand_in_master'::regrole AND roleid = 'bulwark_migrator'::regrole`,
      );
      expect(membership).toEqual([
        { grantor: 'postgres', admin_option: true, inherit_option: false, set_option: false },
      ]);
      const ext = await master.query("SELECT 1 FROM pg_extension WHERE extname = 'pgcrypto'");
      expect(ext.rows).toHaveLength(1);
      const attrs = await master.query(
        'SELECT rolname, rolsuper, rolbypassrls, rolinherit, rolcreatedb, rolcreaterole FROM pg_roles WHERE rolname = ANY($1) ORDER BY rolname',
        [Object.values(DATABASE_ROLES)],
      );
      expect(attrs.rows).toEqual(
        [
          { rolname: 'bulwark_app', rolinherit: false },
          { rolname: 'bulwark_audit_shipper', rolinherit: false },
          { rolname: 'bulwark_file_checker', rolinherit: false },
          { rolname: 'bulwark_key_provisioner', rolinherit: false },
          { rolname: 'bulwark_lifecycle', rolinherit: false },
          { rolname: 'bulwark_migrator', rolinherit: true },
          { rolname: 'bulwark_webhooks', rolinherit: false },
        ].map((r) => ({ ...r, rolsuper: false, rolbypassrls: false, rolcreatedb: false, rolcreaterole: false })),
      );
    } finally {
      await master.end();
    }
  });

  it('with rds.restrict_password_commands on, sets passwords only as a member of rds_password', async () => {
    const master = await standInMaster('restricted_master', 'boot_restricted');
    const verifiers = async (): Promise<unknown[]> =>
      pg.superuser('SELECT rolname, rolpassword FROM pg_authid WHERE rolname = ANY($1) ORDER BY rolname', [
        Object.values(DATABASE_ROLES),
      ]);
    try {
      // RDS's own setting; stock PostgreSQL takes it as a placeholder, which is all the check reads.
      await master.query("SET rds.restrict_password_commands = 'on'");
      const before = await verifiers();
      await expect(bootstrapRoles(master, 'boot_restricted', secrets)).rejects.toMatchObject({
        code: 'BOOTSTRAP_PASSWORD_RIGHTS',
        message: expect.stringContaining('rds_password'),
      });
      expect(await verifiers()).toEqual(before);

      await pg.superuser('CREATE ROLE rds_password NOLOGIN');
      await pg.superuser('GRANT rds_password TO restricted_master');
      await bootstrapRoles(master, 'boot_restricted', secrets);
      expect(await verifiers()).not.toEqual(before);
    } finally {
      await master.end();
    }
  });
});
