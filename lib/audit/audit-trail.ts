import { RemovalPolicy, Stack } from 'aws-cdk-lib';
import * as cloudtrail from 'aws-cdk-lib/aws-cloudtrail';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as logs from 'aws-cdk-lib/aws-logs';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import { Construct } from 'constructs';
import { acknowledge } from '../compliance/acknowledge';
import { LockedBucket } from './locked-bucket';
import { customerKey } from '../observability/keys';

export interface AuditTrailProps {
  /** Buckets whose object-level (data) events are recorded. */
  readonly dataEventBuckets: readonly s3.IBucket[];
  /** Receives the trail bucket's server access logs. */
  readonly accessLogsBucket: s3.IBucket;
  /** Default COMPLIANCE retention of the trail's log files, in months (at least 12). */
  readonly retentionMonths: number;
  /** @default logs.RetentionDays.ONE_YEAR */
  readonly logGroupRetention?: logs.RetentionDays;
  /**
   * The trail's name. Fixed, because the key policy names the trail's ARN and the trail references
   * the key: a generated name would be a circular dependency.
   * @default `<stack name>-<id>`
   */
  readonly trailName?: string;
}

/**
 * CloudTrail for the deployment's account: a multi-region trail homed in the deployment's region, so
 * it records every region's management events and the global services' (IAM, STS, sign-in, which
 * only us-east-1 records) plus S3 data events for the given buckets, with log file integrity
 * validation and KMS encryption under its own key. Every region's log files are delivered into one
 * Object Lock (COMPLIANCE) bucket and one encrypted CloudWatch log group, both in the home region:
 * bucket, key and log group stay inside the residency zone whatever region an event came from.
 */
export class AuditTrail extends Construct {
  public readonly trail: cloudtrail.Trail;
  public readonly bucket: s3.IBucket;
  public readonly key: kms.IKey;
  /** Every event the trail records, from every region; the trail alarms filter it. */
  public readonly logGroup: logs.ILogGroup;

  constructor(scope: Construct, id: string, props: AuditTrailProps) {
    super(scope, id);
    const { region, account, partition, stackName } = Stack.of(this);
    const trailName = props.trailName ?? `${stackName}-${id}`;
    const trailArn = `arn:${partition}:cloudtrail:${region}:${account}:trail/${trailName}`;

    const key = customerKey(this, 'Key', 'Encrypts CloudTrail log files and the trail log group');
    // CloudTrail itself encrypts log and digest files (docs: "Configure AWS KMS key policies for
    // CloudTrail"); without these CreateTrail fails with InsufficientEncryptionPolicyException.
    // aws:SourceArn limits the service to this trail (confused deputy). A multi-region trail has one
    // ARN, in its home region, and CloudTrail names it in the context of every region's log files.
    const cloudTrailService = new iam.ServicePrincipal('cloudtrail.amazonaws.com');
    key.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: 'CloudTrailEncryptsThisTrailsLogs',
        principals: [cloudTrailService],
        actions: ['kms:GenerateDataKey*'],
        resources: ['*'],
        conditions: {
          StringEquals: { 'aws:SourceArn': trailArn, 'kms:EncryptionContext:aws:cloudtrail:arn': trailArn },
        },
      }),
    );
    key.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: 'CloudTrailDescribesTheKey',
        principals: [cloudTrailService],
        actions: ['kms:DescribeKey'],
        resources: ['*'],
        conditions: { StringEquals: { 'aws:SourceArn': trailArn } },
      }),
    );
    key.addToResourcePolicy(
      new iam.PolicyStatement({
        principals: [new iam.ServicePrincipal(`logs.${region}.amazonaws.com`)],
        actions: ['kms:Encrypt*', 'kms:Decrypt*', 'kms:ReEncrypt*', 'kms:GenerateDataKey*', 'kms:Describe*'],
        resources: ['*'],
        conditions: {
          ArnLike: {
            'kms:EncryptionContext:aws:logs:arn': `arn:${partition}:logs:${region}:${account}:*`,
          },
        },
      }),
    );

    const bucket = new LockedBucket(this, 'Logs', {
      encryptionKey: key,
      retentionMonths: props.retentionMonths,
      accessLogsBucket: props.accessLogsBucket,
      accessLogsPrefix: 'cloudtrail/',
    }).bucket;

    const logGroup = new logs.LogGroup(this, 'LogGroup', {
      encryptionKey: key,
      retention: props.logGroupRetention ?? logs.RetentionDays.ONE_YEAR,
      removalPolicy: RemovalPolicy.RETAIN,
    });

    const trail = new cloudtrail.Trail(this, 'Trail', {
      trailName,
      bucket,
      encryptionKey: key,
      enableFileValidation: true,
      isMultiRegionTrail: true,
      includeGlobalServiceEvents: true,
      sendToCloudWatchLogs: true,
      cloudWatchLogGroup: logGroup,
      managementEvents: cloudtrail.ReadWriteType.ALL,
    });
    trail.addS3EventSelector(
      props.dataEventBuckets.map((b) => ({ bucket: b })),
      { readWriteType: cloudtrail.ReadWriteType.ALL, includeManagementEvents: true },
    );

    // The role CloudTrail assumes to write to the log group: CDK scopes its policy to exactly
    // logs:CreateLogStream and logs:PutLogEvents on this trail's log group.
    const logsPolicy = trail.node.findChild('LogsRole').node.findChild('DefaultPolicy');
    for (const rule of [
      'HIPAA.Security-IAMNoInlinePolicy',
      'NIST.800.53.R5-IAMNoInlinePolicy',
      'PCI.DSS.321-IAMNoInlinePolicy',
    ]) {
      acknowledge(
        logsPolicy,
        rule,
        "CDK-generated policy of the trail's CloudWatch Logs role, limited to CreateLogStream/PutLogEvents on this trail's own log group; it belongs to that one role only.",
      );
    }

    this.trail = trail;
    this.bucket = bucket;
    this.key = key;
    this.logGroup = logGroup;
  }
}
