-- A lean gate: entering a tenant is one statement, a read request writes nothing (issues 14 and 18;
-- docs/tenancy.md "Design", "Threat model", "Cost of the gate").
--
-- Until now app.authenticate recorded the verified principal in app_private.principal and
-- app.set_tenant_context the context in app.tenant_context, both rows keyed by backend pid and the
-- transaction id: every request wrote two rows and consumed a transaction id (86 million a day at
-- 1,000 requests/s, an anti-wraparound vacuum of every table every few days), and a guarded read
-- took five round trips. From here on:
--
--   * the principal and the context live in transaction-local settings (set_config(..., true):
--     `bulwark.principal`, `bulwark.ctx`), each sealed with HMAC-SHA256 under a key that no
--     application role can read (app_private.context_key, generated here). The MAC covers the
--     backend (pid, server start) and the transaction (its start timestamp), which are not stored
--     in the value but recomputed by the reader, so a sealed value means nothing in another
--     transaction or backend. Every reader (the accessors below) verifies it; anything else, a
--     forged, tampered, copied or stale value, reads as "no context" and RLS sees nothing;
--   * a transaction-local setting vanishes at COMMIT or ROLLBACK, and with ROLLBACK TO SAVEPOINT;
--     a session-level copy (set_config(..., false)) of a sealed value dies with its transaction;
--   * app.enter_tenant(proof, org, grant) proves the caller and enters in one statement;
--     app.authenticate and app.set_tenant_context keep working for the other callers (audit sink,
--     export, lifecycle commands), through the same storage;
--   * an API key's last_used_at is stamped at most once an hour, so most uses write nothing; a
--     user's first login (and a changed e-mail) still writes their row;
--   * the built-in grids come from a table read by a plan-cached function instead of being rebuilt
--     by nested SQL functions on every call.
--
-- The accessors keep their names and signatures, so every policy and function that reads the
-- context keeps working; app.tenant_context and app_private.principal are no longer read or written
-- (the latter remains as the row type app_private.current_principal returns).
--
-- Errors: as before (BW001..BW012).

-- ---------------------------------------------------------------------------------------------
-- 1. The sealing key and the sealed shapes.
-- ---------------------------------------------------------------------------------------------
CREATE TABLE app_private.context_key (
  id boolean PRIMARY KEY DEFAULT true CHECK (id),
  secret bytea NOT NULL CHECK (octet_length(secret) >= 32)
);
REVOKE ALL ON app_private.context_key FROM PUBLIC;
INSERT INTO app_private.context_key (secret) VALUES (public.gen_random_bytes(32));

CREATE TYPE app_private.sealed_principal AS (
  user_id uuid,
  org_id uuid,
  api_key_id uuid,
  api_key_permissions text[],
  request_id text
);

CREATE TYPE app_private.sealed_context AS (
  org_id uuid,
  user_id uuid,
  support_grant_id uuid,
  writable boolean,
  role text,
  permissions text[],
  api_key_id uuid
);

-- What a sealed value is bound to: its kind, this backend, this transaction. Text of integers and
-- numerics only, so it does not depend on any setting the caller controls (DateStyle, TimeZone).
-- No SET clause, so that it is inlined into its two callers, whose search_path is pinned.
CREATE FUNCTION app_private.seal_binding(p_kind text) RETURNS text
LANGUAGE sql STABLE
AS $$
  SELECT p_kind || ':' || pg_catalog.pg_backend_pid()::text || ':'
         || extract(epoch FROM pg_catalog.pg_postmaster_start_time())::text || ':'
         || extract(epoch FROM pg_catalog.transaction_timestamp())::text || ':'
$$;

-- The payload of setting `bulwark.<kind>` when it was sealed for this backend and transaction, else
-- NULL. The MACs are compared as digests, so the comparison's timing says nothing about the MAC.
CREATE FUNCTION app_private.unseal(p_kind text) RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v text := current_setting('bulwark.' || p_kind, true);
  n integer := length(v) - 65;
BEGIN
  IF n IS NULL OR n < 1 OR substr(v, n + 1, 1) <> '~' THEN
    RETURN NULL;
  END IF;
  IF (SELECT public.digest(encode(public.hmac(convert_to(app_private.seal_binding(p_kind) || left(v, n), 'UTF8'),
                                              c.secret, 'sha256'), 'hex'), 'sha256')
        FROM app_private.context_key c)
     IS DISTINCT FROM public.digest(right(v, 64), 'sha256') THEN
    RETURN NULL;
  END IF;
  RETURN left(v, n);
END $$;

-- The verified tenant context of this transaction, or NULL. No SET clause, so that it is inlined
-- into the accessors (whose search_path is pinned); unseal has its own.
CREATE FUNCTION app_private.context() RETURNS app_private.sealed_context
LANGUAGE sql STABLE
AS $$ SELECT app_private.unseal('ctx')::app_private.sealed_context $$;

-- Seals `<payload>~<hex HMAC>` into the transaction. Transaction-local: the function's own SET
-- clause restores search_path only; a SET LOCAL of another setting outlives the function and ends
-- with the transaction (or the savepoint it was made in). plpgsql rather than SQL throughout the
-- gate: PostgreSQL 17 plans a SQL function's body again on every call.
CREATE FUNCTION app_private.enter_context(p app_private.sealed_context) RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  PERFORM set_config('bulwark.ctx', p::text || '~'
    || (SELECT encode(public.hmac(convert_to(app_private.seal_binding('ctx') || p::text, 'UTF8'), c.secret, 'sha256'),
                      'hex')
          FROM app_private.context_key c), true);
END $$;

CREATE FUNCTION app_private.enter_principal(p app_private.sealed_principal) RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  PERFORM set_config('bulwark.principal', p::text || '~'
    || (SELECT encode(public.hmac(convert_to(app_private.seal_binding('principal') || p::text, 'UTF8'), c.secret,
                                  'sha256'), 'hex')
          FROM app_private.context_key c), true);
END $$;

-- ---------------------------------------------------------------------------------------------
-- 2. Built-in grids, computed once here from the vocabulary functions (their one source of truth).
-- ---------------------------------------------------------------------------------------------
CREATE TABLE app_private.builtin_grids (
  name text PRIMARY KEY,
  permissions text[] NOT NULL,
  oversight boolean NOT NULL
);
REVOKE ALL ON app_private.builtin_grids FROM PUBLIC;
INSERT INTO app_private.builtin_grids (name, permissions, oversight)
SELECT r, app.builtin_role_permissions(r), app.builtin_role_oversight(r)
  FROM unnest(ARRAY['owner', 'admin', 'member', 'viewer']) r
UNION ALL
SELECT 'support:read', ARRAY(SELECT m || ':view' FROM unnest(app.modules()) m), false
UNION ALL
SELECT 'support:read_write', ARRAY(SELECT m || ':view' FROM unnest(app.modules()) m)
                             || ARRAY(SELECT m || ':edit' FROM unnest(app.modules()) m), false
UNION ALL
SELECT 'export', ARRAY(SELECT m || ':view' FROM unnest(app.modules()) m), false;

-- ---------------------------------------------------------------------------------------------
-- 3. Proof: the principal, verified, held in a sealed setting instead of a row.
-- ---------------------------------------------------------------------------------------------
-- 0400's ticket check without its exception block, which opened a subtransaction on every request:
-- the payload's shape is checked before it is cast instead. Only a payload that carries a valid MAC
-- is parsed at all, so only the authorizer (the key's holder) could make one fail differently.
CREATE OR REPLACE FUNCTION app_private.verify_ticket(p_ticket text)
RETURNS TABLE (subject text, email text, org_id uuid, expires_at timestamptz, request_id text)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_parts text[];
  v_key bytea;
  v_json text;
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
                      <> public.digest(decode(translate(v_parts[4], '-_', '+/') || '=', 'base64'), 'sha256') THEN
    RAISE EXCEPTION 'TOKEN_INVALID' USING ERRCODE = 'BW011';
  END IF;
  IF length(v_parts[3]) % 4 = 1 THEN
    RAISE EXCEPTION 'TOKEN_INVALID' USING ERRCODE = 'BW011';
  END IF;
  -- app_private.b64url inline (a SQL function would be planned on every call).
  v_json := convert_from(decode(rpad(translate(v_parts[3], '-_', '+/'), ((length(v_parts[3]) + 3) / 4) * 4, '='),
                                'base64'), 'UTF8');
  IF NOT pg_input_is_valid(v_json, 'jsonb') THEN
    RAISE EXCEPTION 'TOKEN_INVALID' USING ERRCODE = 'BW011';
  END IF;
  v_payload := v_json::jsonb;
  IF jsonb_typeof(v_payload) <> 'object' OR jsonb_typeof(v_payload -> 'iat') IS DISTINCT FROM 'number'
     OR jsonb_typeof(v_payload -> 'exp') IS DISTINCT FROM 'number' THEN
    RAISE EXCEPTION 'TOKEN_INVALID' USING ERRCODE = 'BW011';
  END IF;
  v_iat := (v_payload ->> 'iat')::numeric;
  v_exp := (v_payload ->> 'exp')::numeric;
  IF v_iat < 0 OR v_exp > 4102444800 THEN
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

-- Verifies a proof (0400) and returns its principal; writes only a new user's row (first login), a
-- changed e-mail, and an API key's last_used_at when the last stamp is an hour old or more.
CREATE FUNCTION app_private.prove(p_proof text)
RETURNS TABLE (user_id uuid, status text, platform_role text, org_id uuid, api_key_id uuid, permissions text[],
               request_id text)
LANGUAGE plpgsql VOLATILE
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
    SELECT * INTO v_key FROM public.api_keys k
     WHERE k.id = v_m[1]::uuid AND k.secret_hash = public.digest(convert_to(v_m[2], 'UTF8'), 'sha256')
       AND k.revoked_at IS NULL AND (k.expires_at IS NULL OR k.expires_at > clock_timestamp());
    IF NOT FOUND THEN RAISE EXCEPTION 'TOKEN_INVALID' USING ERRCODE = 'BW011'; END IF;
    IF v_key.last_used_at IS NULL OR v_key.last_used_at < clock_timestamp() - interval '1 hour' THEN
      UPDATE public.api_keys k SET last_used_at = clock_timestamp()
       WHERE k.id = v_key.id AND (k.last_used_at IS NULL OR k.last_used_at < clock_timestamp() - interval '1 hour');
    END IF;
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
  RETURN QUERY SELECT v_user.id, v_user.status, v_user.platform_role, v_org, v_key.id, v_key.permissions, v_rid;
END $$;

-- The verified principal of this transaction (pid and xact are no longer stored: NULL xact).
CREATE OR REPLACE FUNCTION app_private.current_principal() RETURNS app_private.principal
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v text := app_private.unseal('principal');
  p app_private.sealed_principal;
  r app_private.principal;
BEGIN
  IF v IS NULL THEN
    RETURN NULL;
  END IF;
  p := v::app_private.sealed_principal;
  r.pid := pg_backend_pid();
  r.user_id := p.user_id;
  r.org_id := p.org_id;
  r.api_key_id := p.api_key_id;
  r.api_key_permissions := p.api_key_permissions;
  r.request_id := p.request_id;
  RETURN r;
END $$;

CREATE OR REPLACE FUNCTION app.authenticate(p_proof text)
RETURNS TABLE (user_id uuid, status text, platform_role text, org_id uuid, api_key_id uuid, permissions text[])
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE r record;
BEGIN
  SELECT * INTO STRICT r FROM app_private.prove(p_proof) p;
  PERFORM app_private.enter_principal(ROW(r.user_id, r.org_id, r.api_key_id, r.permissions, r.request_id)::app_private.sealed_principal);
  RETURN QUERY SELECT r.user_id, r.status, r.platform_role, r.org_id, r.api_key_id, r.permissions;
END $$;

-- ---------------------------------------------------------------------------------------------
-- 4. The context: computed live (0003's checks, grids from the table), held in a sealed setting.
-- ---------------------------------------------------------------------------------------------
CREATE OR REPLACE FUNCTION app_private.set_tenant_context(p_user_id uuid, p_org_id uuid,
                                                          p_support_grant_id uuid DEFAULT NULL)
RETURNS TABLE (org_id uuid, user_id uuid, role text, permissions text[], support_grant_id uuid,
               readable_org_ids uuid[], writable boolean, grant_expires_at timestamptz)
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
  v_org public.organisations%ROWTYPE;
  v_user public.users%ROWTYPE;
  v_role text;
  v_perms text[];
  v_writable boolean;
  v_grant public.support_grants%ROWTYPE;
BEGIN
  IF p_user_id IS NULL OR p_org_id IS NULL THEN
    RAISE EXCEPTION 'TENANT_CONTEXT_MISSING' USING ERRCODE = 'BW001';
  END IF;
  SELECT * INTO v_user FROM public.users u WHERE u.id = p_user_id;
  IF NOT FOUND OR v_user.status <> 'active' THEN
    RAISE EXCEPTION 'USER_DISABLED' USING ERRCODE = 'BW006';
  END IF;
  SELECT * INTO v_org FROM public.organisations o WHERE o.id = p_org_id;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'MEMBERSHIP_REVOKED' USING ERRCODE = 'BW002';
  END IF;
  IF v_org.status <> 'active' THEN
    RAISE EXCEPTION 'ORGANISATION_INACTIVE' USING ERRCODE = 'BW004';
  END IF;

  IF p_support_grant_id IS NULL THEN
    SELECT m.role, CASE WHEN m.role = 'custom' THEN cr.permissions ELSE b.permissions END
      INTO v_role, v_perms
      FROM public.memberships m
      LEFT JOIN public.custom_roles cr ON cr.org_id = m.org_id AND cr.id = m.custom_role_id
      LEFT JOIN app_private.builtin_grids b ON b.name = m.role
     WHERE m.org_id = p_org_id AND m.user_id = p_user_id AND m.status = 'active';
    IF FOUND THEN
      v_writable := true;
    ELSE
      -- Oversight (0003): an active membership in an ancestor whose role allows it enters a member
      -- store read-only, with the view half of its grid. Only the ancestor chain is consulted.
      WITH RECURSIVE up(id, depth) AS (
        SELECT o.parent_id, 1 FROM public.organisations o WHERE o.id = p_org_id AND o.parent_id IS NOT NULL
        UNION ALL
        SELECT o.parent_id, up.depth + 1 FROM public.organisations o JOIN up ON o.id = up.id
         WHERE o.parent_id IS NOT NULL AND up.depth < 8
      )
      SELECT m.role, ARRAY(SELECT p FROM unnest(CASE WHEN m.role = 'custom' THEN cr.permissions ELSE b.permissions END) p
                            WHERE p LIKE '%:view')
        INTO v_role, v_perms
        FROM up
        JOIN public.organisations anc ON anc.id = up.id AND anc.status = 'active'
        JOIN public.memberships m ON m.org_id = up.id AND m.user_id = p_user_id AND m.status = 'active'
        LEFT JOIN public.custom_roles cr ON cr.org_id = m.org_id AND cr.id = m.custom_role_id
        LEFT JOIN app_private.builtin_grids b ON b.name = m.role
       WHERE CASE WHEN m.role = 'custom' THEN cr.oversight ELSE coalesce(b.oversight, false) END
       ORDER BY up.depth
       LIMIT 1;
      IF NOT FOUND THEN
        RAISE EXCEPTION 'MEMBERSHIP_REVOKED' USING ERRCODE = 'BW002';
      END IF;
      v_writable := false;
    END IF;
  ELSE
    IF v_user.platform_role IS DISTINCT FROM 'platform_support' THEN
      RAISE EXCEPTION 'SUPPORT_GRANT_INVALID' USING ERRCODE = 'BW005';
    END IF;
    SELECT * INTO v_grant FROM public.support_grants g
     WHERE g.id = p_support_grant_id AND g.org_id = p_org_id AND g.granted_to = p_user_id;
    IF NOT FOUND THEN
      RAISE EXCEPTION 'SUPPORT_GRANT_INVALID' USING ERRCODE = 'BW005';
    END IF;
    IF v_grant.revoked_at IS NOT NULL THEN
      RAISE EXCEPTION 'SUPPORT_GRANT_REVOKED' USING ERRCODE = 'BW007';
    END IF;
    IF v_grant.expires_at <= clock_timestamp() THEN
      RAISE EXCEPTION 'SUPPORT_GRANT_EXPIRED' USING ERRCODE = 'BW003';
    END IF;
    v_role := 'platform_support';
    SELECT b.permissions INTO STRICT v_perms FROM app_private.builtin_grids b WHERE b.name = 'support:' || v_grant.scope;
    v_writable := v_grant.scope = 'read_write';
  END IF;

  RETURN QUERY SELECT p_org_id, p_user_id, v_role, coalesce(v_perms, ARRAY[]::text[]), p_support_grant_id,
                      ARRAY[p_org_id], v_writable, v_grant.expires_at;
END $$;

-- The context for a verified principal: live checks, API-key narrowing, sealed into the transaction.
CREATE FUNCTION app_private.enter_as(p app_private.sealed_principal, p_org_id uuid, p_support_grant_id uuid)
RETURNS TABLE (org_id uuid, user_id uuid, role text, permissions text[], support_grant_id uuid,
               readable_org_ids uuid[], writable boolean, grant_expires_at timestamptz)
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  r record;
  v_perms text[];
BEGIN
  IF p.api_key_id IS NOT NULL AND p_support_grant_id IS NOT NULL THEN
    RAISE EXCEPTION 'SUPPORT_GRANT_INVALID' USING ERRCODE = 'BW005';
  END IF;
  -- An API key enters its own organisation only.
  IF p.api_key_id IS NOT NULL AND p_org_id IS DISTINCT FROM p.org_id THEN
    RAISE EXCEPTION 'PERMISSION_DENIED' USING ERRCODE = 'BW008';
  END IF;
  SELECT * INTO STRICT r FROM app_private.set_tenant_context(p.user_id, p_org_id, p_support_grant_id) s;
  -- An API key's grid only ever narrows its minter's current grid.
  v_perms := CASE WHEN p.api_key_id IS NULL THEN r.permissions
                  ELSE ARRAY(SELECT x FROM unnest(r.permissions) x WHERE x = ANY (p.api_key_permissions)) END;
  PERFORM app_private.enter_context(ROW(r.org_id, r.user_id, r.support_grant_id, r.writable, r.role, v_perms,
                                        p.api_key_id)::app_private.sealed_context);
  RETURN QUERY SELECT r.org_id, r.user_id, r.role, v_perms, r.support_grant_id, r.readable_org_ids, r.writable,
                      r.grant_expires_at;
END $$;

-- Same signature and checks as 0400: only this transaction's verified principal is entered.
CREATE OR REPLACE FUNCTION app.set_tenant_context(p_user_id uuid, p_org_id uuid, p_support_grant_id uuid DEFAULT NULL)
RETURNS TABLE (org_id uuid, user_id uuid, role text, permissions text[], support_grant_id uuid,
               readable_org_ids uuid[], writable boolean, grant_expires_at timestamptz)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v text := app_private.unseal('principal');
  p app_private.sealed_principal;
BEGIN
  p := v::app_private.sealed_principal;
  IF v IS NULL OR p_user_id IS DISTINCT FROM p.user_id THEN
    RAISE EXCEPTION 'TOKEN_INVALID' USING ERRCODE = 'BW011', DETAIL = 'no proof for this user in this transaction';
  END IF;
  RETURN QUERY SELECT * FROM app_private.enter_as(p, p_org_id, p_support_grant_id);
END $$;

-- One statement: proves the caller (gate ticket or API key secret), enters p_org (NULL: the
-- proof's own organisation) as them, under p_support_grant when given, for this transaction only.
-- Returns who the caller is and the context's grid.
CREATE FUNCTION app.enter_tenant(p_proof text, p_org uuid DEFAULT NULL, p_support_grant uuid DEFAULT NULL)
RETURNS TABLE (user_id uuid, platform_role text, proof_org_id uuid, api_key_id uuid, api_key_permissions text[],
               org_id uuid, role text, permissions text[], support_grant_id uuid, writable boolean,
               grant_expires_at timestamptz)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  a record;
  p app_private.sealed_principal;
  c record;
BEGIN
  SELECT * INTO STRICT a FROM app_private.prove(p_proof) x;
  p := ROW(a.user_id, a.org_id, a.api_key_id, a.permissions, a.request_id)::app_private.sealed_principal;
  PERFORM app_private.enter_principal(p);
  SELECT * INTO STRICT c FROM app_private.enter_as(p, coalesce(p_org, a.org_id), p_support_grant) e;
  RETURN QUERY SELECT a.user_id, a.platform_role, a.org_id, a.api_key_id, a.permissions, c.org_id, c.role,
                      c.permissions, c.support_grant_id, c.writable, c.grant_expires_at;
END $$;
REVOKE ALL ON FUNCTION app.enter_tenant(text, uuid, uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION app.enter_tenant(text, uuid, uuid) TO bulwark_app;

-- The platform owner's read-only context in the tenant it creates (0400), now sealed.
CREATE OR REPLACE FUNCTION app.create_organisation(p_actor uuid, p_kind text, p_name text, p_plan text,
                                                   p_parent uuid, p_owner uuid)
RETURNS uuid
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE v_org uuid;
BEGIN
  PERFORM app_private.require_principal(p_actor);
  v_org := app_private.create_organisation(p_actor, p_kind, p_name, p_plan, p_parent, p_owner);
  PERFORM app_private.enter_context(ROW(v_org, p_actor, NULL, false, 'platform_owner', ARRAY[]::text[], NULL)::app_private.sealed_context);
  RETURN v_org;
END $$;

-- The export worker's read-only context (0403), now sealed.
CREATE OR REPLACE FUNCTION app.enter_export_context(p_export_id uuid) RETURNS uuid
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_org uuid;
  v_user uuid;
  v_perms text[];
BEGIN
  SELECT e.org_id, e.requested_by INTO v_org, v_user FROM public.tenant_exports e
   WHERE e.id = p_export_id AND e.status = 'pending';
  IF NOT FOUND OR NOT app.is_live_owner(v_user, v_org) THEN
    RAISE EXCEPTION 'PERMISSION_DENIED' USING ERRCODE = 'BW008';
  END IF;
  PERFORM app_private.set_tenant_context(v_user, v_org, NULL);
  SELECT b.permissions INTO STRICT v_perms FROM app_private.builtin_grids b WHERE b.name = 'export';
  PERFORM app_private.enter_context(ROW(v_org, v_user, NULL, false, 'export', v_perms, NULL)::app_private.sealed_context);
  RETURN v_org;
END $$;

-- ---------------------------------------------------------------------------------------------
-- 5. Every reader of the context verifies the seal (plpgsql: plans cached per session).
-- ---------------------------------------------------------------------------------------------
CREATE OR REPLACE FUNCTION app.current_org_id() RETURNS uuid
LANGUAGE plpgsql STABLE SECURITY DEFINER PARALLEL RESTRICTED
SET search_path = pg_catalog, pg_temp
AS $$ BEGIN RETURN (app_private.context()).org_id; END $$;

CREATE OR REPLACE FUNCTION app.readable_org_ids() RETURNS uuid[]
LANGUAGE plpgsql STABLE SECURITY DEFINER PARALLEL RESTRICTED
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE v uuid := (app_private.context()).org_id;
BEGIN
  RETURN CASE WHEN v IS NULL THEN NULL ELSE ARRAY[v] END;
END $$;

CREATE OR REPLACE FUNCTION app.writable_org_id() RETURNS uuid
LANGUAGE plpgsql STABLE SECURITY DEFINER PARALLEL RESTRICTED
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE c app_private.sealed_context := app_private.context();
BEGIN
  RETURN CASE WHEN c.writable THEN c.org_id END;
END $$;

CREATE OR REPLACE FUNCTION app.current_user_id() RETURNS uuid
LANGUAGE plpgsql STABLE SECURITY DEFINER PARALLEL RESTRICTED
SET search_path = pg_catalog, pg_temp
AS $$ BEGIN RETURN (app_private.context()).user_id; END $$;

CREATE OR REPLACE FUNCTION app.current_support_grant_id() RETURNS uuid
LANGUAGE plpgsql STABLE SECURITY DEFINER PARALLEL RESTRICTED
SET search_path = pg_catalog, pg_temp
AS $$ BEGIN RETURN (app_private.context()).support_grant_id; END $$;

CREATE OR REPLACE FUNCTION app.grid_org_id(p_permission text) RETURNS uuid
LANGUAGE plpgsql STABLE SECURITY DEFINER PARALLEL RESTRICTED
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE c app_private.sealed_context := app_private.context();
BEGIN
  RETURN CASE WHEN p_permission = ANY (c.permissions) THEN c.org_id END;
END $$;

CREATE OR REPLACE FUNCTION app.grid_writable_org_id(p_permission text) RETURNS uuid
LANGUAGE plpgsql STABLE SECURITY DEFINER PARALLEL RESTRICTED
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE c app_private.sealed_context := app_private.context();
BEGIN
  RETURN CASE WHEN c.writable AND p_permission = ANY (c.permissions) THEN c.org_id END;
END $$;

CREATE OR REPLACE FUNCTION app.owner_org_id() RETURNS uuid
LANGUAGE plpgsql STABLE SECURITY DEFINER PARALLEL RESTRICTED
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE c app_private.sealed_context := app_private.context();
BEGIN
  RETURN CASE WHEN c.writable AND c.role = 'owner' AND c.api_key_id IS NULL AND c.support_grant_id IS NULL
              THEN c.org_id END;
END $$;

CREATE OR REPLACE FUNCTION app_private.context_grid(OUT role text, OUT permissions text[], OUT user_id uuid)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE c app_private.sealed_context := app_private.context();
BEGIN
  role := c.role;
  permissions := c.permissions;
  user_id := c.user_id;
END $$;

CREATE OR REPLACE FUNCTION app_private.context_may_grant_oversight() RETURNS boolean
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE c app_private.sealed_context := app_private.context();
BEGIN
  IF c.org_id IS NULL THEN
    RETURN false;
  END IF;
  RETURN coalesce((
    SELECT o.kind = 'store' OR (
             c.api_key_id IS NULL AND c.support_grant_id IS NULL AND c.writable AND
             CASE WHEN c.role = 'custom'
                  THEN (SELECT cr.oversight FROM public.memberships m
                          JOIN public.custom_roles cr ON cr.org_id = m.org_id AND cr.id = m.custom_role_id
                         WHERE m.org_id = c.org_id AND m.user_id = c.user_id AND m.status = 'active')
                  ELSE app.builtin_role_oversight(c.role) END)
      FROM public.organisations o WHERE o.id = c.org_id), false);
END $$;

-- 0404's audit append, reading the actor from the sealed context.
CREATE OR REPLACE FUNCTION app.append_audit_event(p_org uuid, p_occurred_at timestamptz, p_event text,
                                                  p_entity_type text, p_entity_id text, p_ip text, p_user_agent text,
                                                  p_metadata jsonb)
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  c app_private.sealed_context := app_private.context();
  v_email text;
  v_at timestamptz := date_trunc('milliseconds', p_occurred_at);
BEGIN
  IF c.org_id IS NULL OR p_org IS DISTINCT FROM c.org_id THEN
    RAISE EXCEPTION 'AUDIT_EVENT_REFUSED' USING ERRCODE = 'BW106',
      DETAIL = 'an audit event belongs to the organisation of the verified tenant context';
  END IF;
  IF v_at IS NULL OR v_at < timestamptz '2000-01-01 00:00:00+00' OR v_at > now() + interval '1 day' THEN
    RAISE EXCEPTION 'AUDIT_EVENT_REFUSED' USING ERRCODE = 'BW106', DETAIL = 'occurred_at is out of range';
  END IF;
  IF p_metadata IS NULL OR jsonb_typeof(p_metadata) <> 'object' THEN
    RAISE EXCEPTION 'AUDIT_EVENT_REFUSED' USING ERRCODE = 'BW106', DETAIL = 'metadata must be a JSON object';
  END IF;
  BEGIN
    PERFORM app_private.canonical_json(p_metadata);
  EXCEPTION WHEN numeric_value_out_of_range THEN
    RAISE EXCEPTION 'AUDIT_EVENT_REFUSED' USING ERRCODE = 'BW106', DETAIL = 'metadata holds a number out of range';
  END;
  SELECT u.email INTO v_email FROM public.users u WHERE u.id = c.user_id;
  INSERT INTO app_private.audit_pending (org_id, occurred_at, actor_type, actor_user_id, actor_email, event, entity_type,
                                        entity_id, ip, user_agent, support_grant_id, metadata)
  VALUES (c.org_id, v_at,
          CASE WHEN c.api_key_id IS NOT NULL THEN 'api_key' WHEN c.support_grant_id IS NOT NULL THEN 'support_grant'
               ELSE 'user' END,
          c.user_id::text, v_email, p_event, p_entity_type, p_entity_id, p_ip, p_user_agent, c.support_grant_id::text,
          p_metadata);
END $$;

REVOKE ALL ON ALL FUNCTIONS IN SCHEMA app_private FROM PUBLIC;
