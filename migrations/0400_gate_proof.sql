-- Entering a tenant needs proof, not a claim (docs/tenancy.md "Threat model", issue 14).
--
-- Until now app.set_tenant_context(user, org, grant) and the other gate functions trusted the user id
-- the caller passed. Ids are easy to harvest (audit rows, memberships, support grants name other
-- users), so SQL run on the API's connection could enter any tenant whose users it had seen. From
-- here on a transaction acts as a user only after app.authenticate(proof) verified one of:
--
--   * a gate ticket: `bwt1.<kid>.<payload>.<hmac>` signed by the REQUEST authorizer with a gate key
--     (lambda/tenant-guard/ticket.ts). The key is stored in app_private.gate_keys, which no
--     application role can read (no USAGE on the schema, no grant on the table); HMAC-SHA256 is
--     verified here with pgcrypto, expiry against the statement's clock, lifetime <= 5 minutes;
--   * an API key's full secret `bwk_<id>_<secret>`, hashed and looked up here (the API no longer
--     resolves keys by id itself).
--
-- The verified principal is recorded for the current transaction only (backend pid + xid, like the
-- tenant context of 0001). set_tenant_context and every gate function that names an acting user
-- (open/close_support_grant, create_organisation, restore_tenant, tenant_overview,
-- expect_tenant_byok) now refuse any user other than that principal. Their signatures stay, so the
-- API's call sites are unchanged; the unchecked bodies moved to app_private, out of every role's
-- reach. app.resolve_api_key is dropped; app.resolve_user no longer rewrites an existing user's
-- e-mail (a caller could re-address another tenant's user) and needs a principal.
--
-- Errors: BW011 TOKEN_INVALID (no, forged, or foreign proof), BW012 TOKEN_EXPIRED.

CREATE SCHEMA app_private;
REVOKE ALL ON SCHEMA app_private FROM PUBLIC;

-- Gate keys: HMAC keys shared with the authorizer, installed by the migration custom resource from
-- the gate-key secret (lambda/tenant-guard/bootstrap.ts installGateKey). Several may be live during
-- a rotation; a replaced key stays valid until not_after (tickets in flight), then is refused.
CREATE TABLE app_private.gate_keys (
  kid text PRIMARY KEY CHECK (kid ~ '^[A-Za-z0-9_-]{1,64}$'),
  secret bytea NOT NULL CHECK (octet_length(secret) >= 32),
  not_after timestamptz,
  installed_at timestamptz NOT NULL DEFAULT now()
);
REVOKE ALL ON app_private.gate_keys FROM PUBLIC;

-- Installs (or re-installs) the current key; every other live key may still verify tickets for
-- ten more minutes (longer than any ticket lives), then not at all. Owner only.
CREATE FUNCTION app_private.install_gate_key(p_kid text, p_secret bytea) RETURNS void
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
  UPDATE app_private.gate_keys k SET not_after = now() + interval '10 minutes'
   WHERE k.kid <> p_kid AND (k.not_after IS NULL OR k.not_after > now() + interval '10 minutes');
  INSERT INTO app_private.gate_keys AS k (kid, secret) VALUES (p_kid, p_secret)
  ON CONFLICT (kid) DO UPDATE SET secret = EXCLUDED.secret, not_after = NULL, installed_at = now();
$$;

CREATE FUNCTION app_private.b64url(p text) RETURNS bytea LANGUAGE sql IMMUTABLE STRICT
SET search_path = pg_catalog, pg_temp
AS $$ SELECT decode(rpad(translate(p, '-_', '+/'), ((length(p) + 3) / 4) * 4, '='), 'base64') $$;

-- Verifies a ticket; raises BW011/BW012 on anything but a live, well-formed ticket signed by a live key.
CREATE FUNCTION app_private.verify_ticket(p_ticket text)
RETURNS TABLE (subject text, email text, org_id uuid, expires_at timestamptz, request_id text)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_parts text[];
  v_key bytea;
  v_payload jsonb;
  v_now timestamptz := statement_timestamp();
  v_iat numeric;
  v_exp numeric;
BEGIN
  IF p_ticket IS NULL OR length(p_ticket) > 4096
     OR p_ticket !~ '^bwt1\.[A-Za-z0-9_-]{1,64}\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{43}$' THEN
    RAISE EXCEPTION 'TOKEN_INVALID' USING ERRCODE = 'BW011';
  END IF;
  v_parts := string_to_array(p_ticket, '.');
  SELECT k.secret INTO v_key FROM app_private.gate_keys k
   WHERE k.kid = v_parts[2] AND (k.not_after IS NULL OR k.not_after > v_now);
  -- Compared as digests of the MACs, so the comparison's timing says nothing about the expected MAC.
  IF v_key IS NULL OR public.digest(public.hmac(convert_to(v_parts[1] || '.' || v_parts[2] || '.' || v_parts[3], 'UTF8'),
                                                v_key, 'sha256'), 'sha256')
                      <> public.digest(app_private.b64url(v_parts[4]), 'sha256') THEN
    RAISE EXCEPTION 'TOKEN_INVALID' USING ERRCODE = 'BW011';
  END IF;
  BEGIN
    v_payload := convert_from(app_private.b64url(v_parts[3]), 'UTF8')::jsonb;
    v_iat := (v_payload ->> 'iat')::numeric;
    v_exp := (v_payload ->> 'exp')::numeric;
  EXCEPTION WHEN OTHERS THEN
    RAISE EXCEPTION 'TOKEN_INVALID' USING ERRCODE = 'BW011';
  END;
  IF jsonb_typeof(v_payload) <> 'object' OR v_iat IS NULL OR v_exp IS NULL OR v_iat < 0 OR v_exp > 4102444800 THEN
    RAISE EXCEPTION 'TOKEN_INVALID' USING ERRCODE = 'BW011';
  END IF;
  IF jsonb_typeof(v_payload -> 'sub') IS DISTINCT FROM 'string' OR length(v_payload ->> 'sub') NOT BETWEEN 1 AND 255
     OR jsonb_typeof(v_payload -> 'email') IS DISTINCT FROM 'string'
     OR length(v_payload ->> 'email') NOT BETWEEN 3 AND 320
     OR coalesce(v_payload ->> 'org', '') !~ '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
     OR v_exp <= v_iat OR v_exp - v_iat > 300 OR to_timestamp(v_iat) > v_now + interval '60 seconds' THEN
    RAISE EXCEPTION 'TOKEN_INVALID' USING ERRCODE = 'BW011';
  END IF;
  IF to_timestamp(v_exp) <= v_now THEN
    RAISE EXCEPTION 'TOKEN_EXPIRED' USING ERRCODE = 'BW012';
  END IF;
  RETURN QUERY SELECT v_payload ->> 'sub', v_payload ->> 'email', (v_payload ->> 'org')::uuid, to_timestamp(v_exp),
                      left(v_payload ->> 'rid', 100);
END $$;

-- The verified principal of the current transaction (pid + xid: gone with the transaction).
CREATE UNLOGGED TABLE app_private.principal (
  pid integer PRIMARY KEY,
  xact xid8 NOT NULL,
  user_id uuid NOT NULL,
  org_id uuid NOT NULL,
  api_key_id uuid,
  api_key_permissions text[],
  request_id text
);
REVOKE ALL ON app_private.principal FROM PUBLIC;

CREATE FUNCTION app_private.current_principal() RETURNS app_private.principal
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT p.* FROM app_private.principal p
   WHERE p.pid = pg_catalog.pg_backend_pid() AND p.xact = pg_catalog.pg_current_xact_id_if_assigned()
$$;

-- Raises unless p_user is this transaction's verified principal (people only when p_person).
CREATE FUNCTION app_private.require_principal(p_user uuid, p_person boolean DEFAULT true) RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE v app_private.principal;
BEGIN
  v := app_private.current_principal();
  IF v.user_id IS NULL OR p_user IS DISTINCT FROM v.user_id THEN
    RAISE EXCEPTION 'TOKEN_INVALID' USING ERRCODE = 'BW011', DETAIL = 'no proof for this user in this transaction';
  END IF;
  IF p_person AND v.api_key_id IS NOT NULL THEN
    RAISE EXCEPTION 'PERMISSION_DENIED' USING ERRCODE = 'BW008', DETAIL = 'people only, not API keys';
  END IF;
END $$;

-- The one way a transaction gets a principal. Returns who it is; a disabled user is refused.
CREATE FUNCTION app.authenticate(p_proof text)
RETURNS TABLE (user_id uuid, status text, platform_role text, org_id uuid, api_key_id uuid, permissions text[])
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
  v_key public.api_keys%ROWTYPE;
  v_user public.users%ROWTYPE;
  v_t record;
  v_m text[];
  v_org uuid;
  v_rid text;
BEGIN
  v_m := regexp_match(coalesce(p_proof, ''), '^bwk_([0-9a-f]{32})_([A-Za-z0-9_-]{43})$');
  IF v_m IS NOT NULL THEN
    UPDATE public.api_keys k SET last_used_at = clock_timestamp()
     WHERE k.id = v_m[1]::uuid AND k.secret_hash = public.digest(convert_to(v_m[2], 'UTF8'), 'sha256')
       AND k.revoked_at IS NULL AND (k.expires_at IS NULL OR k.expires_at > clock_timestamp())
    RETURNING * INTO v_key;
    IF NOT FOUND THEN RAISE EXCEPTION 'TOKEN_INVALID' USING ERRCODE = 'BW011'; END IF;
    SELECT * INTO v_user FROM public.users u WHERE u.id = v_key.created_by;
    v_org := v_key.org_id;
  ELSE
    SELECT * INTO v_t FROM app_private.verify_ticket(p_proof);
    SELECT * INTO v_user FROM public.users u WHERE u.subject = v_t.subject;
    IF NOT FOUND THEN
      INSERT INTO public.users AS u (subject, email) VALUES (v_t.subject, v_t.email)
      ON CONFLICT (subject) DO NOTHING;
      SELECT * INTO v_user FROM public.users u WHERE u.subject = v_t.subject;
    ELSIF v_user.email IS DISTINCT FROM v_t.email THEN
      -- The identity provider vouches for this user's own address; nobody else's is ever rewritten.
      UPDATE public.users u SET email = v_t.email WHERE u.id = v_user.id;
    END IF;
    v_org := v_t.org_id;
    v_rid := v_t.request_id;
  END IF;
  IF v_user.id IS NULL OR v_user.status <> 'active' THEN
    RAISE EXCEPTION 'USER_DISABLED' USING ERRCODE = 'BW006';
  END IF;
  INSERT INTO app_private.principal AS p (pid, xact, user_id, org_id, api_key_id, api_key_permissions, request_id)
  VALUES (pg_backend_pid(), pg_current_xact_id(), v_user.id, v_org, v_key.id, v_key.permissions, v_rid)
  ON CONFLICT (pid) DO UPDATE
    SET xact = EXCLUDED.xact, user_id = EXCLUDED.user_id, org_id = EXCLUDED.org_id, api_key_id = EXCLUDED.api_key_id,
        api_key_permissions = EXCLUDED.api_key_permissions, request_id = EXCLUDED.request_id;
  RETURN QUERY SELECT v_user.id, v_user.status, v_user.platform_role, v_org, v_key.id, v_key.permissions;
END $$;

-- The context now also records the role and the effective grid, so the database can hold the role
-- grid itself (0401), and the API key in use.
ALTER TABLE app.tenant_context ADD COLUMN role text, ADD COLUMN permissions text[], ADD COLUMN api_key_id uuid;

-- ---------------------------------------------------------------------------------------------
-- Gate functions that name a user: the unchecked bodies move out of reach, checked wrappers take
-- their place with the same signatures.
-- ---------------------------------------------------------------------------------------------
ALTER FUNCTION app.set_tenant_context(uuid, uuid, uuid) SET SCHEMA app_private;
ALTER FUNCTION app.open_support_grant(uuid, uuid, text, interval, text) SET SCHEMA app_private;
ALTER FUNCTION app.close_support_grant(uuid, uuid) SET SCHEMA app_private;
ALTER FUNCTION app.create_organisation(uuid, text, text, text, uuid, uuid) SET SCHEMA app_private;
ALTER FUNCTION app.restore_tenant(uuid, uuid) SET SCHEMA app_private;
ALTER FUNCTION app.tenant_overview(uuid, uuid) SET SCHEMA app_private;
ALTER FUNCTION app.expect_tenant_byok(uuid, uuid) SET SCHEMA app_private;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA app_private FROM PUBLIC, bulwark_app;
DROP FUNCTION app.resolve_api_key(uuid, bytea);

CREATE FUNCTION app.set_tenant_context(p_user_id uuid, p_org_id uuid, p_support_grant_id uuid DEFAULT NULL)
RETURNS TABLE (org_id uuid, user_id uuid, role text, permissions text[], support_grant_id uuid,
               readable_org_ids uuid[], writable boolean, grant_expires_at timestamptz)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
  v_p app_private.principal;
  r record;
  v_perms text[];
BEGIN
  PERFORM app_private.require_principal(p_user_id, false);
  v_p := app_private.current_principal();
  IF v_p.api_key_id IS NOT NULL AND p_support_grant_id IS NOT NULL THEN
    RAISE EXCEPTION 'SUPPORT_GRANT_INVALID' USING ERRCODE = 'BW005';
  END IF;
  -- An API key enters its own organisation only.
  IF v_p.api_key_id IS NOT NULL AND p_org_id IS DISTINCT FROM v_p.org_id THEN
    RAISE EXCEPTION 'PERMISSION_DENIED' USING ERRCODE = 'BW008';
  END IF;
  SELECT * INTO r FROM app_private.set_tenant_context(p_user_id, p_org_id, p_support_grant_id) s;
  -- An API key's grid only ever narrows its minter's current grid.
  v_perms := CASE WHEN v_p.api_key_id IS NULL THEN r.permissions
                  ELSE ARRAY(SELECT x FROM unnest(r.permissions) x WHERE x = ANY (v_p.api_key_permissions)) END;
  UPDATE app.tenant_context c SET role = r.role, permissions = v_perms, api_key_id = v_p.api_key_id
   WHERE c.pid = pg_backend_pid();
  RETURN QUERY SELECT r.org_id, r.user_id, r.role, v_perms, r.support_grant_id, r.readable_org_ids, r.writable,
                      r.grant_expires_at;
END $$;

CREATE FUNCTION app.open_support_grant(p_user_id uuid, p_org_id uuid, p_reason text, p_duration interval,
                                       p_scope text DEFAULT 'read')
RETURNS public.support_grants
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  PERFORM app_private.require_principal(p_user_id);
  RETURN app_private.open_support_grant(p_user_id, p_org_id, p_reason, p_duration, p_scope);
END $$;

CREATE FUNCTION app.close_support_grant(p_user_id uuid, p_grant_id uuid) RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  PERFORM app_private.require_principal(p_user_id);
  RETURN app_private.close_support_grant(p_user_id, p_grant_id);
END $$;

CREATE FUNCTION app.create_organisation(p_actor uuid, p_kind text, p_name text, p_plan text, p_parent uuid,
                                        p_owner uuid)
RETURNS uuid
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE v_org uuid;
BEGIN
  PERFORM app_private.require_principal(p_actor);
  v_org := app_private.create_organisation(p_actor, p_kind, p_name, p_plan, p_parent, p_owner);
  -- The platform owner is no member of the new tenant: for the rest of this transaction it holds a
  -- read-only context there, so that the creation is audited in the tenant's own chain, naming the
  -- platform owner as the actor (it never impersonates the new Owner).
  INSERT INTO app.tenant_context AS c (pid, xact, org_id, user_id, support_grant_id, readable_org_ids, writable, set_at,
                                       role, permissions)
  VALUES (pg_backend_pid(), pg_current_xact_id(), v_org, p_actor, NULL, ARRAY[v_org], false, clock_timestamp(),
          'platform_owner', ARRAY[]::text[])
  ON CONFLICT (pid) DO UPDATE
    SET xact = EXCLUDED.xact, org_id = EXCLUDED.org_id, user_id = EXCLUDED.user_id, support_grant_id = NULL,
        readable_org_ids = EXCLUDED.readable_org_ids, writable = false, set_at = EXCLUDED.set_at,
        role = EXCLUDED.role, permissions = EXCLUDED.permissions, api_key_id = NULL;
  RETURN v_org;
END $$;

CREATE FUNCTION app.restore_tenant(p_actor uuid, p_org uuid)
RETURNS TABLE (org_id uuid, previous_state text)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  PERFORM app_private.require_principal(p_actor);
  RETURN QUERY SELECT * FROM app_private.restore_tenant(p_actor, p_org);
END $$;

CREATE FUNCTION app.tenant_overview(p_actor uuid, p_org uuid)
RETURNS TABLE (org_id uuid, name text, plan text, status text, role text, lifecycle_state text,
               cancelled_at timestamptz, access_until timestamptz, grace_ends_at timestamptz,
               key_expected text, key_source text, key_set boolean, key_arn text)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  PERFORM app_private.require_principal(p_actor);
  RETURN QUERY SELECT * FROM app_private.tenant_overview(p_actor, p_org);
END $$;

CREATE FUNCTION app.expect_tenant_byok(p_actor uuid, p_org uuid) RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  PERFORM app_private.require_principal(p_actor);
  PERFORM app_private.expect_tenant_byok(p_actor, p_org);
END $$;

-- A member or a new tenant's Owner, by identity-provider subject: an existing user is returned as
-- is (never re-addressed), a new one is created. Needs an authenticated principal.
CREATE OR REPLACE FUNCTION app.resolve_user(p_subject text, p_email text)
RETURNS TABLE (id uuid, status text, platform_role text)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
BEGIN
  IF (app_private.current_principal()).user_id IS NULL THEN
    RAISE EXCEPTION 'TOKEN_INVALID' USING ERRCODE = 'BW011';
  END IF;
  INSERT INTO public.users AS u (subject, email) VALUES (p_subject, p_email) ON CONFLICT (subject) DO NOTHING;
  RETURN QUERY SELECT u.id, u.status, u.platform_role FROM public.users u WHERE u.subject = p_subject;
END $$;

REVOKE ALL ON FUNCTION app.authenticate(text), app.set_tenant_context(uuid, uuid, uuid),
  app.open_support_grant(uuid, uuid, text, interval, text), app.close_support_grant(uuid, uuid),
  app.create_organisation(uuid, text, text, text, uuid, uuid), app.restore_tenant(uuid, uuid),
  app.tenant_overview(uuid, uuid), app.expect_tenant_byok(uuid, uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION app.authenticate(text), app.set_tenant_context(uuid, uuid, uuid),
  app.open_support_grant(uuid, uuid, text, interval, text), app.close_support_grant(uuid, uuid),
  app.create_organisation(uuid, text, text, text, uuid, uuid), app.restore_tenant(uuid, uuid),
  app.tenant_overview(uuid, uuid), app.expect_tenant_byok(uuid, uuid) TO bulwark_app;

-- The export worker acts for no caller: it enters the organisation of one *pending* export, as the
-- Owner who requested it (still a live Owner), read-only, to read that tenant's rows into the export.
CREATE FUNCTION app.enter_export_context(p_export_id uuid) RETURNS uuid
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
  UPDATE app.tenant_context c SET writable = false, role = 'export', permissions = ARRAY[]::text[]
   WHERE c.pid = pg_backend_pid();
  RETURN v_org;
END $$;
REVOKE ALL ON FUNCTION app.enter_export_context(uuid) FROM PUBLIC;
-- The export worker still connects as the application role; 0401 moves this to its own role.
GRANT EXECUTE ON FUNCTION app.enter_export_context(uuid) TO bulwark_app;
