/**
 * Tenant files (docs/tenant-files.md), isolated at the IAM gate: the files role's session tagged
 * with organisation A reaches A's prefix under A's key and nothing of B's; only the authorizer can
 * assume it, and only with that one tag; the API function's own role reaches no file at all. The
 * quarantine checker reads and marks uploads of every organisation, each only under that
 * organisation's own key and context, through S3; it writes, deletes and lists nothing.
 */
import type { AccessRow } from './rows';

const FILES_ROLE = 'Edge/TenantGuard/FilesRole';
const AUTHORIZER = 'Edge/TenantGuard/Authorizer/Role';
const BUCKET = 'TenantKeys/Files/Bucket';
const CHECKER = 'TenantKeys/Files/Checker/Function/Role';
const object = (org: string) => `\${${BUCKET}}/orgs/\${org:${org}}/files/0f0f0f0f-0000-4000-8000-00000000000f`;

/** A files-role session the authorizer tagged with organisation `org`. */
const session = (org: string) => ({ 'aws:PrincipalTag/org_id': `\${org:${org}}` });
/** An upload as the presigned PUT sends it: SSE-KMS under `key`. */
const upload = (key: string) => ({
  's3:x-amz-server-side-encryption': 'aws:kms',
  's3:x-amz-server-side-encryption-aws-kms-key-id': `\${tenant-key:${key}}`,
});
const released = { 's3:ExistingObjectTag/bulwark-scan': 'clean' };
/** What S3 sends KMS for an object of organisation `org` (SSE-KMS with the org_id context). */
const viaS3 = (org: string, objectOf = org) => ({
  'kms:ViaService': 's3.${region}.amazonaws.com',
  'kms:EncryptionContext:org_id': `\${org:${org}}`,
  'kms:EncryptionContext:aws:s3:arn': object(objectOf),
  'kms:EncryptionContextKeys': ['org_id', 'aws:s3:arn'],
});
const assumeA = { 'aws:RequestTag/org_id': '${org:A}', 'aws:TagKeys': ['org_id'] };
/** The checker's mark on a version: `bulwark-scan=<value>`. */
const mark = (value: string, keys: string[] = ['bulwark-scan']) => ({
  's3:RequestObjectTagKeys': keys,
  's3:RequestObjectTag/bulwark-scan': value,
});

/** The export reader (docs/tenant-files.md, "Export"), assumed by the lifecycle function (the export worker). */
const EXPORT_READER = 'TenantKeys/TenantKeys/FilesExportReader';
const LIFECYCLE = 'TenantKeys/TenantKeys/Lifecycle/Role';

export const FILES_MUST_ALLOW: readonly AccessRow[] = [
  {
    id: 'files-session-uploads-own-org',
    who: { role: FILES_ROLE },
    action: 's3:PutObject',
    resource: object('A'),
    context: { ...session('A'), ...upload('A') },
    why: "a presigned upload lands under its organisation's prefix, SSE-KMS under its own key",
  },
  {
    id: 'files-session-encrypts-under-own-key',
    who: { role: FILES_ROLE },
    action: 'kms:GenerateDataKey',
    resource: '${tenant-key:A}',
    context: { ...session('A'), ...viaS3('A') },
    why: "S3 encrypts the upload under the organisation's key, with org_id and the object in the context",
  },
  {
    id: 'files-session-reads-released-own-org',
    who: { role: FILES_ROLE },
    action: 's3:GetObject',
    resource: object('A'),
    context: { ...session('A'), ...released },
    why: 'a presigned download of a file the checker released',
  },
  {
    id: 'files-session-decrypts-own',
    who: { role: FILES_ROLE },
    action: 'kms:Decrypt',
    resource: '${tenant-key:A}',
    context: { ...session('A'), ...viaS3('A') },
    why: "S3 decrypts the organisation's file under its own key",
  },
  {
    id: 'files-session-deletes-own-org',
    who: { role: FILES_ROLE },
    action: 's3:DeleteObject',
    resource: object('A'),
    context: session('A'),
    why: 'DELETE /files/{id} removes the current version (a noncurrent one stays recoverable for 30 days)',
  },
  {
    id: 'authorizer-assumes-files-role',
    who: { role: AUTHORIZER },
    action: 'sts:AssumeRole',
    resource: `\${${FILES_ROLE}}`,
    context: assumeA,
    why: 'the authorizer mints credentials for the organisation it verified',
  },
  {
    id: 'authorizer-tags-files-session',
    who: { role: AUTHORIZER },
    action: 'sts:TagSession',
    resource: `\${${FILES_ROLE}}`,
    context: assumeA,
    why: 'the org_id session tag is the whole scope of the files session',
  },
  {
    id: 'checker-reads-quarantined-upload',
    who: { role: CHECKER },
    action: 's3:GetObjectVersion',
    resource: object('A'),
    why: 'the checker reads the first bytes (and the checksum) of the exact version an upload event names, before any release',
  },
  {
    id: 'checker-decrypts-upload-under-its-org',
    who: { role: CHECKER },
    action: 'kms:Decrypt',
    resource: '${tenant-key:A}',
    context: viaS3('A'),
    why: "S3 decrypts an upload for the checker under its own organisation's key and context",
  },
  {
    id: 'checker-decrypts-upload-of-another-org',
    who: { role: CHECKER },
    action: 'kms:Decrypt',
    resource: '${tenant-key:B}',
    context: viaS3('B'),
    why: "one checker serves every organisation: B's upload under B's key and context",
  },
  {
    id: 'checker-writes-release-mark',
    who: { role: CHECKER },
    action: 's3:PutObjectVersionTagging',
    resource: object('A'),
    context: mark('clean'),
    why: 'the one exception to NobodyWritesTheReleaseMark: the checker marks the version it checked',
  },
  {
    id: 'checker-writes-rejected-mark',
    who: { role: CHECKER },
    action: 's3:PutObjectVersionTagging',
    resource: object('A'),
    context: mark('rejected'),
    why: "a rejected version is marked for the lifecycle's expiry",
  },
];

/**
 * What the trust policy of an org-tagged session role (lib/tenant-files/session-role.ts) refuses
 * even its one minter: a session without the org_id tag, with another tag key beside it, or with a
 * value that is not shaped like an organisation id.
 */
function sessionTagRefusals(
  minter: string,
  role: string,
  session: string,
  ids: { readonly untagged: string; readonly withMore: string; readonly wildcard: string },
): AccessRow[] {
  return [
    {
      id: ids.untagged,
      who: { role: minter },
      action: 'sts:AssumeRole',
      resource: `\${${role}}`,
      why: `${session} without an org_id tag would be scoped to nothing defined`,
    },
    {
      id: ids.withMore,
      who: { role: minter },
      action: 'sts:TagSession',
      resource: `\${${role}}`,
      context: {
        'aws:RequestTag/org_id': '${org:A}',
        'aws:RequestTag/bulwark:tenant-key-user': 'x',
        'aws:TagKeys': ['org_id', 'bulwark:tenant-key-user'],
      },
      why: 'no session tag but org_id: the role tag the key policies read cannot be overridden',
    },
    {
      id: ids.wildcard,
      who: { role: minter },
      action: 'sts:TagSession',
      resource: `\${${role}}`,
      context: { 'aws:RequestTag/org_id': '*', 'aws:TagKeys': ['org_id'] },
      why: 'an org_id that is not a UUID could widen the prefix the policy variable builds',
    },
  ];
}

/** The export worker reads the exported organisation's released files, and nothing else. */
export const FILES_EXPORT_MUST_ALLOW: readonly AccessRow[] = [
  {
    id: 'lifecycle-assumes-export-reader',
    who: { role: LIFECYCLE },
    action: 'sts:AssumeRole',
    resource: `\${${EXPORT_READER}}`,
    context: assumeA,
    why: 'the export worker reads files with a session scoped to the organisation it exports',
  },
  {
    id: 'lifecycle-tags-export-reader-session',
    who: { role: LIFECYCLE },
    action: 'sts:TagSession',
    resource: `\${${EXPORT_READER}}`,
    context: assumeA,
    why: 'the org_id session tag is the whole scope of the export reader session',
  },
  {
    id: 'export-reader-reads-released-own-org',
    who: { role: EXPORT_READER },
    action: 's3:GetObject',
    resource: object('A'),
    context: { ...session('A'), ...released },
    why: "an export of organisation A carries A's released files",
  },
  {
    id: 'export-reader-decrypts-own',
    who: { role: EXPORT_READER },
    action: 'kms:Decrypt',
    resource: '${tenant-key:A}',
    context: { ...session('A'), ...viaS3('A') },
    why: "S3 decrypts A's file for the export under A's key and context",
  },
];

/** The key policy refresh (docs/tenant-keys.md): the provisioner reads and re-puts tenant key policies only. */
const PROVISIONER = 'TenantKeys/TenantKeys/Provisioner/Role';
export const KEY_POLICY_REFRESH_MUST_ALLOW: readonly AccessRow[] = [
  {
    id: 'provisioner-reads-tenant-key-policy',
    who: { role: PROVISIONER },
    action: 'kms:GetKeyPolicy',
    resource: '${tenant-key:A}',
    why: "the refresh compares a tenant key's policy with the current rendering (and checks a bring-your-own key's)",
  },
];

export const KEY_POLICY_REFRESH_MUST_DENY: readonly AccessRow[] = [
  {
    id: 'provisioner-reads-platform-key-policy',
    who: { role: PROVISIONER },
    action: 'kms:GetKeyPolicy',
    resource: '${Data/DataKey}',
    why: "GetKeyPolicy and PutKeyPolicy reach only keys tagged as this deployment's tenant keys",
  },
  {
    id: 'provisioner-rewrites-export-key-policy',
    who: { role: PROVISIONER },
    action: 'kms:PutKeyPolicy',
    resource: '${TenantKeys/TenantKeys/ExportKey}',
    why: "the refresh writes tenant key policies only, never a platform key's",
  },
  {
    id: 'lifecycle-rewrites-tenant-key-policy',
    who: { role: LIFECYCLE },
    action: 'kms:PutKeyPolicy',
    resource: '${tenant-key:A}',
    why: 'only the provisioner writes tenant key policies',
  },
  {
    id: 'tenant-api-rewrites-tenant-key-policy',
    who: { role: 'Edge/TenantGuard/Api/Role' },
    action: 'kms:PutKeyPolicy',
    resource: '${tenant-key:A}',
    why: 'a compromised API function cannot widen a tenant key policy',
  },
  {
    id: 'export-reader-rewrites-tenant-key-policy',
    who: { role: EXPORT_READER },
    action: 'kms:PutKeyPolicy',
    resource: '${tenant-key:A}',
    context: session('A'),
    why: "an export reader session cannot widen its own organisation's key policy",
  },
];

export const FILES_EXPORT_MUST_DENY: readonly AccessRow[] = [
  {
    id: 'export-reader-reads-other-org',
    who: { role: EXPORT_READER },
    action: 's3:GetObject',
    resource: object('B'),
    context: { ...session('A'), ...released },
    why: "a session exporting A cannot read B's files, whatever key a row names",
  },
  {
    id: 'export-reader-uses-other-org-key',
    who: { role: EXPORT_READER },
    action: 'kms:Decrypt',
    resource: '${tenant-key:B}',
    context: { ...session('A'), ...viaS3('B') },
    why: "a session exporting A cannot use B's key, even with B's own context",
  },
  {
    id: 'export-reader-other-org-context-on-own-key',
    who: { role: EXPORT_READER },
    action: 'kms:Decrypt',
    resource: '${tenant-key:A}',
    context: { ...session('A'), ...viaS3('B', 'A') },
    why: "A's key never decrypts under another organisation's context",
  },
  {
    id: 'export-reader-reads-quarantined-own',
    who: { role: EXPORT_READER },
    action: 's3:GetObject',
    resource: object('A'),
    context: session('A'),
    why: 'a quarantined or rejected upload is listed in the export, never read into it',
  },
  {
    id: 'export-reader-opens-sealed-secrets',
    who: { role: EXPORT_READER },
    action: 'kms:Decrypt',
    resource: '${tenant-key:A}',
    context: {
      ...session('A'),
      'kms:EncryptionContext:org_id': '${org:A}',
      'kms:EncryptionContext:purpose': 'webhook-secret',
      'kms:EncryptionContextKeys': ['org_id', 'purpose'],
    },
    why: "the export reader uses the tenant key through S3 only, never to open the organisation's sealed secrets",
  },
  {
    id: 'export-reader-writes-files',
    who: { role: EXPORT_READER },
    action: 's3:PutObject',
    resource: object('A'),
    context: { ...session('A'), ...upload('A') },
    why: 'the export reader is read-only',
  },
  {
    id: 'export-reader-deletes-files',
    who: { role: EXPORT_READER },
    action: 's3:DeleteObject',
    resource: object('A'),
    context: session('A'),
    why: 'the export reader is read-only',
  },
  {
    id: 'lifecycle-reads-files-itself',
    who: { role: LIFECYCLE },
    action: 's3:GetObject',
    resource: object('A'),
    context: released,
    why: "the export worker's own role reads no file: only a session tagged with one organisation does",
  },
  ...sessionTagRefusals(LIFECYCLE, EXPORT_READER, 'an export reader session', {
    untagged: 'lifecycle-assumes-export-reader-untagged',
    withMore: 'lifecycle-tags-export-reader-with-more',
    wildcard: 'lifecycle-tags-export-reader-with-wildcard',
  }),
  {
    id: 'authorizer-assumes-export-reader',
    who: { role: AUTHORIZER },
    action: 'sts:AssumeRole',
    resource: `\${${EXPORT_READER}}`,
    context: assumeA,
    why: 'only the export worker may mint export reader sessions',
  },
  {
    id: 'tenant-api-assumes-export-reader',
    who: { role: 'Edge/TenantGuard/Api/Role' },
    action: 'sts:AssumeRole',
    resource: `\${${EXPORT_READER}}`,
    context: assumeA,
    why: 'a compromised API function cannot mint export reader sessions for any organisation',
  },
  {
    id: 'administrator-assumes-export-reader',
    who: { administrator: true },
    action: 'sts:AssumeRole',
    resource: `\${${EXPORT_READER}}`,
    context: assumeA,
    why: "the trust policy names the lifecycle function's role alone",
  },
];

export const FILES_MUST_DENY: readonly AccessRow[] = [
  {
    id: 'files-session-uploads-other-org',
    who: { role: FILES_ROLE },
    action: 's3:PutObject',
    resource: object('B'),
    context: { ...session('A'), ...upload('A') },
    why: "a session of organisation A cannot write under B's prefix, whatever key it names",
  },
  {
    id: 'files-session-reads-other-org',
    who: { role: FILES_ROLE },
    action: 's3:GetObject',
    resource: object('B'),
    context: { ...session('A'), ...released },
    why: "a guessed key of organisation B is unreadable for A's session",
  },
  {
    id: 'files-session-deletes-other-org',
    who: { role: FILES_ROLE },
    action: 's3:DeleteObject',
    resource: object('B'),
    context: session('A'),
    why: "A's session cannot delete B's files",
  },
  {
    id: 'files-session-uses-other-org-key',
    who: { role: FILES_ROLE },
    action: 'kms:Decrypt',
    resource: '${tenant-key:B}',
    context: { ...session('A'), ...viaS3('B') },
    why: "A's session cannot use B's key, even with B's own context",
  },
  {
    id: 'files-session-other-org-context-on-own-key',
    who: { role: FILES_ROLE },
    action: 'kms:Decrypt',
    resource: '${tenant-key:A}',
    context: { ...session('A'), ...viaS3('B', 'A') },
    why: "A's key never works under another organisation's context",
  },
  {
    id: 'files-session-own-key-for-other-prefix',
    who: { role: FILES_ROLE },
    action: 'kms:GenerateDataKey',
    resource: '${tenant-key:A}',
    context: { ...session('A'), ...viaS3('A', 'B') },
    why: "A's key encrypts only objects under A's prefix",
  },
  {
    id: 'files-session-uses-key-directly',
    who: { role: FILES_ROLE },
    action: 'kms:Decrypt',
    resource: '${tenant-key:A}',
    context: {
      ...session('A'),
      'kms:EncryptionContext:org_id': '${org:A}',
      'kms:EncryptionContext:purpose': 'webhook-secret',
      'kms:EncryptionContextKeys': ['org_id', 'purpose'],
    },
    why: "the files session uses its key only through S3, never to open the organisation's sealed secrets",
  },
  {
    id: 'files-session-reads-quarantined-own',
    who: { role: FILES_ROLE },
    action: 's3:GetObject',
    resource: object('A'),
    context: session('A'),
    why: 'an upload the checker has not released is unreadable at the IAM level, whatever its row says',
  },
  {
    id: 'files-session-uploads-without-sse-kms',
    who: { role: FILES_ROLE },
    action: 's3:PutObject',
    resource: object('A'),
    context: session('A'),
    why: 'the bucket policy refuses a PUT that does not name an SSE-KMS key',
  },
  {
    id: 'files-session-uploads-under-foreign-key',
    who: { role: FILES_ROLE },
    action: 's3:PutObject',
    resource: object('A'),
    context: {
      ...session('A'),
      's3:x-amz-server-side-encryption': 'aws:kms',
      's3:x-amz-server-side-encryption-aws-kms-key-id':
        'arn:aws:kms:${region}:999999999999:key/0a0a0a0a-1111-4111-8111-00000000000a',
    },
    why: "the bucket policy refuses a key of another account (which this account's shredding could not destroy)",
  },
  {
    id: 'files-session-lists-bucket',
    who: { role: FILES_ROLE },
    action: 's3:ListBucket',
    resource: `\${${BUCKET}}`,
    context: session('A'),
    why: "listing comes from the organisation's rows under RLS, never from the bucket",
  },
  {
    id: 'files-session-releases-own-upload',
    who: { role: FILES_ROLE },
    action: 's3:PutObjectTagging',
    resource: object('A'),
    context: session('A'),
    why: 'only the checker may mark a file released',
  },
  {
    id: 'tenant-api-reads-files',
    who: { role: 'Edge/TenantGuard/Api/Role' },
    action: 's3:GetObject',
    resource: object('A'),
    context: released,
    why: 'a compromised API function holds no file access of its own',
  },
  {
    id: 'tenant-api-writes-files',
    who: { role: 'Edge/TenantGuard/Api/Role' },
    action: 's3:PutObject',
    resource: object('A'),
    context: upload('A'),
    why: 'a compromised API function cannot write a file with its own role',
  },
  {
    id: 'tenant-api-assumes-files-role',
    who: { role: 'Edge/TenantGuard/Api/Role' },
    action: 'sts:AssumeRole',
    resource: `\${${FILES_ROLE}}`,
    context: assumeA,
    why: 'only the authorizer, which verified the token, may mint files credentials',
  },
  {
    id: 'webhooks-assumes-files-role',
    who: { role: 'Edge/Webhooks/Function/Role' },
    action: 'sts:AssumeRole',
    resource: `\${${FILES_ROLE}}`,
    context: assumeA,
    why: 'no other function may assume the files role',
  },
  {
    id: 'administrator-assumes-files-role',
    who: { administrator: true },
    action: 'sts:AssumeRole',
    resource: `\${${FILES_ROLE}}`,
    context: assumeA,
    why: "the trust policy names the authorizer's role alone",
  },
  ...sessionTagRefusals(AUTHORIZER, FILES_ROLE, 'a files session', {
    untagged: 'authorizer-assumes-files-role-untagged',
    withMore: 'authorizer-tags-files-session-with-more',
    wildcard: 'authorizer-tags-files-session-with-wildcard',
  }),
  {
    id: 'administrator-releases-file',
    who: { administrator: true },
    action: 's3:PutObjectTagging',
    resource: object('A'),
    why: 'the release mark is not writable by anyone but the checker, administrators included',
  },
  {
    id: 'administrator-releases-file-version',
    who: { administrator: true },
    action: 's3:PutObjectVersionTagging',
    resource: object('A'),
    context: mark('clean'),
    why: "the checker's exception names its role's ARN: an administrator cannot mark a version released either",
  },
  {
    id: 'files-session-releases-own-version',
    who: { role: FILES_ROLE },
    action: 's3:PutObjectVersionTagging',
    resource: object('A'),
    context: { ...session('A'), ...mark('clean') },
    why: 'a files session (the API presigning with it) cannot release its own upload',
  },
  {
    id: 'tenant-api-releases-file',
    who: { role: 'Edge/TenantGuard/Api/Role' },
    action: 's3:PutObjectVersionTagging',
    resource: object('A'),
    context: mark('clean'),
    why: 'a compromised API function cannot release a file with its own role',
  },
  {
    id: 'files-session-reads-quarantined-version',
    who: { role: FILES_ROLE },
    action: 's3:GetObjectVersion',
    resource: object('A'),
    context: session('A'),
    why: 'no version of an unreleased upload is readable by a files session either',
  },
  {
    id: 'checker-reads-outside-orgs',
    who: { role: CHECKER },
    action: 's3:GetObjectVersion',
    resource: `\${${BUCKET}}/exports/\${org:A}/export.zip`,
    why: 'the checker reads tenant uploads under orgs/ and nothing else of the bucket',
  },
  {
    id: 'checker-reads-current-object',
    who: { role: CHECKER },
    action: 's3:GetObject',
    resource: object('A'),
    why: 'the checker reads only the version its event names (GetObjectVersion), never "whatever is current"',
  },
  {
    id: 'checker-reads-export',
    who: { role: CHECKER },
    action: 's3:GetObject',
    resource: '${TenantKeys/TenantKeys/ExportBucket}/exports/${org:A}/export.zip',
    why: "a compromised checker cannot read a tenant's export",
  },
  {
    id: 'checker-deletes-upload',
    who: { role: CHECKER },
    action: 's3:DeleteObjectVersion',
    resource: object('A'),
    why: 'the checker cannot destroy an upload (a rejected one expires by the lifecycle rule)',
  },
  {
    id: 'checker-deletes-current-upload',
    who: { role: CHECKER },
    action: 's3:DeleteObject',
    resource: object('A'),
    why: 'the checker cannot delete an upload either',
  },
  {
    id: 'checker-writes-upload',
    who: { role: CHECKER },
    action: 's3:PutObject',
    resource: object('A'),
    context: upload('A'),
    why: 'the checker cannot replace the bytes it released',
  },
  {
    id: 'checker-lists-bucket',
    who: { role: CHECKER },
    action: 's3:ListBucket',
    resource: `\${${BUCKET}}`,
    why: 'the checker learns keys from events only, never by listing tenants',
  },
  {
    id: 'checker-writes-other-tags',
    who: { role: CHECKER },
    action: 's3:PutObjectVersionTagging',
    resource: object('A'),
    context: mark('clean', ['bulwark-scan', 'owner']),
    why: 'the checker writes the scan mark, no tag of its own choosing',
  },
  {
    id: 'checker-writes-unknown-mark',
    who: { role: CHECKER },
    action: 's3:PutObjectVersionTagging',
    resource: object('A'),
    context: mark('trusted'),
    why: 'the scan mark is clean or rejected, nothing else',
  },
  {
    id: 'checker-decrypts-other-org-context',
    who: { role: CHECKER },
    action: 'kms:Decrypt',
    resource: '${tenant-key:A}',
    context: viaS3('B', 'A'),
    why: "A's key never opens anything under B's context, for the checker either",
  },
  {
    id: 'checker-decrypts-own-key-for-other-prefix',
    who: { role: CHECKER },
    action: 'kms:Decrypt',
    resource: '${tenant-key:A}',
    context: viaS3('A', 'B'),
    why: "A's key decrypts only objects under A's prefix, whoever asks",
  },
  {
    id: 'checker-uses-key-directly',
    who: { role: CHECKER },
    action: 'kms:Decrypt',
    resource: '${tenant-key:A}',
    context: {
      'kms:EncryptionContext:org_id': '${org:A}',
      'kms:EncryptionContext:purpose': 'webhook-secret',
      'kms:EncryptionContextKeys': ['org_id', 'purpose'],
    },
    why: "the checker is a tenant-key user through S3 only: it never opens an organisation's sealed secrets",
  },
  {
    id: 'checker-decrypts-export-key',
    who: { role: CHECKER },
    action: 'kms:Decrypt',
    resource: '${TenantKeys/TenantKeys/ExportKey}',
    context: { 'kms:ViaService': 's3.${region}.amazonaws.com' },
    why: 'the checker holds no key but the tenant keys, through S3',
  },
];
