/**
 * Tenant files (docs/tenant-files.md): names and limits the file store's bucket, its IAM role and
 * policies (lib/), the REQUEST authorizer that mints tenant-scoped credentials and the file routes
 * and checker (lambda/) must agree on.
 */

/** Every tenant object lives under `orgs/<org_id>/`; IAM and the bucket policy allow nothing else. */
export const FILES_ROOT = 'orgs/';

/** The object key of a file: `orgs/<org_id>/files/<file_id>`. Never derived from a client-chosen name. */
export function fileObjectKey(orgId: string, fileId: string): string {
  return `${FILES_ROOT}${orgId}/files/${fileId}`;
}

/**
 * The session tag the authorizer puts on the files role's session: the organisation it verified.
 * The role's policy reads it as `${aws:PrincipalTag/org_id}`; the role's trust policy allows no
 * other tag key.
 */
export const FILES_SESSION_TAG = 'org_id';

/**
 * How long the files role's credentials live (AssumeRole's minimum). The authorizer verdict, which
 * carries them, is cached for less than FILES_CREDENTIAL_REUSE_SECONDS (4 minutes by default).
 */
export const FILES_CREDENTIAL_SECONDS = 900;

/**
 * The authorizer hands out a minted credential again while at least this much of it is left, so a
 * user's requests cost one AssumeRole per container every five minutes, not one per verdict. It
 * bounds the verdict cache: a cached verdict must never outlive its credentials (lib/tenant-guard).
 */
export const FILES_CREDENTIAL_REUSE_SECONDS = 600;

/** The longest a presigned upload or download URL lives (never beyond the credentials or the token). */
export const MAX_FILE_URL_SECONDS = 900;

/** A URL shorter-lived than this is not worth handing out: the caller gets FILES_CREDENTIALS_EXPIRED. */
export const MIN_FILE_URL_SECONDS = 60;

/** Largest file accepted, in bytes (the exact size is fixed in the upload's signature). */
export const MAX_FILE_BYTES = 25 * 1024 * 1024;

/**
 * Content types an upload may declare. The checker compares each against the bytes' magic numbers
 * (lambda/tenant-files/magic.ts); a mismatch is rejected.
 */
export const FILE_CONTENT_TYPES = ['image/jpeg', 'image/png', 'image/webp', 'application/pdf'] as const;
export type FileContentType = (typeof FILE_CONTENT_TYPES)[number];

export const FILE_STATUSES = ['quarantined', 'clean', 'rejected'] as const;
export type FileStatus = (typeof FILE_STATUSES)[number];

/**
 * The object tag the checker sets on a file it released. The files role may read an object only
 * when it carries `FILE_SCAN_TAG = FILE_SCAN_CLEAN`; only the checker may write object tags. So a
 * quarantined upload is unreadable at the IAM level whatever the database row says.
 */
export const FILE_SCAN_TAG = 'bulwark-scan';
export const FILE_SCAN_CLEAN = 'clean';
/** The mark on a version the checker rejected: a lifecycle rule expires those bytes. */
export const FILE_SCAN_REJECTED = 'rejected';

/** How many leading bytes the checker reads (a ranged GET, never the whole object). */
export const FILE_MAGIC_BYTES = 16;

/**
 * Why the checker rejects an upload (`tenant_files.reject_reason`, the `file.rejected` audit
 * event). The database decides every one but `threats_found` and `not_scanned` from what the
 * checker observed (migrations/0413 `app.record_file_check`).
 */
export const FILE_REJECT_REASONS = [
  /** Not SSE-KMS under its own organisation's managed tenant key (e.g. the `aws/s3` key). */
  'wrong_key',
  /** The object's size is not the declared `size_bytes`. */
  'size_mismatch',
  /** The object's SHA-256 is not the declared one. */
  'checksum_mismatch',
  /** The first bytes are not the magic number of the declared content type. */
  'type_mismatch',
  /** A malware scanner found a threat (the plug-in point of docs/tenant-files.md "Malware scanning"). */
  'threats_found',
  /** A required malware scan could not scan the object (same plug-in point). */
  'not_scanned',
] as const;
export type FileRejectReason = (typeof FILE_REJECT_REASONS)[number];

/** The permission-grid module files belong to (vehicle photos, vehicle documents, bills of sale). */
export const FILES_MODULE = 'vehicles';

/** The file routes' refusals (lambda/tenant-guard/routes/files.ts), with their HTTP status. */
export const FILE_ERROR_STATUS = {
  /** Tenant files are not wired in this deployment (no file store). */
  FILES_UNAVAILABLE: 503,
  /** Uploads and downloads need a person's token: the authorizer mints file credentials for verified tokens only. */
  FILES_USER_TOKEN_REQUIRED: 403,
  /** The token's organisation is not the one addressed (X-Bulwark-Org, support grants): its credentials reach only its own. */
  FILES_ORG_MISMATCH: 403,
  /** The verdict carries no file credentials (STS failed at the authorizer): retry later. */
  FILES_CREDENTIALS_MISSING: 503,
  /** The file credentials expire too soon to sign a useful URL: retry with a fresh token. */
  FILES_CREDENTIALS_EXPIRED: 401,
  /** A bring-your-own key whose policy has not been found to allow tenant files (docs/tenant-keys.md). */
  FILES_KEY_UNSUPPORTED: 409,
  FILE_NOT_FOUND: 404,
  /** Uploaded but not checked yet (or not uploaded at all): nothing can be downloaded. */
  FILE_QUARANTINED: 409,
  /** The checker rejected the bytes (size or type differ from the declaration). */
  FILE_REJECTED: 409,
} as const;
export type FileErrorCode = keyof typeof FILE_ERROR_STATUS;
