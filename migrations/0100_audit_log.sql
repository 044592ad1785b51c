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
  -- Rows outside the verified context are refused by RLS right after this trigger (or inserted by a
  -- superuser, who bypasses everything anyway); the chain is checked for the rows that will land.
  IF NEW.org_id IS DISTINCT FROM app.current_org_id() THEN
    RETURN NEW;
  END IF;
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

-- ---------------------------------------------------------------------------------------------
-- Archive shipping (lambda/audit/shipper.ts). The shipper reads every organisation's chain, so it
-- goes through these owner-only SECURITY DEFINER functions and never through tenant policies. No
-- role may execute them until the deployment grants them to the shipper's own login role (never to
-- bulwark_app): docs/audit.md "Shipper database role".
-- ---------------------------------------------------------------------------------------------
CREATE TABLE app.audit_archive_state (
  org_id uuid PRIMARY KEY REFERENCES organisations (id),
  shipped_seq bigint NOT NULL CHECK (shipped_seq >= 1),
  shipped_hash text NOT NULL CHECK (shipped_hash ~ '^[0-9a-f]{64}$'),
  updated_at timestamptz NOT NULL DEFAULT now()
);
REVOKE ALL ON app.audit_archive_state FROM PUBLIC;

-- FORCE keeps the owner under RLS; the definer functions below need to read every chain.
DO $$
BEGIN
  EXECUTE format('CREATE POLICY archive_owner_read ON audit_log FOR SELECT TO %I USING (true)', current_user);
END $$;

-- Organisations whose chain extends beyond what is archived, with their plan (retention).
CREATE FUNCTION app.audit_archive_pending(p_limit integer)
RETURNS TABLE (org_id uuid, plan text, shipped_seq bigint, shipped_hash text)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT o.id, o.plan, coalesce(s.shipped_seq, 0), coalesce(s.shipped_hash, repeat('0', 64))
    FROM public.organisations o
    CROSS JOIN LATERAL (SELECT a.seq FROM public.audit_log a WHERE a.org_id = o.id ORDER BY a.seq DESC LIMIT 1) h
    LEFT JOIN app.audit_archive_state s ON s.org_id = o.id
   WHERE h.seq > coalesce(s.shipped_seq, 0)
   ORDER BY o.id
   LIMIT p_limit
$$;

CREATE FUNCTION app.audit_archive_read(p_org uuid, p_after bigint, p_limit integer)
RETURNS SETOF public.audit_log
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT * FROM public.audit_log a WHERE a.org_id = p_org AND a.seq > p_after ORDER BY a.seq LIMIT p_limit
$$;

-- Advances the archived position; only forward, and only to a record that exists with that hash.
CREATE FUNCTION app.audit_archive_mark(p_org uuid, p_seq bigint, p_hash text) RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM public.audit_log a WHERE a.org_id = p_org AND a.seq = p_seq AND a.hash = p_hash) THEN
    RAISE EXCEPTION 'AUDIT_ARCHIVE_MARK_INVALID' USING ERRCODE = 'BW103';
  END IF;
  INSERT INTO app.audit_archive_state AS s (org_id, shipped_seq, shipped_hash)
  VALUES (p_org, p_seq, p_hash)
  ON CONFLICT (org_id) DO UPDATE SET shipped_seq = EXCLUDED.shipped_seq, shipped_hash = EXCLUDED.shipped_hash,
    updated_at = now()
  WHERE s.shipped_seq < EXCLUDED.shipped_seq;
END $$;

-- Per-schema default privileges cannot revoke PostgreSQL's global EXECUTE-to-PUBLIC default, so
-- revoke explicitly: these functions are for the owner and the shipper role only.
REVOKE EXECUTE ON FUNCTION app.audit_archive_pending(integer), app.audit_archive_read(uuid, bigint, integer),
  app.audit_archive_mark(uuid, bigint, text), app.audit_log_append_only(), app.audit_log_check_link() FROM PUBLIC;
