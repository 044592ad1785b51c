import * as path from 'node:path';
import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import type * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as actions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as destinations from 'aws-cdk-lib/aws-lambda-destinations';
import * as nodejs from 'aws-cdk-lib/aws-lambda-nodejs';
import * as logs from 'aws-cdk-lib/aws-logs';
import type * as rds from 'aws-cdk-lib/aws-rds';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import type * as sns from 'aws-cdk-lib/aws-sns';
import { Construct } from 'constructs';
import { DATABASE_ROLES } from '../../contracts/database';
import { acknowledge } from '../compliance/acknowledge';
import type { Plan } from '../../contracts/plans';
import { deadLetterQueue } from '../observability/dead-letter-queue';
import { allowEventsToUseKey, allowLogsToUseKey, customerKey } from '../observability/keys';
import { proxyConnectStatement } from '../data/proxy-connect';
import { PROXY_PORT } from '../data/database';

/**
 * Connection of the shipper's own database role (not the application role): through the RDS Proxy
 * with an IAM token, from inside the VPC (a function with database access never runs outside it).
 */
export interface ShipperDatabase {
  /** The RDS Proxy (TLS + IAM auth required). */
  readonly proxy: rds.IDatabaseProxy;
  readonly name: string;
  /** Login role granted EXECUTE on the `app.audit_archive_*` functions. @default 'bulwark_audit_shipper' */
  readonly user?: string;
  /** VPC the proxy is reachable from. */
  readonly vpc: ec2.IVpc;
  /** @default - the VPC's private subnets */
  readonly vpcSubnets?: ec2.SubnetSelection;
  /** Groups the proxy admits. */
  readonly securityGroups: ec2.ISecurityGroup[];
}

export interface ArchiveShipperProps {
  readonly bucket: s3.IBucket;
  readonly key: kms.IKey;
  /** `deployment.auditRetentionMonths`: per-object COMPLIANCE retention by plan. */
  readonly retentionMonths: Readonly<Record<Plan, number>>;
  readonly database: ShipperDatabase;
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
    const user = db.user ?? DATABASE_ROLES.auditShipper;

    const logKey = customerKey(this, 'LogKey', 'Encrypts the audit shipper log group and its dead-letter queue');
    allowLogsToUseKey(logKey);
    allowEventsToUseKey(logKey);
    const logGroup = new logs.LogGroup(this, 'Logs', {
      encryptionKey: logKey,
      retention: logs.RetentionDays.ONE_YEAR,
      removalPolicy: RemovalPolicy.RETAIN,
    });

    const undelivered = deadLetterQueue(this, 'Undelivered', {
      encryptionKey: logKey,
      deadLetterOf: 'the shipper schedule and function',
      servesFunction: true,
    });

    const role = new iam.Role(this, 'Role', {
      assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
      description: 'Audit archive shipper',
    });
    const fn = new nodejs.NodejsFunction(this, 'Function', {
      entry: path.join(__dirname, '..', '..', 'lambda', 'audit', 'shipper-handler.ts'),
      handler: 'handler',
      runtime: lambda.Runtime.NODEJS_22_X,
      architecture: lambda.Architecture.ARM_64,
      memorySize: 512,
      timeout: Duration.minutes(5),
      reservedConcurrentExecutions: 1,
      // Every permission is in the managed policy below; CDK must not add an inline default policy.
      role: role.withoutPolicyUpdates(),
      logGroup,
      loggingFormat: lambda.LoggingFormat.JSON,
      tracing: lambda.Tracing.ACTIVE,
      deadLetterQueue: undelivered,
      onFailure: new destinations.SqsDestination(undelivered),
      retryAttempts: 0,
      vpc: db.vpc,
      vpcSubnets: db.vpcSubnets,
      securityGroups: db.securityGroups,
      environment: {
        AUDIT_BUCKET: props.bucket.bucketName,
        AUDIT_KEY_ARN: props.key.keyArn,
        AUDIT_RETENTION_MONTHS: JSON.stringify(props.retentionMonths),
        PGHOST: db.proxy.endpoint,
        PGPORT: String(PROXY_PORT),
        PGDATABASE: db.name,
        PGUSER: user,
        NODE_OPTIONS: '--enable-source-maps',
      },
      bundling: { minify: true, sourceMap: true, target: 'node22' },
    });

    // Exactly what shipping needs: write batch objects with their retention, read back a batch's
    // metadata after a conditional-write conflict, and use the archive key for SSE-KMS.
    const access = new iam.ManagedPolicy(this, 'Access', {
      roles: [role],
      statements: [
        new iam.PolicyStatement({
          actions: ['s3:PutObject', 's3:PutObjectRetention', 's3:GetObject'],
          resources: [props.bucket.arnForObjects('orgs/*')],
        }),
        new iam.PolicyStatement({
          actions: ['kms:GenerateDataKey', 'kms:Decrypt'],
          resources: [props.key.keyArn],
        }),
        new iam.PolicyStatement({
          actions: ['logs:CreateLogStream', 'logs:PutLogEvents'],
          // The log group's Arn attribute already ends in `:*`, covering its streams.
          resources: [logGroup.logGroupArn],
        }),
        new iam.PolicyStatement({
          actions: ['xray:PutTraceSegments', 'xray:PutTelemetryRecords'],
          resources: ['*'],
        }),
        new iam.PolicyStatement({ actions: ['sqs:SendMessage'], resources: [undelivered.queueArn] }),
        new iam.PolicyStatement({ actions: ['kms:GenerateDataKey', 'kms:Decrypt'], resources: [logKey.keyArn] }),
        new iam.PolicyStatement({
          actions: [
            'ec2:CreateNetworkInterface',
            'ec2:DescribeNetworkInterfaces',
            'ec2:DescribeSubnets',
            'ec2:DeleteNetworkInterface',
            'ec2:AssignPrivateIpAddresses',
            'ec2:UnassignPrivateIpAddresses',
          ],
          resources: ['*'],
        }),
        // Log in through the proxy as the shipper's own role only (IAM token, lambda/shared/db.ts).
        proxyConnectStatement(this, db.proxy, user),
      ],
    });
    acknowledge(
      access,
      'AwsSolutions-IAM5[Resource::<ArchiveBucketDE861B4E.Arn>/orgs/*]',
      'Batch object keys (organisation and first sequence) are only known at run time; the grant is limited to the orgs/ prefix and to put, retention and read, never delete.',
    );
    acknowledge(
      access,
      'AwsSolutions-IAM5[Resource::*]',
      'X-Ray PutTraceSegments/PutTelemetryRecords (and VPC network-interface actions) support no resource-level permissions.',
    );
    const runtimeReason =
      'The project standard runtime is Node.js 22 (nodejs22.x, an AWS-supported LTS); runtime upgrades are made fleet-wide, not per function.';
    acknowledge(fn, 'AwsSolutions-L1', runtimeReason);
    acknowledge(fn, 'Serverless-LambdaLatestVersion', runtimeReason);
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
