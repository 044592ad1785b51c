import * as path from 'node:path';
import { Duration, Stack, Tags } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as actions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as nodejs from 'aws-cdk-lib/aws-lambda-nodejs';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as s3 from 'aws-cdk-lib/aws-s3';
import type * as sns from 'aws-cdk-lib/aws-sns';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import {
  KEY_OWNERSHIP_MISMATCH,
  KEY_POLICY_REFRESH_LOG,
  TAG_DEPLOYMENT,
  TAG_KEY_CLASS,
  TAG_ORG,
  TENANT_KEY_CLASS,
  TENANT_KEY_TAG_KEYS,
  TENANT_KEY_USER_TAG,
  EXPORT_RETENTION_DAYS,
  aliasPrefix,
} from '../../contracts/tenant-keys';
import { FILES_ROOT, FILES_SESSION_TAG, FILE_SCAN_CLEAN, FILE_SCAN_TAG } from '../../contracts/tenant-files';
import { acknowledge } from '../compliance/acknowledge';
import { deadLetterQueue } from '../observability/dead-letter-queue';
import { allowEventsToUseKey, allowLogsToUseKey, customerKey } from '../observability/keys';
import type { DatabaseAccess } from '../data/database-access';
import { BulwarkFunction } from '../shared/function';
import { SECURE_BUCKET_DEFAULTS } from '../shared/bucket';
import { orgSessionRole } from '../tenant-files/session-role';

/** Each function's own database access (the data tier's `databaseAccess(role)`). */
export interface TenantKeysDatabases {
  /** As `bulwark_key_provisioner`: keyless tenants, key recording, system audit events. */
  readonly keyProvisioner: DatabaseAccess;
  /** As `bulwark_lifecycle`: due lifecycles, erasure, exports, system audit events. */
  readonly lifecycle: DatabaseAccess;
}

export interface TenantKeysProps {
  /** Deployment name: scopes tags, aliases and IAM conditions. */
  readonly deployment: string;
  /** Receives every alarm of this capability. */
  readonly alarmTopic: sns.ITopic;
  /**
   * Database wiring, one role per function (migrations/0401). Without it (a stage with no data
   * tier), the functions are deployed outside any VPC, hold no database endpoint, and the lifecycle
   * schedule is disabled.
   * @default - not wired
   */
  readonly databases?: TenantKeysDatabases;
  /** How often due tenants and pending exports are processed. @default rate(5 minutes) */
  readonly schedule?: events.Schedule;
  /**
   * How often the provisioner sweeps for live tenants left without a key (a lost invocation at
   * tenant creation). Each sweep provisions for as long as the function's 5-minute timeout allows,
   * so back to back they heal at the KMS CreateKey rate. @default rate(5 minutes)
   */
  readonly keylessSweepSchedule?: events.Schedule;
  /** KMS pending window before a shredded tenant's key is destroyed (7-30 days). @default 7 days */
  readonly keyPendingWindow?: Duration;
  /**
   * The tenant file store's bucket (lib/tenant-files/file-store.ts): the lifecycle erases every
   * version under `orgs/<org_id>/` when it shreds a tenant.
   * @default - no file store
   */
  readonly filesBucket?: s3.IBucket;
}

/**
 * Per-tenant KMS keys and the tenant lifecycle:
 *
 * - provisioner function: creates a tenant's key (only with the required tags, aliases only under
 *   `alias/bulwark/<deployment>/tenant/`), or validates an enterprise tenant's own key;
 * - lifecycle function on a schedule: cancelled -> grace -> shredded (rows, objects, key deletion),
 *   and tenant exports;
 * - a scheduled sweep of the provisioner that gives a key to any live tenant left without one;
 * - export bucket: SSE-KMS under its own key, TLS only, versioned, exports expire after 7 days;
 * - alarms on function errors, throttles and dead letters, to the deployment's alarm topic.
 *
 * No role is given `kms:*`; every KMS permission is scoped by resource, tag or request condition.
 */
export class TenantKeys extends Construct {
  public readonly provisioner: lambda.IFunction;
  public readonly lifecycle: lambda.IFunction;
  public readonly exportBucket: s3.IBucket;
  public readonly exportKey: kms.IKey;
  /**
   * Everything the tenant API needs here, for its role to attach: lambda:InvokeFunction on the
   * provisioner (BYOK synchronously, new tenants asynchronously), s3:GetObject on exports/* and
   * kms:Decrypt through S3 on the export key (signed download links). A managed policy in this
   * stack, so its resources resolve locally and this stack never references the API's.
   */
  public readonly apiAccessPolicy: iam.ManagedPolicy;
  /**
   * The export reader (docs/tenant-files.md, "Export"): assumed only by the lifecycle function,
   * only with an `org_id` session tag, it reads that organisation's released files under its key.
   * Present when a file store is given.
   */
  public readonly filesExportReader?: iam.Role;
  public readonly alarms: cloudwatch.Alarm[] = [];
  private readonly deployment: string;

  constructor(scope: Construct, id: string, props: TenantKeysProps) {
    super(scope, id);
    const stack = Stack.of(this);
    this.deployment = props.deployment;
    const pendingDays = (props.keyPendingWindow ?? Duration.days(7)).toDays();
    if (pendingDays < 7 || pendingDays > 30) throw new Error('keyPendingWindow must be 7-30 days (KMS limits)');

    const keyArns = stack.formatArn({ service: 'kms', resource: 'key', resourceName: '*' });
    const aliasArns = stack.formatArn({
      service: 'kms',
      resource: 'alias',
      resourceName: `${aliasPrefix(props.deployment).slice('alias/'.length)}*`,
    });
    const ownTenantKeys = {
      StringEquals: {
        [`aws:ResourceTag/${TAG_DEPLOYMENT}`]: props.deployment,
        [`aws:ResourceTag/${TAG_KEY_CLASS}`]: TENANT_KEY_CLASS,
      },
    };

    // --- storage keys -----------------------------------------------------------------------
    const logKey = customerKey(this, 'LogKey', `Bulwark ${props.deployment}: tenant-keys function logs`);
    allowLogsToUseKey(logKey);
    // EventBridge and Lambda write failed events to the dead-letter queue encrypted with this key.
    allowEventsToUseKey(logKey);

    const exportKey = customerKey(this, 'ExportKey', `Bulwark ${props.deployment}: tenant exports`);
    this.exportKey = exportKey;

    // --- export bucket ----------------------------------------------------------------------
    const bucket = new s3.Bucket(this, 'ExportBucket', {
      ...SECURE_BUCKET_DEFAULTS,
      encryption: s3.BucketEncryption.KMS,
      encryptionKey: exportKey,
      bucketKeyEnabled: true,
      lifecycleRules: [
        {
          id: 'ExpireExports',
          expiration: Duration.days(EXPORT_RETENTION_DAYS),
          noncurrentVersionExpiration: Duration.days(1),
          abortIncompleteMultipartUploadAfter: Duration.days(1),
        },
      ],
    });
    this.exportBucket = bucket;
    const ephemeral =
      'Tenant exports live at most 7 days (lifecycle expiry) and can be regenerated from the database at any time; a cross-region replica would only widen where a tenant copy exists.';
    for (const rule of [
      'HIPAA.Security-S3BucketReplicationEnabled',
      'NIST.800.53.R5-S3BucketReplicationEnabled',
      'PCI.DSS.321-S3BucketReplicationEnabled',
    ]) {
      acknowledge(bucket, rule, ephemeral);
    }
    // S3 delivers server access logs only to an SSE-S3 target bucket, and this stack has none: the
    // record of who fetched an export is the API's audit event at issuance, not an S3 log at read.
    const accessRecorded =
      'S3 server access logging is not enabled on this bucket. Exports are read only through pre-signed URLs of at most 15 minutes that the API issues after an Owner check, and each issuance is audited (tenant.export_downloaded: user, IP, time).';
    for (const rule of [
      'AwsSolutions-S1',
      'HIPAA.Security-S3BucketLoggingEnabled',
      'NIST.800.53.R5-S3BucketLoggingEnabled',
      'PCI.DSS.321-S3BucketLoggingEnabled',
    ]) {
      acknowledge(bucket, rule, accessRecorded);
    }

    // --- failures ---------------------------------------------------------------------------
    const deadLetters = deadLetterQueue(this, 'DeadLetters', {
      encryptionKey: logKey,
      deadLetterOf: 'the tenant-keys functions and their schedule',
      servesFunction: true,
    });

    // --- functions ---------------------------------------------------------------------------
    const dbs = props.databases;
    const baseEnv = { DEPLOYMENT: props.deployment, ACCOUNT_ID: stack.account };

    const provisioner = this.fn('Provisioner', {
      entry: 'provisioner-handler.ts',
      description: 'Creates or adopts a tenant KMS key and records it on the tenant row',
      environment: baseEnv,
      deadLetters,
      logKey,
      database: dbs?.keyProvisioner,
      // Bounds CreateKey to well under the 5 requests/second KMS quota (docs/tenant-keys.md).
      concurrency: 2,
      // The keyless sweep works through a backlog until 30 s before this (lambda/tenant-keys/reconcile.ts).
      timeout: Duration.minutes(5),
      wildcardReason:
        'kms:CreateKey and the kms:TagResource that CreateKey with Tags is authorized as act on a key that does not exist yet, so IAM only accepts Resource "*"; both are bound by aws:RequestTag/aws:TagKeys and key-spec conditions, and TagResource by Null aws:ResourceTag/bulwark:key-class, so it cannot re-tag any key that already has a class (every platform and tenant key).',
      statements: [
        new iam.PolicyStatement({
          sid: 'CreateTenantKeysOnlyWithTheirTags',
          actions: ['kms:CreateKey'],
          resources: ['*'],
          conditions: {
            StringEquals: {
              [`aws:RequestTag/${TAG_DEPLOYMENT}`]: props.deployment,
              [`aws:RequestTag/${TAG_KEY_CLASS}`]: TENANT_KEY_CLASS,
              'kms:KeySpec': 'SYMMETRIC_DEFAULT',
              'kms:KeyUsage': 'ENCRYPT_DECRYPT',
              'kms:KeyOrigin': 'AWS_KMS',
            },
            'ForAllValues:StringEquals': { 'aws:TagKeys': [...TENANT_KEY_TAG_KEYS] },
            Null: { [`aws:RequestTag/${TAG_ORG}`]: 'false' },
            Bool: { 'kms:MultiRegion': 'false' },
          },
        }),
        // CreateKey with Tags is authorized as kms:TagResource too, on a key that does not exist yet
        // (so Resource "*" and no resource tags). The Null condition confines it to exactly that:
        // a key that already carries a class tag (every platform key, every tenant key) cannot be
        // re-tagged into this deployment's tenant class, where the statements below would reach it.
        new iam.PolicyStatement({
          sid: 'TagTenantKeysAtCreation',
          actions: ['kms:TagResource'],
          resources: ['*'],
          conditions: {
            StringEquals: {
              [`aws:RequestTag/${TAG_DEPLOYMENT}`]: props.deployment,
              [`aws:RequestTag/${TAG_KEY_CLASS}`]: TENANT_KEY_CLASS,
            },
            'ForAllValues:StringEquals': { 'aws:TagKeys': [...TENANT_KEY_TAG_KEYS] },
            Null: { [`aws:ResourceTag/${TAG_KEY_CLASS}`]: 'true', [`aws:RequestTag/${TAG_ORG}`]: 'false' },
          },
        }),
        new iam.PolicyStatement({
          sid: 'AliasesOnlyUnderTheTenantPrefix',
          actions: ['kms:CreateAlias'],
          resources: [aliasArns],
        }),
        new iam.PolicyStatement({
          sid: 'AdministerOwnTenantKeys',
          actions: ['kms:CreateAlias', 'kms:EnableKeyRotation', 'kms:ScheduleKeyDeletion'],
          resources: [keyArns],
          conditions: ownTenantKeys,
        }),
        // The key policy refresh (lambda/tenant-keys/policy-refresh.ts) and the BYOK policy check
        // (after the key's tags): only keys tagged as this deployment's tenant keys. Each key's own
        // policy delegates both to the account (AccountAdministrationWithoutUse).
        new iam.PolicyStatement({
          sid: 'RefreshOwnTenantKeyPolicies',
          actions: ['kms:GetKeyPolicy', 'kms:PutKeyPolicy'],
          resources: [keyArns],
          conditions: ownTenantKeys,
        }),
        // Read-only, and needed on keys we did not create: enterprise tenants' own keys are checked,
        // and every key's tags are read before its ARN is recorded for a tenant.
        new iam.PolicyStatement({
          sid: 'InspectKeysForByok',
          actions: ['kms:DescribeKey', 'kms:GetKeyRotationStatus', 'kms:ListResourceTags'],
          resources: [keyArns],
        }),
      ],
    });

    const lifecycle = this.fn('Lifecycle', {
      entry: 'lifecycle-handler.ts',
      description: 'Advances cancelled tenants through grace to shredding, and writes tenant exports',
      environment: {
        ...baseEnv,
        EXPORT_BUCKET: bucket.bucketName,
        EXPORT_KEY_ARN: exportKey.keyArn,
        KEY_PENDING_WINDOW_DAYS: String(pendingDays),
        ...(props.filesBucket ? { FILES_BUCKET: props.filesBucket.bucketName } : {}),
      },
      deadLetters,
      logKey,
      database: dbs?.lifecycle,
      // One run at a time: runs are idempotent, never concurrent.
      concurrency: 1,
      timeout: Duration.minutes(10),
      memorySize: 512,
      statements: [
        ...(props.filesBucket ? this.fileErasure(props.filesBucket) : []),
        new iam.PolicyStatement({
          sid: 'ScheduleDeletionOfOwnTenantKeys',
          // ListResourceTags: the org-id tag is checked against the tenant before every deletion.
          actions: ['kms:ScheduleKeyDeletion', 'kms:DescribeKey', 'kms:ListResourceTags'],
          resources: [keyArns],
          conditions: ownTenantKeys,
        }),
        new iam.PolicyStatement({
          sid: 'WriteAndEraseExports',
          // AbortMultipartUpload: a failed streamed export leaves no parts behind.
          actions: ['s3:PutObject', 's3:AbortMultipartUpload', 's3:DeleteObject', 's3:DeleteObjectVersion'],
          resources: [bucket.arnForObjects('exports/*')],
        }),
        new iam.PolicyStatement({
          sid: 'ListExportVersions',
          actions: ['s3:ListBucketVersions', 's3:ListBucket'],
          resources: [bucket.bucketArn],
          conditions: { StringLike: { 's3:prefix': ['exports/*'] } },
        }),
        new iam.PolicyStatement({
          sid: 'EncryptExportsThroughS3',
          actions: ['kms:GenerateDataKey', 'kms:Decrypt'],
          resources: [exportKey.keyArn],
          conditions: { StringEquals: { 'kms:ViaService': `s3.${stack.region}.amazonaws.com` } },
        }),
      ],
    });
    this.provisioner = provisioner.fn;
    this.lifecycle = lifecycle.fn;
    if (props.filesBucket) {
      const reader = this.exportReader(props.filesBucket, lifecycle.role);
      lifecycle.fn.addEnvironment('FILES_READER_ROLE_ARN', reader.roleArn);
      this.filesExportReader = reader;
    }

    for (const f of [provisioner, lifecycle]) {
      acknowledge(
        f.policy,
        `AwsSolutions-IAM5[Resource::${this.findingArn(keyArns)}]`,
        f === provisioner
          ? "Tenant keys are created at run time, one per tenant; writes are limited by aws:ResourceTag to this deployment's tenant keys, and only read-only inspection (metadata, policy, rotation, tags) is unconditioned, to check bring-your-own keys and every key's tags before recording it."
          : "Tenant keys are created at run time, one per tenant; the statement is limited by aws:ResourceTag to this deployment's tenant keys.",
      );
    }
    acknowledge(
      provisioner.policy,
      `AwsSolutions-IAM5[Resource::${this.findingArn(aliasArns)}]`,
      "One alias per tenant is created at run time; the wildcard is confined to this deployment's documented tenant alias prefix.",
    );
    if (props.filesBucket) {
      acknowledge(
        lifecycle.policy,
        `AwsSolutions-IAM5[Resource::<${stack.getLogicalId(props.filesBucket.node.defaultChild as s3.CfnBucket)}.Arn>/${FILES_ROOT}*]`,
        "Tenant files are named per organisation at run time; erasure is confined to the bucket's orgs/ prefix, and each run deletes one shredded tenant's orgs/<org_id>/ versions only.",
      );
    }
    acknowledge(
      lifecycle.policy,
      `AwsSolutions-IAM5[Resource::<${stack.getLogicalId(bucket.node.defaultChild as s3.CfnBucket)}.Arn>/exports/*]`,
      'Export objects are named per tenant and request at run time; access is confined to the exports/ prefix of this bucket.',
    );

    // --- schedule -------------------------------------------------------------------------------
    const rule = new events.Rule(this, 'Schedule', {
      description: 'Processes due tenant lifecycles and pending exports',
      schedule: props.schedule ?? events.Schedule.rate(Duration.minutes(5)),
      // Without the database there is nothing to process: the schedule waits for the wiring.
      enabled: dbs !== undefined,
    });
    rule.addTarget(
      new targets.LambdaFunction(lifecycle.fn, {
        deadLetterQueue: deadLetters,
        retryAttempts: 0,
        maxEventAge: Duration.hours(1),
      }),
    );

    this.apiAccessPolicy = new iam.ManagedPolicy(this, 'ApiAccessPolicy', {
      description: 'Tenant API: invoke the tenant key provisioner, sign tenant export download links',
    });
    this.grantProvisionerInvoke(this.apiAccessPolicy);
    this.grantExportDownload(this.apiAccessPolicy);
    acknowledge(
      this.apiAccessPolicy,
      `AwsSolutions-IAM5[Resource::<${stack.getLogicalId(bucket.node.defaultChild as s3.CfnBucket)}.Arn>/exports/*]`,
      'Export objects are named per tenant and request at run time; reads are confined to the exports/ prefix and are only ever handed out as signed links of at most 15 minutes after an Owner check.',
    );

    // A tenant is given its key by an asynchronous invocation after it is created; this sweep
    // provisions any live tenant whose invocation was lost (app.keyless_tenants, migrations/0302).
    const sweep = new events.Rule(this, 'KeylessSweep', {
      description: 'Provisions a key for every live tenant left without one',
      schedule: props.keylessSweepSchedule ?? events.Schedule.rate(Duration.minutes(5)),
      enabled: dbs !== undefined,
    });
    sweep.addTarget(
      new targets.LambdaFunction(provisioner.fn, {
        event: events.RuleTargetInput.fromObject({ sweep: true }),
        deadLetterQueue: deadLetters,
        retryAttempts: 0,
        maxEventAge: Duration.minutes(15),
      }),
    );

    // --- alarms -----------------------------------------------------------------------------------
    const alarm = (id: string, metric: cloudwatch.IMetric, description: string) => {
      const a = new cloudwatch.Alarm(this, id, {
        metric,
        threshold: 1,
        evaluationPeriods: 1,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
        alarmDescription: description,
      });
      a.addAlarmAction(new actions.SnsAction(props.alarmTopic));
      this.alarms.push(a);
    };
    const period = Duration.minutes(5);
    alarm('ProvisionerErrors', provisioner.fn.metricErrors({ period }), 'Tenant key provisioning failed');
    alarm('ProvisionerThrottles', provisioner.fn.metricThrottles({ period }), 'Tenant key provisioning is throttled');
    alarm('LifecycleErrors', lifecycle.fn.metricErrors({ period }), 'A tenant lifecycle or export run failed');
    // The lifecycle refuses to delete a key whose tags do not name its tenant; the run fails (so
    // LifecycleErrors fires too), and this names the cause: a wrong ARN on a tenant row.
    const refusals = new logs.MetricFilter(this, 'KeyDeletionRefusals', {
      logGroup: lifecycle.logGroup,
      filterPattern: logs.FilterPattern.anyTerm(KEY_OWNERSHIP_MISMATCH),
      metricNamespace: `Bulwark/${props.deployment}/TenantKeys`,
      metricName: 'KeyDeletionRefused',
      metricValue: '1',
    });
    alarm(
      'KeyDeletionRefusedAlarm',
      refusals.metric({ period, statistic: cloudwatch.Stats.SUM }),
      'The tenant lifecycle refused to delete a key whose tags do not name the tenant it is recorded for',
    );
    // The provisioner's scheduled run re-puts key policies behind KEY_POLICY_VERSION and logs how
    // many keys are still behind; managed keys behind for three hours mean the refresh is stuck.
    const behind = (id: string, field: string) =>
      new logs.MetricFilter(this, id, {
        logGroup: provisioner.logGroup,
        filterPattern: logs.FilterPattern.stringValue('$.message', '=', KEY_POLICY_REFRESH_LOG),
        metricNamespace: `Bulwark/${props.deployment}/TenantKeys`,
        metricName: id,
        metricValue: `$.${field}`,
      });
    const managedBehind = behind('ManagedKeysBehindPolicy', 'behindManaged');
    behind('ByokKeysBehindPolicy', 'behindByok');
    const behindAlarm = new cloudwatch.Alarm(this, 'KeysBehindPolicyAlarm', {
      metric: managedBehind.metric({ period: Duration.hours(1), statistic: cloudwatch.Stats.MINIMUM }),
      threshold: 1,
      evaluationPeriods: 3,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      alarmDescription: 'Managed tenant keys have carried an outdated key policy for three hours',
    });
    behindAlarm.addAlarmAction(new actions.SnsAction(props.alarmTopic));
    this.alarms.push(behindAlarm);
    alarm(
      'DeadLettersAlarm',
      deadLetters.metricApproximateNumberOfMessagesVisible({ period }),
      'A tenant-keys invocation or scheduled event was dead-lettered',
    );
  }

  /**
   * Lets `role` (an API role) use tenant keys: GenerateDataKey and Decrypt on this deployment's
   * tenant keys, only with an org_id encryption context, and tags the role as a tenant-key user,
   * which each key's own policy requires alongside `org_id = <that tenant>`.
   */
  public grantTenantKeyUse(role: iam.IRole, policy: iam.ManagedPolicy | iam.Policy): void {
    this.tagAsTenantKeyUser(role);
    const tenantKeys = Stack.of(this).formatArn({ service: 'kms', resource: 'key', resourceName: '*' });
    // Every grantee carries the same wildcard: the keys do not exist until tenants do.
    acknowledge(
      policy,
      `AwsSolutions-IAM5[Resource::${this.findingArn(tenantKeys)}]`,
      "Tenant keys are created at run time, one per tenant; use is limited by aws:ResourceTag to this deployment's tenant keys and requires an org_id encryption context.",
    );
    policy.addStatements(
      new iam.PolicyStatement({
        sid: 'UseTenantKeysOnlyWithAnOrgContext',
        actions: ['kms:GenerateDataKey', 'kms:Decrypt'],
        resources: [tenantKeys],
        conditions: {
          StringEquals: {
            [`aws:ResourceTag/${TAG_DEPLOYMENT}`]: this.deployment,
            [`aws:ResourceTag/${TAG_KEY_CLASS}`]: TENANT_KEY_CLASS,
          },
          Null: { 'kms:EncryptionContext:org_id': 'false' },
        },
      }),
    );
  }

  /**
   * Tags `role` as a tenant-key user of this deployment, which each key's own policy requires
   * (alongside the tenant's own org_id context), without granting it anything: its own policy says
   * which keys it may use and how (the files role: its organisation's key, through S3 only).
   */
  public tagAsTenantKeyUser(role: iam.IRole): void {
    // The key policies match the principal tag, so the tag must land on a real AWS::IAM::Role: an
    // imported role or an immutable view (withoutPolicyUpdates) would silently stay untagged.
    // Tags.of() walks the construct's own subtree, so the CfnRole must be in it.
    const cfnRole = role.node.defaultChild;
    if (!(cfnRole instanceof iam.CfnRole) || cfnRole.node.scope !== role) {
      throw new Error(
        `grantTenantKeyUse(${role.node.path}): needs a role defined in this app, not an imported or immutable view`,
      );
    }
    Tags.of(role).add(TENANT_KEY_USER_TAG, this.deployment);
  }

  /**
   * Lets `policy`'s role invoke the provisioner (the tenant API: bring-your-own-key synchronously,
   * key provisioning at tenant creation asynchronously). The function itself, no alias or version.
   */
  public grantProvisionerInvoke(policy: iam.ManagedPolicy | iam.Policy): void {
    policy.addStatements(
      new iam.PolicyStatement({
        sid: 'InvokeTenantKeyProvisioner',
        actions: ['lambda:InvokeFunction'],
        resources: [this.provisioner.functionArn],
      }),
    );
  }

  /** Lets `policy`'s role hand out export download links (GetObject under exports/, through S3). */
  public grantExportDownload(policy: iam.ManagedPolicy | iam.Policy): void {
    policy.addStatements(
      new iam.PolicyStatement({
        sid: 'ReadTenantExports',
        actions: ['s3:GetObject'],
        resources: [this.exportBucket.arnForObjects('exports/*')],
      }),
      new iam.PolicyStatement({
        sid: 'DecryptTenantExportsThroughS3',
        actions: ['kms:Decrypt'],
        resources: [this.exportKey.keyArn],
        conditions: { StringEquals: { 'kms:ViaService': `s3.${Stack.of(this).region}.amazonaws.com` } },
      }),
    );
  }

  /** Erasing a shredded tenant's files: every version under `orgs/` (the eraser lists one tenant's prefix). */
  private fileErasure(files: s3.IBucket): iam.PolicyStatement[] {
    return [
      new iam.PolicyStatement({
        sid: 'EraseShreddedTenantFiles',
        actions: ['s3:DeleteObject', 's3:DeleteObjectVersion'],
        resources: [files.arnForObjects(`${FILES_ROOT}*`)],
      }),
      new iam.PolicyStatement({
        sid: 'ListTenantFileVersions',
        actions: ['s3:ListBucketVersions', 's3:ListBucket'],
        resources: [files.bucketArn],
        conditions: { StringLike: { 's3:prefix': [`${FILES_ROOT}*`] } },
      }),
    ];
  }

  /**
   * The role the export worker reads a tenant's files with. Read-only, and only what the session's
   * `org_id` tag names: `s3:GetObject` of released objects under `orgs/<org_id>/`, `kms:Decrypt`
   * through S3 on the key tagged with that organisation, under its context and prefix. Tagged as a
   * tenant-key user, which the key's `TenantFilesThroughS3UnderItsOwnPrefix` statement requires.
   * Its trust policy names the lifecycle function's role only, requires the `org_id` tag shaped like
   * a UUID and allows no other tag key, as the files role's does for the authorizer. No identity
   * statement on the lifecycle role: in one account a trust policy naming the role's ARN suffices.
   */
  private exportReader(files: s3.IBucket, lifecycleRole: iam.IRole): iam.Role {
    const stack = Stack.of(this);
    const role = orgSessionRole(this, 'FilesExportReader', {
      assumedBy: lifecycleRole,
      description: "Tenant export: reads one organisation's released files, scoped by the org_id session tag",
      tagSid: 'TagSessionsWithTheExportedOrganisationOnly',
    });
    const orgTag = `\${aws:PrincipalTag/${FILES_SESSION_TAG}}`;
    const own = files.arnForObjects(`${FILES_ROOT}${orgTag}/*`);
    const tenantKeys = stack.formatArn({ service: 'kms', resource: 'key', resourceName: '*' });
    const policy = new iam.ManagedPolicy(this, 'FilesExportReaderPolicy', {
      description: "Tenant export: the session's own organisation's released files, under its own key, through S3",
      roles: [role],
      statements: [
        new iam.PolicyStatement({
          sid: 'ReadOwnOrganisationFilesOnceReleased',
          actions: ['s3:GetObject'],
          resources: [own],
          conditions: { StringEquals: { [`s3:ExistingObjectTag/${FILE_SCAN_TAG}`]: FILE_SCAN_CLEAN } },
        }),
        new iam.PolicyStatement({
          sid: 'DecryptOwnOrganisationFilesThroughS3Only',
          actions: ['kms:Decrypt'],
          resources: [tenantKeys],
          conditions: {
            StringEquals: {
              [`aws:ResourceTag/${TAG_ORG}`]: orgTag,
              [`aws:ResourceTag/${TAG_DEPLOYMENT}`]: this.deployment,
              [`aws:ResourceTag/${TAG_KEY_CLASS}`]: TENANT_KEY_CLASS,
              [`kms:EncryptionContext:${FILES_SESSION_TAG}`]: orgTag,
              'kms:ViaService': `s3.${stack.region}.amazonaws.com`,
            },
            StringLike: { 'kms:EncryptionContext:aws:s3:arn': own },
          },
        }),
      ],
    });
    this.tagAsTenantKeyUser(role);
    const perTenant =
      "Tenant objects and keys exist per organisation at run time; every wildcard is bound to the session tag org_id, which only the lifecycle function can set (this role's trust policy), to the organisation it exports.";
    acknowledge(policy, `AwsSolutions-IAM5[Resource::${this.findingArn(tenantKeys)}]`, perTenant);
    acknowledge(
      policy,
      `AwsSolutions-IAM5[Resource::<${stack.getLogicalId(files.node.defaultChild as s3.CfnBucket)}.Arn>/${FILES_ROOT}<aws:PrincipalTag/${FILES_SESSION_TAG}>/*]`,
      perTenant,
    );
    return role;
  }

  private findingArn(arn: string): string {
    const resolved: unknown = Stack.of(this).resolve(arn);
    if (typeof resolved !== 'string') throw new Error('TenantKeys needs a stack with a concrete account and region');
    return resolved;
  }

  private fn(
    id: string,
    o: {
      entry: string;
      description: string;
      environment: Record<string, string>;
      deadLetters: sqs.IQueue;
      logKey: kms.IKey;
      database: DatabaseAccess | undefined;
      concurrency: number;
      statements: iam.PolicyStatement[];
      timeout?: Duration;
      memorySize?: number;
      wildcardReason?: string;
    },
  ): { fn: nodejs.NodejsFunction; role: iam.Role; policy: iam.ManagedPolicy; logGroup: logs.ILogGroup } {
    const f = new BulwarkFunction(this, id, {
      entry: path.join(__dirname, '..', '..', 'lambda', 'tenant-keys', o.entry),
      description: o.description,
      // Failed asynchronous invocations land in the shared queue, as the function's DLQ and its
      // on-failure destination (which also records the error and request context).
      invocation: { kind: 'asynchronous', deadLetterQueue: o.deadLetters, retryAttempts: 2 },
      reservedConcurrentExecutions: o.concurrency,
      encryptionKey: o.logKey,
      memorySize: o.memorySize,
      timeout: o.timeout ?? Duration.seconds(60),
      environment: o.environment,
      ...(o.database
        ? { network: o.database.network }
        : {
            outsideVpc:
              'Not wired to the database yet (the data tier provides the VPC and RDS Proxy): until then the function holds no database endpoint, reaches only AWS APIs, and its schedule is disabled.',
          }),
      statements: o.statements,
      wildcardReason: o.wildcardReason,
    });
    o.database?.connect(f);
    const fn = f.function;
    const policy = f.policy;
    return { fn, role: f.role, policy, logGroup: f.logGroup };
  }
}
