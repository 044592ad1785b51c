-- Tenant creation, key provisioning and the tenant routes (docs/tenant-keys.md "HTTP routes").
--
--   * organisations.key_expected: 'managed' (the provisioner gives the tenant a key of its own) or
--     'byok' (an enterprise tenant whose Owner supplies its own key through PUT /tenant/key; no
--     managed key is ever created for it).
--   * app.expect_tenant_byok: a platform owner marks a new enterprise tenant as bring-your-own-key.
--   * app.keyless_tenants: live tenants that should have a managed key and have none. The
--     provisioner's scheduled sweep provisions them, so a lost asynchronous invocation at tenant
--     creation never leaves a tenant keyless for good.
--   * app.tenant_overview: lifecycle and key of a tenant for its active members, in every state: in
--     grace the organisation is suspended, so no tenant context can be entered to read it.
--
-- Errors: SQLSTATE class BW as in docs/tenancy.md; BW308 is new here.

ALTER TABLE organisations ADD COLUMN key_expected text NOT NULL DEFAULT 'managed'
  CHECK (key_expected IN ('managed', 'byok'));
CREATE INDEX organisations_keyless_idx ON organisations (created_at)
  WHERE kms_key_arn IS NULL AND key_expected = 'managed';

-- Marks a tenant as bring-your-own-key: a platform owner only, an enterprise tenant only, and only
-- while it has no key (a recorded key never changes).
CREATE FUNCTION app.expect_tenant_byok(p_actor uuid, p_org uuid) RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE v public.organisations%ROWTYPE;
BEGIN
  IF NOT EXISTS (SELECT 1 FROM public.users u WHERE u.id = p_actor AND u.status = 'active'
                   AND u.platform_role = 'platform_owner') THEN
    RAISE EXCEPTION 'PERMISSION_DENIED' USING ERRCODE = 'BW008';
  END IF;
  SELECT * INTO v FROM public.organisations o WHERE o.id = p_org FOR UPDATE;
  IF NOT FOUND THEN RAISE EXCEPTION 'TENANT_NOT_FOUND' USING ERRCODE = 'BW303'; END IF;
  IF v.plan <> 'enterprise' THEN RAISE EXCEPTION 'BYOK_NOT_ENTITLED' USING ERRCODE = 'BW308'; END IF;
  IF v.kms_key_arn IS NOT NULL THEN RAISE EXCEPTION 'TENANT_KEY_IMMUTABLE' USING ERRCODE = 'BW302'; END IF;
  UPDATE public.organisations o SET key_expected = 'byok' WHERE o.id = p_org;
END $$;

-- Live tenants (active, or cancelled with access) expecting a managed key and holding none, created
-- at least p_min_age ago (the asynchronous invocation at creation gets its chance first), oldest first.
CREATE FUNCTION app.keyless_tenants(p_limit integer, p_min_age interval)
RETURNS TABLE (org_id uuid, created_at timestamptz)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT o.id, o.created_at
    FROM public.organisations o
   WHERE o.kms_key_arn IS NULL AND o.key_expected = 'managed'
     AND o.lifecycle_state IN ('active', 'cancelled') AND o.status = 'active'
     AND o.created_at <= now() - greatest(p_min_age, interval '0 seconds')
   ORDER BY o.created_at, o.id
   LIMIT least(greatest(p_limit, 1), 100)
$$;

-- Lifecycle and key of p_org as its active member p_actor sees them. The key ARN goes to the Owner
-- only (it names the account and the key; other members learn only whether a key is set).
CREATE FUNCTION app.tenant_overview(p_actor uuid, p_org uuid)
RETURNS TABLE (org_id uuid, name text, plan text, status text, role text, lifecycle_state text,
               cancelled_at timestamptz, access_until timestamptz, grace_ends_at timestamptz,
               key_expected text, key_source text, key_set boolean, key_arn text)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE v_role text;
BEGIN
  SELECT m.role INTO v_role
    FROM public.memberships m JOIN public.users u ON u.id = m.user_id
   WHERE m.org_id = p_org AND m.user_id = p_actor AND m.status = 'active' AND u.status = 'active';
  IF NOT FOUND THEN RAISE EXCEPTION 'PERMISSION_DENIED' USING ERRCODE = 'BW008'; END IF;
  RETURN QUERY
    SELECT o.id, o.name, o.plan, o.status, v_role, o.lifecycle_state, o.cancelled_at, o.access_until,
           o.grace_ends_at, o.key_expected, o.kms_key_source, o.kms_key_arn IS NOT NULL,
           CASE WHEN v_role = 'owner' THEN o.kms_key_arn END
      FROM public.organisations o WHERE o.id = p_org;
END $$;

REVOKE EXECUTE ON FUNCTION
  app.expect_tenant_byok(uuid, uuid), app.keyless_tenants(integer, interval), app.tenant_overview(uuid, uuid)
FROM PUBLIC;
GRANT EXECUTE ON FUNCTION
  app.expect_tenant_byok(uuid, uuid), app.keyless_tenants(integer, interval), app.tenant_overview(uuid, uuid)
TO bulwark_app;
