-- System audit events (docs/audit.md "System events", docs/tenant-keys.md "Audit").
--
-- The tenant-keys functions (provisioner, lifecycle processor, export worker) act for no user: they
-- connect as bulwark_app without a tenant context, so RLS and the link trigger rightly refuse their
-- INSERTs into audit_log. Their events reach the same append-only, hash-chained log through the two
-- owner-only SECURITY DEFINER functions below, which accept exactly one kind of row:
--
--   * actor_type 'system', with no person attached (actor user, e-mail, IP, user agent and support
--     grant all NULL): a system row can never pass for a user's action;
--   * an event name listed in app.system_audit_events (not a prefix: each name is added on purpose,
--     by a migration, naming the function that emits it);
--   * an existing organisation, an occurred_at close to the database clock (no back-dating), and the
--     exact successor of the organisation's head (seq = head + 1, prev_hash = head hash), checked
--     under the same per-organisation advisory lock PgAuditSink takes, so no fork and no gap.
--
-- The hash itself is computed by lambda/audit/chain.ts (canonical form) and checked by the verifier,
-- exactly as for user events.

-- The system namespace: every event name a system actor may record. Owner-only (no grant).
CREATE TABLE app.system_audit_events (
  event text PRIMARY KEY CHECK (event ~ '^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$' AND length(event) <= 100),
  emitted_by text NOT NULL CHECK (length(emitted_by) BETWEEN 1 AND 200)
);
REVOKE ALL ON app.system_audit_events FROM PUBLIC;

INSERT INTO app.system_audit_events (event, emitted_by) VALUES
  ('tenant.grace_started', 'lambda/tenant-keys/lifecycle.ts (lifecycle processor)'),
  ('tenant.shredded', 'lambda/tenant-keys/lifecycle.ts (lifecycle processor)'),
  ('tenant.rows_deleted', 'lambda/tenant-keys/lifecycle-processor.ts'),
  ('tenant.objects_deleted', 'lambda/tenant-keys/lifecycle-processor.ts'),
  ('tenant_key.none_to_delete', 'lambda/tenant-keys/lifecycle-processor.ts'),
  ('tenant_key.byok_released', 'lambda/tenant-keys/lifecycle-processor.ts'),
  ('tenant_key.deletion_scheduled', 'lambda/tenant-keys/lifecycle-processor.ts'),
  ('tenant.export_completed', 'lambda/tenant-keys/export.ts (export worker)'),
  ('tenant.export_failed', 'lambda/tenant-keys/export.ts (export worker)'),
  ('tenant_key.created', 'lambda/tenant-keys/provisioner.ts'),
  ('tenant_key.adopted', 'lambda/tenant-keys/provisioner.ts'),
  ('tenant_key.byok_adopted', 'lambda/tenant-keys/provisioner.ts');

-- The owner inserts system rows only (FORCE RLS applies to it; it already reads every chain through
-- archive_owner_read). The owner is the migration role: at run time only these definer functions
-- act as it, and among them only app.append_system_audit_event inserts into audit_log. The policy
-- repeats the function's row checks, so even a future owner function could add nothing but a
-- person-less system row with a listed name.
DO $$
BEGIN
  EXECUTE format($p$
    CREATE POLICY system_owner_append ON audit_log FOR INSERT TO %I
      WITH CHECK (actor_type = 'system' AND actor_user_id IS NULL AND actor_email IS NULL AND ip IS NULL
                  AND user_agent IS NULL AND support_grant_id IS NULL
                  AND event IN (SELECT s.event FROM app.system_audit_events s))
  $p$, current_user);
END $$;

-- Locks the organisation's chain for the rest of the caller's transaction (the same lock as
-- PgAuditSink) and returns its head: (0, genesis) for an empty chain. Refuses an unknown
-- organisation. Reveals only what the next system event must link to.
CREATE FUNCTION app.system_audit_head(p_org uuid)
RETURNS TABLE (seq bigint, hash text)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
BEGIN
  IF p_org IS NULL OR NOT EXISTS (SELECT 1 FROM public.organisations o WHERE o.id = p_org) THEN
    RAISE EXCEPTION 'AUDIT_ORG_UNKNOWN' USING ERRCODE = 'BW105';
  END IF;
  PERFORM pg_advisory_xact_lock(hashtextextended('bulwark.audit:' || p_org::text, 0));
  RETURN QUERY SELECT a.seq, a.hash FROM public.audit_log a WHERE a.org_id = p_org ORDER BY a.seq DESC LIMIT 1;
  IF NOT FOUND THEN
    RETURN QUERY SELECT 0::bigint, repeat('0', 64);
  END IF;
END $$;

-- Appends one system event, every hashed column given by the caller (lambda/audit/pg-system-sink.ts).
-- Takes the chain lock itself (re-entrant within the transaction), so it is safe even when called
-- without app.system_audit_head first: a stale seq or prev_hash is refused, never forked.
CREATE FUNCTION app.append_system_audit_event(
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
  -- A run of the tenant-keys functions lasts at most 15 minutes (the Lambda maximum); the window
  -- allows that plus clock skew, and nothing older: system events cannot be back-dated.
  IF p_occurred_at IS NULL OR p_occurred_at < now() - interval '1 hour' OR p_occurred_at > now() + interval '5 minutes' THEN
    RAISE EXCEPTION 'SYSTEM_AUDIT_REFUSED' USING ERRCODE = 'BW104',
      DETAIL = 'occurred_at must be within the last hour by the database clock';
  END IF;
  SELECT h.seq, h.hash INTO v_seq, v_hash FROM app.system_audit_head(p_org) h;
  -- The link trigger checks only rows of the caller's tenant context; here there is none, so the
  -- function checks the link itself (UNIQUE (org_id, seq) remains the backstop).
  IF p_seq IS DISTINCT FROM v_seq + 1 OR p_prev_hash IS DISTINCT FROM v_hash THEN
    RAISE EXCEPTION 'AUDIT_CHAIN_BROKEN' USING ERRCODE = 'BW101',
      DETAIL = format('a system event must extend the head (record %s)', v_seq);
  END IF;
  INSERT INTO public.audit_log (org_id, seq, occurred_at, actor_type, actor_user_id, actor_email, event, entity_type,
                                entity_id, ip, user_agent, support_grant_id, metadata, prev_hash, hash)
  VALUES (p_org, p_seq, p_occurred_at, p_actor_type, NULL, NULL, p_event, p_entity_type, p_entity_id, NULL, NULL,
          NULL, p_metadata, p_prev_hash, p_hash);
END $$;

-- PostgreSQL grants EXECUTE to PUBLIC by default: revoke it, then grant the tenant-keys functions'
-- login role (bulwark_app through the RDS Proxy) and nobody else.
REVOKE EXECUTE ON FUNCTION app.system_audit_head(uuid),
  app.append_system_audit_event(uuid, bigint, timestamptz, text, text, text, text, text, text, text, text, text,
                                jsonb, text, text)
FROM PUBLIC;
GRANT EXECUTE ON FUNCTION app.system_audit_head(uuid),
  app.append_system_audit_event(uuid, bigint, timestamptz, text, text, text, text, text, text, text, text, text,
                                jsonb, text, text)
TO bulwark_app;
