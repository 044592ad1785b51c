-- Webhooks under attack (issue 15, docs/webhooks.md "Per-organisation secrets").
--
-- 1. Unknown organisations. app.webhook_secret_for_verification returns no row both for an unknown
--    (or inactive) organisation and for an active one without a secret, so the ingress answered a
--    random `?org=` with WEBHOOK_SECRET_MISSING and paged the on-call. Its replacement returns one row
--    for every active organisation (NULL ciphertext when it has no secret for the provider) and none
--    otherwise: the ingress answers the unknown like a bad signature and caches it, and only a known
--    organisation without a secret alarms.
-- 2. Revocation. app.webhook_secret_accepts says whether a sealed secret the ingress verified with
--    is still accepted now (the current one, or the previous one inside its window). The ingress asks
--    in the dedup transaction for every HMAC event, so ending a rotation revokes the previous secret
--    at once on every warm instance, whatever their caches hold.
--
-- The role keeps exactly what it uses: the old reader is revoked from it.

CREATE FUNCTION app.webhook_organisation_secret(p_org_id uuid, p_provider text)
RETURNS TABLE (current_sealed text, previous_sealed text, previous_valid_until timestamptz, rotated_at timestamptz)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT s.current_sealed, s.previous_sealed, s.previous_valid_until, s.rotated_at
  FROM public.organisations o
  LEFT JOIN public.organisation_webhook_secrets s ON s.org_id = o.id AND s.provider = p_provider
  WHERE o.id = p_org_id AND o.status = 'active'
$$;

CREATE FUNCTION app.webhook_secret_accepts(p_org_id uuid, p_provider text, p_sealed text)
RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT EXISTS (
    SELECT 1
    FROM public.organisation_webhook_secrets s
    JOIN public.organisations o ON o.id = s.org_id
    WHERE s.org_id = p_org_id AND s.provider = p_provider AND o.status = 'active'
      AND (s.current_sealed = p_sealed OR (s.previous_sealed = p_sealed AND s.previous_valid_until > pg_catalog.now()))
  )
$$;

REVOKE ALL ON FUNCTION app.webhook_organisation_secret(uuid, text), app.webhook_secret_accepts(uuid, text, text)
FROM PUBLIC;
GRANT EXECUTE ON FUNCTION app.webhook_organisation_secret(uuid, text), app.webhook_secret_accepts(uuid, text, text)
TO bulwark_webhooks;
REVOKE EXECUTE ON FUNCTION app.webhook_secret_for_verification(uuid, text) FROM bulwark_webhooks;
