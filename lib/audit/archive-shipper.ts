import * as path from 'node:path';
import { Duration, Stack } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as actions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as nodejs from 'aws-cdk-lib/aws-lambda-nodejs';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import type * as sns from 'aws-cdk-lib/aws-sns';
import { Construct } from 'constructs';
import { acknowledge } from '../compliance/acknowledge';
import type { Plan } from '../../contracts/plans';
import { deadLetterQueue } from '../observability/dead-letter-queue';
import { allowEventsToUseKey, allowLogsToUseKey, customerKey } from '../observability/keys';
import type { DatabaseAccess } from '../data/database-access';
import { BulwarkFunction } from '../shared/function';

export interface ArchiveShipperProps {
  readonly bucket: s3.IBucket;
  readonly key: kms.IKey;
  /** `deployment.auditRetentionMonths`: per-object COMPLIANCE retention by plan. */
  readonly retentionMonths: Readonly<Record<Plan, number>>;
  /**
   * The shipper's own database access (`bulwark_audit_shipper`: EXECUTE on the
   * `app.audit_archive_*` functions, not the application role); the function runs where it says.
   */
  readonly database: DatabaseAccess;
  readonly alarmTopic: sns.ITopic;
  /** @default Duration.minutes(5) */
  readonly interval?: Duration;
}

/**
 * The scheduled shipper: one function (never two at once: reserved concurrency 1), run on a
 * schedule, writing only `orgs/*` objects with their retention, alarmed on errors, throttles and
 * undeliverable invocations.
 */
export class ArchiveShipper extends Construct {
  public readonly function: nodejs.NodejsFunction;

  constructor(scope: Construct, id: string, props: ArchiveShipperProps) {
    super(scope, id);
    const db = props.database;

    const logKey = customerKey(this, 'LogKey', 'Encrypts the audit shipper log group and its dead-letter queue');
    allowLogsToUseKey(logKey);
    allowEventsToUseKey(logKey);
    const undelivered = deadLetterQueue(this, 'Undelivered', {
      encryptionKey: logKey,
      deadLetterOf: 'the shipper schedule and function',
      servesFunction: true,
    });

    const shipper = new BulwarkFunction(this, 'Function', {
      entry: path.join(__dirname, '..', '..', 'lambda', 'audit', 'shipper-handler.ts'),
      description: 'Audit archive shipper: ships new audit records into the Object Lock archive',
      invocation: { kind: 'asynchronous', deadLetterQueue: undelivered, retryAttempts: 0 },
      // Never two at once.
      reservedConcurrentExecutions: 1,
      encryptionKey: logKey,
      memorySize: 512,
      timeout: Duration.minutes(5),
      network: db.network,
      environment: {
        AUDIT_BUCKET: props.bucket.bucketName,
        AUDIT_KEY_ARN: props.key.keyArn,
        AUDIT_RETENTION_MONTHS: JSON.stringify(props.retentionMonths),
      },
      // Exactly what shipping needs: write batch objects with their retention, read back a batch's
      // metadata after a conditional-write conflict, and use the archive key for SSE-KMS.
      statements: [
        new iam.PolicyStatement({
          sid: 'WriteArchiveBatches',
          actions: ['s3:PutObject', 's3:PutObjectRetention', 's3:GetObject'],
          resources: [props.bucket.arnForObjects('orgs/*')],
        }),
        new iam.PolicyStatement({
          sid: 'UseArchiveKey',
          actions: ['kms:GenerateDataKey', 'kms:Decrypt'],
          resources: [props.key.keyArn],
        }),
      ],
    });
    // Log in through the proxy as the shipper's own role only (IAM token, lambda/shared/db.ts).
    db.connect(shipper);
    const fn = shipper.function;
    acknowledge(
      shipper.policy,
      `AwsSolutions-IAM5[Resource::<${Stack.of(this).getLogicalId(props.bucket.node.defaultChild as s3.CfnBucket)}.Arn>/orgs/*]`,
      'Batch object keys (organisation and first sequence) are only known at run time; the grant is limited to the orgs/ prefix and to put, retention and read, never delete.',
    );
    new events.Rule(this, 'Schedule', {
      description: 'Ships new audit records into the Object Lock archive',
      schedule: events.Schedule.rate(props.interval ?? Duration.minutes(5)),
      targets: [new targets.LambdaFunction(fn, { retryAttempts: 2, deadLetterQueue: undelivered })],
    });

    const alarm = (id: string, metric: cloudwatch.IMetric, description: string): void => {
      new cloudwatch.Alarm(this, id, {
        metric,
        threshold: 1,
        evaluationPeriods: 1,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
        alarmDescription: description,
      }).addAlarmAction(new actions.SnsAction(props.alarmTopic));
    };
    alarm(
      'Errors',
      fn.metricErrors({ period: Duration.minutes(15) }),
      'Audit shipper failed (broken chain, archive conflict or outage)',
    );
    alarm('Throttles', fn.metricThrottles({ period: Duration.minutes(15) }), 'Audit shipper was throttled');
    alarm(
      'UndeliveredAlarm',
      undelivered.metricApproximateNumberOfMessagesVisible({ period: Duration.minutes(5) }),
      'Audit shipper invocations could not be delivered',
    );
    // Nothing shipped for a day while the schedule runs means the shipper is silently stuck.
    new cloudwatch.Alarm(this, 'NotRunning', {
      metric: fn.metricInvocations({ period: Duration.hours(1) }),
      threshold: 1,
      evaluationPeriods: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
      treatMissingData: cloudwatch.TreatMissingData.BREACHING,
      alarmDescription: 'Audit shipper has not run for an hour',
    }).addAlarmAction(new actions.SnsAction(props.alarmTopic));

    this.function = fn;
  }
}
