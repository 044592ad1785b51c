-- The rest of the role grid in the database, no table locks, no tenant lookups for the API
-- (issue 14; docs/tenancy.md "Threat model", "Known limits").
--
--   1. Domain-table grid. Every policy of the domain tables (customers, vehicles, leads, deals,
--      messages, calls) now also needs the context's grid to hold `<module>:view` (SELECT),
--      `:create` (INSERT), `:edit` (UPDATE) or `:delete` (DELETE); likewise the settings tables
--      (custom roles, API keys, webhook secrets) for their writes, and support grants are revoked by
--      an Owner in person only. A Viewer's own context, a custom role without the permission, a
--      `read` support grant and oversight cannot write. The policies stay a scalar equality
--      `org_id = (SELECT app.grid_org_id('leads:view'))`: one InitPlan, planned like a literal.
--   2. No table locks. LOCK TABLE in any mode stronger than ROW EXCLUSIVE needs table-level UPDATE,
--      DELETE, TRUNCATE or MAINTAIN (column privileges do not count). Every function role's UPDATE
--      becomes column-level (never id, org_id or created_at), and no function role may DELETE,
--      TRUNCATE or MAINTAIN any table: the deletes the API needs go through
--      app.delete_tenant_rows (the context's own organisation, under the tenant policies and the
--      grid), the ingress purges its replay table through app.purge_webhook_events.
--   3. The tenant API no longer executes app.tenant_status: it seals secrets with the key of the
--      context's own organisation, read in the request's transaction (app.context_tenant_key).
--   4. Custom roles cannot escalate: a role's grid stays within its creator's or editor's, oversight
--      (in a dealer group or network) only from someone who has it, and memberships are assigned
--      only roles within the assigner's grid.
--   5. The export context reads with the view half of the grid (it reads domain tables).

-- ---------------------------------------------------------------------------------------------
-- 1. Grid readers: the context's organisation when its grid holds p_permission (writable too for
--    the second), else NULL, so that a policy compares with NULL and is false.
-- ---------------------------------------------------------------------------------------------
CREATE FUNCTION app.grid_org_id(p_permission text) RETURNS uuid
LANGUAGE sql STABLE SECURITY DEFINER PARALLEL RESTRICTED
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT c.org_id FROM app.tenant_context c
   WHERE c.pid = pg_catalog.pg_backend_pid() AND c.xact = pg_catalog.pg_current_xact_id_if_assigned()
     AND p_permission = ANY (c.permissions)
$$;

CREATE FUNCTION app.grid_writable_org_id(p_permission text) RETURNS uuid
LANGUAGE sql STABLE SECURITY DEFINER PARALLEL RESTRICTED
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT c.org_id FROM app.tenant_context c
   WHERE c.pid = pg_catalog.pg_backend_pid() AND c.xact = pg_catalog.pg_current_xact_id_if_assigned()
     AND c.writable AND p_permission = ANY (c.permissions)
$$;

-- The Owner in person (no API key, no support grant), in a writable context.
CREATE FUNCTION app.owner_org_id() RETURNS uuid
LANGUAGE sql STABLE SECURITY DEFINER PARALLEL RESTRICTED
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT c.org_id FROM app.tenant_context c
   WHERE c.pid = pg_catalog.pg_backend_pid() AND c.xact = pg_catalog.pg_current_xact_id_if_assigned()
     AND c.writable AND c.role = 'owner' AND c.api_key_id IS NULL AND c.support_grant_id IS NULL
$$;

REVOKE ALL ON FUNCTION app.grid_org_id(text), app.grid_writable_org_id(text), app.owner_org_id() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION app.grid_org_id(text), app.grid_writable_org_id(text), app.owner_org_id()
TO bulwark_app, bulwark_webhooks, bulwark_key_provisioner, bulwark_lifecycle;

-- Points a tenant table's four policies at the grid: each permission given makes its command need
-- it (NULL keeps the context-only check of app.protect_tenant_table). Owner only (migrations).
CREATE FUNCTION app.apply_tenant_grid(p_table regclass, p_view text, p_create text, p_edit text, p_delete text)
RETURNS void LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  IF NOT ARRAY(SELECT x FROM unnest(ARRAY[p_view, p_create, p_edit, p_delete]) x WHERE x IS NOT NULL)
         <@ app.all_permissions() THEN
    RAISE EXCEPTION 'apply_tenant_grid(%): unknown permission', p_table;
  END IF;
  IF p_view IS NOT NULL THEN
    EXECUTE format('ALTER POLICY tenant_select ON %s USING (org_id = (SELECT app.grid_org_id(%L)))', p_table, p_view);
  END IF;
  IF p_create IS NOT NULL THEN
    EXECUTE format('ALTER POLICY tenant_insert ON %s WITH CHECK (org_id = (SELECT app.grid_writable_org_id(%L)))',
                   p_table, p_create);
  END IF;
  IF p_edit IS NOT NULL THEN
    EXECUTE format('ALTER POLICY tenant_update ON %s USING (org_id = (SELECT app.grid_writable_org_id(%L))) '
                   'WITH CHECK (org_id = (SELECT app.grid_writable_org_id(%L)))', p_table, p_edit, p_edit);
  END IF;
  IF p_delete IS NOT NULL THEN
    EXECUTE format('ALTER POLICY tenant_delete ON %s USING (org_id = (SELECT app.grid_writable_org_id(%L)))',
                   p_table, p_delete);
  END IF;
END $$;

DO $$
DECLARE m text;
BEGIN
  FOREACH m IN ARRAY ARRAY['customers', 'vehicles', 'leads', 'deals', 'messages', 'calls'] LOOP
    PERFORM app.apply_tenant_grid(m::regclass, m || ':view', m || ':create', m || ':edit', m || ':delete');
  END LOOP;
END $$;
-- Settings: custom roles and API keys are read by the gate's own checks (narrowing, assignment),
-- so only their writes need the grid. An API key is revoked (its one UPDATE) with settings:delete,
-- as DELETE /api-keys/{id} does. A webhook secret is set or rotated (upsert) with settings:edit.
SELECT app.apply_tenant_grid('custom_roles', NULL, 'settings:create', 'settings:edit', 'settings:delete');
SELECT app.apply_tenant_grid('api_keys', NULL, 'settings:create', 'settings:delete', 'settings:delete');
SELECT app.apply_tenant_grid('organisation_webhook_secrets', 'settings:view', 'settings:edit', 'settings:edit',
                             'settings:delete');
-- Support grants are revoked by the organisation's Owner in person only (as DELETE /support-grants).
ALTER POLICY tenant_update ON support_grants USING (org_id = (SELECT app.owner_org_id()))
  WITH CHECK (org_id = (SELECT app.owner_org_id()));

-- ---------------------------------------------------------------------------------------------
-- 2. No table locks: column-level UPDATE, no DELETE/TRUNCATE/MAINTAIN/TRIGGER/REFERENCES for any
--    function role on any table.
-- ---------------------------------------------------------------------------------------------
-- Tables whose rows the API may delete, through app.delete_tenant_rows only.
CREATE TABLE app_private.deletable_tables (tbl regclass PRIMARY KEY);
REVOKE ALL ON app_private.deletable_tables FROM PUBLIC;

DO $$
DECLARE
  t regclass;
  r text;
  cols text;
BEGIN
  FOR t IN SELECT c.oid::regclass FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
            WHERE n.nspname IN ('public', 'app', 'app_private') AND c.relkind IN ('r', 'p', 'v', 'm', 'f') LOOP
    FOREACH r IN ARRAY ARRAY['bulwark_app', 'bulwark_audit_shipper', 'bulwark_webhooks', 'bulwark_key_provisioner',
                             'bulwark_lifecycle'] LOOP
      -- Memberships are revoked, never deleted (their history stays); the replay table is purged by
      -- its definer function; every other table the API could delete from keeps that ability.
      IF has_table_privilege(r, t, 'DELETE') AND r = 'bulwark_app' AND t::text <> 'memberships' THEN
        INSERT INTO app_private.deletable_tables (tbl) VALUES (t) ON CONFLICT DO NOTHING;
      END IF;
      IF has_table_privilege(r, t, 'UPDATE') THEN
        -- A table-level REVOKE also drops column grants; re-grant the columns the API changes.
        SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY a.attnum) INTO cols
          FROM pg_catalog.pg_attribute a
         WHERE a.attrelid = t AND a.attnum > 0 AND NOT a.attisdropped
           AND a.attname NOT IN ('id', 'org_id', 'created_at')
           AND (t::text <> 'memberships' OR a.attname IN ('role', 'custom_role_id', 'status', 'revoked_at'));
        EXECUTE format('REVOKE UPDATE ON %s FROM %I', t, r);
        IF cols IS NOT NULL THEN
          EXECUTE format('GRANT UPDATE (%s) ON %s TO %I', cols, t, r);
        END IF;
      END IF;
      EXECUTE format('REVOKE DELETE, TRUNCATE, MAINTAIN, TRIGGER, REFERENCES ON %s FROM %I', t, r);
    END LOOP;
  END LOOP;
END $$;

-- Deletes rows of a deletable tenant table by id, in the context's own organisation only. It runs
-- as the owner, which FORCE RLS keeps under the same tenant_delete policy (the context must be
-- writable and its grid must hold the table's :delete) and the same triggers; the explicit
-- current_org_id() scope keeps the owner's other policies (lifecycle erasure) out of play.
-- Returns the ids deleted; nothing without a context.
CREATE FUNCTION app.delete_tenant_rows(p_table regclass, p_ids uuid[]) RETURNS SETOF uuid
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE v_org uuid := app.current_org_id();
BEGIN
  IF NOT EXISTS (SELECT 1 FROM app_private.deletable_tables d WHERE d.tbl = p_table) THEN
    RAISE EXCEPTION 'PERMISSION_DENIED' USING ERRCODE = 'BW008', DETAIL = 'rows of this table are not deleted';
  END IF;
  IF v_org IS NULL OR p_ids IS NULL THEN
    RETURN;
  END IF;
  RETURN QUERY EXECUTE format('DELETE FROM %s t WHERE t.org_id = $1 AND t.id = ANY ($2) RETURNING t.id', p_table)
    USING v_org, p_ids;
END $$;
REVOKE ALL ON FUNCTION app.delete_tenant_rows(regclass, uuid[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION app.delete_tenant_rows(regclass, uuid[]) TO bulwark_app;

-- The ingress purges expired replay rows (and only expired ones) through this function.
DO $$ BEGIN
  EXECUTE format('CREATE POLICY purge_owner_read ON webhook_event_dedup FOR SELECT TO %I USING (expires_at < now())',
                 current_user);
  EXECUTE format('CREATE POLICY purge_owner ON webhook_event_dedup FOR DELETE TO %I USING (expires_at < now())',
                 current_user);
END $$;

CREATE FUNCTION app.purge_webhook_events(p_limit integer) RETURNS integer
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
  WITH gone AS (
    DELETE FROM public.webhook_event_dedup d
     WHERE (d.provider, d.scope, d.event_id) IN (
             SELECT x.provider, x.scope, x.event_id FROM public.webhook_event_dedup x
              WHERE x.expires_at < now() ORDER BY x.expires_at LIMIT least(greatest(p_limit, 1), 5000))
       AND d.expires_at < now()
    RETURNING 1)
  SELECT count(*)::integer FROM gone
$$;
REVOKE ALL ON FUNCTION app.purge_webhook_events(integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION app.purge_webhook_events(integer) TO bulwark_webhooks;

-- The template for new tenant tables: UPDATE column-level, deletes through app.delete_tenant_rows,
-- and with p_module the grid in every policy.
DROP FUNCTION app.protect_tenant_table(regclass, text[]);
CREATE FUNCTION app.protect_tenant_table(p_table regclass,
                                         p_commands text[] DEFAULT ARRAY['select','insert','update','delete'],
                                         p_module text DEFAULT NULL)
RETURNS void LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE cols text;
BEGIN
  IF NOT p_commands <@ ARRAY['select','insert','update','delete'] OR NOT 'select' = ANY (p_commands) THEN
    RAISE EXCEPTION 'protect_tenant_table(%): commands must include select and be a subset of select/insert/update/delete', p_table;
  END IF;
  IF p_module IS NOT NULL AND NOT p_module = ANY (app.modules()) THEN
    RAISE EXCEPTION 'protect_tenant_table(%): unknown module %', p_table, p_module;
  END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = p_table AND attname = 'org_id'
                   AND atttypid = 'uuid'::regtype AND attnotnull AND NOT attisdropped) THEN
    RAISE EXCEPTION 'protect_tenant_table(%): needs org_id uuid NOT NULL', p_table;
  END IF;
  EXECUTE format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY', p_table);
  EXECUTE format('ALTER TABLE %s FORCE ROW LEVEL SECURITY', p_table);
  EXECUTE format('REVOKE ALL ON %s FROM PUBLIC', p_table);
  EXECUTE format('CREATE POLICY tenant_select ON %s FOR SELECT USING (org_id = (SELECT app.current_org_id()))', p_table);
  EXECUTE format('CREATE POLICY tenant_insert ON %s FOR INSERT WITH CHECK (org_id = (SELECT app.writable_org_id()))', p_table);
  EXECUTE format('CREATE POLICY tenant_update ON %s FOR UPDATE USING (org_id = (SELECT app.writable_org_id())) WITH CHECK (org_id = (SELECT app.writable_org_id()))', p_table);
  EXECUTE format('CREATE POLICY tenant_delete ON %s FOR DELETE USING (org_id = (SELECT app.writable_org_id()))', p_table);
  IF p_module IS NOT NULL THEN
    PERFORM app.apply_tenant_grid(p_table, p_module || ':view', p_module || ':create', p_module || ':edit',
                                  p_module || ':delete');
  END IF;
  EXECUTE format('GRANT SELECT ON %s TO bulwark_app', p_table);
  IF 'insert' = ANY (p_commands) THEN
    EXECUTE format('GRANT INSERT ON %s TO bulwark_app', p_table);
  END IF;
  IF 'update' = ANY (p_commands) THEN
    SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY a.attnum) INTO cols FROM pg_attribute a
     WHERE a.attrelid = p_table AND a.attnum > 0 AND NOT a.attisdropped AND a.attname NOT IN ('id', 'org_id', 'created_at');
    IF cols IS NOT NULL THEN
      EXECUTE format('GRANT UPDATE (%s) ON %s TO bulwark_app', cols, p_table);
    END IF;
  END IF;
  IF 'delete' = ANY (p_commands) THEN
    INSERT INTO app_private.deletable_tables (tbl) VALUES (p_table) ON CONFLICT DO NOTHING;
  END IF;
END $$;
REVOKE ALL ON FUNCTION app.protect_tenant_table(regclass, text[], text), app.apply_tenant_grid(regclass, text, text, text, text)
FROM PUBLIC;

-- ---------------------------------------------------------------------------------------------
-- 3. The key the API seals the context organisation's secrets with, in the request's transaction.
-- ---------------------------------------------------------------------------------------------
-- The writable context's own organisation only (sealing is part of a write); nothing otherwise.
CREATE FUNCTION app.context_tenant_key() RETURNS TABLE (org_id uuid, key_arn text, key_source text)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT o.id, o.kms_key_arn, o.kms_key_source FROM public.organisations o
   WHERE o.id = app.writable_org_id() AND o.lifecycle_state <> 'shredded'
$$;
REVOKE ALL ON FUNCTION app.context_tenant_key() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION app.context_tenant_key() TO bulwark_app;
REVOKE EXECUTE ON FUNCTION app.tenant_status(uuid) FROM bulwark_app;

-- ---------------------------------------------------------------------------------------------
-- 4. No escalation through roles.
-- ---------------------------------------------------------------------------------------------
-- Whether the context may hand out oversight: only a person whose own role in a dealer group or
-- network has it (never an API key or support staff). In a store oversight reaches nothing.
CREATE FUNCTION app_private.context_may_grant_oversight() RETURNS boolean
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT coalesce((
    SELECT o.kind = 'store' OR (
             c.api_key_id IS NULL AND c.support_grant_id IS NULL AND c.writable AND
             CASE WHEN c.role = 'custom'
                  THEN (SELECT cr.oversight FROM public.memberships m
                          JOIN public.custom_roles cr ON cr.org_id = m.org_id AND cr.id = m.custom_role_id
                         WHERE m.org_id = c.org_id AND m.user_id = c.user_id AND m.status = 'active')
                  ELSE app.builtin_role_oversight(c.role) END)
      FROM app.tenant_context c JOIN public.organisations o ON o.id = c.org_id
     WHERE c.pid = pg_catalog.pg_backend_pid() AND c.xact = pg_catalog.pg_current_xact_id_if_assigned()), false)
$$;

-- A custom role holds at most what its creator or editor holds; nobody edits or deletes a role
-- holding more than they do; oversight only from someone who may grant it.
CREATE FUNCTION app.custom_roles_grid() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE v record;
BEGIN
  SELECT * INTO v FROM app_private.context_grid();
  IF v.role IS NULL THEN
    RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
  END IF;
  IF (TG_OP <> 'INSERT' AND NOT OLD.permissions <@ coalesce(v.permissions, ARRAY[]::text[]))
     OR (TG_OP <> 'DELETE' AND NOT NEW.permissions <@ coalesce(v.permissions, ARRAY[]::text[]))
     OR (TG_OP <> 'DELETE' AND NEW.oversight AND (TG_OP = 'INSERT' OR NOT OLD.oversight)
         AND NOT app_private.context_may_grant_oversight()) THEN
    RAISE EXCEPTION 'PERMISSION_DENIED' USING ERRCODE = 'BW008', DETAIL = 'a custom role holds at most what its editor holds';
  END IF;
  RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
END $$;
CREATE TRIGGER custom_roles_grid BEFORE INSERT OR UPDATE OR DELETE ON custom_roles
  FOR EACH ROW EXECUTE FUNCTION app.custom_roles_grid();

-- 0402's membership rules, plus: a role is assigned (created, changed, reinstated) only when its
-- grid is within the assigner's, and its oversight only by someone who may grant oversight. A
-- revocation alone (DELETE /memberships/{id}) needs users:delete, as in the API.
CREATE OR REPLACE FUNCTION app.memberships_grid() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v record;
  v_need text := CASE TG_OP WHEN 'INSERT' THEN 'users:create'
                            WHEN 'UPDATE' THEN
                              CASE WHEN OLD.status = 'active' AND NEW.status = 'revoked' AND NEW.role = OLD.role
                                        AND NEW.custom_role_id IS NOT DISTINCT FROM OLD.custom_role_id
                                        AND NEW.user_id = OLD.user_id
                                   THEN 'users:delete' ELSE 'users:edit' END
                            ELSE 'users:delete' END;
  v_new text := CASE WHEN TG_OP = 'DELETE' THEN NULL ELSE NEW.role END;
  v_old text := CASE WHEN TG_OP = 'INSERT' THEN NULL ELSE OLD.role END;
  v_grid text[];
  v_oversight boolean;
BEGIN
  SELECT * INTO v FROM app_private.context_grid();
  IF v.role IS NULL THEN
    RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
  END IF;
  IF NOT (v_need = ANY (coalesce(v.permissions, ARRAY[]::text[])))
     OR ('owner' IN (v_new, v_old) AND v.role <> 'owner')
     OR ('admin' IN (v_new, v_old) AND v.role NOT IN ('owner', 'admin'))
     OR (TG_OP = 'UPDATE' AND OLD.user_id = v.user_id AND NEW.role IS DISTINCT FROM OLD.role) THEN
    RAISE EXCEPTION 'PERMISSION_DENIED' USING ERRCODE = 'BW008', DETAIL = 'the caller''s role does not allow this membership change';
  END IF;
  IF TG_OP = 'INSERT' OR (TG_OP = 'UPDATE' AND (NEW.role IS DISTINCT FROM OLD.role
                                                OR NEW.custom_role_id IS DISTINCT FROM OLD.custom_role_id
                                                OR (NEW.status = 'active' AND OLD.status <> 'active'))) THEN
    SELECT app.membership_permissions(NEW.role, cr.permissions),
           CASE WHEN NEW.role = 'custom' THEN cr.oversight ELSE app.builtin_role_oversight(NEW.role) END
      INTO v_grid, v_oversight
      FROM (SELECT 1) one LEFT JOIN public.custom_roles cr ON cr.org_id = NEW.org_id AND cr.id = NEW.custom_role_id;
    IF v_grid IS NULL OR NOT v_grid <@ coalesce(v.permissions, ARRAY[]::text[])
       OR (v_oversight AND NOT app_private.context_may_grant_oversight()) THEN
      RAISE EXCEPTION 'PERMISSION_DENIED' USING ERRCODE = 'BW008', DETAIL = 'nobody assigns a role wider than their own';
    END IF;
  END IF;
  RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
END $$;

REVOKE ALL ON FUNCTION app.custom_roles_grid(), app_private.context_may_grant_oversight() FROM PUBLIC;

-- ---------------------------------------------------------------------------------------------
-- 5. The export worker reads domain tables: its read-only context carries the view half of the grid.
-- ---------------------------------------------------------------------------------------------
CREATE OR REPLACE FUNCTION app.enter_export_context(p_export_id uuid) RETURNS uuid
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE v_org uuid; v_user uuid;
BEGIN
  SELECT e.org_id, e.requested_by INTO v_org, v_user FROM public.tenant_exports e
   WHERE e.id = p_export_id AND e.status = 'pending';
  IF NOT FOUND OR NOT app.is_live_owner(v_user, v_org) THEN
    RAISE EXCEPTION 'PERMISSION_DENIED' USING ERRCODE = 'BW008';
  END IF;
  PERFORM app_private.set_tenant_context(v_user, v_org, NULL);
  UPDATE app.tenant_context c SET writable = false, role = 'export',
         permissions = ARRAY(SELECT m || ':view' FROM unnest(app.modules()) m)
   WHERE c.pid = pg_backend_pid();
  RETURN v_org;
END $$;
