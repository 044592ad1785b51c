/**
 * Every isolation and immutability promise. Each row must evaluate to Deny against the synthesized
 * policies of every shipped deployment (`npm test`, docs/access-proof.md).
 */
import { COPY_DRILL_INSTANCE } from './must-allow';
import { BUDGET_MUST_DENY } from './budget-rows';
import { FILES_EXPORT_MUST_DENY, KEY_POLICY_REFRESH_MUST_DENY, FILES_MUST_DENY } from './files-rows';
import type { AccessRow } from './rows';

const BACKUP_REGION = '${BackupVault/Key|region}';
const COPY_DRILL_ROLE = 'BackupVault/RestoreDrill/Function/Role';

const sourceAccount = { 'aws:SourceAccount': '${account}' };
const orgContext = (org: string) => ({
  'kms:EncryptionContext:org_id': `\${org:${org}}`,
  'kms:EncryptionContext:purpose': 'webhook-secret',
  'kms:EncryptionContextKeys': ['org_id', 'purpose'],
});
/** The tags a compromised provisioner would put on a platform key to make it look like a tenant key. */
const tenantTags = {
  'aws:RequestTag/bulwark:deployment': '${deployment}',
  'aws:RequestTag/bulwark:key-class': 'tenant',
  'aws:RequestTag/bulwark:org-id': '${org:A}',
  'aws:TagKeys': ['bulwark:deployment', 'bulwark:key-class', 'bulwark:org-id'],
};
/** A platform key after such a re-tag: what the role's resource-tag conditions would then see. */
const retagged = {
  'aws:ResourceTag/bulwark:key-class': 'tenant',
  'aws:ResourceTag/bulwark:org-id': '${org:A}',
};

/** An account that is not the deployment's: the attacker's. */
export const FOREIGN_ACCOUNT = '999999999999';
/** The function an attacker is assumed to control (docs/tenancy.md): requests leave from its VPC. */
const COMPROMISED = { insideVpcOf: 'Edge/TenantGuard/Api/Role' } as const;

/**
 * What each interface or gateway endpoint must refuse: a request to another account's resource, even
 * with credentials of this account that allow everything (the foreign resource is assumed to admit
 * everyone), so the endpoint policy alone decides (`endpoint-` rows; a test proves they flip without it).
 */
const FOREIGN_RESOURCES: Readonly<Record<string, { action: string; resource: string; why: string }>> = {
  kms: {
    action: 'kms:Decrypt',
    resource: `arn:aws:kms:\${region}:${FOREIGN_ACCOUNT}:key/0f0f0f0f-0000-4000-8000-00000000000f`,
    why: 'no tenant data is re-wrapped under, or opened with, a key another account controls',
  },
  secretsmanager: {
    action: 'secretsmanager:GetSecretValue',
    resource: `arn:aws:secretsmanager:\${region}:${FOREIGN_ACCOUNT}:secret:planted-AbCdEf`,
    why: "a compromised function cannot fetch instructions or credentials from another account's secret",
  },
  sts: {
    action: 'sts:AssumeRole',
    resource: `arn:aws:iam::${FOREIGN_ACCOUNT}:role/exfiltration`,
    why: "no role of another account is assumed from inside the VPC (a way out with that account's rights)",
  },
  logs: {
    action: 'logs:PutLogEvents',
    resource: `arn:aws:logs:\${region}:${FOREIGN_ACCOUNT}:log-group:exfiltration:log-stream:x`,
    why: "log events are no channel to another account's log group",
  },
  monitoring: {
    action: 'cloudwatch:SetAlarmState',
    resource: `arn:aws:cloudwatch:\${region}:${FOREIGN_ACCOUNT}:alarm:exfiltration`,
    why: "another account's alarms are out of reach",
  },
  rds: {
    action: 'rds:CopyDBSnapshot',
    resource: `arn:aws:rds:\${region}:${FOREIGN_ACCOUNT}:snapshot:exfiltration`,
    why: 'no snapshot of another account is copied or restored from inside the VPC',
  },
  dynamodb: {
    action: 'dynamodb:PutItem',
    resource: `arn:aws:dynamodb:\${region}:${FOREIGN_ACCOUNT}:table/exfiltration`,
    why: "no item is written to another account's table (exfiltration) through the DynamoDB endpoint",
  },
  lambda: {
    action: 'lambda:InvokeFunction',
    resource: `arn:aws:lambda:\${region}:${FOREIGN_ACCOUNT}:function:exfiltration`,
    why: 'no function of another account receives data from inside the VPC',
  },
};

/** The endpoint rows (issue 15: endpoint policies limited to this account's resources and principals). */
const ENDPOINT_ROWS: readonly AccessRow[] = [
  {
    id: 'endpoint-s3-refuses-foreign-bucket-read',
    who: { administrator: true },
    network: COMPROMISED,
    action: 's3:GetObject',
    resource: 'arn:aws:s3:::attacker-staging/payload.js',
    context: { 'aws:ResourceAccount': FOREIGN_ACCOUNT },
    why: "nothing is fetched from another account's bucket, even with credentials of this account allowed everything",
  },
  {
    id: 'endpoint-s3-refuses-foreign-bucket-write',
    who: { administrator: true },
    network: COMPROMISED,
    action: 's3:PutObject',
    resource: 'arn:aws:s3:::attacker-drop/dump.sql',
    context: { 'aws:ResourceAccount': FOREIGN_ACCOUNT },
    why: "no data is written to another account's bucket (exfiltration) through the S3 endpoint",
  },
  {
    id: 'endpoint-s3-refuses-foreign-credentials',
    who: { administrator: true, account: FOREIGN_ACCOUNT },
    network: COMPROMISED,
    action: 's3:PutObject',
    resource: 'arn:aws:s3:::attacker-drop/dump.sql',
    context: { 'aws:ResourceAccount': FOREIGN_ACCOUNT },
    why: "credentials of another account brought into a function cannot use the endpoint, even to that account's own bucket",
  },
  ...Object.entries(FOREIGN_RESOURCES).map(([service, { action, resource, why }]): AccessRow => ({
    id: `endpoint-${service}-refuses-foreign-resource`,
    who: { administrator: true },
    network: COMPROMISED,
    action,
    resource,
    why,
  })),
  // The actions that name no resource are let through for this account's principals only
  // (sts:GetCallerIdentity needs no permission at all and reveals only the caller: not a row).
  ...(
    [
      ['kms', 'kms:CreateKey'],
      ['secretsmanager', 'secretsmanager:GetRandomPassword'],
      ['monitoring', 'cloudwatch:PutMetricData'],
    ] as const
  ).map(([service, action]): AccessRow => ({
    id: `endpoint-${service}-refuses-foreign-credentials`,
    who: { administrator: true, account: FOREIGN_ACCOUNT },
    network: COMPROMISED,
    action,
    resource: '*',
    why: `${action} names no resource: the ${service} endpoint lets it through for this account's principals only`,
  })),
];

export const MUST_DENY: readonly AccessRow[] = [
  ...ENDPOINT_ROWS,
  // The in-VPC functions' own roles, through their endpoints: identity and endpoint policies both refuse.
  {
    id: 'tenant-api-reads-foreign-bucket',
    who: { role: 'Edge/TenantGuard/Api/Role' },
    action: 's3:GetObject',
    resource: 'arn:aws:s3:::attacker-staging/payload.js',
    context: { 'aws:ResourceAccount': FOREIGN_ACCOUNT },
    why: "the tenant API reads no other account's bucket",
  },
  {
    id: 'shipper-writes-foreign-bucket',
    who: { role: 'Audit/Shipper/Function/Role' },
    action: 's3:PutObject',
    resource: 'arn:aws:s3:::attacker-drop/audit.jsonl.gz',
    context: { 'aws:ResourceAccount': FOREIGN_ACCOUNT },
    why: "the archive's one writer writes nowhere but the archive: not to another account's bucket",
  },
  // The alarm topic admits EventBridge, but only this account's rules (issue 15).
  {
    id: 'events-rule-of-another-account-publishes-alarm',
    who: { service: 'events.amazonaws.com' },
    action: 'sns:Publish',
    resource: '${Operations/Alarms/Topic}',
    context: {
      'aws:SourceArn': 'arn:aws:events:${region}:999999999999:rule/page-them',
      'aws:SourceAccount': '999999999999',
    },
    why: "another account's rule cannot page (or flood) the on-call through this topic (confused deputy)",
  },
  // The backup region's baseline (issue 15): why it forwards through the home bus, and only there.
  {
    id: 'backup-region-rule-publishes-alarm-topic',
    who: { service: 'events.amazonaws.com' },
    action: 'sns:Publish',
    resource: '${Operations/Alarms/Topic}',
    context: {
      'aws:SourceArn': 'arn:aws:events:${BackupVault/Key|region}:${account}:rule/findings',
      ...sourceAccount,
    },
    why: "the topic admits rules of the home region only: the backup region's rules forward to the home bus instead",
  },
  {
    id: 'forward-role-puts-events-on-another-bus',
    who: { role: 'BackupRegionBaseline/Baseline/Forward/Role' },
    action: 'events:PutEvents',
    resource: 'arn:aws:events:${region}:${account}:event-bus/other',
    why: "the forwarding role reaches the home region's default bus and nothing else",
  },
  {
    id: 'forward-role-puts-events-on-foreign-bus',
    who: { role: 'BackupRegionBaseline/Baseline/Forward/Role' },
    action: 'events:PutEvents',
    resource: `arn:aws:events:\${region}:${FOREIGN_ACCOUNT}:event-bus/default`,
    why: "findings never leave for another account's bus",
  },
  {
    id: 'another-trail-uses-the-trail-key',
    who: { service: 'cloudtrail.amazonaws.com' },
    action: 'kms:GenerateDataKey',
    resource: '${Audit/CloudTrail/Key}',
    context: {
      'kms:EncryptionContext:aws:cloudtrail:arn': 'arn:aws:cloudtrail:us-east-1:${account}:trail/other',
      'aws:SourceArn': 'arn:aws:cloudtrail:us-east-1:${account}:trail/other',
      ...sourceAccount,
    },
    why: "the trail key serves only this deployment's trail: another trail of the account, in any region, cannot encrypt with it",
  },
  {
    id: 'config-of-another-account-delivers',
    who: { service: 'config.amazonaws.com' },
    action: 's3:PutObject',
    resource: '${AccountBaseline/Baseline/ConfigBucket}/AWSLogs/999999999999/Config/${region}/2026/1/1/x.json.gz',
    context: { 's3:x-amz-acl': 'bucket-owner-full-control', 'aws:SourceAccount': '999999999999' },
    why: "another account's AWS Config cannot write into this account's Config bucket",
  },

  // Tenant isolation on tenant keys.
  {
    id: 'tenant-api-other-org-context',
    who: { role: 'Edge/TenantGuard/Api/Role' },
    action: 'kms:Decrypt',
    resource: '${tenant-key:A}',
    context: orgContext('B'),
    why: "the API's IAM policy only requires some org_id; the tenant key policy binds it to its own organisation",
  },
  {
    id: 'webhooks-other-org-context',
    who: { role: 'Edge/Webhooks/Function/Role' },
    action: 'kms:Decrypt',
    resource: '${tenant-key:A}',
    context: orgContext('B'),
    why: "a compromised webhook function cannot open one organisation's secrets as another's",
  },
  {
    id: 'tenant-api-without-org-context',
    who: { role: 'Edge/TenantGuard/Api/Role' },
    action: 'kms:Decrypt',
    resource: '${tenant-key:A}',
    why: 'no cryptographic use of a tenant key without an org_id context',
  },
  {
    id: 'administrator-other-org-context',
    who: { administrator: true },
    action: 'kms:Decrypt',
    resource: '${tenant-key:A}',
    context: orgContext('B'),
    why: 'even an account administrator cannot use a tenant key under another organisation',
  },
  {
    id: 'administrator-uses-tenant-key',
    who: { administrator: true },
    action: 'kms:GenerateDataKey',
    resource: '${tenant-key:A}',
    context: orgContext('A'),
    why: 'cryptographic use is granted only to the tagged tenant-key users, not delegated to IAM',
  },
  {
    id: 'provisioner-decrypts-tenant-data',
    who: { role: 'TenantKeys/TenantKeys/Provisioner/Role' },
    action: 'kms:Decrypt',
    resource: '${tenant-key:A}',
    context: orgContext('A'),
    why: 'the provisioner administers tenant keys but never reads what they protect',
  },

  // Platform keys are not tenant keys (issue 19 item 3).
  {
    id: 'provisioner-retags-database-key',
    who: { role: 'TenantKeys/TenantKeys/Provisioner/Role' },
    action: 'kms:TagResource',
    resource: '${Data/DataKey}',
    context: tenantTags,
    why: 'tagging a platform key as a tenant key would hand it to the tenant-key administration grants',
  },
  {
    id: 'provisioner-rewrites-database-key-policy',
    who: { role: 'TenantKeys/TenantKeys/Provisioner/Role' },
    action: 'kms:PutKeyPolicy',
    resource: '${Data/DataKey}',
    context: retagged,
    why: "the database key's policy is the deployment's, whatever its tags say",
  },
  {
    id: 'lifecycle-deletes-database-key',
    who: { role: 'TenantKeys/TenantKeys/Lifecycle/Role' },
    action: 'kms:ScheduleKeyDeletion',
    resource: '${Data/DataKey}',
    context: retagged,
    why: 'shredding is for tenant keys only; deleting the database key destroys every tenant',
  },
  {
    id: 'lifecycle-deletes-archive-key',
    who: { role: 'TenantKeys/TenantKeys/Lifecycle/Role' },
    action: 'kms:ScheduleKeyDeletion',
    resource: '${Audit/Archive/Key}',
    why: 'the audit archive must stay readable for its retention',
  },

  // Immutability of the audit archive and backups.
  {
    id: 'administrator-deletes-archive-object',
    who: { administrator: true },
    action: 's3:DeleteObject',
    resource: '${Audit/Archive/Archive/Bucket}/orgs/${org:A}/2026/01/01/batch.jsonl.gz',
    why: 'audit records are immutable: not even an administrator deletes them',
  },
  {
    id: 'administrator-deletes-archive-version',
    who: { administrator: true },
    action: 's3:DeleteObjectVersion',
    resource: '${Audit/Archive/Archive/Bucket}/orgs/${org:A}/2026/01/01/batch.jsonl.gz',
    why: 'Object Lock aside, the bucket policy denies version deletion to everyone',
  },
  {
    id: 'administrator-bypasses-archive-governance',
    who: { administrator: true },
    action: 's3:BypassGovernanceRetention',
    resource: '${Audit/Archive/Archive/Bucket}/orgs/${org:A}/2026/01/01/batch.jsonl.gz',
    why: 'no principal may shorten retention',
  },
  {
    id: 'administrator-deletes-cloudtrail-log',
    who: { administrator: true },
    action: 's3:DeleteObject',
    resource: '${Audit/CloudTrail/Logs/Bucket}/AWSLogs/${account}/CloudTrail/${region}/2026/01/01/file.json.gz',
    why: 'the trail of what administrators did cannot be removed by them',
  },
  {
    id: 'shipper-deletes-archive-object',
    who: { role: 'Audit/Shipper/Function/Role' },
    action: 's3:DeleteObject',
    resource: '${Audit/Archive/Archive/Bucket}/orgs/${org:A}/2026/01/01/batch.jsonl.gz',
    why: 'the one writer of the archive cannot delete from it',
  },
  {
    id: 'administrator-deletes-recovery-point',
    who: { administrator: true },
    action: 'backup:DeleteRecoveryPoint',
    resource: 'arn:aws:backup:${region}:${account}:recovery-point:00000000-0000-4000-8000-000000000001',
    resourcePolicyOf: 'Data/Backup/Vault',
    why: 'backups are kept for their plan whoever asks',
  },
  {
    id: 'administrator-deletes-copied-recovery-point',
    who: { administrator: true },
    action: 'backup:DeleteRecoveryPoint',
    resource:
      'arn:aws:backup:${BackupVault/Copies/Vault|region}:${account}:recovery-point:00000000-0000-4000-8000-000000000002',
    resourcePolicyOf: 'BackupVault/Copies/Vault',
    why: 'the copy in the backup region is kept too',
  },
  {
    id: 'administrator-shortens-recovery-point',
    who: { administrator: true },
    action: 'backup:UpdateRecoveryPointLifecycle',
    resource: 'arn:aws:backup:${region}:${account}:recovery-point:00000000-0000-4000-8000-000000000001',
    resourcePolicyOf: 'Data/Backup/Vault',
    why: 'retention cannot be shortened to the same effect',
  },
  {
    id: 'backup-grants-vault-key-not-for-aws-resource',
    who: { role: 'Data/Backup/Plan/Database/Role' },
    action: 'kms:CreateGrant',
    resource: '${Data/BackupKey}',
    context: { 'kms:GrantIsForAWSResource': 'false' },
    why: 'Backup may hand the vault key to AWS services only, never to an arbitrary grantee',
  },
  {
    id: 'administrator-grants-vault-key-not-for-aws-resource',
    who: { administrator: true },
    action: 'kms:CreateGrant',
    resource: '${Data/BackupKey}',
    context: { 'kms:GrantIsForAWSResource': 'false' },
    why: "the key policy's grant Deny holds whatever IAM allows: no grant of a platform key to a person",
  },

  // The monthly drill touches only what it creates (issue 15).
  {
    id: 'copy-drill-deletes-the-database-name',
    who: { role: COPY_DRILL_ROLE },
    action: 'rds:DeleteDBInstance',
    resource: `arn:aws:rds:${BACKUP_REGION}:\${account}:db:bulwark-\${deployment}`,
    context: { 'aws:ResourceTag/bulwark:restore-drill': 'true' },
    why: "the drill cannot delete an instance it did not create, not even one restored by hand under the database's name",
  },
  {
    id: 'copy-drill-deletes-untagged-drill-named-instance',
    who: { role: COPY_DRILL_ROLE },
    action: 'rds:DeleteDBInstance',
    resource: COPY_DRILL_INSTANCE,
    why: 'a drill-named instance without the drill tag was not made by the drill: it stays',
  },
  {
    id: 'copy-drill-restores-into-other-instance',
    who: { role: COPY_DRILL_ROLE },
    action: 'rds:RestoreDBInstanceFromDBSnapshot',
    resource: `arn:aws:rds:${BACKUP_REGION}:\${account}:db:bulwark-\${deployment}`,
    why: 'a restore creates only drill-named instances',
  },
  {
    id: 'copy-drill-restores-manual-snapshot',
    who: { role: COPY_DRILL_ROLE },
    action: 'rds:RestoreDBInstanceFromDBSnapshot',
    resource: `arn:aws:rds:${BACKUP_REGION}:\${account}:snapshot:someone-elses-snapshot`,
    why: 'the drill restores AWS Backup copies only',
  },
  {
    id: 'copy-drill-uses-copy-key-directly',
    who: { role: COPY_DRILL_ROLE },
    action: 'kms:Decrypt',
    resource: '${BackupVault/Key}',
    why: 'the drill can use the copy key only through RDS, never read with it itself',
  },
  {
    id: 'cloudwatch-of-another-account-publishes-backup-region-alarm',
    who: { service: 'cloudwatch.amazonaws.com' },
    action: 'sns:Publish',
    resource: '${BackupVault/Alarms/Topic}',
    context: {
      'aws:SourceArn': `arn:aws:cloudwatch:${BACKUP_REGION}:999999999999:alarm:page-them`,
      'aws:SourceAccount': '999999999999',
    },
    why: "another account's alarm cannot page the on-call through the backup region's topic (confused deputy)",
  },

  // The audit records survive a region or a key (issue 15).
  {
    id: 'replication-deletes-archive-replica',
    who: { role: 'Audit/Replication/Role/Role' },
    action: 's3:DeleteObject',
    resource: '${BackupVault/AuditReplicas/Archive/Bucket}/orgs/${org:A}/2026/01/01/batch.jsonl.gz',
    why: 'the replication role writes replicas, it never removes one',
  },
  {
    id: 'replication-replicates-deletions',
    who: { role: 'Audit/Replication/Role/Role' },
    action: 's3:ReplicateDelete',
    resource: '${BackupVault/AuditReplicas/Archive/Bucket}/orgs/${org:A}/2026/01/01/batch.jsonl.gz',
    why: 'a deletion (or delete marker) in the primary region never reaches the replica',
  },
  {
    id: 'administrator-deletes-replica-object',
    who: { administrator: true },
    action: 's3:DeleteObjectVersion',
    resource:
      '${BackupVault/AuditReplicas/CloudTrail/Bucket}/AWSLogs/${account}/CloudTrail/${region}/2026/01/01/file.json.gz',
    why: 'the replicas are as immutable as their sources',
  },
  {
    id: 'replication-encrypts-under-other-key',
    who: { role: 'Audit/Replication/Role/Role' },
    action: 'kms:Encrypt',
    resource: '${BackupVault/Key}',
    context: {
      'kms:ViaService': 's3.${BackupVault/Key|region}.amazonaws.com',
      'kms:EncryptionContext:aws:s3:arn': '${BackupVault/AuditReplicas/Archive/Bucket}',
    },
    why: "the key/* grant reaches only the key carrying the replicas' alias, not the backup vault's key",
  },
  {
    id: 'administrator-deletes-archive-key',
    who: { administrator: true },
    action: 'kms:ScheduleKeyDeletion',
    resource: '${Audit/Archive/Key}',
    why: 'losing the archive key loses the archive: only break-glass may',
  },
  {
    id: 'administrator-disables-cloudtrail-key',
    who: { administrator: true },
    action: 'kms:DisableKey',
    resource: '${Audit/CloudTrail/Key}',
    why: 'a disabled trail key stops the trail and hides its logs',
  },
  {
    id: 'administrator-deletes-replica-key',
    who: { administrator: true },
    action: 'kms:ScheduleKeyDeletion',
    resource: '${BackupVault/AuditReplicas/Key}',
    why: "the replicas' key is what survives the primary region",
  },

  // Data boundaries between functions.
  {
    id: 'tenant-api-reads-export-over-old-tls',
    who: { role: 'Edge/TenantGuard/Api/Role' },
    action: 's3:GetObject',
    resource: '${TenantKeys/TenantKeys/ExportBucket}/exports/${org:A}/export.zip',
    context: { 's3:TlsVersion': '1.1', 'aws:SecureTransport': 'true' },
    why: 'a signed export link is refused over TLS older than 1.2, like every other bucket',
  },
  {
    id: 'webhooks-reads-tenant-exports',
    who: { role: 'Edge/Webhooks/Function/Role' },
    action: 's3:GetObject',
    resource: '${TenantKeys/TenantKeys/ExportBucket}/exports/${org:A}/export.zip',
    why: 'tenant exports are for the tenant API (signed links) only',
  },
  {
    id: 'tenant-api-reads-archive',
    who: { role: 'Edge/TenantGuard/Api/Role' },
    action: 's3:GetObject',
    resource: '${Audit/Archive/Archive/Bucket}/orgs/${org:A}/2026/01/01/batch.jsonl.gz',
    why: 'the API serves audit from the database; the archive is for auditors',
  },
  {
    id: 'tenant-api-writes-archive',
    who: { role: 'Edge/TenantGuard/Api/Role' },
    action: 's3:PutObject',
    resource: '${Audit/Archive/Archive/Bucket}/orgs/${org:A}/2026/01/01/forged.jsonl.gz',
    why: 'a compromised API cannot forge archived audit records',
  },
  {
    id: 'webhooks-writes-tenant-api-logs',
    who: { role: 'Edge/Webhooks/Function/Role' },
    action: 'logs:PutLogEvents',
    resource: '${Edge/TenantGuard/Api/Logs}:log-stream:forged',
    why: "a function writes only its own logs, so one cannot forge another's",
  },
  {
    id: 'tenant-api-writes-webhook-logs',
    who: { role: 'Edge/TenantGuard/Api/Role' },
    action: 'logs:PutLogEvents',
    resource: '${Edge/Webhooks/Function/Logs}:log-stream:forged',
    why: "a function writes only its own logs, so one cannot forge another's",
  },

  // Database logins (issue 19 item 7).
  {
    id: 'no-role-connects-as-migrator',
    who: { everyRole: true, unevaluated: serviceRoles() },
    action: 'rds-db:connect',
    resource: '${dbuser:bulwark_migrator}',
    why: 'the schema owner is used only by the migration custom resource, through its secret',
  },
  {
    id: 'no-role-connects-as-master',
    who: { everyRole: true, unevaluated: serviceRoles() },
    action: 'rds-db:connect',
    resource: '${dbuser:bulwark_admin}',
    why: 'the master user is for bootstrap and rotation only',
  },
  // Rate limits (docs/rate-limits.md) live in the web ACL and the stage: no function, compromised or
  // not, can raise its own budget or take the limits off.
  {
    id: 'no-role-changes-the-web-acl',
    who: { everyRole: true, unevaluated: serviceRoles('wafv2:UpdateWebACL') },
    action: 'wafv2:UpdateWebACL',
    resource: 'arn:aws:wafv2:${region}:${account}:regional/webacl/entry/00000000-0000-4000-8000-000000000001',
    why: 'the per-IP and per-credential rate limits cannot be raised or removed from inside the platform',
  },
  {
    id: 'no-role-changes-the-stage-throttle',
    who: { everyRole: true, unevaluated: serviceRoles('apigateway:PATCH') },
    action: 'apigateway:PATCH',
    resource: 'arn:aws:apigateway:${region}::/restapis/a1b2c3d4e5/stages/v1',
    // API Gateway ARNs carry no account; the stage is this deployment's.
    context: { 'aws:ResourceAccount': '${account}' },
    why: "the stage throttle and its method settings cannot be changed by the platform's own functions",
  },
  // One database role per function (migrations/0401): the tenant API, whose connection an
  // attacker is assumed to hold (docs/tenancy.md), cannot log in as another function's role.
  ...(['bulwark_webhooks', 'bulwark_key_provisioner', 'bulwark_lifecycle', 'bulwark_audit_shipper'] as const).map(
    (user): AccessRow => ({
      id: `tenant-api-connects-as-${user.replace(/^bulwark_/, '').replace(/_/g, '-')}`,
      who: { role: 'Edge/TenantGuard/Api/Role' },
      action: 'rds-db:connect',
      resource: `\${dbuser:${user}}`,
      why: "each function logs in as its own role only; the tenant API holds none of another function's grants",
    }),
  ),
  {
    id: 'administrator-connects-as-master',
    who: { administrator: true },
    action: 'rds-db:connect',
    resource: '${dbuser:bulwark_admin}',
    why: 'the proxy registers only function login roles: rds-db:connect is no path to the master user',
  },
  {
    id: 'administrator-connects-as-migrator',
    who: { administrator: true },
    action: 'rds-db:connect',
    resource: '${dbuser:bulwark_migrator}',
    why: 'nor to the schema owner',
  },

  // Entry points (issue 19 item 6).
  {
    id: 'test-invoke-webhooks',
    who: { service: 'apigateway.amazonaws.com' },
    action: 'lambda:InvokeFunction',
    resource: '${Edge/Webhooks/Function/Default}',
    context: {
      'aws:SourceArn':
        'arn:aws:execute-api:${region}:${account}:${Edge/PlatformApi/Api|name}/test-invoke-stage/POST/webhooks/telnyx',
      ...sourceAccount,
    },
    why: 'console test invocations bypass signature checks at the edge (WAF, throttling)',
  },
  {
    id: 'test-invoke-tenant-api',
    who: { service: 'apigateway.amazonaws.com' },
    action: 'lambda:InvokeFunction',
    resource: '${Edge/TenantGuard/Api/Default}',
    context: {
      'aws:SourceArn':
        'arn:aws:execute-api:${region}:${account}:${Edge/PlatformApi/Api|name}/test-invoke-stage/GET/organisations',
      ...sourceAccount,
    },
    why: 'console test invocations skip the authorizer: the tenant API must be reached only through it',
  },
  {
    id: 'other-account-api-invokes-tenant-api',
    who: { service: 'apigateway.amazonaws.com' },
    action: 'lambda:InvokeFunction',
    resource: '${Edge/TenantGuard/Api/Default}',
    context: {
      'aws:SourceArn': 'arn:aws:execute-api:${region}:111111111111:abcdefghij/v1/GET/organisations',
      'aws:SourceAccount': '111111111111',
    },
    why: "another account's API cannot front our handlers",
  },

  // Service principals only for this account's resources.
  {
    id: 'other-account-cloudwatch-uses-alarm-key',
    who: { service: 'cloudwatch.amazonaws.com' },
    action: 'kms:GenerateDataKey',
    resource: '${Operations/Alarms/Key}',
    context: {
      'aws:SourceArn': 'arn:aws:cloudwatch:${region}:111111111111:alarm:x',
      'aws:SourceAccount': '111111111111',
    },
    why: "the alarm key serves this account's alarms only (confused deputy)",
  },
  {
    id: 'other-account-cloudwatch-publishes-alarms',
    who: { service: 'cloudwatch.amazonaws.com' },
    action: 'sns:Publish',
    resource: '${Operations/Alarms/Topic}',
    context: {
      'aws:SourceArn': 'arn:aws:cloudwatch:${region}:111111111111:alarm:x',
      'aws:SourceAccount': '111111111111',
    },
    why: "another account's alarms cannot page our on-call",
  },
  {
    id: 'other-account-rule-publishes-alarms',
    who: { service: 'events.amazonaws.com' },
    action: 'sns:Publish',
    resource: '${Operations/Alarms/Topic}',
    context: { 'aws:SourceArn': 'arn:aws:events:${region}:111111111111:rule/x', 'aws:SourceAccount': '111111111111' },
    why: "another account's EventBridge rules cannot page our on-call",
  },
  {
    id: 'other-trail-uses-cloudtrail-key',
    who: { service: 'cloudtrail.amazonaws.com' },
    action: 'kms:GenerateDataKey',
    resource: '${Audit/CloudTrail/Key}',
    context: {
      'kms:EncryptionContext:aws:cloudtrail:arn': 'arn:aws:cloudtrail:${region}:111111111111:trail/other',
      'aws:SourceArn': 'arn:aws:cloudtrail:${region}:111111111111:trail/other',
      'aws:SourceAccount': '111111111111',
    },
    why: "the trail key encrypts this account's trail only",
  },
  // Tenant files (docs/tenant-files.md).
  ...FILES_MUST_DENY,
  ...FILES_EXPORT_MUST_DENY,
  ...KEY_POLICY_REFRESH_MUST_DENY,
  // Per-tenant budget (docs/rate-limits.md "Per tenant").
  ...BUDGET_MUST_DENY,
];

/** Service roles holding AWS managed policies the harness has no document for. */
function serviceRoles(action = 'rds-db:connect'): Record<string, string> {
  const reason = (p: string): string => `service role assumed only by ${p}; its AWS managed policy grants no ${action}`;
  return {
    'Data/Database/Instance/MonitoringRole': reason('RDS enhanced monitoring'),
    'Edge/PlatformApi/Api/CloudWatchRole': reason('API Gateway (account logging role)'),
  };
}
