import * as path from 'node:path';
import { Duration, Stack } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as actions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import type * as sns from 'aws-cdk-lib/aws-sns';
import type * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { FILES_ROOT, FILE_SCAN_CLEAN, FILE_SCAN_REJECTED, FILE_SCAN_TAG } from '../../contracts/tenant-files';
import { TAG_DEPLOYMENT, TAG_KEY_CLASS, TENANT_KEY_CLASS } from '../../contracts/tenant-keys';
import { acknowledge } from '../compliance/acknowledge';
import type { DatabaseAccess } from '../data/database-access';
import { deadLetterQueue, undeliveredAlarm } from '../observability/dead-letter-queue';
import { allowEventsToUseKey, customerKey } from '../observability/keys';
import { BulwarkFunction } from '../shared/function';

export interface FileCheckerProps {
  /** The file store's bucket (EventBridge notifications on). */
  readonly bucket: s3.IBucket;
  /** Deployment name: the `bulwark:deployment` tag of the tenant keys the checker may decrypt with. */
  readonly deployment: string;
  /** The checker's database access, as `bulwark_file_checker` (one SECURITY DEFINER function). */
  readonly database: DatabaseAccess;
  /** Receives the checker's alarms (errors, dead letters). */
  readonly alarmTopic: sns.ITopic;
  /** Reserved concurrency: bounds database connections and S3/KMS request rates. @default 5 */
  readonly concurrency?: number;
}

/**
 * The quarantine checker (docs/tenant-files.md "Quarantine"): S3 `Object Created` events of the
 * file store's `orgs/` keys, through EventBridge, to a function that reads the first bytes of the
 * version, lets the database decide (`app.record_file_check`, migrations/0413) and marks the version
 * `bulwark-scan=clean` or `=rejected`. Its role reads versions under `orgs/` only, decrypts only
 * through S3 with an `org_id` context (each tenant key's own policy binds that context to its
 * organisation), writes only the scan mark, and deletes nothing.
 */
export class FileChecker extends Construct {
  public readonly function: BulwarkFunction;
  /** The checker's role: the one principal the bucket policy lets write the release mark. */
  public readonly role: iam.Role;
  public readonly deadLetters: sqs.IQueue;
  public readonly rules: events.Rule[] = [];
  public readonly alarms: cloudwatch.Alarm[] = [];

  constructor(scope: Construct, id: string, props: FileCheckerProps) {
    super(scope, id);
    const stack = Stack.of(this);
    const files = props.bucket.arnForObjects(`${FILES_ROOT}*`);
    const tenantKeys = stack.formatArn({ service: 'kms', resource: 'key', resourceName: '*' });

    const key = customerKey(this, 'Key', 'Encrypts the tenant-file checker logs, environment and dead letters');
    // EventBridge writes undeliverable events to the dead-letter queue encrypted with this key.
    allowEventsToUseKey(key);
    const deadLetters = deadLetterQueue(this, 'DeadLetters', {
      encryptionKey: key,
      deadLetterOf: 'the tenant-file checker and its EventBridge rules',
      servesFunction: true,
    });
    this.deadLetters = deadLetters;

    const fn = new BulwarkFunction(this, 'Function', {
      entry: path.join(__dirname, '..', '..', 'lambda', 'tenant-files', 'checker-handler.ts'),
      description: 'Tenant files: checks each upload (size, checksum, type, tenant key) and releases or rejects it',
      invocation: { kind: 'asynchronous', deadLetterQueue: deadLetters, retryAttempts: 2 },
      reservedConcurrentExecutions: props.concurrency ?? 5,
      encryptionKey: key,
      timeout: Duration.seconds(30),
      network: props.database.network,
      environment: {
        FILES_BUCKET: props.bucket.bucketName,
      },
      statements: [
        // Every call names the event's version (HeadObject, the ranged GetObject): GetObjectVersion.
        new iam.PolicyStatement({
          sid: 'ReadUploadedVersions',
          actions: ['s3:GetObjectVersion'],
          resources: [files],
        }),
        new iam.PolicyStatement({
          sid: 'MarkCheckedVersions',
          actions: ['s3:PutObjectVersionTagging'],
          resources: [files],
          conditions: {
            'ForAllValues:StringEquals': { 's3:RequestObjectTagKeys': [FILE_SCAN_TAG] },
            StringEquals: { [`s3:RequestObjectTag/${FILE_SCAN_TAG}`]: [FILE_SCAN_CLEAN, FILE_SCAN_REJECTED] },
          },
        }),
        // Any organisation's key, but only through S3, only for an object under orgs/, only with an
        // org_id context: each key's own policy admits it for its own org_id and prefix only.
        new iam.PolicyStatement({
          sid: 'DecryptTenantFilesThroughS3',
          actions: ['kms:Decrypt'],
          resources: [tenantKeys],
          conditions: {
            StringEquals: {
              [`aws:ResourceTag/${TAG_DEPLOYMENT}`]: props.deployment,
              [`aws:ResourceTag/${TAG_KEY_CLASS}`]: TENANT_KEY_CLASS,
              'kms:ViaService': `s3.${stack.region}.amazonaws.com`,
            },
            Null: { 'kms:EncryptionContext:org_id': 'false' },
            StringLike: { 'kms:EncryptionContext:aws:s3:arn': files },
          },
        }),
      ],
    });
    props.database.connect(fn);
    this.function = fn;
    this.role = fn.role;
    acknowledge(
      fn.policy,
      `AwsSolutions-IAM5[Resource::<${stack.getLogicalId(props.bucket.node.defaultChild as s3.CfnBucket)}.Arn>/${FILES_ROOT}*]`,
      "Uploads are named per organisation and file at run time; the checker reads and marks versions under the bucket's orgs/ prefix only, writes no object and deletes none.",
    );
    acknowledge(
      fn.policy,
      `AwsSolutions-IAM5[Resource::${findingArn(stack, tenantKeys)}]`,
      "Tenant keys are created at run time, one per tenant; decryption is limited by aws:ResourceTag to this deployment's tenant keys, to S3 (kms:ViaService), to objects under orgs/ and to an org_id context, which each key's own policy binds to its organisation.",
    );

    const target = new targets.LambdaFunction(fn.function, {
      deadLetterQueue: deadLetters,
      retryAttempts: 8,
      maxEventAge: Duration.hours(6),
    });
    const uploads = new events.Rule(this, 'Uploads', {
      description: 'Tenant file uploads (S3 Object Created under orgs/) to the quarantine checker',
      eventPattern: {
        source: ['aws.s3'],
        detailType: ['Object Created'],
        detail: { bucket: { name: [props.bucket.bucketName] }, object: { key: [{ prefix: FILES_ROOT }] } },
      },
    });
    uploads.addTarget(target);
    this.rules.push(uploads);

    const period = Duration.minutes(5);
    const errors = new cloudwatch.Alarm(this, 'Errors', {
      metric: fn.function.metricErrors({ period }),
      threshold: 1,
      evaluationPeriods: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      alarmDescription: 'A tenant file check failed (it is retried; uploads stay quarantined meanwhile)',
    });
    const undelivered = undeliveredAlarm(
      this,
      'DeadLettersAlarm',
      deadLetters,
      'A tenant file upload could not be checked: it stays quarantined until its event is replayed',
    );
    for (const a of [errors, undelivered]) {
      a.addAlarmAction(new actions.SnsAction(props.alarmTopic));
      this.alarms.push(a);
    }
  }
}

/** How cdk-nag names a resource ARN in its findings (a concrete stack's formatted ARN). */
function findingArn(stack: Stack, arn: string): string {
  const resolved: unknown = stack.resolve(arn);
  if (typeof resolved !== 'string') throw new Error('FileChecker needs a stack with a concrete account and region');
  return resolved;
}
