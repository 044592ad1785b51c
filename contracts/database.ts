/**
 * The database login roles, by purpose (docs/data-tier.md "Database roles"). Shared by the data
 * tier (one secret each), the bootstrap that creates them and the functions that log in as them.
 */
export const DATABASE_ROLES = {
  /** Owns the schema and applies migrations; used only by the migration custom resource. */
  migrator: 'bulwark_migrator',
  /** Every API function; subject to row-level security (NOINHERIT, no BYPASSRLS). */
  app: 'bulwark_app',
  /** The audit archive shipper: EXECUTE on three `app.audit_archive_*` functions, nothing else. */
  auditShipper: 'bulwark_audit_shipper',
} as const;
export type RolePurpose = keyof typeof DATABASE_ROLES;

/**
 * Part of the migration custom resource's properties: raise it whenever what the bootstrap
 * (lambda/tenant-guard/bootstrap.ts) does changes, so every deployment re-runs it once.
 */
export const BOOTSTRAP_VERSION = '1';
