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
import { ARCHIVE_METRICS } from '../../contracts/audit-archive';
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
  /** The deployment's name: the dimension of the archive metrics. */
  readonly deployment: string;
  /** @default Duration.minutes(5) */
  readonly interval?: Duration;
  /**
   * Shipper invocations started each interval, running at once: each leases its own organisations
   * (migrations/0405), so archiving throughput grows with this. At most 5. @default 2
   */
  readonly workers?: number;
  /**
   * Alarm when the oldest audit record not yet archived is older than this, or when the shipper
   * publishes no measurement (not running, failing before it measures). @default Duration.hours(1)
   */
  readonly maxArchiveDelay?: Duration;
}

/**
 * The scheduled shipper: `workers` invocations of one function each interval (reserved concurrency
 * `workers`), each leasing its own organisations, writing only `orgs/*` objects with their
 * retention; alarmed on the oldest unshipped record's age (missing data breaching), errors,
 * throttles and undeliverable invocations.
 */
export class ArchiveShipper extends Construct {
  public readonly function: nodejs.NodejsFunction;

  constructor(scope: Construct, id: string, props: ArchiveShipperProps) {
    super(scope, id);
    const db = props.database;
    const workers = props.workers ?? 2;
    if (!Number.isInteger(workers) || workers < 1 || workers > 5) {
      throw new Error(`ArchiveShipper: workers must be an integer from 1 to 5, got ${workers}`);
    }
    const interval = props.interval ?? Duration.minutes(5);

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
      // One per worker; the leases (not the concurrency) keep two invocations off one chain.
      reservedConcurrentExecutions: workers,
      encryptionKey: logKey,
      memorySize: 512,
      timeout: Duration.minutes(5),
      network: db.network,
      environment: {
        AUDIT_BUCKET: props.bucket.bucketName,
        AUDIT_KEY_ARN: props.key.keyArn,
        AUDIT_RETENTION_MONTHS: JSON.stringify(props.retentionMonths),
        DEPLOYMENT: props.deployment,
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
    // One rule per worker: each starts one invocation per interval.
    for (let i = 0; i < workers; i++) {
      new events.Rule(this, i === 0 ? 'Schedule' : `Schedule${i + 1}`, {
        description: `Ships new audit records into the Object Lock archive (worker ${i + 1} of ${workers})`,
        schedule: events.Schedule.rate(interval),
        targets: [new targets.LambdaFunction(fn, { retryAttempts: 2, deadLetterQueue: undelivered })],
      });
    }

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
    // Fires on what the archive promises: no record waits longer than maxArchiveDelay. Every run
    // publishes the age (0 when nothing is owed), so missing data means the shipper is not running
    // or fails before measuring, and counts as breaching.
    const maxDelay = props.maxArchiveDelay ?? Duration.hours(1);
    new cloudwatch.Alarm(this, 'ArchiveDelay', {
      metric: new cloudwatch.Metric({
        namespace: ARCHIVE_METRICS.namespace,
        metricName: ARCHIVE_METRICS.oldestUnshippedSeconds,
        dimensionsMap: { [ARCHIVE_METRICS.dimension]: props.deployment },
        statistic: 'Maximum',
        period: Duration.minutes(Math.max(15, 3 * interval.toMinutes())),
      }),
      threshold: maxDelay.toSeconds(),
      evaluationPeriods: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
      treatMissingData: cloudwatch.TreatMissingData.BREACHING,
      alarmDescription: `An audit record has waited more than ${maxDelay.toHumanString()} for the archive, or the shipper has published no measurement`,
    }).addAlarmAction(new actions.SnsAction(props.alarmTopic));

    this.function = fn;
  }
}
