-- The credentials vault (issue 16, docs/credentials.md): mailbox passwords, OAuth refresh tokens,
-- SIP passwords, agents' carrier tokens and workspaces' AI provider keys, write-only.
--
--   * Only ciphertext is stored: sealed by the API under the tenant's own KMS key (envelope, with
--     org_id and purpose = kind in the encryption context) before it reaches the database.
--   * The API role can write the sealed column but never read it: it holds SELECT on the metadata
--     columns only, so no SELECT, RETURNING, WHERE or SET expression of its can see or probe the
--     ciphertext (each needs SELECT on the column). Sealing needs no read; nothing deployed opens a
--     credential yet (a consumer gets its own role and reader then).
--   * set_at and set_by are stamped by the database from the verified tenant context, never taken
--     from the caller.
--   * Reads need settings:view; writes settings:edit (set, replace) or settings:delete, in a
--     writable context of a person or API key of the organisation, never under a support grant
--     (support staff never set or remove a tenant's credentials).
--   * Erased with the tenant (app.allow_tenant_erasure); exported as metadata only.
CREATE TABLE tenant_credentials (
  id         uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
  org_id     uuid        NOT NULL REFERENCES organisations (id),
  kind       text        NOT NULL CHECK (kind IN ('mailbox_password', 'oauth_refresh_token', 'sip_password',
                                                  'carrier_token', 'ai_provider_key')),
  scope      text        NOT NULL CHECK (scope ~ '^[A-Za-z0-9][A-Za-z0-9_.:@+-]{0,127}$'),
  set_at     timestamptz NOT NULL DEFAULT now(),
  set_by     uuid        NOT NULL REFERENCES users (id),
  sealed     text        NOT NULL CHECK (sealed ~ '^bwk1\.[A-Za-z0-9_-]+$' AND length(sealed) <= 16384),
  created_at timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT tenant_credentials_org_id UNIQUE (org_id, id),
  CONSTRAINT tenant_credentials_kind_scope UNIQUE (org_id, kind, scope)
);

SELECT app.protect_tenant_table('tenant_credentials');
SELECT app.allow_tenant_erasure('tenant_credentials');

ALTER POLICY tenant_select ON tenant_credentials USING (org_id = (SELECT app.grid_org_id('settings:view')));
ALTER POLICY tenant_insert ON tenant_credentials
  WITH CHECK (org_id = (SELECT app.grid_writable_org_id('settings:edit'))
              AND (SELECT app.current_support_grant_id()) IS NULL);
ALTER POLICY tenant_update ON tenant_credentials
  USING (org_id = (SELECT app.grid_writable_org_id('settings:edit')) AND (SELECT app.current_support_grant_id()) IS NULL)
  WITH CHECK (org_id = (SELECT app.grid_writable_org_id('settings:edit'))
              AND (SELECT app.current_support_grant_id()) IS NULL);
ALTER POLICY tenant_delete ON tenant_credentials
  USING (org_id = (SELECT app.grid_writable_org_id('settings:delete'))
         AND (SELECT app.current_support_grant_id()) IS NULL);

-- Write-only for the API: metadata readable, ciphertext writable (insert, replace) and never readable.
REVOKE SELECT, UPDATE ON tenant_credentials FROM bulwark_app;
GRANT SELECT (id, org_id, kind, scope, set_at, set_by, created_at) ON tenant_credentials TO bulwark_app;
GRANT UPDATE (set_at, set_by, sealed) ON tenant_credentials TO bulwark_app;
-- The export worker lists which credentials are set (its read-only export context has settings:view).
GRANT SELECT (id, org_id, kind, scope, set_at, set_by, created_at) ON tenant_credentials TO bulwark_lifecycle;

-- Who set it and when come from the verified context. Without one the row is refused by RLS anyway.
CREATE FUNCTION app.stamp_tenant_credential() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  NEW.set_by := coalesce(app.current_user_id(), NEW.set_by);
  NEW.set_at := now();
  RETURN NEW;
END $$;
REVOKE ALL ON FUNCTION app.stamp_tenant_credential() FROM PUBLIC;
CREATE TRIGGER tenant_credentials_stamp BEFORE INSERT OR UPDATE ON tenant_credentials
  FOR EACH ROW EXECUTE FUNCTION app.stamp_tenant_credential();
