-- The role grid holds in the database too (issue 14): inside its own tenant, the API's role cannot
-- do what the caller's role may not, whatever SQL it sends. The context records the caller's role
-- and grid (0400); these triggers check identity-table writes made under a context against it.
-- Writes without a context are already refused by RLS, except those of the gate's own definer
-- functions (create_organisation's first Owner), which these triggers leave alone.
--
--   * memberships: creating needs users:create, changing users:edit, removing users:delete; only an
--     Owner makes, changes or removes an Owner; only an Owner or Admin makes an Admin; nobody changes
--     their own role (a Member cannot make itself Owner);
--   * API keys and support grants: a revoked one stays revoked (revoked_at never changes again).

CREATE FUNCTION app_private.context_grid(OUT role text, OUT permissions text[], OUT user_id uuid)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT c.role, c.permissions, c.user_id FROM app.tenant_context c
   WHERE c.pid = pg_catalog.pg_backend_pid() AND c.xact = pg_catalog.pg_current_xact_id_if_assigned()
$$;

CREATE FUNCTION app.memberships_grid() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v record;
  v_need text := CASE TG_OP WHEN 'INSERT' THEN 'users:create' WHEN 'UPDATE' THEN 'users:edit' ELSE 'users:delete' END;
  v_new text := CASE WHEN TG_OP = 'DELETE' THEN NULL ELSE NEW.role END;
  v_old text := CASE WHEN TG_OP = 'INSERT' THEN NULL ELSE OLD.role END;
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
  RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
END $$;
CREATE TRIGGER memberships_grid BEFORE INSERT OR UPDATE OR DELETE ON memberships
  FOR EACH ROW EXECUTE FUNCTION app.memberships_grid();

CREATE FUNCTION app.revocation_is_final() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  IF OLD.revoked_at IS NOT NULL AND NEW.revoked_at IS DISTINCT FROM OLD.revoked_at THEN
    RAISE EXCEPTION 'PERMISSION_DENIED' USING ERRCODE = 'BW008', DETAIL = 'a revocation is final';
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER api_keys_revocation_final BEFORE UPDATE OF revoked_at ON api_keys
  FOR EACH ROW EXECUTE FUNCTION app.revocation_is_final();
CREATE TRIGGER support_grants_revocation_final BEFORE UPDATE OF revoked_at ON support_grants
  FOR EACH ROW EXECUTE FUNCTION app.revocation_is_final();

REVOKE ALL ON FUNCTION app.memberships_grid(), app.revocation_is_final(), app_private.context_grid() FROM PUBLIC;
