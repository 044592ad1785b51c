-- Tenant keys, lifecycle and export (docs/tenant-keys.md), on top of the tenancy core (docs/tenancy.md).
--
--   * organisations gains the tenant's KMS key ARN (managed or bring-your-own; set once, never
--     changed) and its lifecycle: active -> cancelled -> grace -> shredded (terminal).
--   * The database is a gate here too: cancel/restore need a live Owner, a system step happens only
--     once its deadline has passed (by the database clock), rows can be erased only for a tenant whose
--     grace period is over, and a tenant is marked shredded only when no rows of it remain.
--   * tenant_exports records export requests; only an Owner (never under a support grant) can add one.
--
-- Errors: SQLSTATE class BW as in docs/tenancy.md, codes BW3xx for this capability.

ALTER TABLE organisations
  ADD COLUMN kms_key_arn text
    CHECK (kms_key_arn ~ '^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/[0-9a-f-]{36}$'),
  ADD COLUMN kms_key_source text CHECK (kms_key_source IN ('managed', 'byok')),
  ADD COLUMN lifecycle_state text NOT NULL DEFAULT 'active'
    CHECK (lifecycle_state IN ('active', 'cancelled', 'grace', 'shredded')),
  ADD COLUMN cancelled_at timestamptz,
  ADD COLUMN access_until timestamptz,
  ADD COLUMN grace_ends_at timestamptz,
  ADD COLUMN shredded_at timestamptz,
  ADD CONSTRAINT organisations_key_source CHECK ((kms_key_arn IS NULL) = (kms_key_source IS NULL)),
  ADD CONSTRAINT organisations_lifecycle_shape CHECK (
    CASE lifecycle_state
      WHEN 'active' THEN cancelled_at IS NULL AND access_until IS NULL AND grace_ends_at IS NULL AND shredded_at IS NULL
      WHEN 'cancelled' THEN cancelled_at IS NOT NULL AND access_until IS NOT NULL AND grace_ends_at IS NULL
                            AND shredded_at IS NULL
      WHEN 'grace' THEN access_until IS NOT NULL AND grace_ends_at IS NOT NULL AND shredded_at IS NULL
      ELSE shredded_at IS NOT NULL
    END);
CREATE INDEX organisations_lifecycle_due_idx ON organisations (lifecycle_state, coalesce(grace_ends_at, access_until))
  WHERE lifecycle_state IN ('cancelled', 'grace');

-- A recorded key never changes (ciphertexts name it), and a shredded tenant never comes back.
CREATE FUNCTION app.organisations_lifecycle_guard() RETURNS trigger LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  IF OLD.kms_key_arn IS NOT NULL AND NEW.kms_key_arn IS DISTINCT FROM OLD.kms_key_arn THEN
    RAISE EXCEPTION 'TENANT_KEY_IMMUTABLE' USING ERRCODE = 'BW302';
  END IF;
  IF OLD.lifecycle_state = 'shredded' AND NEW.lifecycle_state <> 'shredded' THEN
    RAISE EXCEPTION 'TENANT_SHREDDED' USING ERRCODE = 'BW301';
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER organisations_lifecycle_guard BEFORE UPDATE ON organisations
  FOR EACH ROW EXECUTE FUNCTION app.organisations_lifecycle_guard();

-- ---------------------------------------------------------------------------------------------
-- Tenant key (provisioner).
-- ---------------------------------------------------------------------------------------------
-- Key and lifecycle of one tenant (system view for the provisioner, the processor and restores).
CREATE FUNCTION app.tenant_status(p_org uuid)
RETURNS TABLE (org_id uuid, key_arn text, key_source text, lifecycle_state text, cancelled_at timestamptz,
               access_until timestamptz, grace_ends_at timestamptz, shredded_at timestamptz)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT o.id, o.kms_key_arn, o.kms_key_source, o.lifecycle_state, o.cancelled_at, o.access_until, o.grace_ends_at,
         o.shredded_at
    FROM public.organisations o WHERE o.id = p_org
$$;

-- Records the key if none is recorded yet; returns the recorded one (which may differ: the caller
-- must compare). Refuses a shredded tenant.
CREATE FUNCTION app.record_tenant_key(p_org uuid, p_arn text, p_source text)
RETURNS TABLE (key_arn text, key_source text)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE v public.organisations%ROWTYPE;
BEGIN
  SELECT * INTO v FROM public.organisations o WHERE o.id = p_org FOR UPDATE;
  IF NOT FOUND THEN RAISE EXCEPTION 'TENANT_NOT_FOUND' USING ERRCODE = 'BW303'; END IF;
  IF v.lifecycle_state = 'shredded' THEN RAISE EXCEPTION 'TENANT_SHREDDED' USING ERRCODE = 'BW301'; END IF;
  IF v.kms_key_arn IS NULL THEN
    UPDATE public.organisations o SET kms_key_arn = p_arn, kms_key_source = p_source WHERE o.id = p_org;
    RETURN QUERY SELECT p_arn, p_source;
  ELSE
    RETURN QUERY SELECT v.kms_key_arn, v.kms_key_source;
  END IF;
END $$;

-- ---------------------------------------------------------------------------------------------
-- Lifecycle.
-- ---------------------------------------------------------------------------------------------
CREATE FUNCTION app.is_live_owner(p_user uuid, p_org uuid) RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT EXISTS (
    SELECT 1 FROM public.memberships m JOIN public.users u ON u.id = m.user_id
     WHERE m.org_id = p_org AND m.user_id = p_user AND m.status = 'active' AND m.role = 'owner'
       AND u.status = 'active')
$$;

-- Cancels the tenant of the current context. Only its Owner, never under a support grant. Access
-- continues until p_access_until (the end of the paid billing period).
CREATE FUNCTION app.cancel_tenant(p_access_until timestamptz)
RETURNS TABLE (org_id uuid, lifecycle_state text, cancelled_at timestamptz, access_until timestamptz)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE v_org uuid := app.writable_org_id(); v_user uuid := app.current_user_id();
BEGIN
  IF v_org IS NULL OR v_user IS NULL THEN RAISE EXCEPTION 'TENANT_CONTEXT_MISSING' USING ERRCODE = 'BW001'; END IF;
  IF app.current_support_grant_id() IS NOT NULL OR NOT app.is_live_owner(v_user, v_org) THEN
    RAISE EXCEPTION 'PERMISSION_DENIED' USING ERRCODE = 'BW008';
  END IF;
  IF p_access_until IS NULL OR p_access_until < now() THEN
    RAISE EXCEPTION 'INVALID_BILLING_PERIOD' USING ERRCODE = 'BW305';
  END IF;
  RETURN QUERY
    UPDATE public.organisations o
       SET lifecycle_state = 'cancelled', cancelled_at = now(), access_until = p_access_until
     WHERE o.id = v_org AND o.lifecycle_state = 'active'
    RETURNING o.id, o.lifecycle_state, o.cancelled_at, o.access_until;
  IF NOT FOUND THEN RAISE EXCEPTION 'INVALID_TRANSITION' USING ERRCODE = 'BW304'; END IF;
END $$;

-- Restores a cancelled tenant, or one in its grace period (whose access is suspended, so no tenant
-- context can be entered: the Owner is checked directly). A platform owner may restore too.
CREATE FUNCTION app.restore_tenant(p_actor uuid, p_org uuid)
RETURNS TABLE (org_id uuid, previous_state text)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE v public.organisations%ROWTYPE;
BEGIN
  IF NOT app.is_live_owner(p_actor, p_org) AND NOT EXISTS (
       SELECT 1 FROM public.users u WHERE u.id = p_actor AND u.status = 'active' AND u.platform_role = 'platform_owner') THEN
    RAISE EXCEPTION 'PERMISSION_DENIED' USING ERRCODE = 'BW008';
  END IF;
  SELECT * INTO v FROM public.organisations o WHERE o.id = p_org FOR UPDATE;
  IF NOT FOUND THEN RAISE EXCEPTION 'TENANT_NOT_FOUND' USING ERRCODE = 'BW303'; END IF;
  IF v.lifecycle_state = 'shredded' THEN RAISE EXCEPTION 'TENANT_SHREDDED' USING ERRCODE = 'BW301'; END IF;
  IF v.lifecycle_state NOT IN ('cancelled', 'grace') OR (v.lifecycle_state = 'grace' AND v.grace_ends_at <= now()) THEN
    RAISE EXCEPTION 'INVALID_TRANSITION' USING ERRCODE = 'BW304';
  END IF;
  UPDATE public.organisations o
     SET lifecycle_state = 'active', cancelled_at = NULL, access_until = NULL, grace_ends_at = NULL,
         status = CASE WHEN v.lifecycle_state = 'grace' THEN 'active' ELSE o.status END
   WHERE o.id = p_org;
  RETURN QUERY SELECT p_org, v.lifecycle_state;
END $$;

CREATE FUNCTION app.due_tenant_lifecycles(p_limit integer)
RETURNS TABLE (org_id uuid, lifecycle_state text, cancelled_at timestamptz, access_until timestamptz,
               grace_ends_at timestamptz, shredded_at timestamptz)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT o.id, o.lifecycle_state, o.cancelled_at, o.access_until, o.grace_ends_at, o.shredded_at
    FROM public.organisations o
   WHERE (o.lifecycle_state = 'cancelled' AND o.access_until <= now())
      OR (o.lifecycle_state = 'grace' AND o.grace_ends_at <= now())
   ORDER BY coalesce(o.grace_ends_at, o.access_until)
   LIMIT least(greatest(p_limit, 1), 1000)
$$;

-- Rows of a tenant still present in any tenant table (the audit log excepted: append-only, kept for
-- its contractual retention, and holding no secrets).
CREATE FUNCTION app.tenant_rows_remaining(p_org uuid) RETURNS bigint
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE t regclass; n bigint; total bigint := 0;
BEGIN
  FOR t IN SELECT c.oid::regclass FROM pg_catalog.pg_class c
             JOIN pg_catalog.pg_namespace s ON s.oid = c.relnamespace
             JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attname = 'org_id' AND NOT a.attisdropped
            WHERE s.nspname = 'public' AND c.relkind IN ('r', 'p') AND c.relname <> 'audit_log' LOOP
    EXECUTE format('SELECT count(*) FROM %s WHERE org_id = $1', t) INTO n USING p_org;
    total := total + n;
  END LOOP;
  RETURN total;
END $$;

-- System steps, each only once its deadline has passed by the database's clock. Optimistic: returns
-- false when the tenant is no longer in p_from (restored meanwhile, or moved by another run).
CREATE FUNCTION app.advance_tenant_lifecycle(p_org uuid, p_from text, p_to text) RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE v public.organisations%ROWTYPE;
BEGIN
  SELECT * INTO v FROM public.organisations o WHERE o.id = p_org FOR UPDATE;
  IF NOT FOUND OR v.lifecycle_state <> p_from THEN RETURN false; END IF;
  IF p_from = 'cancelled' AND p_to = 'grace' THEN
    IF v.access_until > now() THEN RAISE EXCEPTION 'LIFECYCLE_NOT_DUE' USING ERRCODE = 'BW306'; END IF;
    UPDATE public.organisations o
       SET lifecycle_state = 'grace', grace_ends_at = v.access_until + interval '30 days', status = 'suspended'
     WHERE o.id = p_org;
  ELSIF p_from = 'grace' AND p_to = 'shredded' THEN
    IF v.grace_ends_at > now() THEN RAISE EXCEPTION 'LIFECYCLE_NOT_DUE' USING ERRCODE = 'BW306'; END IF;
    IF app.tenant_rows_remaining(p_org) > 0 THEN
      RAISE EXCEPTION 'TENANT_ROWS_REMAIN' USING ERRCODE = 'BW307';
    END IF;
    -- The row stays as a tombstone (the id is never reused, the key never re-provisioned), nameless.
    UPDATE public.organisations o
       SET lifecycle_state = 'shredded', shredded_at = now(), status = 'closed', name = 'shredded tenant'
     WHERE o.id = p_org;
  ELSE
    RAISE EXCEPTION 'INVALID_TRANSITION' USING ERRCODE = 'BW304';
  END IF;
  RETURN true;
END $$;

-- True only for a tenant whose grace period is over: the single condition under which the owner
-- role may delete (and see, to delete) its rows.
CREATE FUNCTION app.tenant_erasable(p_org uuid) RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT EXISTS (SELECT 1 FROM public.organisations o
                  WHERE o.id = p_org AND o.lifecycle_state = 'grace' AND o.grace_ends_at <= now())
$$;

-- Every tenant table gets this (new tables: call it in their migration; a test checks the catalog).
CREATE FUNCTION app.allow_tenant_erasure(p_table regclass) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  EXECUTE format('CREATE POLICY lifecycle_erase_read ON %s FOR SELECT TO %I USING (app.tenant_erasable(org_id))',
                 p_table, current_user);
  EXECUTE format('CREATE POLICY lifecycle_erase ON %s FOR DELETE TO %I USING (app.tenant_erasable(org_id))',
                 p_table, current_user);
END $$;

DO $$
DECLARE t regclass;
BEGIN
  FOR t IN SELECT c.oid::regclass FROM pg_catalog.pg_class c
             JOIN pg_catalog.pg_namespace s ON s.oid = c.relnamespace
             JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attname = 'org_id' AND NOT a.attisdropped
            WHERE s.nspname = 'public' AND c.relkind IN ('r', 'p') AND c.relname <> 'audit_log' LOOP
    PERFORM app.allow_tenant_erasure(t);
  END LOOP;
END $$;

-- Deletes every row of a tenant whose grace period is over, children before parents (retrying a
-- table whose rows are still referenced), and returns how many. Idempotent.
CREATE FUNCTION app.erase_tenant_rows(p_org uuid) RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  t regclass;
  pending regclass[];
  still regclass[];
  n bigint;
  total bigint := 0;
BEGIN
  IF NOT app.tenant_erasable(p_org) THEN RAISE EXCEPTION 'LIFECYCLE_NOT_DUE' USING ERRCODE = 'BW306'; END IF;
  SELECT array_agg(c.oid::regclass ORDER BY c.relname) INTO pending
    FROM pg_catalog.pg_class c
    JOIN pg_catalog.pg_namespace s ON s.oid = c.relnamespace
    JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attname = 'org_id' AND NOT a.attisdropped
   WHERE s.nspname = 'public' AND c.relkind IN ('r', 'p') AND c.relname <> 'audit_log';
  WHILE coalesce(array_length(pending, 1), 0) > 0 LOOP
    still := ARRAY[]::regclass[];
    FOREACH t IN ARRAY pending LOOP
      BEGIN
        EXECUTE format('DELETE FROM %s WHERE org_id = $1', t) USING p_org;
        GET DIAGNOSTICS n = ROW_COUNT;
        total := total + n;
      EXCEPTION WHEN foreign_key_violation THEN
        still := still || t;
      END;
    END LOOP;
    IF array_length(still, 1) = array_length(pending, 1) THEN
      RAISE EXCEPTION 'TENANT_ROWS_REMAIN: %', still USING ERRCODE = 'BW307';
    END IF;
    pending := still;
  END LOOP;
  RETURN total;
END $$;

-- ---------------------------------------------------------------------------------------------
-- Export requests.
-- ---------------------------------------------------------------------------------------------
CREATE TABLE tenant_exports (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  org_id uuid NOT NULL REFERENCES organisations (id),
  requested_by uuid NOT NULL REFERENCES users (id),
  status text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'ready', 'failed')),
  object_key text CHECK (length(object_key) <= 1024),
  row_count bigint CHECK (row_count >= 0),
  requested_at timestamptz NOT NULL DEFAULT now(),
  completed_at timestamptz,
  UNIQUE (org_id, id),
  CHECK ((status = 'ready') = (object_key IS NOT NULL)),
  CHECK ((status = 'pending') = (completed_at IS NULL))
);
CREATE INDEX tenant_exports_pending_idx ON tenant_exports (requested_at) WHERE status = 'pending';
-- The Owner's API reads its organisation's exports; everything else goes through the functions below.
SELECT app.protect_tenant_table('tenant_exports', ARRAY['select']);
SELECT app.allow_tenant_erasure('tenant_exports');
DO $$ BEGIN
  EXECUTE format('CREATE POLICY export_owner_all ON tenant_exports FOR ALL TO %I USING (true) WITH CHECK (true)',
                 current_user);
END $$;

-- Requests an export for the organisation of the current context: its Owner only, never support.
CREATE FUNCTION app.request_tenant_export()
RETURNS TABLE (id uuid, org_id uuid, requested_by uuid, status text, requested_at timestamptz)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE v_org uuid := app.writable_org_id(); v_user uuid := app.current_user_id();
BEGIN
  IF v_org IS NULL OR v_user IS NULL THEN RAISE EXCEPTION 'TENANT_CONTEXT_MISSING' USING ERRCODE = 'BW001'; END IF;
  IF app.current_support_grant_id() IS NOT NULL OR NOT app.is_live_owner(v_user, v_org) THEN
    RAISE EXCEPTION 'PERMISSION_DENIED' USING ERRCODE = 'BW008';
  END IF;
  RETURN QUERY INSERT INTO public.tenant_exports AS e (org_id, requested_by) VALUES (v_org, v_user)
    RETURNING e.id, e.org_id, e.requested_by, e.status, e.requested_at;
END $$;

CREATE FUNCTION app.pending_tenant_exports(p_limit integer)
RETURNS TABLE (id uuid, org_id uuid, requested_by uuid, status text, object_key text, requested_at timestamptz,
               completed_at timestamptz)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT e.id, e.org_id, e.requested_by, e.status, e.object_key, e.requested_at, e.completed_at
    FROM public.tenant_exports e JOIN public.organisations o ON o.id = e.org_id
   WHERE e.status = 'pending' AND o.lifecycle_state <> 'shredded'
   ORDER BY e.requested_at LIMIT least(greatest(p_limit, 1), 100)
$$;

-- Completes a pending export once (ready with its object, or failed).
CREATE FUNCTION app.finish_tenant_export(p_id uuid, p_object_key text, p_rows bigint) RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  UPDATE public.tenant_exports e
     SET status = CASE WHEN p_object_key IS NULL THEN 'failed' ELSE 'ready' END,
         object_key = p_object_key, row_count = p_rows, completed_at = now()
   WHERE e.id = p_id AND e.status = 'pending';
  RETURN FOUND;
END $$;

GRANT EXECUTE ON FUNCTION
  app.tenant_status(uuid), app.record_tenant_key(uuid, text, text), app.cancel_tenant(timestamptz),
  app.restore_tenant(uuid, uuid), app.due_tenant_lifecycles(integer), app.tenant_rows_remaining(uuid),
  app.advance_tenant_lifecycle(uuid, text, text), app.erase_tenant_rows(uuid), app.request_tenant_export(),
  app.pending_tenant_exports(integer), app.finish_tenant_export(uuid, text, bigint)
TO bulwark_app;
