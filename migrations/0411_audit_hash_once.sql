-- The audit chain's hash is computed once per row (issue 18, "audit appends serialise").
--
-- Since 0404 every row the owner inserted into audit_log passed the restrictive policy
-- owner_append_hashed, which recomputed the canonical hash the inserting code had just computed:
-- the link trigger (app_private.audit_link_pending) computes it itself, and
-- app.append_system_audit_event refuses a caller's hash unless it equals the canonical one. The
-- second computation ran inside the organisation's chain lock, on every event. Those two definer
-- paths are the only code that inserts (the owner never connects for requests), so the policy went.
-- Every stored row is still checked end to end by the verifier (test/audit/audit-log.test.ts).
DROP POLICY owner_append_hashed ON audit_log;

-- 0405's fair claims replaced 0100's first-N-organisations listing; the shipper no longer calls it.
DROP FUNCTION app.audit_archive_pending(integer);
