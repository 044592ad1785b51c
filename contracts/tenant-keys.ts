/**
 * Names a tenant key carries and the limits of tenant exports: the provisioner's IAM policy, the
 * rule pack and the export bucket's lifecycle (lib/) require what the functions (lambda/) do.
 */

/** Every tenant alias lives under this prefix; IAM scopes alias operations to it. */
export function aliasPrefix(deployment: string): string {
  return `alias/bulwark/${deployment}/tenant/`;
}

/** Tag keys a tenant key carries. The provisioner's IAM policy requires exactly these on CreateKey. */
export const TAG_DEPLOYMENT = 'bulwark:deployment';
export const TAG_ORG = 'bulwark:org-id';
/** Same tag and value the Bulwark rule pack uses to recognise tenant keys (`TenantKeyEncryptionContext`). */
export const TAG_KEY_CLASS = 'bulwark:key-class';
export const TENANT_KEY_CLASS = 'tenant';
/** Every key the deployment's stacks create (lib/observability/keys.ts); never a tenant's. */
export const PLATFORM_KEY_CLASS = 'platform';
export const TENANT_KEY_TAG_KEYS = [TAG_DEPLOYMENT, TAG_ORG, TAG_KEY_CLASS] as const;

/**
 * Code of a refused key deletion: the key recorded for a tenant is not tagged as its tenant key.
 * The lifecycle's log group has a metric filter and an alarm on it.
 */
export const KEY_OWNERSHIP_MISMATCH = 'KEY_OWNERSHIP_MISMATCH';

/**
 * Principal tag that marks the roles allowed to use tenant keys (the API's), with the deployment
 * name as value. Key policies name this tag rather than role ARNs: a replaced role keeps working,
 * and no key policy of thousands of tenants ever has to be rewritten.
 */
export const TENANT_KEY_USER_TAG = 'bulwark:tenant-key-user';

/** The longest a download link may live. */
export const MAX_URL_TTL_SECONDS = 900;
/** Exports older than this are gone (the bucket lifecycle expires them too). */
export const EXPORT_RETENTION_DAYS = 7;

/**
 * The first tenant key policy version (lambda/tenant-keys/key-policy.ts, KEY_POLICY_VERSION) whose
 * keys S3 may use for tenant files. A bring-your-own key is usable for files once the provisioner
 * has recorded it at this version (its policy then has the files statement, checkByokPolicy).
 */
export const FILES_KEY_POLICY_VERSION = 2;

/** The log line and metric of the provisioner's key policy refresh (docs/tenant-keys.md). */
export const KEY_POLICY_REFRESH_LOG = 'key policy refresh';
