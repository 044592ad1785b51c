-- Audit rows proven by the database, and a chain lock no other session can take (issues 14 and 18;
-- docs/audit.md "The hash chain", docs/tenancy.md "Known limits").
--
-- Until now the tenant API inserted audit rows itself: it chose the actor, e-mail, support grant and
-- hash, and serialised each organisation's writers with pg_advisory_xact_lock on a key anyone can
-- compute. SQL run on the API's connection could therefore write rows naming another person, with a
-- hash the database never checked, and could take another tenant's advisory lock and hold it,
-- delaying that tenant's audited writes. From here on:
--
--   * the API role has no INSERT on audit_log. It calls app.append_audit_event(org, occurred_at,
--     event, entity, ip, user agent, metadata); the organisation must be the verified context's, and
--     the actor (user, e-mail, actor type, support grant) is taken from the context, never from the
--     caller;
--   * the database computes each row's hash over the canonical form of lambda/audit/chain.ts
--     (app_private.audit_canonical, byte for byte) and the previous row's hash; every row the owner
--     inserts must carry that hash (a restrictive policy), system events included;
--   * the per-organisation chain lock is a row of app_private.audit_chain_locks, locked FOR UPDATE
--     by the definer code only (no role can reach the table). A user event is queued by
--     append_audit_event and linked by a deferred constraint trigger at COMMIT, so the lock is held
--     for the commit only, not for the rest of the caller's transaction; no advisory lock remains.
--
-- Errors: BW106 AUDIT_EVENT_REFUSED (no context, another organisation's event, a date out of range,
-- metadata that has no canonical form); BW104 as before for system events, also for a wrong hash.

-- ---------------------------------------------------------------------------------------------
-- Canonical form (lambda/audit/chain.ts canonicalRecord, lambda/audit/canonical.ts canonicalJson).
-- ---------------------------------------------------------------------------------------------

-- JavaScript sorts object keys by UTF-16 code unit. That is UTF-8 byte order too, except between
-- U+E000..U+FFFF and supplementary characters; objects with a non-ASCII key sort by UTF-16BE bytes.
CREATE FUNCTION app_private.utf16_key(p text) RETURNS bytea
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT coalesce(string_agg(substring(int4send(v.u) FROM 3 FOR 2), ''::bytea ORDER BY c.i, v.j), ''::bytea)
    FROM unnest(string_to_array(p, NULL)) WITH ORDINALITY AS c(ch, i)
   CROSS JOIN LATERAL (VALUES
     (1, CASE WHEN ascii(c.ch) < 65536 THEN ascii(c.ch) ELSE 55296 + ((ascii(c.ch) - 65536) >> 10) END),
     (2, CASE WHEN ascii(c.ch) >= 65536 THEN 56320 + ((ascii(c.ch) - 65536) & 1023) END)) AS v(j, u)
   WHERE v.u IS NOT NULL
$$;

-- A JSON number as JavaScript prints it after JSON.parse: the nearest double, its shortest
-- round-trip digits (PostgreSQL's float8 output, extra_float_digits > 0) laid out by
-- Number.prototype.toString. Out-of-range numbers raise (JavaScript would make them Infinity).
-- String functions, not a regular expression: this runs for every number of every event.
CREATE FUNCTION app_private.js_number(p numeric) RETURNS text
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
SET extra_float_digits = 1
AS $$
DECLARE
  f float8 := p::float8;
  t text;
  mant text;
  frac text;
  s text;
  x integer;
  n integer;
  k integer;
  sign text := '';
BEGIN
  IF f = 0 THEN RETURN '0'; END IF;
  t := f::text;
  IF left(t, 1) = '-' THEN sign := '-'; t := substr(t, 2); END IF;
  mant := split_part(t, 'e', 1);
  frac := split_part(mant, '.', 2);
  s := split_part(mant, '.', 1) || frac;
  x := coalesce(nullif(split_part(t, 'e', 2), '')::integer, 0) - length(frac);
  s := ltrim(s, '0');
  x := x + length(s) - length(rtrim(s, '0'));
  s := rtrim(s, '0');
  k := length(s);
  n := x + k; -- value = s * 10^(n - k)
  IF k <= n AND n <= 21 THEN RETURN sign || s || repeat('0', n - k); END IF;
  IF 0 < n AND n <= 21 THEN RETURN sign || left(s, n) || '.' || substr(s, n + 1); END IF;
  IF -6 < n AND n <= 0 THEN RETURN sign || '0.' || repeat('0', -n) || s; END IF;
  RETURN sign || left(s, 1) || CASE WHEN k > 1 THEN '.' || substr(s, 2) ELSE '' END || 'e'
         || CASE WHEN n - 1 >= 0 THEN '+' ELSE '-' END || abs(n - 1)::text;
END $$;

CREATE FUNCTION app_private.canonical_json(v jsonb) RETURNS text
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_ascii boolean;
BEGIN
  CASE jsonb_typeof(v)
    WHEN 'object' THEN
      v_ascii := NOT EXISTS (SELECT 1 FROM jsonb_object_keys(v) k WHERE octet_length(k) <> char_length(k));
      RETURN '{' || coalesce((SELECT string_agg(to_json(e.key)::text || ':' || app_private.canonical_json(e.value), ','
                                                ORDER BY CASE WHEN v_ascii THEN convert_to(e.key, 'UTF8')
                                                              ELSE app_private.utf16_key(e.key) END)
                                FROM jsonb_each(v) e), '') || '}';
    WHEN 'array' THEN
      RETURN '[' || coalesce((SELECT string_agg(app_private.canonical_json(e.value), ',' ORDER BY e.i)
                                FROM jsonb_array_elements(v) WITH ORDINALITY AS e(value, i)), '') || ']';
    WHEN 'string' THEN RETURN to_json(v #>> '{}')::text;
    WHEN 'number' THEN RETURN app_private.js_number((v #>> '{}')::numeric);
    WHEN 'boolean' THEN RETURN v #>> '{}';
    ELSE RETURN 'null';
  END CASE;
END $$;

-- ISO 8601 with milliseconds, as Date.prototype.toISOString (years 0000-9999).
CREATE FUNCTION app_private.js_iso(p timestamptz) RETURNS text
LANGUAGE plpgsql STABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$ BEGIN RETURN to_char(p AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'); END $$;

-- PL/pgSQL, not SQL: one cached simple expression each, where a SQL function with a SET clause is
-- not inlined and costs far more per call (it runs on every append and in a policy).
CREATE FUNCTION app_private.audit_canonical(
  p_org uuid, p_seq bigint, p_prev_hash text, p_occurred_at timestamptz, p_actor_type text, p_actor_user_id text,
  p_actor_email text, p_event text, p_entity_type text, p_entity_id text, p_ip text, p_user_agent text,
  p_support_grant_id text, p_metadata jsonb)
RETURNS text
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  RETURN '["bulwark-audit/1",' || to_json(p_org::text)::text || ',' || p_seq::text || ','
      || coalesce(to_json(p_prev_hash)::text, 'null') || ',' || to_json(app_private.js_iso(p_occurred_at))::text || ','
      || coalesce(to_json(p_actor_type)::text, 'null') || ',' || coalesce(to_json(p_actor_user_id)::text, 'null') || ','
      || coalesce(to_json(p_actor_email)::text, 'null') || ',' || coalesce(to_json(p_event)::text, 'null') || ','
      || coalesce(to_json(p_entity_type)::text, 'null') || ',' || coalesce(to_json(p_entity_id)::text, 'null') || ','
      || coalesce(to_json(p_ip)::text, 'null') || ',' || coalesce(to_json(p_user_agent)::text, 'null') || ','
      || coalesce(to_json(p_support_grant_id)::text, 'null') || ',' || app_private.canonical_json(p_metadata) || ']';
END $$;

CREATE FUNCTION app_private.audit_hash(
  p_org uuid, p_seq bigint, p_prev_hash text, p_occurred_at timestamptz, p_actor_type text, p_actor_user_id text,
  p_actor_email text, p_event text, p_entity_type text, p_entity_id text, p_ip text, p_user_agent text,
  p_support_grant_id text, p_metadata jsonb)
RETURNS text
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  RETURN encode(public.digest(convert_to(app_private.audit_canonical(p_org, p_seq, p_prev_hash, p_occurred_at,
    p_actor_type, p_actor_user_id, p_actor_email, p_event, p_entity_type, p_entity_id, p_ip, p_user_agent,
    p_support_grant_id, p_metadata), 'UTF8'), 'sha256'), 'hex');
END $$;

-- ---------------------------------------------------------------------------------------------
-- The chain lock: one row per organisation, reachable only by the definer code below.
-- ---------------------------------------------------------------------------------------------
CREATE TABLE app_private.audit_chain_locks (
  org_id uuid PRIMARY KEY REFERENCES organisations (id)
);
REVOKE ALL ON app_private.audit_chain_locks FROM PUBLIC;
INSERT INTO app_private.audit_chain_locks (org_id) SELECT o.id FROM organisations o;

-- Locks the organisation's chain until the transaction ends and returns its head, read after the
-- lock (READ COMMITTED: every committed predecessor is visible). (0, genesis) for an empty chain.
CREATE FUNCTION app_private.lock_audit_chain(p_org uuid, OUT seq bigint, OUT hash text)
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  PERFORM 1 FROM app_private.audit_chain_locks l WHERE l.org_id = p_org FOR UPDATE;
  IF NOT FOUND THEN
    INSERT INTO app_private.audit_chain_locks (org_id) VALUES (p_org) ON CONFLICT (org_id) DO NOTHING;
    PERFORM 1 FROM app_private.audit_chain_locks l WHERE l.org_id = p_org FOR UPDATE;
  END IF;
  SELECT a.seq, a.hash INTO seq, hash FROM public.audit_log a WHERE a.org_id = p_org ORDER BY a.seq DESC LIMIT 1;
  IF seq IS NULL THEN
    seq := 0;
    hash := repeat('0', 64);
  END IF;
END $$;

-- The owner inserts user rows (actor from the context, below) and system rows (0301); every row it
-- inserts must carry the canonical hash of its own columns.
DO $$
BEGIN
  EXECUTE format($p$
    CREATE POLICY chain_owner_append ON audit_log FOR INSERT TO %I
      WITH CHECK (actor_type IN ('user', 'api_key', 'support_grant') AND actor_user_id IS NOT NULL)
  $p$, current_user);
  EXECUTE format($p$
    CREATE POLICY owner_append_hashed ON audit_log AS RESTRICTIVE FOR INSERT TO %I
      WITH CHECK (hash = app_private.audit_hash(org_id, seq, prev_hash, occurred_at, actor_type, actor_user_id,
                                                actor_email, event, entity_type, entity_id, ip, user_agent,
                                                support_grant_id, metadata))
  $p$, current_user);
END $$;

-- The API no longer inserts rows itself.
REVOKE INSERT ON audit_log FROM bulwark_app;
DROP POLICY tenant_insert ON audit_log;
DROP POLICY audit_append_in_context ON audit_log;

-- ---------------------------------------------------------------------------------------------
-- User events: queued in the caller's transaction, linked at COMMIT.
-- ---------------------------------------------------------------------------------------------
-- Always empty outside a committing transaction (each row is linked and deleted by the trigger), so
-- UNLOGGED loses nothing in a crash.
CREATE UNLOGGED TABLE app_private.audit_pending (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  org_id uuid NOT NULL,
  occurred_at timestamptz NOT NULL,
  actor_type text NOT NULL,
  actor_user_id text NOT NULL,
  actor_email text,
  event text NOT NULL,
  entity_type text,
  entity_id text,
  ip text,
  user_agent text,
  support_grant_id text,
  metadata jsonb NOT NULL
);
REVOKE ALL ON app_private.audit_pending FROM PUBLIC;

CREATE FUNCTION app_private.audit_link_pending() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  h record;
  v_hash text;
BEGIN
  SELECT * INTO h FROM app_private.lock_audit_chain(NEW.org_id);
  v_hash := app_private.audit_hash(NEW.org_id, h.seq + 1, h.hash, NEW.occurred_at, NEW.actor_type, NEW.actor_user_id,
                                   NEW.actor_email, NEW.event, NEW.entity_type, NEW.entity_id, NEW.ip, NEW.user_agent,
                                   NEW.support_grant_id, NEW.metadata);
  INSERT INTO public.audit_log (org_id, seq, occurred_at, actor_type, actor_user_id, actor_email, event, entity_type,
                                entity_id, ip, user_agent, support_grant_id, metadata, prev_hash, hash)
  VALUES (NEW.org_id, h.seq + 1, NEW.occurred_at, NEW.actor_type, NEW.actor_user_id, NEW.actor_email, NEW.event,
          NEW.entity_type, NEW.entity_id, NEW.ip, NEW.user_agent, NEW.support_grant_id, NEW.metadata, h.hash, v_hash);
  DELETE FROM app_private.audit_pending p WHERE p.id = NEW.id;
  RETURN NULL;
END $$;
CREATE CONSTRAINT TRIGGER audit_pending_link AFTER INSERT ON app_private.audit_pending
  DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION app_private.audit_link_pending();

-- Records one event of the current verified context's organisation, as the context's actor.
CREATE FUNCTION app.append_audit_event(p_org uuid, p_occurred_at timestamptz, p_event text, p_entity_type text,
                                       p_entity_id text, p_ip text, p_user_agent text, p_metadata jsonb)
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  c app.tenant_context%ROWTYPE;
  v_email text;
  v_at timestamptz := date_trunc('milliseconds', p_occurred_at);
BEGIN
  SELECT * INTO c FROM app.tenant_context t
   WHERE t.pid = pg_backend_pid() AND t.xact = pg_current_xact_id_if_assigned();
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

-- ---------------------------------------------------------------------------------------------
-- System events (0301): the same lock row instead of the advisory lock, and the hash checked.
-- ---------------------------------------------------------------------------------------------
CREATE OR REPLACE FUNCTION app.system_audit_head(p_org uuid)
RETURNS TABLE (seq bigint, hash text)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
BEGIN
  IF p_org IS NULL OR NOT EXISTS (SELECT 1 FROM public.organisations o WHERE o.id = p_org) THEN
    RAISE EXCEPTION 'AUDIT_ORG_UNKNOWN' USING ERRCODE = 'BW105';
  END IF;
  RETURN QUERY SELECT h.seq, h.hash FROM app_private.lock_audit_chain(p_org) h;
END $$;

CREATE OR REPLACE FUNCTION app.append_system_audit_event(
  p_org uuid, p_seq bigint, p_occurred_at timestamptz, p_actor_type text, p_actor_user_id text,
  p_actor_email text, p_event text, p_entity_type text, p_entity_id text, p_ip text, p_user_agent text,
  p_support_grant_id text, p_metadata jsonb, p_prev_hash text, p_hash text)
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_seq bigint;
  v_hash text;
BEGIN
  IF p_actor_type IS DISTINCT FROM 'system' THEN
    RAISE EXCEPTION 'SYSTEM_AUDIT_REFUSED' USING ERRCODE = 'BW104', DETAIL = 'actor_type must be system';
  END IF;
  IF p_actor_user_id IS NOT NULL OR p_actor_email IS NOT NULL OR p_ip IS NOT NULL OR p_user_agent IS NOT NULL
     OR p_support_grant_id IS NOT NULL THEN
    RAISE EXCEPTION 'SYSTEM_AUDIT_REFUSED' USING ERRCODE = 'BW104',
      DETAIL = 'a system event carries no actor user, e-mail, IP, user agent or support grant';
  END IF;
  IF NOT EXISTS (SELECT 1 FROM app.system_audit_events s WHERE s.event = p_event) THEN
    RAISE EXCEPTION 'SYSTEM_AUDIT_REFUSED' USING ERRCODE = 'BW104',
      DETAIL = 'the event is not in the system namespace (app.system_audit_events)';
  END IF;
  IF p_occurred_at IS NULL OR p_occurred_at < now() - interval '1 hour' OR p_occurred_at > now() + interval '5 minutes' THEN
    RAISE EXCEPTION 'SYSTEM_AUDIT_REFUSED' USING ERRCODE = 'BW104',
      DETAIL = 'occurred_at must be within the last hour by the database clock';
  END IF;
  SELECT h.seq, h.hash INTO v_seq, v_hash FROM app.system_audit_head(p_org) h;
  IF p_seq IS DISTINCT FROM v_seq + 1 OR p_prev_hash IS DISTINCT FROM v_hash THEN
    RAISE EXCEPTION 'AUDIT_CHAIN_BROKEN' USING ERRCODE = 'BW101',
      DETAIL = format('a system event must extend the head (record %s)', v_seq);
  END IF;
  IF p_metadata IS NULL OR jsonb_typeof(p_metadata) <> 'object' OR p_hash IS DISTINCT FROM
     app_private.audit_hash(p_org, p_seq, p_prev_hash, p_occurred_at, p_actor_type, NULL, NULL, p_event, p_entity_type,
                            p_entity_id, NULL, NULL, NULL, p_metadata) THEN
    RAISE EXCEPTION 'SYSTEM_AUDIT_REFUSED' USING ERRCODE = 'BW104',
      DETAIL = 'the hash is not the canonical hash of the record (docs/audit.md "The hash chain")';
  END IF;
  INSERT INTO public.audit_log (org_id, seq, occurred_at, actor_type, actor_user_id, actor_email, event, entity_type,
                                entity_id, ip, user_agent, support_grant_id, metadata, prev_hash, hash)
  VALUES (p_org, p_seq, p_occurred_at, p_actor_type, NULL, NULL, p_event, p_entity_type, p_entity_id, NULL, NULL,
          NULL, p_metadata, p_prev_hash, p_hash);
END $$;

REVOKE ALL ON FUNCTION app_private.utf16_key(text), app_private.js_number(numeric), app_private.canonical_json(jsonb),
  app_private.js_iso(timestamptz),
  app_private.audit_canonical(uuid, bigint, text, timestamptz, text, text, text, text, text, text, text, text, text, jsonb),
  app_private.audit_hash(uuid, bigint, text, timestamptz, text, text, text, text, text, text, text, text, text, jsonb),
  app_private.lock_audit_chain(uuid), app_private.audit_link_pending(),
  app.append_audit_event(uuid, timestamptz, text, text, text, text, text, jsonb)
FROM PUBLIC;
GRANT EXECUTE ON FUNCTION app.append_audit_event(uuid, timestamptz, text, text, text, text, text, jsonb) TO bulwark_app;
