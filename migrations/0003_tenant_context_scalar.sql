-- Tenant context v2: one organisation per context, so every policy is a scalar equality the
-- planner can use like a literal (the uuid[] form of 0001 defeated ordered index scans: see
-- bench/tenant-guard.ts). Oversight changes shape accordingly: a dealer group or network member
-- whose role allows oversight enters a member store itself, read-only, instead of reading every
-- member store at once. A store still never sees its siblings.

CREATE OR REPLACE FUNCTION app.set_tenant_context(p_user_id uuid, p_org_id uuid, p_support_grant_id uuid DEFAULT NULL)
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
    SELECT m.role, app.membership_permissions(m.role, cr.permissions)
      INTO v_role, v_perms
      FROM public.memberships m
      LEFT JOIN public.custom_roles cr ON cr.org_id = m.org_id AND cr.id = m.custom_role_id
     WHERE m.org_id = p_org_id AND m.user_id = p_user_id AND m.status = 'active';
    IF FOUND THEN
      v_writable := true;
    ELSE
      -- Oversight: an active membership in an ancestor dealer group or network whose role allows
      -- it enters a member store read-only, with the view half of its grid. Siblings are never
      -- reached: only the ancestor chain of p_org_id is consulted.
      WITH RECURSIVE up(id, depth) AS (
        SELECT o.parent_id, 1 FROM public.organisations o WHERE o.id = p_org_id AND o.parent_id IS NOT NULL
        UNION ALL
        SELECT o.parent_id, up.depth + 1 FROM public.organisations o JOIN up ON o.id = up.id
         WHERE o.parent_id IS NOT NULL AND up.depth < 8
      )
      SELECT m.role, ARRAY(SELECT p FROM unnest(app.membership_permissions(m.role, cr.permissions)) p
                            WHERE p LIKE '%:view')
        INTO v_role, v_perms
        FROM up
        JOIN public.organisations anc ON anc.id = up.id AND anc.status = 'active'
        JOIN public.memberships m ON m.org_id = up.id AND m.user_id = p_user_id AND m.status = 'active'
        LEFT JOIN public.custom_roles cr ON cr.org_id = m.org_id AND cr.id = m.custom_role_id
       WHERE CASE WHEN m.role = 'custom' THEN cr.oversight ELSE app.builtin_role_oversight(m.role) END
       ORDER BY up.depth
       LIMIT 1;
      IF NOT FOUND THEN
        RAISE EXCEPTION 'MEMBERSHIP_REVOKED' USING ERRCODE = 'BW002';
      END IF;
      v_writable := false;
    END IF;
    v_readable := ARRAY[p_org_id];
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

CREATE OR REPLACE FUNCTION app.protect_tenant_table(p_table regclass, p_commands text[] DEFAULT ARRAY['select','insert','update','delete'])
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
  -- The sub-SELECT makes each reader an InitPlan evaluated once per statement, so the org_id
  -- index is used exactly as with a literal. Writes additionally need a writable context.
  EXECUTE format('CREATE POLICY tenant_select ON %s FOR SELECT USING (org_id = (SELECT app.current_org_id()))', p_table);
  EXECUTE format('CREATE POLICY tenant_insert ON %s FOR INSERT WITH CHECK (org_id = (SELECT app.writable_org_id()))', p_table);
  EXECUTE format('CREATE POLICY tenant_update ON %s FOR UPDATE USING (org_id = (SELECT app.writable_org_id())) WITH CHECK (org_id = (SELECT app.writable_org_id()))', p_table);
  EXECUTE format('CREATE POLICY tenant_delete ON %s FOR DELETE USING (org_id = (SELECT app.writable_org_id()))', p_table);
  FOREACH cmd IN ARRAY p_commands LOOP
    EXECUTE format('GRANT %s ON %s TO bulwark_app', upper(cmd), p_table);
  END LOOP;
END $$;

-- Re-point the SELECT policies created by 0001/0002.
DO $$
DECLARE r record;
BEGIN
  FOR r IN SELECT tablename FROM pg_policies
            WHERE schemaname = 'public' AND policyname = 'tenant_select'
              AND tablename NOT IN ('organisations', 'users') LOOP
    EXECUTE format('ALTER POLICY tenant_select ON public.%I USING (org_id = (SELECT app.current_org_id()))', r.tablename);
  END LOOP;
END $$;
ALTER POLICY tenant_select ON organisations USING (id = (SELECT app.current_org_id()));

-- Known users (every request after the first) are resolved with a read, not an upsert.
CREATE OR REPLACE FUNCTION app.resolve_user(p_subject text, p_email text)
RETURNS TABLE (id uuid, status text, platform_role text)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
BEGIN
  RETURN QUERY SELECT u.id, u.status, u.platform_role FROM public.users u
                WHERE u.subject = p_subject AND u.email = p_email;
  IF FOUND THEN RETURN; END IF;
  INSERT INTO public.users AS u (subject, email) VALUES (p_subject, p_email)
  ON CONFLICT (subject) DO UPDATE SET email = EXCLUDED.email WHERE u.email IS DISTINCT FROM EXCLUDED.email;
  RETURN QUERY SELECT u.id, u.status, u.platform_role FROM public.users u WHERE u.subject = p_subject;
END $$;
