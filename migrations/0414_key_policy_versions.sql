-- Key policy versions (docs/tenant-keys.md, "Key policy refresh").
--
--   * organisations.kms_policy_version: the version of the key policy (lambda/tenant-keys/
--     key-policy.ts, KEY_POLICY_VERSION) the tenant's key was last found or made to carry. NULL:
--     never checked (keys created before this migration, and new keys until the provisioner's next
--     run). For a managed key the provisioner re-puts the policy; for a bring-your-own key it only
--     records the version once the customer's policy meets it (checkByokPolicy), never writes it.
--   * app.tenant_keys_behind_policy: keys behind a version, in org id order after a cursor (each
--     run walks them all once; a key that failed is passed over, not retried in a loop).
--   * app.record_key_policy_version: records a version for the key the row still names (a changed
--     or shredded row records nothing); never lowers it.
--   * app.count_tenant_keys_behind_policy: what the provisioner logs (and alarms on) per run.
--   * app.context_tenant_files_key: the key of the writable tenant context with its policy
--     version, for the file routes (a bring-your-own key is usable for files once it is recorded
--     at the files version).
--
-- Only the provisioner records versions. The tenant API's role reads organisations but writes
-- nothing here; a wrong version would not widen anything anyway: KMS evaluates the key policy
-- itself on every use.

ALTER TABLE organisations ADD COLUMN kms_policy_version integer
  CHECK (kms_policy_version IS NULL OR kms_policy_version BETWEEN 1 AND 1000);

CREATE FUNCTION app.tenant_keys_behind_policy(p_version integer, p_after uuid, p_limit integer)
RETURNS TABLE (org_id uuid, key_arn text, key_source text, policy_version integer)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT o.id, o.kms_key_arn, o.kms_key_source, o.kms_policy_version
    FROM public.organisations o
   WHERE o.kms_key_arn IS NOT NULL AND o.lifecycle_state <> 'shredded'
     AND coalesce(o.kms_policy_version, 0) < p_version
     AND (p_after IS NULL OR o.id > p_after)
   ORDER BY o.id
   LIMIT least(greatest(p_limit, 1), 100)
$$;

CREATE FUNCTION app.record_key_policy_version(p_org uuid, p_key_arn text, p_version integer)
RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  UPDATE public.organisations o
     SET kms_policy_version = greatest(coalesce(o.kms_policy_version, 0), p_version)
   WHERE o.id = p_org AND o.kms_key_arn = p_key_arn AND o.lifecycle_state <> 'shredded';
  RETURN FOUND;
END $$;

CREATE FUNCTION app.count_tenant_keys_behind_policy(p_version integer)
RETURNS TABLE (managed bigint, byok bigint)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT count(*) FILTER (WHERE o.kms_key_source = 'managed'), count(*) FILTER (WHERE o.kms_key_source = 'byok')
    FROM public.organisations o
   WHERE o.kms_key_arn IS NOT NULL AND o.lifecycle_state <> 'shredded'
     AND coalesce(o.kms_policy_version, 0) < p_version
$$;

CREATE FUNCTION app.context_tenant_files_key()
RETURNS TABLE (org_id uuid, key_arn text, key_source text, policy_version integer)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT o.id, o.kms_key_arn, o.kms_key_source, o.kms_policy_version FROM public.organisations o
   WHERE o.id = app.writable_org_id() AND o.lifecycle_state <> 'shredded'
$$;

REVOKE ALL ON FUNCTION
  app.tenant_keys_behind_policy(integer, uuid, integer), app.record_key_policy_version(uuid, text, integer),
  app.count_tenant_keys_behind_policy(integer), app.context_tenant_files_key()
FROM PUBLIC;
GRANT EXECUTE ON FUNCTION
  app.tenant_keys_behind_policy(integer, uuid, integer), app.record_key_policy_version(uuid, text, integer),
  app.count_tenant_keys_behind_policy(integer)
TO bulwark_key_provisioner;
GRANT EXECUTE ON FUNCTION app.context_tenant_files_key() TO bulwark_app;
