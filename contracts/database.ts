/**
 * The database login roles, by purpose (docs/data-tier.md "Database roles", docs/tenancy.md "Roles").
 * Shared by the data tier (one secret each), the bootstrap that creates them and the functions that
 * log in as them. One role per function, each granted only what that function uses (migrations/0401).
 */
export const DATABASE_ROLES = {
  /** Owns the schema and applies migrations; used only by the migration custom resource. */
  migrator: 'bulwark_migrator',
  /** The tenant API: enters tenants through the gate only (NOINHERIT, no BYPASSRLS). */
  app: 'bulwark_app',
  /** The audit archive shipper: EXECUTE on three `app.audit_archive_*` functions, nothing else. */
  auditShipper: 'bulwark_audit_shipper',
  /** The webhook ingress: verification secrets, replay protection and tenant key lookups. */
  webhooks: 'bulwark_webhooks',
  /** The tenant-key provisioner: keyless tenants, key recording, system audit events. */
  keyProvisioner: 'bulwark_key_provisioner',
  /** The tenant lifecycle processor and export worker: due lifecycles, erasure, exports, system audit events. */
  lifecycle: 'bulwark_lifecycle',
  /**
   * The tenant-files quarantine checker: EXECUTE on `app.record_file_check` (migrations/0413),
   * nothing else; it reads no table and lists no tenant.
   */
  fileChecker: 'bulwark_file_checker',
} as const;
export type RolePurpose = keyof typeof DATABASE_ROLES;

/**
 * Part of the migration custom resource's properties: raise it whenever what the bootstrap
 * (lambda/tenant-guard/bootstrap.ts) does changes, so every deployment re-runs it once.
 */
export const BOOTSTRAP_VERSION = '4';

/**
 * The roles functions log in as (every role but the migrator): NOINHERIT, and the side-channel
 * limits of migrations/0401 (timeouts, no temporary objects) apply to each. The test harness
 * creates exactly these (test/support/postgres.ts).
 */
export const FUNCTION_ROLES = [
  DATABASE_ROLES.app,
  DATABASE_ROLES.auditShipper,
  DATABASE_ROLES.webhooks,
  DATABASE_ROLES.keyProvisioner,
  DATABASE_ROLES.lifecycle,
  DATABASE_ROLES.fileChecker,
] as const;
export type FunctionRole = (typeof FUNCTION_ROLES)[number];
