-- The tenant-files quarantine checker (docs/tenant-files.md "Quarantine", issue 16).
--
-- Until now nothing released an upload: every tenant_files row stayed 'quarantined'. The checker
-- function (lambda/tenant-files/checker.ts) logs in as its own role, bulwark_file_checker, which
-- may call exactly one function, app.record_file_check below, and nothing else: it reads no table,
-- lists no tenant and learns nothing but the outcome for the object it names.
--
-- The checker reports what it observed on one object version (size, SHA-256, the content type its
-- first bytes identify, the KMS key S3 encrypted it under, and a problem of its own: a malware
-- finding, or bytes it could not read). The database compares those with the row's declaration
-- and the organisation's recorded tenant key and decides:
--
--   * a row moves only from 'quarantined' to 'clean' or 'rejected', never back, never twice; a
--     duplicate event returns the stored status (and the fresh verdict on this version) unchanged;
--   * the row is found by the object key, which the row itself derives (0408): no row of another
--     key, no row of another organisation, can be touched;
--   * each decision appends a system audit event (file.released / file.rejected) to that
--     organisation's own hash chain, in the same transaction (the chain lock of 0404).

INSERT INTO app.system_audit_events (event, emitted_by) VALUES
  ('file.released', 'lambda/tenant-files/checker.ts (quarantine checker, app.record_file_check)'),
  ('file.rejected', 'lambda/tenant-files/checker.ts (quarantine checker, app.record_file_check)');

-- The owner (only ever acting through definer functions at run time) reads rows and moves them out
-- of quarantine; the WITH CHECK repeats that a decision is final. The other owner functions that
-- touch tenant_files (app.delete_tenant_rows, app.tenant_rows_remaining, app.erase_tenant_rows)
-- filter by organisation themselves.
DO $$
BEGIN
  EXECUTE format('CREATE POLICY file_check_read ON tenant_files FOR SELECT TO %I USING (true)', current_user);
  EXECUTE format($p$
    CREATE POLICY file_check_decide ON tenant_files FOR UPDATE TO %I
      USING (status = 'quarantined') WITH CHECK (status IN ('clean', 'rejected'))
  $p$, current_user);
END $$;

-- p_problem: NULL, 'threats_found' or 'not_scanned' (a malware scan's verdict, docs/tenant-files.md
-- "Malware scanning"), or 'unreadable' (S3 refused the checker the bytes or the checksum: rejected
-- as 'wrong_key' when the key is not the tenant's, else an error, so the event is retried and the
-- row stays quarantined). Returns no row for a key that names no file.
CREATE FUNCTION app.record_file_check(p_object_key text, p_size bigint, p_sha256 text, p_content_type text,
                                      p_kms_key_arn text, p_problem text)
RETURNS TABLE (file_id uuid, org_id uuid, status text, verdict text, reason text, changed boolean)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
  f record;
  v_key text;
  v_source text;
  v_reason text;
  v_verdict text;
  v_event text;
  v_meta jsonb;
  v_at timestamptz := date_trunc('milliseconds', now());
  v_rows bigint := 0;
  h record;
BEGIN
  IF p_problem IS NOT NULL AND p_problem NOT IN ('threats_found', 'not_scanned', 'unreadable') THEN
    RAISE EXCEPTION 'FILE_CHECK_REFUSED' USING ERRCODE = 'BW420', DETAIL = 'unknown problem';
  END IF;
  IF p_object_key IS NULL OR p_object_key !~ '^orgs/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/files/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' THEN
    RETURN;
  END IF;
  SELECT t.id, t.org_id, t.status, t.size_bytes, t.sha256, t.content_type INTO f
    FROM public.tenant_files t
   WHERE t.org_id = split_part(p_object_key, '/', 2)::uuid AND t.id = split_part(p_object_key, '/', 4)::uuid
     AND t.object_key = p_object_key;
  IF NOT FOUND THEN
    RETURN;
  END IF;
  SELECT o.kms_key_arn, o.kms_key_source INTO v_key, v_source FROM public.organisations o WHERE o.id = f.org_id;

  v_reason := CASE
    WHEN v_key IS NULL OR v_source IS DISTINCT FROM 'managed' OR p_kms_key_arn IS DISTINCT FROM v_key THEN 'wrong_key'
    WHEN p_problem = 'unreadable' THEN NULL
    WHEN p_size IS DISTINCT FROM f.size_bytes THEN 'size_mismatch'
    WHEN p_sha256 IS DISTINCT FROM f.sha256 THEN 'checksum_mismatch'
    WHEN p_content_type IS DISTINCT FROM f.content_type THEN 'type_mismatch'
    ELSE p_problem
  END;
  IF p_problem = 'unreadable' AND v_reason IS NULL THEN
    -- Under the tenant's own key yet unreadable: a permission or service fault, never the tenant's.
    RAISE EXCEPTION 'FILE_CHECK_UNREADABLE' USING ERRCODE = 'BW421',
      DETAIL = 'the object is under its tenant key but S3 refused the checker its bytes';
  END IF;
  v_verdict := CASE WHEN v_reason IS NULL THEN 'clean' ELSE 'rejected' END;

  -- Two deliveries of one event race here: the second UPDATE waits for the first, finds the row no
  -- longer quarantined (the policy file_check_decide hides it too) and changes nothing.
  IF f.status = 'quarantined' THEN
    UPDATE public.tenant_files t SET status = v_verdict, reject_reason = v_reason, checked_at = now()
     WHERE t.id = f.id AND t.org_id = f.org_id AND t.status = 'quarantined';
    GET DIAGNOSTICS v_rows = ROW_COUNT;
  END IF;
  IF v_rows = 0 THEN
    RETURN QUERY SELECT t.id, t.org_id, t.status, v_verdict, v_reason, false
      FROM public.tenant_files t WHERE t.id = f.id AND t.org_id = f.org_id;
    RETURN;
  END IF;

  v_event := CASE WHEN v_verdict = 'clean' THEN 'file.released' ELSE 'file.rejected' END;
  v_meta := CASE WHEN v_reason IS NULL THEN '{}'::jsonb ELSE jsonb_build_object('reason', v_reason) END;
  SELECT * INTO h FROM app_private.lock_audit_chain(f.org_id);
  INSERT INTO public.audit_log (org_id, seq, occurred_at, actor_type, actor_user_id, actor_email, event, entity_type,
                                entity_id, ip, user_agent, support_grant_id, metadata, prev_hash, hash)
  VALUES (f.org_id, h.seq + 1, v_at, 'system', NULL, NULL, v_event, 'file', f.id::text, NULL, NULL, NULL, v_meta,
          h.hash,
          app_private.audit_hash(f.org_id, h.seq + 1, h.hash, v_at, 'system', NULL, NULL, v_event, 'file', f.id::text,
                                 NULL, NULL, NULL, v_meta));
  RETURN QUERY SELECT f.id, f.org_id, v_verdict, v_verdict, v_reason, true;
END $$;

REVOKE ALL ON FUNCTION app.record_file_check(text, bigint, text, text, text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION app.record_file_check(text, bigint, text, text, text, text) TO bulwark_file_checker;
