/**
 * Every service integration and function permission the design relies on. Each row must evaluate
 * to Allow against the synthesized policies of every shipped deployment (`npm test`, docs/access-proof.md).
 */
import { TRAIL_ALARM_IDS } from '../../lib/audit/trail-alarms';
import { BUDGET_MUST_ALLOW } from './budget-rows';
import { FILES_EXPORT_MUST_ALLOW, KEY_POLICY_REFRESH_MUST_ALLOW, FILES_MUST_ALLOW } from './files-rows';
import type { AccessRow } from './rows';

const sourceAccount = { 'aws:SourceAccount': '${account}' };

/** CloudWatch Logs encrypting a log group with its key, with the context Logs sends. */
function logsOnKey(id: string, logGroup: string, key: string): AccessRow {
  return {
    id,
    who: { service: 'logs.${region}.amazonaws.com' },
    action: 'kms:GenerateDataKey',
    resource: `\${${key}}`,
    context: { 'kms:EncryptionContext:aws:logs:arn': `\${${logGroup}}`, ...sourceAccount },
    why: `${logGroup} is encrypted with ${key}: Logs must be able to use it, or the group cannot be created`,
  };
}

/** A function writing to its own log group. */
function ownLogs(id: string, role: string, logGroup: string): AccessRow {
  return {
    id,
    who: { role },
    action: 'logs:PutLogEvents',
    resource: `\${${logGroup}}:log-stream:2026/01/01/[$LATEST]0000`,
    network: { outsideVpc: "Lambda ships the function's output to its group, outside the function's network" },
    why: 'a function that cannot log is invisible; each writes only its own group',
  };
}

/** A function (Lambda on its behalf) sending a failed event to its dead-letter queue, and the queue's key. */
function deadLetter(id: string, role: string, queue: string, key: string): AccessRow[] {
  return [
    {
      id: `${id}-send`,
      who: { role },
      action: 'sqs:SendMessage',
      resource: `\${${queue}}`,
      network: { outsideVpc: 'Lambda, not the function, sends a failed asynchronous event to the queue' },
      why: 'failed asynchronous invocations are kept, not lost',
    },
    {
      id: `${id}-key`,
      who: { role },
      action: 'kms:GenerateDataKey',
      resource: `\${${key}}`,
      context: { 'kms:ViaService': 'sqs.${region}.amazonaws.com' },
      why: 'the dead-letter queue is encrypted: sending needs a data key of its key',
    },
  ];
}

function connectAs(id: string, role: string, user: string): AccessRow {
  return {
    id,
    who: { role },
    action: 'rds-db:connect',
    resource: `\${dbuser:${user}}`,
    why: `the function logs in to PostgreSQL through the proxy as ${user} (IAM authentication)`,
  };
}

const TRAIL = '${Audit/CloudTrail/Trail}';
const FINDINGS_RULE = '${AccountBaseline/Baseline/HighSeverityFindings}';
const BACKUP_FINDINGS_RULE = '${BackupRegionBaseline/Baseline/HighSeverityFindings}';
const BACKUP_ALARMS_RULE = '${BackupRegionBaseline/Baseline/ForwardAlarms}';
export const BACKUP_FORWARD_ROLE = 'BackupRegionBaseline/Baseline/Forward/Role';
/** The home region's default event bus (no bus policy: same-account senders need only their role). */
export const HOME_BUS = 'arn:aws:events:${region}:${account}:event-bus/default';
const BACKUP_ROLE = 'Data/Backup/Plan/Database/Role';

/**
 * AWS Backup, as the selection role, on a vault key: it describes the key and creates grants on it
 * for the AWS resource that writes the recovery point (`viaService` when another service, RDS for a
 * snapshot copy, makes the call for it). The platform keys' grant Deny must leave that open.
 */
function backupOnVaultKey(id: string, key: string, why: string, viaService?: string): AccessRow[] {
  return [
    {
      id: `${id}-grant`,
      who: { role: BACKUP_ROLE },
      action: 'kms:CreateGrant',
      resource: `\${${key}}`,
      context: { 'kms:GrantIsForAWSResource': 'true', ...(viaService ? { 'kms:ViaService': viaService } : {}) },
      why: `${why}: the recovery point is encrypted through a grant for an AWS resource`,
    },
    {
      id: `${id}-describe`,
      who: { role: BACKUP_ROLE },
      action: 'kms:DescribeKey',
      resource: `\${${key}}`,
      why: `${why}: Backup checks the vault key before it starts the job`,
    },
  ];
}
const ALARM = 'arn:aws:cloudwatch:${region}:${account}:alarm:${Data/RestoreDrill/FailedAlarm|name}';
const BACKUP_JOB_RULE = '${Data/Backup/JobFailures}';

const REPLICATION_ROLE = 'Audit/Replication/Role/Role';

const BACKUP_REGION = '${BackupVault/Key|region}';
const COPY_DRILL_ROLE = 'BackupVault/RestoreDrill/Function/Role';
/** An instance the monthly drill creates: `bulwark-<deployment>-copy-drill-<yyyymmddhhmmss>`. */
export const COPY_DRILL_INSTANCE = `arn:aws:rds:${BACKUP_REGION}:\${account}:db:bulwark-\${deployment}-copy-drill-20261201050000`;
const BACKUP_REGION_ALARM = `arn:aws:cloudwatch:${BACKUP_REGION}:\${account}:alarm:\${BackupVault/RestoreDrill/FailedAlarm|name}`;
const REPLICA_KEY = 'BackupVault/AuditReplicas/Key';

/**
 * S3 replication of one locked bucket into its backup-region replica (issue 15): the role reads
 * the source version with its lock, decrypts it through S3 of the primary region, writes the
 * replica and encrypts it through S3 of the backup region under the replicas' key.
 */
function replication(id: string, source: string, sourceKey: string, replica: string, object: string): AccessRow[] {
  const via = (region: string) => ({ 'kms:ViaService': `s3.${region}.amazonaws.com` });
  return [
    {
      id: `${id}-reads-source-version`,
      who: { role: REPLICATION_ROLE },
      action: 's3:GetObjectVersionForReplication',
      resource: `\${${source}}/${object}`,
      why: `every new version of ${source} is copied to the backup region`,
    },
    {
      id: `${id}-reads-source-retention`,
      who: { role: REPLICATION_ROLE },
      action: 's3:GetObjectRetention',
      resource: `\${${source}}/${object}`,
      why: 'the replica keeps the COMPLIANCE retention of its source object',
    },
    {
      id: `${id}-decrypts-source`,
      who: { role: REPLICATION_ROLE },
      action: 'kms:Decrypt',
      resource: `\${${sourceKey}}`,
      context: { ...via('${region}'), 'kms:EncryptionContext:aws:s3:arn': `\${${source}}` },
      why: `the source objects are SSE-KMS under ${sourceKey}: S3 decrypts them for the role`,
    },
    {
      id: `${id}-writes-replica`,
      who: { role: REPLICATION_ROLE },
      action: 's3:ReplicateObject',
      resource: `\${${replica}}/${object}`,
      why: 'the replica bucket (Object Lock, backup region) receives the copy',
    },
    {
      id: `${id}-encrypts-replica`,
      who: { role: REPLICATION_ROLE },
      action: 'kms:Encrypt',
      resource: `\${${REPLICA_KEY}}`,
      context: {
        ...via(`\${${REPLICA_KEY}|region}`),
        'kms:EncryptionContext:aws:s3:arn': `\${${replica}}`,
        'kms:ResourceAliases': ['alias/bulwark-${deployment}-audit-replicas'],
      },
      why: "the replica is re-encrypted under the backup region's key, which survives the loss of the primary one",
    },
  ];
}

/**
 * A custom-resource function in the VPC answers CloudFormation with a PUT to the pre-signed URL it was
 * sent: CloudFormation signed it, for its AWS-owned response bucket of the region, and the request
 * leaves through the VPC's S3 endpoint. If that endpoint refuses it, the stack waits an hour and fails.
 */
export function answersCloudFormation(id: string, functionRole: string): AccessRow {
  return {
    id,
    who: { service: 'cloudformation.amazonaws.com' },
    action: 's3:PutObject',
    resource:
      '${cloudformation-responses}/arn%3Aaws%3Acloudformation%3A${region}%3A${account}%3Astack/${deployment}/id%7CResource%7Crequest',
    context: { 'aws:ResourceAccount': AWS_OWNED_ACCOUNT },
    network: { insideVpcOf: functionRole },
    why: 'the custom resource reports its result to CloudFormation through the S3 endpoint, or the deployment hangs',
  };
}

/** Stands for the AWS account that owns a service bucket (CloudFormation's responses); never this account. */
export const AWS_OWNED_ACCOUNT = 'aws-owned';

export const MUST_ALLOW: readonly AccessRow[] = [
  // In-VPC custom resources answer CloudFormation (issue 15; every one is listed: test/access/proof.test.ts).
  answersCloudFormation('migrate-answers-cloudformation', 'Data/Schema/Migrate/Role'),
  // The tenant API signs export download links with its own credentials (docs/tenant-keys.md).
  {
    id: 'tenant-api-reads-export',
    who: { role: 'Edge/TenantGuard/Api/Role' },
    action: 's3:GetObject',
    resource: '${TenantKeys/TenantKeys/ExportBucket}/exports/${org:A}/export.zip',
    context: { 's3:TlsVersion': '1.2', 'aws:SecureTransport': 'true' },
    network: { outsideVpc: "the Owner's client follows the signed link from the internet" },
    why: 'an Owner downloads their export through a link the API signs',
  },
  // Audit replication (issue 15: the audit archive survives a region or a key).
  ...replication(
    'replication-archive',
    'Audit/Archive/Archive/Bucket',
    'Audit/Archive/Key',
    'BackupVault/AuditReplicas/Archive/Bucket',
    'orgs/${org:A}/2026/01/01/batch.jsonl.gz',
  ),
  ...replication(
    'replication-trail',
    'Audit/CloudTrail/Logs/Bucket',
    'Audit/CloudTrail/Key',
    'BackupVault/AuditReplicas/CloudTrail/Bucket',
    'AWSLogs/${account}/CloudTrail/${region}/2026/01/01/file.json.gz',
  ),

  // CloudTrail (issue 19 item 1).
  {
    id: 'cloudtrail-encrypts-log-files',
    who: { service: 'cloudtrail.amazonaws.com' },
    action: 'kms:GenerateDataKey',
    resource: '${Audit/CloudTrail/Key}',
    context: { 'kms:EncryptionContext:aws:cloudtrail:arn': TRAIL, 'aws:SourceArn': TRAIL, ...sourceAccount },
    why: 'CreateTrail fails (InsufficientEncryptionPolicyException) unless CloudTrail may use its key',
  },
  {
    id: 'cloudtrail-describes-its-key',
    who: { service: 'cloudtrail.amazonaws.com' },
    action: 'kms:DescribeKey',
    resource: '${Audit/CloudTrail/Key}',
    context: { 'aws:SourceArn': TRAIL, ...sourceAccount },
    why: 'CloudTrail validates the key when the trail is created or updated',
  },
  {
    id: 'cloudtrail-writes-log-files',
    who: { service: 'cloudtrail.amazonaws.com' },
    action: 's3:PutObject',
    resource: '${Audit/CloudTrail/Logs/Bucket}/AWSLogs/${account}/CloudTrail/${region}/2026/01/01/file.json.gz',
    context: { 's3:x-amz-acl': 'bucket-owner-full-control', 'aws:SourceArn': TRAIL, ...sourceAccount },
    why: 'the trail delivers into its Object Lock bucket',
  },
  {
    id: 'cloudtrail-writes-log-group',
    who: { role: 'Audit/CloudTrail/Trail/LogsRole' },
    action: 'logs:PutLogEvents',
    resource: '${Audit/CloudTrail/LogGroup}:log-stream:${account}_CloudTrail_${region}',
    why: 'the trail also delivers to CloudWatch Logs (alarms on API activity)',
  },
  logsOnKey('logs-key-cloudtrail', 'Audit/CloudTrail/LogGroup', 'Audit/CloudTrail/Key'),
  // The trail is multi-region (issue 15): every region's and the global services' log files go to the
  // home-region bucket, under the one trail ARN, encrypted with the home-region key.
  ...['us-east-1', '${BackupVault/Key|region}'].map((region): AccessRow => ({
    id: `cloudtrail-writes-log-files-from-${region === 'us-east-1' ? 'global-services' : 'backup-region'}`,
    who: { service: 'cloudtrail.amazonaws.com' },
    action: 's3:PutObject',
    resource: `\${Audit/CloudTrail/Logs/Bucket}/AWSLogs/\${account}/CloudTrail/${region}/2026/01/01/file.json.gz`,
    context: { 's3:x-amz-acl': 'bucket-owner-full-control', 'aws:SourceArn': TRAIL, ...sourceAccount },
    why:
      region === 'us-east-1'
        ? 'IAM, STS and sign-in events are recorded in us-east-1 and delivered into the home-region bucket'
        : "the backup region's events are recorded by the same trail, into the same bucket",
  })),

  // Alarms (issue 19 item 2).
  {
    id: 'cloudwatch-publishes-alarms',
    who: { service: 'cloudwatch.amazonaws.com' },
    action: 'sns:Publish',
    resource: '${Operations/Alarms/Topic}',
    context: { 'aws:SourceArn': ALARM, ...sourceAccount },
    why: 'every alarm (restore drill, shipper, dead letters, forged webhooks) notifies through this topic',
  },
  {
    id: 'cloudwatch-uses-alarm-key',
    who: { service: 'cloudwatch.amazonaws.com' },
    action: 'kms:GenerateDataKey',
    resource: '${Operations/Alarms/Key}',
    context: { 'aws:SourceArn': ALARM, ...sourceAccount },
    why: 'the topic is encrypted: CloudWatch needs a data key to publish',
  },
  {
    id: 'sns-decrypts-alarms',
    who: { service: 'sns.amazonaws.com' },
    action: 'kms:Decrypt',
    resource: '${Operations/Alarms/Key}',
    context: { 'aws:SourceArn': '${Operations/Alarms/Topic}', ...sourceAccount },
    why: 'SNS decrypts messages to deliver them to the e-mail subscription',
  },
  {
    id: 'sns-dead-letters-undelivered-alarms',
    who: { service: 'sns.amazonaws.com' },
    action: 'sqs:SendMessage',
    resource: '${Operations/Alarms/Undelivered}',
    context: { 'aws:SourceArn': '${Operations/Alarms/Topic}', ...sourceAccount },
    why: 'an alarm that cannot be delivered is kept for 14 days',
  },
  {
    id: 'sns-encrypts-undelivered-alarms',
    who: { service: 'sns.amazonaws.com' },
    action: 'kms:GenerateDataKey',
    resource: '${Operations/Alarms/Key}',
    context: { 'aws:SourceArn': '${Operations/Alarms/Topic}', ...sourceAccount },
    why: 'the dead-letter queue of the alarm topic uses the alarm key',
  },

  // The trail alarms (issue 15) are CloudWatch alarms of the Audit stack: the topic must take them.
  ...TRAIL_ALARM_IDS.flatMap((name): AccessRow[] => {
    const alarm = `arn:aws:cloudwatch:\${region}:\${account}:alarm:\${Audit/TrailAlarms/${name}|name}`;
    return [
      {
        id: `cloudwatch-publishes-trail-alarm-${name}`,
        who: { service: 'cloudwatch.amazonaws.com' },
        action: 'sns:Publish',
        resource: '${Operations/Alarms/Topic}',
        context: { 'aws:SourceArn': alarm, ...sourceAccount },
        why: `the ${name} trail alarm pages through the alarm topic`,
      },
      {
        id: `cloudwatch-encrypts-trail-alarm-${name}`,
        who: { service: 'cloudwatch.amazonaws.com' },
        action: 'kms:GenerateDataKey',
        resource: '${Operations/Alarms/Key}',
        context: { 'aws:SourceArn': alarm, ...sourceAccount },
        why: `the ${name} trail alarm needs a data key of the topic's key to publish`,
      },
    ];
  }),

  // The account baseline (issue 15): GuardDuty findings through EventBridge, AWS Config delivery.
  {
    id: 'events-publishes-guardduty-findings',
    who: { service: 'events.amazonaws.com' },
    action: 'sns:Publish',
    resource: '${Operations/Alarms/Topic}',
    context: { 'aws:SourceArn': FINDINGS_RULE, ...sourceAccount },
    why: 'high-severity GuardDuty findings page through the alarm topic (the topic policy replaces the default)',
  },
  {
    id: 'events-encrypts-guardduty-findings',
    who: { service: 'events.amazonaws.com' },
    action: 'kms:GenerateDataKey',
    resource: '${Operations/Alarms/Key}',
    context: { 'aws:SourceArn': FINDINGS_RULE, ...sourceAccount },
    why: 'the alarm topic is encrypted: EventBridge needs a data key of its key to publish',
  },
  {
    id: 'events-dead-letters-guardduty-findings',
    who: { service: 'events.amazonaws.com' },
    action: 'sqs:SendMessage',
    resource: '${AccountBaseline/Baseline/UndeliveredFindings}',
    context: { 'aws:SourceArn': FINDINGS_RULE, ...sourceAccount },
    why: 'a finding the topic does not take is kept (and alarms)',
  },
  {
    id: 'events-encrypts-undelivered-findings',
    who: { service: 'events.amazonaws.com' },
    action: 'kms:GenerateDataKey',
    resource: '${AccountBaseline/Baseline/Key}',
    context: { 'aws:SourceArn': FINDINGS_RULE, ...sourceAccount },
    why: 'the undelivered-findings queue is encrypted with the baseline key',
  },
  {
    id: 'cloudwatch-publishes-undelivered-findings-alarm',
    who: { service: 'cloudwatch.amazonaws.com' },
    action: 'sns:Publish',
    resource: '${Operations/Alarms/Topic}',
    context: {
      'aws:SourceArn':
        'arn:aws:cloudwatch:${region}:${account}:alarm:${AccountBaseline/Baseline/UndeliveredFindingsAlarm|name}',
      ...sourceAccount,
    },
    why: 'an undelivered finding pages through the alarm topic',
  },
  // The backup region's baseline forwards findings and its alarm to the home region's default bus
  // (issue 15), where the home rules above and OtherRegionAlarms publish them to the topic.
  {
    id: 'backup-region-forwards-to-home-bus',
    who: { role: BACKUP_FORWARD_ROLE },
    action: 'events:PutEvents',
    resource: HOME_BUS,
    why: "the backup region's findings and alarms reach the home region's bus, the only way to the alarm topic",
  },
  ...[BACKUP_FINDINGS_RULE, BACKUP_ALARMS_RULE].flatMap((rule): AccessRow[] => [
    {
      id: `events-dead-letters-${rule === BACKUP_FINDINGS_RULE ? 'backup-region-findings' : 'backup-region-alarms'}`,
      who: { service: 'events.amazonaws.com' },
      action: 'sqs:SendMessage',
      resource: '${BackupRegionBaseline/Baseline/UndeliveredFindings}',
      context: { 'aws:SourceArn': rule, ...sourceAccount },
      why: 'an event the home bus does not take is kept in the backup region (and alarms)',
    },
    {
      id: `events-encrypts-${rule === BACKUP_FINDINGS_RULE ? 'backup-region-findings' : 'backup-region-alarms'}`,
      who: { service: 'events.amazonaws.com' },
      action: 'kms:GenerateDataKey',
      resource: '${BackupRegionBaseline/Baseline/Key}',
      context: { 'aws:SourceArn': rule, ...sourceAccount },
      why: "that queue is encrypted with the backup region's baseline key",
    },
  ]),
  {
    id: 'events-publishes-backup-region-alarms',
    who: { service: 'events.amazonaws.com' },
    action: 'sns:Publish',
    resource: '${Operations/Alarms/Topic}',
    context: { 'aws:SourceArn': '${AccountBaseline/Baseline/OtherRegionAlarms}', ...sourceAccount },
    why: "the backup region's baseline alarm, forwarded to the home bus, pages through the alarm topic",
  },
  {
    id: 'config-checks-its-bucket',
    who: { service: 'config.amazonaws.com' },
    action: 's3:GetBucketAcl',
    resource: '${AccountBaseline/Baseline/ConfigBucket}',
    context: sourceAccount,
    why: 'AWS Config checks the delivery bucket before it delivers',
  },
  {
    id: 'config-delivers-history',
    who: { service: 'config.amazonaws.com' },
    action: 's3:PutObject',
    resource:
      '${AccountBaseline/Baseline/ConfigBucket}/AWSLogs/${account}/Config/${region}/2026/1/1/ConfigHistory/file.json.gz',
    context: { 's3:x-amz-acl': 'bucket-owner-full-control', ...sourceAccount },
    why: 'configuration history and snapshots are delivered into the bucket in the region',
  },
  {
    id: 'config-encrypts-history',
    who: { service: 'config.amazonaws.com' },
    action: 'kms:GenerateDataKey',
    resource: '${AccountBaseline/Baseline/Key}',
    context: sourceAccount,
    why: 'the delivery channel encrypts with the baseline key (s3KmsKeyArn)',
  },
  // EventBridge rules to the alarm topic (issue 15: failed backup and copy jobs are watched).
  {
    id: 'events-publishes-backup-job-failures',
    who: { service: 'events.amazonaws.com' },
    action: 'sns:Publish',
    resource: '${Operations/Alarms/Topic}',
    context: { 'aws:SourceArn': BACKUP_JOB_RULE, ...sourceAccount },
    why: 'a failed, aborted, expired or partial backup or copy job reaches the on-call through the topic policy',
  },
  {
    id: 'events-uses-alarm-key',
    who: { service: 'events.amazonaws.com' },
    action: 'kms:GenerateDataKey',
    resource: '${Operations/Alarms/Key}',
    context: { 'aws:SourceArn': BACKUP_JOB_RULE, ...sourceAccount },
    why: 'the topic is encrypted: EventBridge needs a data key of the alarm key to publish',
  },
  {
    id: 'events-dead-letters-backup-job-failures',
    who: { service: 'events.amazonaws.com' },
    action: 'sqs:SendMessage',
    resource: '${Data/Backup/JobFailureDeadLetters}',
    context: { 'aws:SourceArn': BACKUP_JOB_RULE, ...sourceAccount },
    why: 'a job failure that cannot be published is kept (and alarms) instead of vanishing',
  },
  {
    id: 'events-encrypts-backup-job-dead-letters',
    who: { service: 'events.amazonaws.com' },
    action: 'kms:GenerateDataKey',
    resource: '${Data/LogKey}',
    context: { 'aws:SourceArn': BACKUP_JOB_RULE, ...sourceAccount },
    why: 'the job-failure dead-letter queue is encrypted with the data-tier log key',
  },

  // CloudWatch Logs on each log-group key.
  logsOnKey('logs-key-data', 'Data/Database/Log-postgresql', 'Data/LogKey'),
  logsOnKey('logs-key-restore-drill', 'Data/RestoreDrill/Function/Logs', 'Data/LogKey'),
  logsOnKey('logs-key-edge', 'Edge/PlatformApi/AccessLogs', 'Edge/LogKey/Key'),
  logsOnKey('logs-key-waf', 'Edge/WebAcl/Logs', 'Edge/LogKey/Key'),
  logsOnKey('logs-key-webhooks', 'Edge/Webhooks/Function/Logs', 'Edge/Webhooks/Key'),
  logsOnKey('logs-key-tenant-guard', 'Edge/TenantGuard/Api/Logs', 'Edge/TenantGuard/LogKey'),
  logsOnKey('logs-key-shipper', 'Audit/Shipper/Function/Logs', 'Audit/Shipper/LogKey'),
  logsOnKey('logs-key-tenant-keys', 'TenantKeys/TenantKeys/Provisioner/Logs', 'TenantKeys/TenantKeys/LogKey'),

  // S3 server access logs.
  {
    id: 's3-access-logs-from-archive',
    who: { service: 'logging.s3.amazonaws.com' },
    action: 's3:PutObject',
    resource: '${Audit/Archive/AccessLogs}/audit-archive/2026-01-01-00-00-00-0000',
    context: { 'aws:SourceArn': '${Audit/Archive/Archive/Bucket}', ...sourceAccount },
    why: 'access to the audit archive is itself logged',
  },

  {
    id: 's3-access-logs-from-cloudtrail-bucket',
    who: { service: 'logging.s3.amazonaws.com' },
    action: 's3:PutObject',
    resource: '${Audit/Archive/AccessLogs}/cloudtrail/2026-01-01-00-00-00-0000',
    context: { 'aws:SourceArn': '${Audit/CloudTrail/Logs/Bucket}', ...sourceAccount },
    why: 'access to the trail bucket is logged too',
  },

  // EventBridge: schedules invoke functions; undeliverable events go to the dead-letter queues.
  {
    id: 'events-invokes-lifecycle',
    who: { service: 'events.amazonaws.com' },
    action: 'lambda:InvokeFunction',
    resource: '${TenantKeys/TenantKeys/Lifecycle/Default}',
    context: { 'aws:SourceArn': '${TenantKeys/TenantKeys/Schedule}', ...sourceAccount },
    why: 'the lifecycle runs on its schedule (shredding, exports)',
  },
  {
    id: 'events-invokes-shipper',
    who: { service: 'events.amazonaws.com' },
    action: 'lambda:InvokeFunction',
    resource: '${Audit/Shipper/Function/Default}',
    context: { 'aws:SourceArn': '${Audit/Shipper/Schedule}', ...sourceAccount },
    why: 'the archive shipper runs on its schedule',
  },
  {
    id: 'events-dead-letters-tenant-keys',
    who: { service: 'events.amazonaws.com' },
    action: 'sqs:SendMessage',
    resource: '${TenantKeys/TenantKeys/DeadLetters}',
    context: { 'aws:SourceArn': '${TenantKeys/TenantKeys/Schedule}', ...sourceAccount },
    why: 'a scheduled event that cannot be delivered is kept',
  },
  {
    id: 'events-encrypts-tenant-keys-dead-letters',
    who: { service: 'events.amazonaws.com' },
    action: 'kms:GenerateDataKey',
    resource: '${TenantKeys/TenantKeys/LogKey}',
    context: { 'aws:SourceArn': '${TenantKeys/TenantKeys/Schedule}', ...sourceAccount },
    why: 'that queue is encrypted with the tenant-keys log key',
  },
  {
    id: 'events-dead-letters-shipper',
    who: { service: 'events.amazonaws.com' },
    action: 'sqs:SendMessage',
    resource: '${Audit/Shipper/Undelivered}',
    context: { 'aws:SourceArn': '${Audit/Shipper/Schedule}', ...sourceAccount },
    why: 'a shipper run that cannot be delivered is kept',
  },
  {
    id: 'events-encrypts-shipper-dead-letters',
    who: { service: 'events.amazonaws.com' },
    action: 'kms:GenerateDataKey',
    resource: '${Audit/Shipper/LogKey}',
    context: { 'aws:SourceArn': '${Audit/Shipper/Schedule}', ...sourceAccount },
    why: "the shipper's dead-letter queue is encrypted with its log key",
  },
  {
    id: 'events-encrypts-restore-drill-dead-letters',
    who: { service: 'events.amazonaws.com' },
    action: 'kms:GenerateDataKey',
    resource: '${Data/LogKey}',
    context: { 'aws:SourceArn': '${Data/RestoreDrill/Schedule}', ...sourceAccount },
    why: "the restore drill's dead-letter queue is encrypted with the data tier's log key",
  },
  {
    id: 'events-dead-letters-restore-drill',
    who: { service: 'events.amazonaws.com' },
    action: 'sqs:SendMessage',
    resource: '${Data/RestoreDrill/ScheduleDeadLetters}',
    context: { 'aws:SourceArn': '${Data/RestoreDrill/Schedule}', ...sourceAccount },
    why: 'a restore drill that cannot be started is kept',
  },

  // API Gateway invokes handlers through the deployed stage and the authorizer.
  {
    id: 'apigateway-invokes-webhooks',
    who: { service: 'apigateway.amazonaws.com' },
    action: 'lambda:InvokeFunction',
    resource: '${Edge/Webhooks/Function/Default}',
    context: {
      'aws:SourceArn': 'arn:aws:execute-api:${region}:${account}:${Edge/PlatformApi/Api|name}/v1/POST/webhooks/telnyx',
      ...sourceAccount,
    },
    why: 'carriers reach the webhook function through the deployed stage',
  },
  {
    id: 'apigateway-invokes-tenant-api',
    who: { service: 'apigateway.amazonaws.com' },
    action: 'lambda:InvokeFunction',
    resource: '${Edge/TenantGuard/Api/Default}',
    context: {
      'aws:SourceArn': 'arn:aws:execute-api:${region}:${account}:${Edge/PlatformApi/Api|name}/v1/GET/organisations',
      ...sourceAccount,
    },
    why: 'tenants reach the API through the deployed stage (after the authorizer)',
  },

  // Functions: logs, dead letters, database, archive, keys.
  ownLogs('webhooks-own-logs', 'Edge/Webhooks/Function/Role', 'Edge/Webhooks/Function/Logs'),
  ownLogs('tenant-api-own-logs', 'Edge/TenantGuard/Api/Role', 'Edge/TenantGuard/Api/Logs'),
  ownLogs('authorizer-own-logs', 'Edge/TenantGuard/Authorizer/Role', 'Edge/TenantGuard/Authorizer/Logs'),
  ownLogs('migrate-own-logs', 'Data/Schema/Migrate/Role', 'Data/Schema/Migrate/Logs'),
  ownLogs('shipper-own-logs', 'Audit/Shipper/Function/Role', 'Audit/Shipper/Function/Logs'),
  ownLogs('provisioner-own-logs', 'TenantKeys/TenantKeys/Provisioner/Role', 'TenantKeys/TenantKeys/Provisioner/Logs'),
  ownLogs('lifecycle-own-logs', 'TenantKeys/TenantKeys/Lifecycle/Role', 'TenantKeys/TenantKeys/Lifecycle/Logs'),
  ownLogs('restore-drill-own-logs', 'Data/RestoreDrill/Function/Role', 'Data/RestoreDrill/Function/Logs'),
  ...deadLetter(
    'provisioner-dead-letters',
    'TenantKeys/TenantKeys/Provisioner/Role',
    'TenantKeys/TenantKeys/DeadLetters',
    'TenantKeys/TenantKeys/LogKey',
  ),
  ...deadLetter(
    'lifecycle-dead-letters',
    'TenantKeys/TenantKeys/Lifecycle/Role',
    'TenantKeys/TenantKeys/DeadLetters',
    'TenantKeys/TenantKeys/LogKey',
  ),
  ...deadLetter(
    'shipper-dead-letters',
    'Audit/Shipper/Function/Role',
    'Audit/Shipper/Undelivered',
    'Audit/Shipper/LogKey',
  ),
  ...deadLetter('migrate-dead-letters', 'Data/Schema/Migrate/Role', 'Data/Schema/Migrate/DeadLetters', 'Data/LogKey'),
  connectAs('tenant-api-connects-as-app', 'Edge/TenantGuard/Api/Role', 'bulwark_app'),
  // One database role per function (migrations/0401).
  connectAs('webhooks-connect-as-webhooks', 'Edge/Webhooks/Function/Role', 'bulwark_webhooks'),
  connectAs(
    'provisioner-connects-as-key-provisioner',
    'TenantKeys/TenantKeys/Provisioner/Role',
    'bulwark_key_provisioner',
  ),
  connectAs('lifecycle-connects-as-lifecycle', 'TenantKeys/TenantKeys/Lifecycle/Role', 'bulwark_lifecycle'),
  connectAs('shipper-connects-as-audit-shipper', 'Audit/Shipper/Function/Role', 'bulwark_audit_shipper'),
  {
    id: 'shipper-writes-archive',
    who: { role: 'Audit/Shipper/Function/Role' },
    action: 's3:PutObject',
    resource: '${Audit/Archive/Archive/Bucket}/orgs/${org:A}/2026/01/01/batch.jsonl.gz',
    why: 'the shipper moves audit events into the immutable archive',
  },
  {
    id: 'shipper-sets-retention',
    who: { role: 'Audit/Shipper/Function/Role' },
    action: 's3:PutObjectRetention',
    resource: '${Audit/Archive/Archive/Bucket}/orgs/${org:A}/2026/01/01/batch.jsonl.gz',
    why: "each object is retained for its organisation's plan",
  },
  {
    id: 'shipper-encrypts-archive',
    who: { role: 'Audit/Shipper/Function/Role' },
    action: 'kms:GenerateDataKey',
    resource: '${Audit/Archive/Key}',
    context: { 'kms:ViaService': 's3.${region}.amazonaws.com' },
    why: 'archive objects are encrypted with the archive key',
  },
  {
    id: 'tenant-api-invokes-provisioner',
    who: { role: 'Edge/TenantGuard/Api/Role' },
    action: 'lambda:InvokeFunction',
    resource: '${TenantKeys/TenantKeys/Provisioner/Default}',
    why: 'new tenants and bring-your-own-key requests are provisioned synchronously',
  },
  {
    id: 'tenant-api-seals-under-own-org',
    who: { role: 'Edge/TenantGuard/Api/Role' },
    action: 'kms:GenerateDataKey',
    resource: '${tenant-key:A}',
    context: {
      'kms:EncryptionContext:org_id': '${org:A}',
      'kms:EncryptionContext:purpose': 'webhook-secret',
      'kms:EncryptionContextKeys': ['org_id', 'purpose'],
    },
    why: "the API seals an organisation's secrets under that organisation's key and context",
  },
  {
    id: 'webhooks-open-under-own-org',
    who: { role: 'Edge/Webhooks/Function/Role' },
    action: 'kms:Decrypt',
    resource: '${tenant-key:A}',
    context: {
      'kms:EncryptionContext:org_id': '${org:A}',
      'kms:EncryptionContext:purpose': 'webhook-secret',
      'kms:EncryptionContextKeys': ['org_id', 'purpose'],
    },
    why: "the webhook function opens an organisation's signing secret to verify its deliveries",
  },
  {
    id: 'provisioner-creates-tenant-key',
    who: { role: 'TenantKeys/TenantKeys/Provisioner/Role' },
    action: 'kms:CreateKey',
    resource: '*',
    context: {
      'aws:RequestTag/bulwark:deployment': '${deployment}',
      'aws:RequestTag/bulwark:org-id': '${org:A}',
      'aws:RequestTag/bulwark:key-class': 'tenant',
      'aws:TagKeys': ['bulwark:deployment', 'bulwark:org-id', 'bulwark:key-class'],
      'kms:KeySpec': 'SYMMETRIC_DEFAULT',
      'kms:KeyUsage': 'ENCRYPT_DECRYPT',
      'kms:KeyOrigin': 'AWS_KMS',
      'kms:MultiRegion': 'false',
    },
    why: 'each new tenant gets its own key, created with the tags that make it a tenant key',
  },
  {
    id: 'provisioner-sets-tenant-key-policy',
    who: { role: 'TenantKeys/TenantKeys/Provisioner/Role' },
    action: 'kms:PutKeyPolicy',
    resource: '${tenant-key:A}',
    why: 'the provisioner writes the per-tenant key policy (lambda/tenant-keys/key-policy.ts)',
  },
  {
    id: 'lifecycle-schedules-tenant-key-deletion',
    who: { role: 'TenantKeys/TenantKeys/Lifecycle/Role' },
    action: 'kms:ScheduleKeyDeletion',
    resource: '${tenant-key:A}',
    why: "crypto-shredding: a departed tenant's key is scheduled for deletion",
  },

  // AWS Backup on the vault keys (issue 19: "Backup on vault keys").
  ...backupOnVaultKey('backup-on-vault-key', 'Data/BackupKey', 'daily snapshots land in the primary vault'),
  ...backupOnVaultKey(
    'backup-on-copy-vault-key',
    'BackupVault/Key',
    'each recovery point is copied to the locked vault in the backup region',
    'rds.${BackupVault/Key|region}.amazonaws.com',
  ),
  // The monthly restore drill from the copy, in the backup region (issue 15).
  {
    id: 'copy-drill-restores-from-backup-copy',
    who: { role: COPY_DRILL_ROLE },
    action: 'rds:RestoreDBInstanceFromDBSnapshot',
    resource: `arn:aws:rds:${BACKUP_REGION}:\${account}:snapshot:awsbackup:copyjob-00000000-0000-4000-8000-000000000003`,
    why: 'the monthly drill restores the newest AWS Backup copy in the backup region',
  },
  {
    id: 'copy-drill-restores-into-drill-instance',
    who: { role: COPY_DRILL_ROLE },
    action: 'rds:RestoreDBInstanceFromDBSnapshot',
    resource: COPY_DRILL_INSTANCE,
    why: 'the copy is restored into a drill-named instance',
  },
  {
    id: 'copy-drill-restores-into-isolated-subnets',
    who: { role: COPY_DRILL_ROLE },
    action: 'rds:RestoreDBInstanceFromDBSnapshot',
    resource: `arn:aws:rds:${BACKUP_REGION}:\${account}:subgrp:\${BackupVault/RestoreNetwork/Subnets|name}`,
    why: 'the restored instance is placed in the isolated restore network',
  },
  {
    id: 'copy-drill-tags-drill-instance',
    who: { role: COPY_DRILL_ROLE },
    action: 'rds:AddTagsToResource',
    resource: COPY_DRILL_INSTANCE,
    why: 'the drill tags what it restores, and deletes only what carries the tag',
  },
  {
    id: 'copy-drill-grants-copy-key-to-rds',
    who: { role: COPY_DRILL_ROLE },
    action: 'kms:CreateGrant',
    resource: '${BackupVault/Key}',
    context: { 'kms:ViaService': `rds.${BACKUP_REGION}.amazonaws.com`, 'kms:GrantIsForAWSResource': 'true' },
    why: "the copy is encrypted with the backup region's key: RDS needs a grant on it to restore",
  },
  {
    id: 'copy-drill-deletes-drill-instance',
    who: { role: COPY_DRILL_ROLE },
    action: 'rds:DeleteDBInstance',
    resource: COPY_DRILL_INSTANCE,
    context: { 'aws:ResourceTag/bulwark:restore-drill': 'true' },
    why: 'every restored drill instance is deleted, whatever happened',
  },
  ownLogs('copy-drill-own-logs', COPY_DRILL_ROLE, 'BackupVault/RestoreDrill/Function/Logs'),
  {
    ...logsOnKey('logs-key-copy-drill', 'BackupVault/RestoreDrill/Function/Logs', 'BackupVault/DrillLogKey'),
    // CloudWatch Logs of the backup region, where the log group lives.
    who: { service: `logs.${BACKUP_REGION}.amazonaws.com` },
  },
  {
    id: 'events-dead-letters-copy-drill',
    who: { service: 'events.amazonaws.com' },
    action: 'sqs:SendMessage',
    resource: '${BackupVault/RestoreDrill/ScheduleDeadLetters}',
    context: { 'aws:SourceArn': '${BackupVault/RestoreDrill/Schedule}', ...sourceAccount },
    why: 'a monthly drill that cannot be started is kept (and alarms)',
  },
  {
    id: 'events-encrypts-copy-drill-dead-letters',
    who: { service: 'events.amazonaws.com' },
    action: 'kms:GenerateDataKey',
    resource: '${BackupVault/DrillLogKey}',
    context: { 'aws:SourceArn': '${BackupVault/RestoreDrill/Schedule}', ...sourceAccount },
    why: "the monthly drill's dead-letter queue is encrypted with the backup region's drill log key",
  },
  {
    id: 'cloudwatch-publishes-backup-region-alarms',
    who: { service: 'cloudwatch.amazonaws.com' },
    action: 'sns:Publish',
    resource: '${BackupVault/Alarms/Topic}',
    context: { 'aws:SourceArn': BACKUP_REGION_ALARM, ...sourceAccount },
    why: "the monthly drill's alarms publish to the backup region's topic (alarms reach only topics of their region)",
  },
  {
    id: 'cloudwatch-uses-backup-region-alarm-key',
    who: { service: 'cloudwatch.amazonaws.com' },
    action: 'kms:GenerateDataKey',
    resource: '${BackupVault/Alarms/Key}',
    context: { 'aws:SourceArn': BACKUP_REGION_ALARM, ...sourceAccount },
    why: "the backup region's topic is encrypted: CloudWatch needs a data key to publish",
  },
  {
    id: 'sns-decrypts-backup-region-alarms',
    who: { service: 'sns.amazonaws.com' },
    action: 'kms:Decrypt',
    resource: '${BackupVault/Alarms/Key}',
    context: { 'aws:SourceArn': '${BackupVault/Alarms/Topic}', ...sourceAccount },
    why: 'SNS decrypts the alarm to deliver it to the e-mail subscription',
  },
  {
    id: 'backup-copies-into-copy-vault',
    who: { role: BACKUP_ROLE },
    action: 'backup:CopyIntoBackupVault',
    resource: '${BackupVault/Copies/Vault}',
    why: 'the copy job runs as the selection role and must be let into the locked vault',
  },
  // Tenant files (docs/tenant-files.md).
  ...FILES_MUST_ALLOW,
  ...FILES_EXPORT_MUST_ALLOW,
  ...KEY_POLICY_REFRESH_MUST_ALLOW,
  // Per-tenant budget (docs/rate-limits.md "Per tenant").
  ...BUDGET_MUST_ALLOW,
];
