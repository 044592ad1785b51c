-- Per-organisation webhook secrets for carriers that sign with a shared secret (FreJun, DIDLogic).
--
-- Only SecretCipher ciphertext is stored (sealed for the organisation and the `webhook_secret`
-- purpose, lambda/shared/secret-cipher.ts): a database dump reveals no secret. During a rotation
-- window the replaced secret stays in `previous_sealed` until `previous_valid_until`.
--
-- A tenant table by the tenancy contract (docs/tenancy.md): org_id leads every key, RLS through
-- app.protect_tenant_table. Management (set, rotate, report `secret_set`) runs in the organisation's
-- tenant context. Verification runs before any user exists (a carrier is calling), so it reads the
-- ciphertext through one SECURITY DEFINER function that returns nothing else.
CREATE TABLE organisation_webhook_secrets (
  id                   uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
  org_id               uuid        NOT NULL REFERENCES organisations (id),
  provider             text        NOT NULL CHECK (provider IN ('frejun', 'didlogic')),
  current_sealed       text        NOT NULL CHECK (length(current_sealed) BETWEEN 1 AND 8192),
  previous_sealed      text                 CHECK (length(previous_sealed) BETWEEN 1 AND 8192),
  previous_valid_until timestamptz,
  rotated_at           timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT organisation_webhook_secrets_org_id UNIQUE (org_id, id),
  CONSTRAINT organisation_webhook_secrets_provider UNIQUE (org_id, provider),
  CONSTRAINT organisation_webhook_secrets_previous CHECK ((previous_sealed IS NULL) = (previous_valid_until IS NULL))
);

SELECT app.protect_tenant_table('organisation_webhook_secrets');

-- The verification function runs as the owner, which FORCE RLS also filters: let it read (only).
DO $$
BEGIN
  EXECUTE format(
    'CREATE POLICY gate_owner_read ON organisation_webhook_secrets FOR SELECT TO %I USING (true)',
    current_user
  );
END
$$;

-- Ciphertext of an active organisation's secret for one provider, for signature verification.
-- No row: the organisation has no secret, does not exist, or is not active (refused either way).
CREATE FUNCTION app.webhook_secret_for_verification(p_org_id uuid, p_provider text)
RETURNS TABLE (current_sealed text, previous_sealed text, previous_valid_until timestamptz, rotated_at timestamptz)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT s.current_sealed, s.previous_sealed, s.previous_valid_until, s.rotated_at
  FROM public.organisation_webhook_secrets s
  JOIN public.organisations o ON o.id = s.org_id
  WHERE s.org_id = p_org_id AND s.provider = p_provider AND o.status = 'active'
$$;

REVOKE ALL ON FUNCTION app.webhook_secret_for_verification(uuid, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION app.webhook_secret_for_verification(uuid, text) TO bulwark_app;
