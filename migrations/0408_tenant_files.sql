-- Tenant files (docs/tenant-files.md): one metadata row per object of the file store, a tenant
-- table like every other (RLS forced, the `vehicles` grid: vehicle photos, vehicle documents,
-- signed bills of sale). The bytes live in S3 under `orgs/<org_id>/files/<id>`, encrypted under the
-- tenant's own key; this table says what was declared and whether the checker released it.
--
-- What the tenant API may write is narrower than for other tables: it inserts the declaration
-- (name, type, size, checksum, vehicle) and deletes through app.delete_tenant_rows; it never
-- chooses the id or the object key (generated), never sets the status (the quarantine checker's,
-- and IAM independently refuses to read an object the checker has not tagged), and updates nothing.

CREATE TABLE tenant_files (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  org_id uuid NOT NULL REFERENCES organisations (id),
  -- Derived, never chosen (set by the trigger below; the API may not insert it): a row can only
  -- ever name an object under its own organisation's prefix.
  object_key text NOT NULL CHECK (object_key = 'orgs/' || org_id::text || '/files/' || id::text),
  name text NOT NULL CHECK (length(name) BETWEEN 1 AND 255 AND name !~ '[[:cntrl:]/\\]'),
  content_type text NOT NULL CHECK (content_type IN ('image/jpeg', 'image/png', 'image/webp', 'application/pdf')),
  size_bytes bigint NOT NULL CHECK (size_bytes BETWEEN 1 AND 26214400),
  -- Base64 of the SHA-256 the upload is signed with (S3 checks the bytes against it).
  sha256 text NOT NULL CHECK (sha256 ~ '^[A-Za-z0-9+/]{43}=$'),
  vehicle_id uuid,
  status text NOT NULL DEFAULT 'quarantined' CHECK (status IN ('quarantined', 'clean', 'rejected')),
  reject_reason text CHECK (reject_reason IS NULL OR length(reject_reason) <= 100),
  uploaded_by uuid DEFAULT app.current_user_id(),
  created_at timestamptz NOT NULL DEFAULT now(),
  checked_at timestamptz,
  UNIQUE (org_id, id),
  FOREIGN KEY (org_id, vehicle_id) REFERENCES vehicles (org_id, id)
);
CREATE INDEX tenant_files_org_created_idx ON tenant_files (org_id, created_at DESC);

CREATE FUNCTION app_private.tenant_file_object_key() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  NEW.object_key := 'orgs/' || NEW.org_id::text || '/files/' || NEW.id::text;
  RETURN NEW;
END $$;
REVOKE ALL ON FUNCTION app_private.tenant_file_object_key() FROM PUBLIC;
CREATE TRIGGER tenant_files_object_key BEFORE INSERT OR UPDATE OF org_id, id, object_key ON tenant_files
  FOR EACH ROW EXECUTE FUNCTION app_private.tenant_file_object_key();

SELECT app.protect_tenant_table('tenant_files', ARRAY['select', 'insert']);
SELECT app.apply_tenant_grid('tenant_files', 'vehicles:view', 'vehicles:create', 'vehicles:edit', 'vehicles:delete');
SELECT app.allow_tenant_erasure('tenant_files');

-- Column-level INSERT: the declaration only (status, id, object key, uploader, times are not the
-- caller's to choose).
REVOKE INSERT ON tenant_files FROM bulwark_app;
GRANT INSERT (org_id, name, content_type, size_bytes, sha256, vehicle_id) ON tenant_files TO bulwark_app;

-- Deleted by id through app.delete_tenant_rows (the context's organisation, vehicles:delete).
INSERT INTO app_private.deletable_tables (tbl) VALUES ('tenant_files'::regclass);

-- The export worker reads every tenant table of the exported tenant (read-only context).
GRANT SELECT ON tenant_files TO bulwark_lifecycle;
