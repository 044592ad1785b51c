/**
 * AWS Control Tower's proactive controls as a second gate next to cdk-nag: the Control Tower
 * cfn-guard rules (`@cdklabs/cdk-validator-cfnguard`) run as a policy-validation plugin over each
 * stage's templates, and their violations land in the same `validation-report.json` the gate
 * fails synth on.
 *
 * A rule that does not fit this design is exempted on the one resource it concerns, with a reason,
 * through `exemptGuardRule` (an acknowledgement: same single-resource rule, same generated list).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CfnGuardValidator } from '@cdklabs/cdk-validator-cfnguard';
import { CfnResource, Stage, type IPolicyValidationPluginBeta1 } from 'aws-cdk-lib';
import type { IConstruct } from 'constructs';
import { acknowledge } from './acknowledge';

/** The plugin's name: CDK prefixes its rule ids with it (`cdk-validator-cfnguard::<rule>`). */
export const CONTROL_TOWER_PLUGIN = 'cdk-validator-cfnguard';

/**
 * Context key that turns the Control Tower gate off (`false`). Only tests that do not examine it set
 * it: cfn-guard costs tens of CPU seconds per deployment. `npm run synth` always runs it.
 */
export const CONTROL_TOWER_GATE_CONTEXT = 'bulwark:controlTowerGate';

function rulesDirectory(): string {
  const pkg = require.resolve('@cdklabs/cdk-validator-cfnguard/package.json');
  return path.join(path.dirname(pkg), 'rules', 'control-tower', 'cfn-guard');
}

let knownRules: ReadonlySet<string> | undefined;

/** Names of the bundled Control Tower rules (`rule <name> when ...` in each .guard file). */
export function controlTowerRules(): ReadonlySet<string> {
  if (knownRules) return knownRules;
  const names = new Set<string>();
  const walk = (dir: string): void => {
    for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) walk(full);
      else if (entry.name.endsWith('.guard')) {
        for (const m of fs.readFileSync(full, 'utf8').matchAll(/^rule ([a-z0-9_]+) when /gm)) {
          if (m[1]) names.add(m[1]);
        }
      }
    }
  };
  walk(rulesDirectory());
  knownRules = names;
  return names;
}

/** The Control Tower gate for one stage: a fresh plugin, so it sees only that stage's templates. */
export function controlTowerGate(): IPolicyValidationPluginBeta1 {
  // A stage's templates yield megabytes of cfn-guard JSON; Node's 1 MB default would kill it.
  return new CfnGuardValidator({ maxBuffer: 256 * 1024 * 1024 });
}

/** Is the Control Tower gate on for `stage`? (On unless the context turns it off.) */
export function controlTowerGateEnabled(stage: Stage): boolean {
  const v: unknown = stage.node.tryGetContext(CONTROL_TOWER_GATE_CONTEXT);
  return v !== false && v !== 'false';
}

/**
 * Exempts one CloudFormation resource from one Control Tower rule, with a specific reason. Refuses
 * a rule the bundled Control Tower set does not have; everything else as `acknowledge()`.
 */
export function exemptGuardRule(construct: IConstruct, rule: string, reason: string): void {
  if (!controlTowerRules().has(rule)) {
    throw new Error(`exemptGuardRule(${construct.node.path}): "${rule}" is not a Control Tower rule`);
  }
  acknowledge(construct, `${CONTROL_TOWER_PLUGIN}::${rule}`, reason);
}

export interface GuardExemption {
  /** Construct path of the one resource, relative to the stage, e.g. `Audit/Archive/AccessLogs`. */
  readonly path: string;
  readonly rule: string;
  readonly reason: string;
}

/**
 * Applies `exemptions` to `stage`: each path must name exactly one CloudFormation resource (or an L2
 * wrapping one) in it, so an exemption can never outlive the resource it was written for.
 */
export function applyGuardExemptions(stage: Stage, exemptions: readonly GuardExemption[]): void {
  for (const e of exemptions) {
    const target = findByPath(stage, e.path);
    if (!target) throw new Error(`Control Tower exemption: no construct ${stage.stageName}/${e.path}`);
    const resource = CfnResource.isCfnResource(target) ? target : target.node.defaultChild;
    if (!resource || !CfnResource.isCfnResource(resource)) {
      throw new Error(`Control Tower exemption: ${stage.stageName}/${e.path} is not one CloudFormation resource`);
    }
    exemptGuardRule(resource, e.rule, e.reason);
  }
}

function findByPath(root: IConstruct, relative: string): IConstruct | undefined {
  let node: IConstruct | undefined = root;
  for (const id of relative.split('/')) node = node?.node.tryFindChild(id);
  return node;
}

const dlq = (path: string, of: string): GuardExemption => ({
  path,
  rule: 'sqs_dlq_check',
  reason: `This queue is the dead-letter queue of ${of}; a dead-letter queue of a dead-letter queue would only move its messages again.`,
});

const CROSS_STACK_VPC =
  "In the data tier's VPC: its SubnetIds and SecurityGroupIds are the Data stack's outputs (Fn::GetStackOutput), which this rule cannot resolve (it accepts only literal ids or references within the same template); cdk-nag's LambdaInsideVPC rules check the same property and pass.";
const inVpc = (path: string): GuardExemption => ({ path, rule: 'lambda_inside_vpc_check', reason: CROSS_STACK_VPC });

const NO_EVENT_CONSUMER = (what: string): string =>
  `Nothing consumes this bucket's object events: ${what}. A notification target would be a new delivery path with nothing behind it.`;

/**
 * Control Tower rules that do not fit Bulwark's design, each on the one resource it concerns (paths
 * are relative to the deployment's stage). Every deployment has these resources.
 */
export const BULWARK_GUARD_EXEMPTIONS: readonly GuardExemption[] = [
  // --- dead-letter queues (CT.SQS.PR.1) ---
  dlq('Operations/Alarms/Undelivered', 'the alarm e-mail subscription (SNS redrive)'),
  dlq('Data/RestoreDrill/ScheduleDeadLetters', "the restore drill's schedule"),
  dlq('Data/Backup/JobFailureDeadLetters', 'the backup job-failure rule'),
  dlq('BackupVault/Alarms/Undelivered', "the backup region's alarm e-mail subscription (SNS redrive)"),
  dlq('BackupVault/RestoreDrill/ScheduleDeadLetters', "the backup-copy restore drill's schedule"),
  dlq('Data/Schema/Migrate/DeadLetters', 'the migration function (the schema custom resource)'),
  dlq('Audit/Shipper/Undelivered', 'the audit archive shipper and its schedule'),
  dlq('TenantKeys/TenantKeys/DeadLetters', 'the tenant-keys functions and their schedules'),
  dlq('TenantKeys/Files/Checker/DeadLetters', 'the tenant-file quarantine checker and its upload rule'),

  // --- functions in the VPC through cross-stack references, and the two outside it (CT.LAMBDA.PR.3) ---
  inVpc('Edge/TenantGuard/Api/Default'),
  inVpc('Edge/Webhooks/Function/Default'),
  inVpc('Audit/Shipper/Function/Default'),
  inVpc('TenantKeys/TenantKeys/Provisioner/Default'),
  inVpc('TenantKeys/TenantKeys/Lifecycle/Default'),
  inVpc('TenantKeys/Files/Checker/Function/Default'),
  {
    path: 'Edge/TenantGuard/Authorizer/Default',
    rule: 'lambda_inside_vpc_check',
    reason:
      "The token authorizer holds no data access (no database, secrets or keys) and must fetch the identity provider's public JWKS, which the isolated data VPC (no internet route) cannot reach.",
  },
  {
    path: 'BackupVault/RestoreDrill/Function/Default',
    rule: 'lambda_inside_vpc_check',
    reason:
      'The backup-copy restore drill calls only the RDS API of its region and holds no data access (no database credentials; the restore network admits nothing); in the isolated restore network it would need an RDS endpoint in every zone for a monthly run.',
  },
  {
    path: 'BackupVault/Custom::VpcRestrictDefaultSGCustomResourceProvider/Handler',
    rule: 'lambda_inside_vpc_check',
    reason:
      "CDK's deploy-time provider behind restrictDefaultSecurityGroup of the restore network: it only revokes the default security group's rules through the EC2 API during deployments and holds no data access.",
  },
  {
    path: 'Data/Custom::VpcRestrictDefaultSGCustomResourceProvider/Handler',
    rule: 'lambda_inside_vpc_check',
    reason:
      "CDK's deploy-time provider behind restrictDefaultSecurityGroup: it only revokes the default security group's rules through the EC2 API during deployments and holds no data access.",
  },

  // --- the tenant export bucket (CT.S3.PR.2, PR.4, PR.9) ---
  {
    path: 'TenantKeys/TenantKeys/ExportBucket',
    rule: 's3_bucket_logging_enabled_check',
    reason:
      'Exports are read only through pre-signed URLs of at most 15 minutes that the API issues after an Owner check, each issuance audited in the tenant audit log (tenant.export_downloaded: user, IP, time); the fetch itself is not logged, so a download is attributable to the Owner the link was issued to.',
  },
  {
    path: 'TenantKeys/TenantKeys/ExportBucket',
    rule: 's3_event_notifications_enabled_check',
    reason: NO_EVENT_CONSUMER('the lifecycle records each export in the database in the run that writes it'),
  },
  {
    path: 'TenantKeys/TenantKeys/ExportBucket',
    rule: 's3_bucket_object_lock_enabled_check',
    reason:
      "Exports must be erasable: they expire after 7 days and every version is deleted when the tenant is shredded; Object Lock would keep a tenant's copy past its shredding.",
  },

  // --- the tenant file store (CT.S3.PR.2, PR.4, PR.9; docs/tenant-files.md) ---
  {
    path: 'TenantKeys/Files/Bucket',
    rule: 's3_bucket_logging_enabled_check',
    reason:
      'Every read and write of tenant files is a CloudTrail S3 data event of the deployment trail (the Audit stack records this bucket), and every presigned URL issuance is an audit event in the tenant trail; S3 server access logs could only go to an SSE-S3 bucket.',
  },
  {
    path: 'TenantKeys/Files/Bucket',
    rule: 's3_bucket_object_lock_enabled_check',
    reason:
      "Tenant files must be erasable: every version is deleted when the tenant is shredded, and deleted files expire 30 days later; Object Lock would keep a tenant's files past its shredding.",
  },

  // --- the audit buckets (CT.S3.PR.2, PR.4, PR.9, PR.10) ---
  {
    path: 'Audit/Archive/AccessLogs',
    rule: 's3_bucket_default_encryption_kms_check',
    reason:
      'This is the server access log destination of the audit buckets, and S3 delivers server access logs only to buckets encrypted with SSE-S3, not SSE-KMS (AWS requirement).',
  },
  {
    path: 'Audit/Archive/AccessLogs',
    rule: 's3_bucket_logging_enabled_check',
    reason: 'This bucket is the server access log destination of the audit buckets; logging it into itself would loop.',
  },
  {
    path: 'Audit/Archive/AccessLogs',
    rule: 's3_bucket_object_lock_enabled_check',
    reason:
      'S3 server access log delivery does not support a destination with an Object Lock default retention; the logs are kept by versioning and a bucket policy that denies object and bucket deletion to every principal.',
  },
  {
    path: 'Audit/Archive/AccessLogs',
    rule: 's3_event_notifications_enabled_check',
    reason: NO_EVENT_CONSUMER('server access logs are evidence read on investigation, not processed on arrival'),
  },
  {
    path: 'Audit/Archive/Archive/Bucket',
    rule: 's3_event_notifications_enabled_check',
    reason: NO_EVENT_CONSUMER(
      'the archive shipper runs on a schedule from the database, and the Object Locked archive is read only to verify it',
    ),
  },
  {
    path: 'Audit/CloudTrail/Logs/Bucket',
    rule: 's3_event_notifications_enabled_check',
    reason: NO_EVENT_CONSUMER(
      'the trail is followed through its CloudWatch Logs delivery, and the Object Locked log files are read only to verify them',
    ),
  },

  // --- the backup-region replicas of the audit buckets (issue 15) ---
  {
    path: 'BackupVault/AuditReplicas/AccessLogs',
    rule: 's3_bucket_default_encryption_kms_check',
    reason:
      'This is the server access log destination of the audit replica buckets, and S3 delivers server access logs only to buckets encrypted with SSE-S3, not SSE-KMS (AWS requirement).',
  },
  {
    path: 'BackupVault/AuditReplicas/AccessLogs',
    rule: 's3_bucket_logging_enabled_check',
    reason:
      'This bucket is the server access log destination of the audit replica buckets; logging it into itself would loop.',
  },
  {
    path: 'BackupVault/AuditReplicas/AccessLogs',
    rule: 's3_bucket_object_lock_enabled_check',
    reason:
      'S3 server access log delivery does not support a destination with an Object Lock default retention; the logs are kept by versioning and a bucket policy that denies object and bucket deletion to every principal.',
  },
  {
    path: 'BackupVault/AuditReplicas/AccessLogs',
    rule: 's3_event_notifications_enabled_check',
    reason: NO_EVENT_CONSUMER('server access logs are evidence read on investigation, not processed on arrival'),
  },
  {
    path: 'BackupVault/AuditReplicas/Archive/Bucket',
    rule: 's3_event_notifications_enabled_check',
    reason: NO_EVENT_CONSUMER(
      'S3 replication writes it, and the replica is read only to recover or verify the archive',
    ),
  },
  {
    path: 'BackupVault/AuditReplicas/CloudTrail/Bucket',
    rule: 's3_event_notifications_enabled_check',
    reason: NO_EVENT_CONSUMER('S3 replication writes it, and the replica is read only to recover or verify the trail'),
  },

  // --- the API domain (CT.APIGATEWAY.PR.6) ---
  {
    path: 'Edge/PlatformApi/Domain',
    rule: 'api_gw_domain_tls_check',
    reason:
      "The domain uses an enhanced security policy (the deployment's apiTlsPolicy, by default SecurityPolicy_TLS13_1_2_PFS_PQ_2025_09: TLS 1.3, and TLS 1.2 with ECDHE and AES-GCM only), stricter than TLS_1_2, the only value this rule accepts.",
  },

  // --- the per-tenant budget's counters (CT.DYNAMODB.PR.1; docs/rate-limits.md "Per tenant") ---
  {
    path: 'Edge/TenantGuard/Budget/Table',
    rule: 'dynamodb_table_pitr_enabled_check',
    reason:
      'Counters of one-minute windows, each useless a minute after it ends and removed by TTL: a restored copy would only refuse requests that were within budget, and losing the table loses nothing (the budget fails open).',
  },
];
