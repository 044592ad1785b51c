-- Audit log: append-only, per-organisation hash chain (docs/audit.md).
--
-- Each row carries its sequence number within its organisation, the hash of its predecessor and its
-- own hash (computed by lambda/audit/chain.ts over a canonical serialisation of every column below
-- except id and recorded_at). The application may INSERT and SELECT only; a trigger refuses UPDATE,
-- DELETE and TRUNCATE for every role, owner included; row-level security follows docs/tenancy.md.

CREATE TABLE audit_log (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  org_id uuid NOT NULL REFERENCES organisations (id),
  seq bigint NOT NULL CHECK (seq >= 1),
  occurred_at timestamptz NOT NULL,
  actor_type text NOT NULL CHECK (actor_type IN ('user', 'api_key', 'support_grant', 'system')),
  -- Text, not uuid/inet: values must read back byte for byte as they were hashed.
  actor_user_id text CHECK (length(actor_user_id) <= 200),
  actor_email text CHECK (length(actor_email) <= 320),
  event text NOT NULL CHECK (event ~ '^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$' AND length(event) <= 100),
  entity_type text CHECK (length(entity_type) <= 100),
  entity_id text CHECK (length(entity_id) <= 200),
  ip text CHECK (length(ip) <= 64),
  user_agent text CHECK (length(user_agent) <= 1024),
  support_grant_id text CHECK (length(support_grant_id) <= 200),
  metadata jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(metadata) = 'object'),
  prev_hash text NOT NULL CHECK (prev_hash ~ '^[0-9a-f]{64}$'),
  hash text NOT NULL CHECK (hash ~ '^[0-9a-f]{64}$'),
  recorded_at timestamptz NOT NULL DEFAULT now(),
  -- One chain per organisation: a second writer racing for the same position fails here.
  UNIQUE (org_id, seq),
  UNIQUE (org_id, id)
);
CREATE INDEX audit_log_org_time_idx ON audit_log (org_id, occurred_at);

-- Refuses every change to existing rows, for every role including the owner (a superuser could
-- still disable triggers; production has none the application can reach: docs/audit.md).
-- Statement-level, so it fires even when RLS or a WHERE clause matches no row.
CREATE FUNCTION app.audit_log_append_only() RETURNS trigger LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  RAISE EXCEPTION 'AUDIT_LOG_APPEND_ONLY' USING ERRCODE = 'BW100',
    DETAIL = format('%s on audit_log is not allowed: the audit trail is append-only', TG_OP);
END $$;
CREATE TRIGGER audit_log_no_update_delete BEFORE UPDATE OR DELETE ON audit_log
  FOR EACH STATEMENT EXECUTE FUNCTION app.audit_log_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
  FOR EACH STATEMENT EXECUTE FUNCTION app.audit_log_append_only();

-- The database enforces the chain's shape (sequence and links) so that no writer can fork or
-- re-start a chain; the hash itself is checked by the verifier (it needs the canonical form).
-- A support engineer's actions always carry the grant they acted under.
CREATE FUNCTION app.audit_log_check_link() RETURNS trigger LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_prev text;
  v_grant uuid := app.current_support_grant_id();
BEGIN
  IF NEW.seq = 1 THEN
    IF NEW.prev_hash <> repeat('0', 64) THEN
      RAISE EXCEPTION 'AUDIT_CHAIN_BROKEN' USING ERRCODE = 'BW101', DETAIL = 'the first record must link to the genesis hash';
    END IF;
  ELSE
    SELECT a.hash INTO v_prev FROM public.audit_log a WHERE a.org_id = NEW.org_id AND a.seq = NEW.seq - 1;
    IF v_prev IS NULL OR v_prev <> NEW.prev_hash THEN
      RAISE EXCEPTION 'AUDIT_CHAIN_BROKEN' USING ERRCODE = 'BW101',
        DETAIL = format('record %s does not link to record %s', NEW.seq, NEW.seq - 1);
    END IF;
  END IF;
  IF v_grant IS NOT NULL AND NEW.support_grant_id IS DISTINCT FROM v_grant::text THEN
    RAISE EXCEPTION 'AUDIT_SUPPORT_GRANT_MISSING' USING ERRCODE = 'BW102',
      DETAIL = 'events recorded under a support grant must carry that grant';
  END IF;
  NEW.recorded_at := now();
  RETURN NEW;
END $$;
CREATE TRIGGER audit_log_link BEFORE INSERT ON audit_log
  FOR EACH ROW EXECUTE FUNCTION app.audit_log_check_link();

-- Append-only for the application: SELECT and INSERT, nothing else (docs/tenancy.md).
SELECT app.protect_tenant_table('audit_log', ARRAY['select', 'insert']);

-- Actions taken in a read-only context (a `read` support grant, a viewer) are still audited: the
-- standard insert policy needs a writable context, so audit rows may also be appended for the
-- context's own organisation. Reads stay exactly as the standard tenant_select policy allows.
CREATE POLICY audit_append_in_context ON audit_log FOR INSERT TO bulwark_app
  WITH CHECK (org_id = (SELECT app.current_org_id()));
