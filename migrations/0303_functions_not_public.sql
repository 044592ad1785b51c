-- No function of the app schema is executable by PUBLIC.
--
-- PostgreSQL grants EXECUTE on every new function to PUBLIC. 0001's
-- `ALTER DEFAULT PRIVILEGES IN SCHEMA app REVOKE EXECUTE ... FROM PUBLIC` cannot take that away: a
-- per-schema default only adds to the global defaults, it never removes from them. So functions of
-- migrations that did not revoke explicitly (0300's lifecycle functions among them, SECURITY DEFINER
-- ones included) were callable by every role with USAGE on the schema, such as the audit shipper's.
--
-- Fixed at the mechanism: the migration role's global default now withholds EXECUTE from PUBLIC for
-- every function it creates from here on, and every existing function loses it. Roles keep exactly
-- the EXECUTE they were granted by name (bulwark_app, bulwark_audit_shipper); a catalog test
-- (test/tenant-guard/rls.test.ts) keeps it so.
ALTER DEFAULT PRIVILEGES REVOKE EXECUTE ON FUNCTIONS FROM PUBLIC;
REVOKE EXECUTE ON ALL FUNCTIONS IN SCHEMA app FROM PUBLIC;
