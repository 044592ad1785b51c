/**
 * Database bootstrap, run by the migration custom resource before the migrations: as the RDS
 * master user, directly against the instance, it creates (or re-aligns) the login roles every
 * function uses, hands `schema public` to the migrator and enables the extensions the migrations
 * need. Idempotent: each run converges on the same state (it runs whenever the resource updates).
 *
 * Passwords never appear in SQL text: PostgreSQL logs DDL (`log_statement = ddl`, pgaudit `role`),
 * so each password is sent as a salted SCRAM-SHA-256 verifier computed here, which the server
 * stores as is. The log then holds a verifier of a 32+ character random password, not the password.
 */
import { createHash, createHmac, pbkdf2Sync, randomBytes } from 'node:crypto';
import { DATABASE_ROLES, FUNCTION_ROLES, type RolePurpose } from '../../contracts/database';
import type { GateKey } from './ticket';
import type { SqlClient } from '../shared/migrations';

export interface RoleCredentials {
  readonly username: string;
  readonly password: string;
}

export type RoleSecrets = Readonly<Record<RolePurpose, RoleCredentials>>;

/** Bootstrap failures, with stable codes; messages never carry credentials. */
export class BootstrapError extends Error {
  constructor(
    readonly code:
      'BOOTSTRAP_ROLE_MISMATCH' | 'BOOTSTRAP_PASSWORD_WEAK' | 'BOOTSTRAP_ROLE_PRIVILEGED' | 'BOOTSTRAP_PASSWORD_RIGHTS',
    message: string,
  ) {
    super(message);
    this.name = 'BootstrapError';
  }
}

const MIN_PASSWORD_LENGTH = 20;
/** Application roles never inherit privileges from roles granted to them. */
const NOINHERIT: ReadonlySet<string> = new Set(FUNCTION_ROLES);

/**
 * Per-role defaults for every function role: a statement, a lock wait, an idle or a long-lived
 * transaction cannot hold rows or a connection for long (issue 14). `transaction_timeout`
 * (PostgreSQL 17) also ends a transaction kept alive by many short statements, which the other two
 * miss; the lifecycle processor's is the Lambda maximum (15 minutes). A session may change its own
 * (docs/tenancy.md "Known limits"); these bound the application's own bugs.
 */
export function roleSettings(role: string): string[] {
  const lifecycle = role === DATABASE_ROLES.lifecycle;
  return [
    // A role may change its own defaults (docs/tenancy.md "Known limits"): start from none each run.
    `ALTER ROLE ${role} RESET ALL`,
    `ALTER ROLE ${role} SET statement_timeout = '${lifecycle ? '300s' : '30s'}'`,
    `ALTER ROLE ${role} SET lock_timeout = '5s'`,
    `ALTER ROLE ${role} SET idle_in_transaction_session_timeout = '30s'`,
    `ALTER ROLE ${role} SET transaction_timeout = '${lifecycle ? '900s' : '60s'}'`,
  ];
}

/**
 * SCRAM-SHA-256 verifier as PostgreSQL stores it (RFC 5802/7677):
 * `SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>`.
 */
export function scramVerifier(password: string, salt: Buffer = randomBytes(16), iterations = 4096): string {
  const salted = pbkdf2Sync(password.normalize('NFKC'), salt, iterations, 32, 'sha256');
  const clientKey = createHmac('sha256', salted).update('Client Key').digest();
  const storedKey = createHash('sha256').update(clientKey).digest();
  const serverKey = createHmac('sha256', salted).update('Server Key').digest();
  return `SCRAM-SHA-256$${iterations}:${salt.toString('base64')}$${storedKey.toString('base64')}:${serverKey.toString('base64')}`;
}

/** The role names are fixed identifiers; a secret naming another user is refused, not quoted. */
function checkCredentials(secrets: RoleSecrets): void {
  for (const purpose of Object.keys(DATABASE_ROLES) as RolePurpose[]) {
    const expected = DATABASE_ROLES[purpose];
    const creds = secrets[purpose];
    if (creds.username !== expected) {
      throw new BootstrapError('BOOTSTRAP_ROLE_MISMATCH', `the ${purpose} secret must name the user ${expected}`);
    }
    if (creds.password.length < MIN_PASSWORD_LENGTH) {
      throw new BootstrapError(
        'BOOTSTRAP_PASSWORD_WEAK',
        `the ${purpose} secret's password is shorter than ${MIN_PASSWORD_LENGTH} characters`,
      );
    }
  }
}

/**
 * With `rds.restrict_password_commands` on (lib/data/database.ts), RDS lets only members of
 * `rds_password` set passwords; the master holds it through rds_superuser. A master without it is
 * named here, before any role is touched, instead of failing halfway on `ALTER ROLE ... PASSWORD`.
 */
async function checkPasswordRights(master: SqlClient): Promise<void> {
  const setting = await master.query(
    `SELECT lower(coalesce(current_setting('rds.restrict_password_commands', true), 'off')) IN ('1', 'on', 'true')
              AS restricted,
            EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'rds_password') AS defined`,
  );
  const row = setting.rows[0];
  if (!row?.['restricted']) return;
  const member =
    row['defined'] === true &&
    (await master.query("SELECT pg_has_role(current_user, 'rds_password', 'USAGE') AS member")).rows[0]?.['member'] ===
      true;
  if (!member) {
    throw new BootstrapError(
      'BOOTSTRAP_PASSWORD_RIGHTS',
      'rds.restrict_password_commands is on and the bootstrap user is not a member of rds_password: ' +
        'an rds_superuser must GRANT rds_password to it',
    );
  }
}

/**
 * Creates or re-aligns the three login roles, as `master` (the RDS master user, or any role with
 * CREATEROLE and admin option on them). `database` is the application database `master` is
 * connected to.
 *
 * CREATE sets every attribute. ALTER sets only the attributes a non-superuser may change (RDS's
 * master is not a superuser); SUPERUSER, BYPASSRLS and REPLICATION can only have been set by a
 * real superuser, so a role carrying one is refused rather than silently used.
 */
export async function bootstrapRoles(master: SqlClient, database: string, secrets: RoleSecrets): Promise<void> {
  checkCredentials(secrets);
  await checkPasswordRights(master);
  for (const purpose of Object.keys(DATABASE_ROLES) as RolePurpose[]) {
    const name = DATABASE_ROLES[purpose];
    const inherit = NOINHERIT.has(name) ? 'NOINHERIT' : 'INHERIT';
    const password = `PASSWORD '${scramVerifier(secrets[purpose].password)}'`;
    const existing = await master.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [name]);
    if (existing.rows.length === 0) {
      await master.query(
        `CREATE ROLE ${name} WITH LOGIN NOSUPERUSER NOBYPASSRLS NOREPLICATION NOCREATEDB NOCREATEROLE ${inherit} ${password}`,
      );
    } else {
      await master.query(`ALTER ROLE ${name} WITH LOGIN NOCREATEDB NOCREATEROLE ${inherit} ${password}`);
    }
    if (NOINHERIT.has(name)) {
      await master.query(`ALTER ROLE ${name} IN DATABASE ${quoteIdent(database)} RESET ALL`);
      for (const sql of roleSettings(name)) await master.query(sql);
    }
    const attrs = await master.query('SELECT rolsuper, rolbypassrls, rolreplication FROM pg_roles WHERE rolname = $1', [
      name,
    ]);
    const row = attrs.rows[0];
    if (!row || row['rolsuper'] || row['rolbypassrls'] || row['rolreplication']) {
      throw new BootstrapError(
        'BOOTSTRAP_ROLE_PRIVILEGED',
        `${name} is SUPERUSER, BYPASSRLS or REPLICATION; a superuser must remove that before it can be used`,
      );
    }
  }

  const migrator = DATABASE_ROLES.migrator;
  // Changing an owner requires the right to SET ROLE to the new owner. RDS's master holds only ADMIN
  // OPTION on roles it created (PostgreSQL 16+), so it grants itself SET for this one statement and
  // then revokes exactly that grant (the one it is the grantor of), leaving the original grant alone.
  const can = await master.query(
    'SELECT pg_has_role(current_user, $1, $2) AS can_set, usesuper AS superuser FROM pg_user WHERE usename = current_user',
    [migrator, 'SET'],
  );
  const needsSet = !can.rows[0]?.['can_set'] && !can.rows[0]?.['superuser'];
  if (needsSet) await master.query(`GRANT ${migrator} TO current_user WITH SET TRUE, INHERIT FALSE`);
  try {
    await master.query(`ALTER SCHEMA public OWNER TO ${migrator}`);
  } finally {
    if (needsSet) await master.query(`REVOKE ${migrator} FROM current_user GRANTED BY current_user`);
  }
  await master.query(`REVOKE ALL ON SCHEMA public FROM PUBLIC`);
  for (const role of FUNCTION_ROLES) await master.query(`GRANT USAGE ON SCHEMA public TO ${role}`);
  await master.query(`REVOKE CONNECT, TEMPORARY ON DATABASE ${quoteIdent(database)} FROM PUBLIC`);
  for (const role of Object.values(DATABASE_ROLES)) {
    await master.query(`GRANT CONNECT ON DATABASE ${quoteIdent(database)} TO ${role}`);
  }
  // Extensions need the master user; the migrations use pgcrypto (digest, gen_random_bytes).
  await master.query('CREATE EXTENSION IF NOT EXISTS pgcrypto');
}

/**
 * Grants that name objects the migrations create, so they run after them, as their owner (the
 * migrator). The shipper reads the audit chain only through these SECURITY DEFINER functions.
 */
export async function grantAfterMigrations(migrator: SqlClient): Promise<void> {
  const shipper = DATABASE_ROLES.auditShipper;
  await migrator.query(`GRANT USAGE ON SCHEMA app TO ${shipper}`);
  // Functions with their own roles (grants by name in migrations/0401) need the schema too.
  for (const role of FUNCTION_ROLES) await migrator.query(`GRANT USAGE ON SCHEMA app TO ${role}`);
  await migrator.query(
    `GRANT EXECUTE ON FUNCTION app.audit_archive_read(uuid, bigint, integer), app.audit_archive_mark(uuid, bigint, text) TO ${shipper}`,
  );
}

/**
 * Installs the gate key tickets are verified with (migrations/0400), as the migrator (its owner):
 * the previous key keeps verifying tickets in flight for ten minutes. No application role can read it.
 */
export async function installGateKey(migrator: SqlClient, key: GateKey): Promise<void> {
  await migrator.query('SELECT app_private.install_gate_key($1, $2)', [key.kid, key.secret]);
}

function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}
