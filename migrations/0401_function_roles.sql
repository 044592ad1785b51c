-- One database role per function, least privilege (docs/tenancy.md "Roles", issue 14).
--
-- Until now every function connected as bulwark_app, so the tenant API's role could call what the
-- provisioner, the lifecycle processor and the webhook ingress need: functions that list or describe
-- every tenant (keyless tenants, due lifecycles, pending exports, rows remaining, chain heads), record
-- keys, finish exports, append system audit events, read webhook secrets, and the replay table with
-- every tenant's event ids. Each function now has its own login role (created by the bootstrap,
-- lambda/shared/database-roles.ts) and gets exactly what it uses; the tenant API keeps only the
-- gate and its tenant tables.
--
-- Side channels: the bootstrap gives every function role statement, lock and idle-in-transaction
-- timeouts (ALTER ROLE ... SET needs CREATEROLE, which the migrator lacks) and never grants
-- TEMPORARY on the database.

-- ---------------------------------------------------------------------------------------------
-- The tenant API: the gate (0400) and its tenant tables; nothing that lists or describes tenants.
-- ---------------------------------------------------------------------------------------------
REVOKE EXECUTE ON FUNCTION
  app.record_tenant_key(uuid, text, text), app.due_tenant_lifecycles(integer), app.tenant_rows_remaining(uuid),
  app.advance_tenant_lifecycle(uuid, text, text), app.erase_tenant_rows(uuid), app.pending_tenant_exports(integer),
  app.finish_tenant_export(uuid, text, bigint), app.keyless_tenants(integer, interval), app.system_audit_head(uuid),
  app.append_system_audit_event(uuid, bigint, timestamptz, text, text, text, text, text, text, text, text, text,
                                jsonb, text, text),
  app.webhook_secret_for_verification(uuid, text), app.is_live_owner(uuid, uuid), app.enter_export_context(uuid)
FROM bulwark_app;
REVOKE ALL ON webhook_event_dedup FROM bulwark_app;

-- Readers every role's queries may evaluate through tenant policies (they return NULL without a context).
GRANT EXECUTE ON FUNCTION app.current_org_id(), app.readable_org_ids(), app.writable_org_id(), app.current_user_id(),
  app.current_support_grant_id()
TO bulwark_webhooks, bulwark_key_provisioner, bulwark_lifecycle;

-- ---------------------------------------------------------------------------------------------
-- The webhook ingress: verification secrets (active organisations, one provider), the tenant's key
-- for decrypting them, and the replay table.
-- ---------------------------------------------------------------------------------------------
GRANT EXECUTE ON FUNCTION app.webhook_secret_for_verification(uuid, text), app.tenant_status(uuid)
TO bulwark_webhooks;

-- The replay table holds every tenant's event ids: only the ingress reads it, nobody else even if
-- granted later (FORCE: the owner too, except through this role's policy).
ALTER TABLE webhook_event_dedup ENABLE ROW LEVEL SECURITY;
ALTER TABLE webhook_event_dedup FORCE ROW LEVEL SECURITY;
REVOKE ALL ON webhook_event_dedup FROM PUBLIC;
CREATE POLICY ingress_only ON webhook_event_dedup TO bulwark_webhooks USING (true) WITH CHECK (true);
GRANT SELECT, INSERT, DELETE ON webhook_event_dedup TO bulwark_webhooks;

-- ---------------------------------------------------------------------------------------------
-- The key provisioner.
-- ---------------------------------------------------------------------------------------------
GRANT EXECUTE ON FUNCTION app.keyless_tenants(integer, interval), app.tenant_status(uuid),
  app.record_tenant_key(uuid, text, text), app.system_audit_head(uuid),
  app.append_system_audit_event(uuid, bigint, timestamptz, text, text, text, text, text, text, text, text, text,
                                jsonb, text, text)
TO bulwark_key_provisioner;

-- ---------------------------------------------------------------------------------------------
-- The lifecycle processor and export worker. The export worker reads an export's tenant only
-- inside app.enter_export_context (read-only, RLS-confined to that tenant).
-- ---------------------------------------------------------------------------------------------
GRANT EXECUTE ON FUNCTION app.due_tenant_lifecycles(integer), app.tenant_status(uuid),
  app.tenant_rows_remaining(uuid), app.advance_tenant_lifecycle(uuid, text, text), app.erase_tenant_rows(uuid), app.pending_tenant_exports(integer),
  app.finish_tenant_export(uuid, text, bigint), app.enter_export_context(uuid), app.system_audit_head(uuid),
  app.append_system_audit_event(uuid, bigint, timestamptz, text, text, text, text, text, text, text, text, text,
                                jsonb, text, text)
TO bulwark_lifecycle;
GRANT SELECT ON leads, customers, vehicles, deals, audit_log TO bulwark_lifecycle;
