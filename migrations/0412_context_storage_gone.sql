-- The storage 0407 left behind goes.
--
-- Since 0407 the tenant context and the verified principal live in sealed, transaction-local
-- settings (app_private.seal/unseal); app.tenant_context and app_private.principal have been
-- neither read nor written by any function since (checked against pg_proc when this was written:
-- only app_private.current_principal and app_private.require_principal still named the latter, as
-- a row type). Two empty tables that look like the gate's storage mislead a reviewer, and each is
-- one more relation the application role must be shown unable to touch.
--
-- app_private.current_principal keeps its name and the fields its callers read (`.user_id`,
-- `.api_key_id`): it returns the sealed shape itself (0407) instead of the table's row type.

DROP FUNCTION app_private.current_principal();

-- The verified principal of this transaction, from its sealed setting; NULL without one.
CREATE FUNCTION app_private.current_principal() RETURNS app_private.sealed_principal
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$ SELECT app_private.unseal('principal')::app_private.sealed_principal $$;
REVOKE ALL ON FUNCTION app_private.current_principal() FROM PUBLIC;

-- Raises unless p_user is this transaction's verified principal (people only when p_person).
CREATE OR REPLACE FUNCTION app_private.require_principal(p_user uuid, p_person boolean DEFAULT true) RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE v app_private.sealed_principal;
BEGIN
  v := app_private.current_principal();
  IF v.user_id IS NULL OR p_user IS DISTINCT FROM v.user_id THEN
    RAISE EXCEPTION 'TOKEN_INVALID' USING ERRCODE = 'BW011', DETAIL = 'no proof for this user in this transaction';
  END IF;
  IF p_person AND v.api_key_id IS NOT NULL THEN
    RAISE EXCEPTION 'PERMISSION_DENIED' USING ERRCODE = 'BW008', DETAIL = 'people only, not API keys';
  END IF;
END $$;

DROP TABLE app_private.principal;
DROP TABLE app.tenant_context;
