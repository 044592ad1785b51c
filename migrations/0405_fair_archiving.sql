-- Fair, scaled-out audit archiving (issue 18; lambda/audit/shipper.ts, docs/audit.md "Archive shipping").
--
-- 0100's `audit_archive_pending` hands out the first N organisations by id, so with more pending
-- organisations than one run ships, the same ones are served every run and the rest never are.
-- Here organisations are served longest-waiting first (by when their oldest unshipped record was
-- recorded), and each is leased to one worker while it ships, so any number of shipper
-- invocations can run at once without shipping the same chain twice. A worker leases a chain at
-- most once per run (its own live leases are skipped too), so one organisation's backlog cannot
-- take a run's whole budget; what it leaves is still the oldest and comes first in the next run.

CREATE TABLE app.audit_archive_lease (
  org_id uuid PRIMARY KEY REFERENCES organisations (id),
  -- One shipper invocation (its Lambda request id).
  worker text NOT NULL CHECK (length(worker) BETWEEN 1 AND 200),
  leased_until timestamptz NOT NULL
);
CREATE INDEX audit_archive_lease_worker_idx ON app.audit_archive_lease (worker);
REVOKE ALL ON app.audit_archive_lease FROM PUBLIC;

-- Every organisation with an unshipped record: its archived position and when its oldest
-- unshipped record was recorded (the database's clock, set on insert). One probe of the
-- (org_id, seq) index per organisation. Not granted to anyone: the definer functions below use it.
CREATE FUNCTION app.audit_archive_backlog()
RETURNS TABLE (org_id uuid, plan text, shipped_seq bigint, shipped_hash text, oldest_at timestamptz)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT o.id, o.plan, coalesce(s.shipped_seq, 0), coalesce(s.shipped_hash, repeat('0', 64)), n.recorded_at
    FROM public.organisations o
    LEFT JOIN app.audit_archive_state s ON s.org_id = o.id
    JOIN LATERAL (
      SELECT a.recorded_at FROM public.audit_log a WHERE a.org_id = o.id AND a.seq = coalesce(s.shipped_seq, 0) + 1
    ) n ON true
$$;

-- Leases up to p_limit organisations with unshipped records to p_worker for p_lease_seconds, the
-- longest-waiting first, skipping every live lease (the caller's own included). Two claims running
-- at once: each takes a transaction-scoped advisory lock per candidate in order and passes over the
-- ones the other holds, so they lease different organisations instead of colliding; and should one
-- see a candidate the other has just leased, ON CONFLICT finds that lease live and skips it.
CREATE FUNCTION app.audit_archive_claim(p_worker text, p_limit integer, p_lease_seconds integer)
RETURNS TABLE (org_id uuid, plan text, shipped_seq bigint, shipped_hash text, oldest_at timestamptz)
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
  WITH candidate AS MATERIALIZED (
    SELECT o.*
      FROM (
        SELECT b.*
          FROM app.audit_archive_backlog() b
          LEFT JOIN app.audit_archive_lease l ON l.org_id = b.org_id
         WHERE l.org_id IS NULL OR l.leased_until <= now()
         ORDER BY b.oldest_at, b.org_id
        OFFSET 0
      ) o
     -- Evaluated on the sorted rows one at a time until the limit, so only those are locked: OFFSET 0
     -- keeps the subquery from being flattened, and a volatile condition is never pushed into it.
     WHERE pg_try_advisory_xact_lock(405, hashtext(o.org_id::text))
     LIMIT least(greatest(p_limit, 0), 10000)
  ), leased AS (
    INSERT INTO app.audit_archive_lease AS l (org_id, worker, leased_until)
    SELECT c.org_id, p_worker, now() + make_interval(secs => least(greatest(p_lease_seconds, 1), 3600))
      FROM candidate c
    ON CONFLICT ON CONSTRAINT audit_archive_lease_pkey DO UPDATE
      SET worker = EXCLUDED.worker, leased_until = EXCLUDED.leased_until
      WHERE l.leased_until <= now()
    RETURNING l.org_id
  )
  SELECT c.org_id, c.plan, c.shipped_seq, c.shipped_hash, c.oldest_at
    FROM candidate c JOIN leased USING (org_id)
   ORDER BY c.oldest_at, c.org_id
$$;

-- Ends a worker's leases (at the end of its run; a crashed run's leases simply expire).
CREATE FUNCTION app.audit_archive_release(p_worker text) RETURNS integer
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
  WITH gone AS (DELETE FROM app.audit_archive_lease l WHERE l.worker = p_worker RETURNING 1)
  SELECT count(*)::integer FROM gone
$$;

-- What the archive still owes: organisations with unshipped records and when the oldest of all
-- of them was recorded (NULL when nothing is owed). The shipper publishes its age every run.
CREATE FUNCTION app.audit_archive_owed()
RETURNS TABLE (organisations bigint, oldest_at timestamptz, measured_at timestamptz)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT count(*), min(b.oldest_at), statement_timestamp() FROM app.audit_archive_backlog() b
$$;

REVOKE EXECUTE ON FUNCTION app.audit_archive_backlog(), app.audit_archive_claim(text, integer, integer),
  app.audit_archive_release(text), app.audit_archive_owed() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION app.audit_archive_claim(text, integer, integer), app.audit_archive_release(text),
  app.audit_archive_owed() TO bulwark_audit_shipper;
