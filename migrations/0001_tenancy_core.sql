-- Tenancy core: organisations (store / dealer group / network), users, memberships, built-in and
-- custom roles (module x action grids), API keys, support grants, and the tenant-context gate that
-- every row-level security policy reads. Contract for other capabilities: docs/tenancy.md.
--
-- Runs as the schema owner (bulwark_migrator). The application role (bulwark_app) owns nothing,
-- has neither SUPERUSER nor BYPASSRLS, and only gets the privileges granted here.

CREATE SCHEMA app;
REVOKE ALL ON SCHEMA app FROM PUBLIC;
GRANT USAGE ON SCHEMA app TO bulwark_app;

-- Functions are callable by nobody but their owner unless granted explicitly.
ALTER DEFAULT PRIVILEGES IN SCHEMA app REVOKE EXECUTE ON FUNCTIONS FROM PUBLIC;
ALTER DEFAULT PRIVILEGES IN SCHEMA public REVOKE EXECUTE ON FUNCTIONS FROM PUBLIC;

-- ---------------------------------------------------------------------------------------------
-- Permission grid vocabulary. The TypeScript guard mirrors these lists; a test keeps them equal.
-- ---------------------------------------------------------------------------------------------
CREATE FUNCTION app.modules() RETURNS text[] LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$ SELECT ARRAY['leads','customers','vehicles','deals','messages','calls','users','settings','audit','billing'] $$;

CREATE FUNCTION app.actions() RETURNS text[] LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$ SELECT ARRAY['view','create','edit','delete'] $$;

CREATE FUNCTION app.all_permissions() RETURNS text[] LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT array_agg(m || ':' || a ORDER BY mi, ai)
  FROM unnest(app.modules()) WITH ORDINALITY AS mm(m, mi)
  CROSS JOIN unnest(app.actions()) WITH ORDINALITY AS aa(a, ai)
$$;

-- Built-in dealer-staff roles. One source of truth: set_tenant_context returns the effective grid.
CREATE FUNCTION app.builtin_role_permissions(p_role text) RETURNS text[] LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT CASE p_role
    WHEN 'owner' THEN app.all_permissions()
    WHEN 'admin' THEN ARRAY(SELECT p FROM unnest(app.all_permissions()) p
                            WHERE p NOT IN ('billing:create','billing:edit','billing:delete'))
    WHEN 'member' THEN ARRAY(SELECT m || ':' || a
                             FROM unnest(ARRAY['leads','customers','vehicles','deals','messages','calls']) m
                             CROSS JOIN unnest(ARRAY['view','create','edit']) a)
                       || ARRAY['users:view']
    WHEN 'viewer' THEN ARRAY(SELECT m || ':view'
                             FROM unnest(ARRAY['leads','customers','vehicles','deals','messages','calls']) m)
    ELSE NULL
  END
$$;

-- Built-in roles that may read member stores from a dealer group or network (read-only oversight).
CREATE FUNCTION app.builtin_role_oversight(p_role text) RETURNS boolean LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$ SELECT p_role IN ('owner','admin','viewer') $$;

CREATE FUNCTION app.valid_grid(p text[]) RETURNS boolean LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$ SELECT p IS NOT NULL AND p <@ app.all_permissions() AND array_position(p, NULL) IS NULL $$;

-- ---------------------------------------------------------------------------------------------
-- Identity tables.
-- ---------------------------------------------------------------------------------------------
CREATE TABLE organisations (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  parent_id uuid REFERENCES organisations (id),
  kind text NOT NULL CHECK (kind IN ('store', 'dealer_group', 'network')),
  name text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
  plan text NOT NULL CHECK (plan IN ('pro', 'business', 'enterprise')),
  status text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'suspended', 'closed')),
  created_at timestamptz NOT NULL DEFAULT now(),
  CHECK (parent_id IS DISTINCT FROM id)
);
CREATE INDEX organisations_parent_idx ON organisations (parent_id);

-- A store sits under a dealer group or a network; a dealer group under a network; a network is a root.
CREATE FUNCTION app.check_org_hierarchy() RETURNS trigger LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE parent_kind text;
BEGIN
  IF NEW.parent_id IS NULL THEN RETURN NEW; END IF;
  SELECT kind INTO parent_kind FROM public.organisations WHERE id = NEW.parent_id;
  IF NEW.kind = 'network'
     OR (NEW.kind = 'dealer_group' AND parent_kind IS DISTINCT FROM 'network')
     OR (NEW.kind = 'store' AND parent_kind NOT IN ('dealer_group', 'network')) THEN
    RAISE EXCEPTION 'a % cannot sit under a %', NEW.kind, coalesce(parent_kind, 'missing organisation')
      USING ERRCODE = '23514';
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER organisations_hierarchy BEFORE INSERT OR UPDATE OF parent_id, kind ON organisations
  FOR EACH ROW EXECUTE FUNCTION app.check_org_hierarchy();

CREATE TABLE users (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  -- Identity-provider subject (Cognito `sub`).
  subject text NOT NULL UNIQUE CHECK (length(subject) BETWEEN 1 AND 255),
  email text NOT NULL CHECK (length(email) BETWEEN 3 AND 320),
  platform_role text CHECK (platform_role IN ('platform_owner', 'platform_support')),
  status text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'disabled')),
  created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE custom_roles (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  org_id uuid NOT NULL REFERENCES organisations (id),
  name text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
  permissions text[] NOT NULL CHECK (app.valid_grid(permissions)),
  oversight boolean NOT NULL DEFAULT false,
  created_at timestamptz NOT NULL DEFAULT now(),
  UNIQUE (org_id, id),
  UNIQUE (org_id, name)
);

CREATE TABLE memberships (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  org_id uuid NOT NULL REFERENCES organisations (id),
  user_id uuid NOT NULL REFERENCES users (id),
  role text NOT NULL CHECK (role IN ('owner', 'admin', 'member', 'viewer', 'custom')),
  custom_role_id uuid,
  status text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'revoked')),
  created_at timestamptz NOT NULL DEFAULT now(),
  revoked_at timestamptz,
  UNIQUE (org_id, user_id),
  -- Composite key: a membership can only use a custom role of its own organisation.
  FOREIGN KEY (org_id, custom_role_id) REFERENCES custom_roles (org_id, id),
  CHECK ((role = 'custom') = (custom_role_id IS NOT NULL)),
  CHECK ((status = 'revoked') = (revoked_at IS NOT NULL))
);
CREATE INDEX memberships_user_idx ON memberships (user_id);

CREATE TABLE api_keys (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  org_id uuid NOT NULL REFERENCES organisations (id),
  created_by uuid NOT NULL REFERENCES users (id),
  name text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
  -- SHA-256 of the secret half of the key; the secret itself is shown once and never stored.
  secret_hash bytea NOT NULL CHECK (octet_length(secret_hash) = 32),
  permissions text[] NOT NULL CHECK (app.valid_grid(permissions)),
  created_at timestamptz NOT NULL DEFAULT now(),
  expires_at timestamptz,
  revoked_at timestamptz,
  last_used_at timestamptz,
  UNIQUE (org_id, id)
);

CREATE TABLE support_grants (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  org_id uuid NOT NULL REFERENCES organisations (id),
  granted_to uuid NOT NULL REFERENCES users (id),
  reason text NOT NULL CHECK (length(btrim(reason)) BETWEEN 10 AND 1000),
  scope text NOT NULL DEFAULT 'read' CHECK (scope IN ('read', 'read_write')),
  opened_at timestamptz NOT NULL DEFAULT now(),
  expires_at timestamptz NOT NULL,
  revoked_at timestamptz,
  revoked_by uuid REFERENCES users (id),
  UNIQUE (org_id, id),
  CHECK (expires_at > opened_at AND expires_at <= opened_at + interval '4 hours')
);

-- ---------------------------------------------------------------------------------------------
-- The tenant-context gate.
--
-- The verified context lives in a table the application role cannot read or write, keyed by the
-- backend pid and stamped with the transaction id (xid8, never reused) of the transaction that set
-- it. The readers only return it while that same transaction is running, so:
--   * it is transaction-local (a later transaction on the same pooled connection sees nothing);
--   * a rollback (or rollback to a savepoint) undoes it with everything else;
--   * nothing the application role can SET or set_config() is consulted at all.
-- UNLOGGED: a context is worthless after a crash, and it is not replicated.
-- ---------------------------------------------------------------------------------------------
CREATE UNLOGGED TABLE app.tenant_context (
  pid integer PRIMARY KEY,
  xact xid8 NOT NULL,
  org_id uuid NOT NULL,
  user_id uuid NOT NULL,
  support_grant_id uuid,
  readable_org_ids uuid[] NOT NULL,
  writable boolean NOT NULL,
  set_at timestamptz NOT NULL
);
REVOKE ALL ON app.tenant_context FROM PUBLIC;

-- Readers used by policies. NULL (and so "sees nothing") whenever no context was set by
-- app.set_tenant_context in the current transaction.
CREATE FUNCTION app.current_org_id() RETURNS uuid LANGUAGE sql STABLE SECURITY DEFINER PARALLEL RESTRICTED
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT c.org_id FROM app.tenant_context c
  WHERE c.pid = pg_catalog.pg_backend_pid() AND c.xact = pg_catalog.pg_current_xact_id_if_assigned()
$$;

CREATE FUNCTION app.readable_org_ids() RETURNS uuid[] LANGUAGE sql STABLE SECURITY DEFINER PARALLEL RESTRICTED
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT c.readable_org_ids FROM app.tenant_context c
  WHERE c.pid = pg_catalog.pg_backend_pid() AND c.xact = pg_catalog.pg_current_xact_id_if_assigned()
$$;

CREATE FUNCTION app.writable_org_id() RETURNS uuid LANGUAGE sql STABLE SECURITY DEFINER PARALLEL RESTRICTED
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT c.org_id FROM app.tenant_context c
  WHERE c.pid = pg_catalog.pg_backend_pid() AND c.xact = pg_catalog.pg_current_xact_id_if_assigned()
    AND c.writable
$$;

CREATE FUNCTION app.current_user_id() RETURNS uuid LANGUAGE sql STABLE SECURITY DEFINER PARALLEL RESTRICTED
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT c.user_id FROM app.tenant_context c
  WHERE c.pid = pg_catalog.pg_backend_pid() AND c.xact = pg_catalog.pg_current_xact_id_if_assigned()
$$;

CREATE FUNCTION app.current_support_grant_id() RETURNS uuid LANGUAGE sql STABLE SECURITY DEFINER PARALLEL RESTRICTED
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT c.support_grant_id FROM app.tenant_context c
  WHERE c.pid = pg_catalog.pg_backend_pid() AND c.xact = pg_catalog.pg_current_xact_id_if_assigned()
$$;

-- Effective permission grid of a membership (built-in or custom role).
CREATE FUNCTION app.membership_permissions(p_role text, p_custom text[]) RETURNS text[] LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$ SELECT CASE WHEN p_role = 'custom' THEN p_custom ELSE app.builtin_role_permissions(p_role) END $$;

-- The one way to enter a tenant. Checks, live, that the user is active and has an active membership
-- in the active organisation (or holds a live support grant for it), then records the verified
-- context for the current transaction only. Errors use SQLSTATEs of class BW (docs/tenancy.md).
CREATE FUNCTION app.set_tenant_context(p_user_id uuid, p_org_id uuid, p_support_grant_id uuid DEFAULT NULL)
RETURNS TABLE (org_id uuid, user_id uuid, role text, permissions text[], support_grant_id uuid,
               readable_org_ids uuid[], writable boolean, grant_expires_at timestamptz)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
  v_org public.organisations%ROWTYPE;
  v_user public.users%ROWTYPE;
  v_role text;
  v_perms text[];
  v_oversight boolean;
  v_readable uuid[];
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
    SELECT m.role, app.membership_permissions(m.role, cr.permissions),
           CASE WHEN m.role = 'custom' THEN cr.oversight ELSE app.builtin_role_oversight(m.role) END
      INTO v_role, v_perms, v_oversight
      FROM public.memberships m
      LEFT JOIN public.custom_roles cr ON cr.org_id = m.org_id AND cr.id = m.custom_role_id
     WHERE m.org_id = p_org_id AND m.user_id = p_user_id AND m.status = 'active';
    IF NOT FOUND THEN
      RAISE EXCEPTION 'MEMBERSHIP_REVOKED' USING ERRCODE = 'BW002';
    END IF;
    v_readable := ARRAY[p_org_id];
    IF v_oversight AND v_org.kind <> 'store' THEN
      -- Read-only oversight over active descendants (a store never sees its siblings: only a
      -- membership in the group or network itself reaches them).
      WITH RECURSIVE tree(id) AS (
        SELECT o.id FROM public.organisations o WHERE o.parent_id = p_org_id AND o.status = 'active'
        UNION
        SELECT o.id FROM public.organisations o JOIN tree t ON o.parent_id = t.id WHERE o.status = 'active'
      )
      SELECT v_readable || coalesce(array_agg(tree.id), ARRAY[]::uuid[]) INTO v_readable FROM tree;
    END IF;
    v_writable := true;
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
    v_perms := ARRAY(SELECT m || ':view' FROM unnest(app.modules()) m)
               || CASE WHEN v_grant.scope = 'read_write'
                       THEN ARRAY(SELECT m || ':edit' FROM unnest(app.modules()) m) ELSE ARRAY[]::text[] END;
    v_readable := ARRAY[p_org_id];
    v_writable := v_grant.scope = 'read_write';
  END IF;

  INSERT INTO app.tenant_context AS c (pid, xact, org_id, user_id, support_grant_id, readable_org_ids, writable, set_at)
  VALUES (pg_backend_pid(), pg_current_xact_id(), p_org_id, p_user_id, p_support_grant_id, v_readable, v_writable,
          clock_timestamp())
  ON CONFLICT (pid) DO UPDATE
    SET xact = EXCLUDED.xact, org_id = EXCLUDED.org_id, user_id = EXCLUDED.user_id,
        support_grant_id = EXCLUDED.support_grant_id, readable_org_ids = EXCLUDED.readable_org_ids,
        writable = EXCLUDED.writable, set_at = EXCLUDED.set_at;

  RETURN QUERY SELECT p_org_id, p_user_id, v_role, v_perms, p_support_grant_id, v_readable, v_writable,
                      v_grant.expires_at;
END $$;

-- ---------------------------------------------------------------------------------------------
-- Gate-controlled entry points that run before any tenant context exists.
-- ---------------------------------------------------------------------------------------------

-- First sight of an identity-provider subject: returns (creating if needed) the user row.
CREATE FUNCTION app.resolve_user(p_subject text, p_email text)
RETURNS TABLE (id uuid, status text, platform_role text)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
BEGIN
  INSERT INTO public.users AS u (subject, email) VALUES (p_subject, p_email)
  ON CONFLICT (subject) DO UPDATE SET email = EXCLUDED.email WHERE u.email IS DISTINCT FROM EXCLUDED.email;
  RETURN QUERY SELECT u.id, u.status, u.platform_role FROM public.users u WHERE u.subject = p_subject;
END $$;

-- API key lookup: live key with a matching hash, or nothing. The caller then enters the tenant
-- as the minting user (app.set_tenant_context), so a key dies with its minter's membership.
CREATE FUNCTION app.resolve_api_key(p_key_id uuid, p_secret_hash bytea)
RETURNS TABLE (org_id uuid, created_by uuid, permissions text[])
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
BEGIN
  RETURN QUERY
  UPDATE public.api_keys k SET last_used_at = clock_timestamp()
   WHERE k.id = p_key_id AND k.secret_hash = p_secret_hash AND k.revoked_at IS NULL
     AND (k.expires_at IS NULL OR k.expires_at > clock_timestamp())
  RETURNING k.org_id, k.created_by, k.permissions;
END $$;

-- Support mode: only an active platform_support user opens a grant, for one organisation, with a
-- reason, for at most four hours. This is the only path by which platform staff reach tenant data.
CREATE FUNCTION app.open_support_grant(p_user_id uuid, p_org_id uuid, p_reason text, p_duration interval,
                                       p_scope text DEFAULT 'read')
RETURNS public.support_grants
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE v_grant public.support_grants;
BEGIN
  IF NOT EXISTS (SELECT 1 FROM public.users u WHERE u.id = p_user_id AND u.status = 'active'
                   AND u.platform_role = 'platform_support') THEN
    RAISE EXCEPTION 'PERMISSION_DENIED' USING ERRCODE = 'BW008';
  END IF;
  IF p_duration IS NULL OR p_duration <= interval '0' OR p_duration > interval '4 hours' THEN
    RAISE EXCEPTION 'SUPPORT_GRANT_TOO_LONG' USING ERRCODE = 'BW009';
  END IF;
  INSERT INTO public.support_grants (org_id, granted_to, reason, scope, opened_at, expires_at)
  VALUES (p_org_id, p_user_id, p_reason, p_scope, now(), now() + p_duration)
  RETURNING * INTO v_grant;
  RETURN v_grant;
END $$;

-- A support engineer closes their own grant early.
CREATE FUNCTION app.close_support_grant(p_user_id uuid, p_grant_id uuid) RETURNS boolean
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
  WITH closed AS (
    UPDATE public.support_grants g SET revoked_at = clock_timestamp(), revoked_by = p_user_id
     WHERE g.id = p_grant_id AND g.granted_to = p_user_id AND g.revoked_at IS NULL
    RETURNING 1)
  SELECT EXISTS (SELECT 1 FROM closed)
$$;

-- Provisioning: a platform_owner creates an organisation and its first Owner.
CREATE FUNCTION app.create_organisation(p_actor uuid, p_kind text, p_name text, p_plan text, p_parent uuid,
                                        p_owner uuid)
RETURNS uuid
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE v_id uuid;
BEGIN
  IF NOT EXISTS (SELECT 1 FROM public.users u WHERE u.id = p_actor AND u.status = 'active'
                   AND u.platform_role = 'platform_owner') THEN
    RAISE EXCEPTION 'PERMISSION_DENIED' USING ERRCODE = 'BW008';
  END IF;
  INSERT INTO public.organisations (kind, name, plan, parent_id) VALUES (p_kind, p_name, p_plan, p_parent)
  RETURNING id INTO v_id;
  INSERT INTO public.memberships (org_id, user_id, role) VALUES (v_id, p_owner, 'owner');
  RETURN v_id;
END $$;

-- ---------------------------------------------------------------------------------------------
-- Row-level security, applied uniformly. protect_tenant_table is the one helper every tenant
-- table (here and in other capabilities' migrations) goes through; docs/tenancy.md.
-- ---------------------------------------------------------------------------------------------
CREATE FUNCTION app.protect_tenant_table(p_table regclass, p_commands text[] DEFAULT ARRAY['select','insert','update','delete'])
RETURNS void LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  cmd text;
BEGIN
  IF NOT p_commands <@ ARRAY['select','insert','update','delete'] OR NOT 'select' = ANY (p_commands) THEN
    RAISE EXCEPTION 'protect_tenant_table(%): commands must include select and be a subset of select/insert/update/delete', p_table;
  END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = p_table AND attname = 'org_id'
                   AND atttypid = 'uuid'::regtype AND attnotnull AND NOT attisdropped) THEN
    RAISE EXCEPTION 'protect_tenant_table(%): needs org_id uuid NOT NULL', p_table;
  END IF;
  EXECUTE format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY', p_table);
  EXECUTE format('ALTER TABLE %s FORCE ROW LEVEL SECURITY', p_table);
  EXECUTE format('REVOKE ALL ON %s FROM PUBLIC', p_table);
  -- Reads: own organisation plus, for oversight roles, member stores. Writes: own organisation,
  -- and only when the context is writable. The sub-SELECT makes each reader an InitPlan evaluated
  -- once per statement, so the org_id index is used exactly as with a literal.
  EXECUTE format('CREATE POLICY tenant_select ON %s FOR SELECT USING (org_id = ANY ((SELECT app.readable_org_ids())::uuid[]))', p_table);
  EXECUTE format('CREATE POLICY tenant_insert ON %s FOR INSERT WITH CHECK (org_id = (SELECT app.writable_org_id()))', p_table);
  EXECUTE format('CREATE POLICY tenant_update ON %s FOR UPDATE USING (org_id = (SELECT app.writable_org_id())) WITH CHECK (org_id = (SELECT app.writable_org_id()))', p_table);
  EXECUTE format('CREATE POLICY tenant_delete ON %s FOR DELETE USING (org_id = (SELECT app.writable_org_id()))', p_table);
  FOREACH cmd IN ARRAY p_commands LOOP
    EXECUTE format('GRANT %s ON %s TO bulwark_app', upper(cmd), p_table);
  END LOOP;
END $$;

GRANT EXECUTE ON FUNCTION
  app.current_org_id(), app.readable_org_ids(), app.writable_org_id(), app.current_user_id(),
  app.current_support_grant_id(), app.set_tenant_context(uuid, uuid, uuid), app.resolve_user(text, text),
  app.resolve_api_key(uuid, bytea), app.open_support_grant(uuid, uuid, text, interval, text),
  app.close_support_grant(uuid, uuid), app.create_organisation(uuid, text, text, text, uuid, uuid),
  app.modules(), app.actions(), app.all_permissions(), app.builtin_role_permissions(text), app.valid_grid(text[]),
  app.membership_permissions(text, text[]), app.builtin_role_oversight(text)
TO bulwark_app;

SELECT app.protect_tenant_table('custom_roles');
SELECT app.protect_tenant_table('memberships');
SELECT app.protect_tenant_table('api_keys', ARRAY['select', 'insert', 'update']);
-- Grants are opened only through app.open_support_grant; the Owner may revoke (update) them.
SELECT app.protect_tenant_table('support_grants', ARRAY['select', 'update']);

-- The gate (owned by this role) reads identity tables before any context exists. FORCE keeps the
-- owner under RLS everywhere else, so it gets one narrow, read-only policy on just these tables.
DO $$
DECLARE t text;
BEGIN
  FOREACH t IN ARRAY ARRAY['custom_roles', 'memberships', 'api_keys', 'support_grants'] LOOP
    EXECUTE format('CREATE POLICY gate_owner_read ON %I FOR SELECT TO %I USING (true)', t, current_user);
  END LOOP;
  -- resolve_api_key stamps last_used_at; close_support_grant revokes the caller's own grant.
  EXECUTE format('CREATE POLICY gate_owner_touch ON api_keys FOR UPDATE TO %I USING (true) WITH CHECK (true)', current_user);
  EXECUTE format('CREATE POLICY gate_owner_open ON support_grants FOR INSERT TO %I WITH CHECK (true)', current_user);
  EXECUTE format('CREATE POLICY gate_owner_close ON support_grants FOR UPDATE TO %I USING (true) WITH CHECK (true)', current_user);
  EXECUTE format('CREATE POLICY gate_owner_provision ON memberships FOR INSERT TO %I WITH CHECK (true)', current_user);
END $$;

-- Organisations: visible within the context's readable set; provisioned only by the gate.
ALTER TABLE organisations ENABLE ROW LEVEL SECURITY;
ALTER TABLE organisations FORCE ROW LEVEL SECURITY;
REVOKE ALL ON organisations FROM PUBLIC;
CREATE POLICY tenant_select ON organisations FOR SELECT USING (id = ANY ((SELECT app.readable_org_ids())::uuid[]));
GRANT SELECT ON organisations TO bulwark_app;
DO $$ BEGIN
  EXECUTE format('CREATE POLICY gate_owner_all ON organisations FOR ALL TO %I USING (true) WITH CHECK (true)', current_user);
END $$;

-- Users: a user sees themself and the members of organisations they can read. Created only by the gate.
ALTER TABLE users ENABLE ROW LEVEL SECURITY;
ALTER TABLE users FORCE ROW LEVEL SECURITY;
REVOKE ALL ON users FROM PUBLIC;
CREATE POLICY tenant_select ON users FOR SELECT USING (
  id = (SELECT app.current_user_id())
  OR EXISTS (SELECT 1 FROM memberships m WHERE m.user_id = users.id));
GRANT SELECT ON users TO bulwark_app;
DO $$ BEGIN
  EXECUTE format('CREATE POLICY gate_owner_all ON users FOR ALL TO %I USING (true) WITH CHECK (true)', current_user);
END $$;
