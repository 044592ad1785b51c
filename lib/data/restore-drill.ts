import * as path from 'node:path';
import { ArnFormat, Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as actions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as kms from 'aws-cdk-lib/aws-kms';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import type * as rds from 'aws-cdk-lib/aws-rds';
import type * as sns from 'aws-cdk-lib/aws-sns';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import * as tasks from 'aws-cdk-lib/aws-stepfunctions-tasks';
import { Construct } from 'constructs';
import { DRILL_METRICS } from '../../contracts/restore-drill';
import { acknowledge } from '../compliance/acknowledge';
import { deadLetterQueue, undeliveredAlarm } from '../observability/dead-letter-queue';
import { allowEventsToUseKey } from '../observability/keys';
import { BulwarkFunction } from '../shared/function';
import { APP_SUBNETS } from './network';
import { ServiceRole } from './roles';

export interface RestoreDrillProps {
  readonly deployment: string;
  readonly vpc: ec2.IVpc;
  /** Literal VPC CIDR (endpoint traffic). */
  readonly vpcCidr: string;
  readonly database: rds.IDatabaseInstance;
  readonly subnetGroup: rds.ISubnetGroup;
  readonly parameterGroup: rds.IParameterGroup;
  /** The database's storage key: restoring an encrypted instance needs grants on it. */
  readonly databaseKey: kms.IKey;
  readonly logKey: kms.IKey;
  readonly alarmTopic: sns.ITopic;
  /** Identifier prefix of temporary instances; the drill may delete only these. */
  readonly targetPrefix: string;
  /** @default every Sunday 04:00 UTC, after the 02:00 backup */
  readonly schedule?: events.Schedule;
  /** @default 1 hour */
  readonly rto?: Duration;
  /** How often the state machine checks the restore. @default 1 minute */
  readonly pollInterval?: Duration;
}

/** How cdk-nag spells an ARN in a finding id: literal when the stack's environment is. */
export function findingArn(stack: Stack, arn: string): string {
  const resolved: unknown = stack.resolve(arn);
  if (typeof resolved !== 'string') throw new Error('RestoreDrill needs a stack with a concrete account and region');
  return resolved;
}

/**
 * The scheduled restore drill: a Step Functions state machine that restores the database's latest
 * restorable time into a temporary single-AZ instance in the isolated subnets, measures the time
 * to availability against the RTO and always deletes the instance. The Lambda steps emit the
 * result as an EMF metric; alarms fire on a failed drill, a drill over the RTO, or a failed run.
 */
export class RestoreDrill extends Construct {
  public readonly function: lambda.IFunction;
  public readonly stateMachine: sfn.StateMachine;
  public readonly securityGroup: ec2.ISecurityGroup;
  public readonly failedAlarm: cloudwatch.Alarm;
  public readonly rtoAlarm: cloudwatch.Alarm;
  public readonly executionAlarm: cloudwatch.Alarm;

  constructor(scope: Construct, id: string, props: RestoreDrillProps) {
    super(scope, id);
    const stack = Stack.of(this);
    const rto = props.rto ?? Duration.hours(1);
    // Restores running past twice the RTO are abandoned (and deleted) as failed.
    const timeout = Duration.seconds(rto.toSeconds() * 2);

    // The temporary instance admits nobody; the function needs HTTPS to the RDS endpoint only.
    const securityGroup = new ec2.SecurityGroup(this, 'SecurityGroup', {
      vpc: props.vpc,
      description: 'Restore drill: function egress to AWS endpoints; temporary instances admit nothing',
      allowAllOutbound: false,
    });
    securityGroup.addEgressRule(ec2.Peer.ipv4(props.vpcCidr), ec2.Port.tcp(443), 'HTTPS to VPC endpoints');

    const drill = new BulwarkFunction(this, 'Function', {
      entry: path.join(__dirname, '..', '..', 'lambda', 'restore-drill', 'handler.ts'),
      description: 'Restore drill function: restore, watch and delete drill instances only',
      invocation: {
        kind: 'synchronous',
        caller: 'The restore-drill state machine (Step Functions, which catches every failure)',
      },
      reservedConcurrentExecutions: 2,
      encryptionKey: props.logKey,
      memorySize: 256,
      timeout: Duration.seconds(60),
      network: { vpc: props.vpc, vpcSubnets: { subnetGroupName: APP_SUBNETS }, securityGroups: [securityGroup] },
      environment: {
        DEPLOYMENT: props.deployment,
        SOURCE_INSTANCE_ID: props.database.instanceIdentifier,
        TARGET_PREFIX: props.targetPrefix,
        SUBNET_GROUP_NAME: props.subnetGroup.subnetGroupName,
        SECURITY_GROUP_ID: securityGroup.securityGroupId,
        PARAMETER_GROUP_NAME: props.parameterGroup.bindToInstance({}).parameterGroupName,
        RTO_SECONDS: String(rto.toSeconds()),
        TIMEOUT_SECONDS: String(timeout.toSeconds()),
      },
    });
    const fn = drill.function;

    const rdsArn = (resource: string, name: string) =>
      stack.formatArn({ service: 'rds', resource, resourceName: name, arnFormat: ArnFormat.COLON_RESOURCE_NAME });
    const drillInstances = rdsArn('db', `${props.targetPrefix}-*`);
    const parameterGroupName = props.parameterGroup.bindToInstance({}).parameterGroupName;
    drill.addToPolicy(
      // Listing (to find leftovers of earlier drills) needs the account-wide form; it is read-only.
      new iam.PolicyStatement({
        sid: 'DescribeInstances',
        actions: ['rds:DescribeDBInstances'],
        resources: [rdsArn('db', '*')],
      }),
      new iam.PolicyStatement({
        sid: 'RestoreIntoDrillInstancesOnly',
        actions: ['rds:RestoreDBInstanceToPointInTime', 'rds:AddTagsToResource'],
        resources: [
          props.database.instanceArn,
          drillInstances,
          rdsArn('subgrp', props.subnetGroup.subnetGroupName),
          rdsArn('pg', parameterGroupName),
          rdsArn('og', 'default:postgres-*'),
        ],
      }),
      // Deletion is limited to the drill's own prefix: the drill can never delete the real database.
      new iam.PolicyStatement({
        sid: 'DeleteDrillInstancesOnly',
        actions: ['rds:DeleteDBInstance'],
        resources: [drillInstances],
      }),
      new iam.PolicyStatement({
        sid: 'UseDatabaseKeyThroughRds',
        actions: ['kms:CreateGrant', 'kms:DescribeKey', 'kms:Decrypt', 'kms:GenerateDataKey*'],
        resources: [props.databaseKey.keyArn],
        conditions: { StringEquals: { 'kms:ViaService': `rds.${stack.region}.amazonaws.com` } },
      }),
    );
    acknowledge(
      drill.policy,
      `AwsSolutions-IAM5[Resource::${findingArn(stack, drillInstances)}]`,
      'Temporary drill instances get a timestamped name at run time; the wildcard is confined to the drill prefix, never the real database.',
    );
    acknowledge(
      drill.policy,
      `AwsSolutions-IAM5[Resource::${findingArn(stack, rdsArn('db', '*'))}]`,
      'Only rds:DescribeDBInstances (read-only metadata) uses this: listing instances to find and delete leftovers of earlier drills.',
    );
    acknowledge(
      drill.policy,
      `AwsSolutions-IAM5[Resource::${findingArn(stack, rdsArn('og', 'default:postgres-*'))}]`,
      'A restore is authorised against the default option group of the engine major version, which RDS names; nothing is modified.',
    );
    acknowledge(
      drill.policy,
      'AwsSolutions-IAM5[Action::kms:GenerateDataKey*]',
      'RDS needs GenerateDataKey and GenerateDataKeyWithoutPlaintext on the database key to restore it; limited by kms:ViaService to RDS.',
    );
    const run = orchestrateDrill(this, {
      fn,
      deployment: props.deployment,
      logKey: props.logKey,
      alarmTopic: props.alarmTopic,
      schedule: props.schedule ?? events.Schedule.cron({ minute: '0', hour: '4', weekDay: 'SUN' }),
      rto,
      timeout,
      pollInterval: props.pollInterval ?? Duration.minutes(1),
      texts: WEEKLY_TEXTS,
    });

    this.function = fn;
    this.stateMachine = run.stateMachine;
    this.securityGroup = securityGroup;
    this.failedAlarm = run.failedAlarm;
    this.rtoAlarm = run.rtoAlarm;
    this.executionAlarm = run.executionAlarm;
  }
}

/** What the shared orchestration names in descriptions (the weekly drill's are kept as they were). */
export interface DrillTexts {
  readonly machineRole: string;
  readonly scheduleRole: string;
  readonly deadLetterOf: string;
  readonly schedule: string;
  readonly failed: string;
  readonly slowerThanRto: (rto: Duration) => string;
  readonly execution: string;
  readonly undelivered: string;
}

const WEEKLY_TEXTS: DrillTexts = {
  machineRole: 'Restore drill state machine: invoke the drill function, log, trace',
  scheduleRole: 'Restore drill schedule: start the drill state machine',
  deadLetterOf: 'the restore-drill schedule target (an alarm watches it)',
  schedule: 'Restore drill',
  failed: 'A database restore drill failed (see the restore-drill log for the error code)',
  slowerThanRto: (rto) => `A database restore drill took longer than the ${rto.toHumanString()} RTO`,
  execution: 'The restore drill state machine failed, timed out or was aborted',
  undelivered: 'The restore drill schedule could not start the drill',
};

export interface OrchestrationProps {
  readonly fn: lambda.IFunction;
  readonly deployment: string;
  readonly logKey: kms.IKey;
  readonly alarmTopic: sns.ITopic;
  readonly schedule: events.Schedule;
  readonly rto: Duration;
  /** A restore still pending after this fails (and is deleted). */
  readonly timeout: Duration;
  readonly pollInterval: Duration;
  readonly texts: DrillTexts;
}

/**
 * The drill's run, shared by both drills: a Step Functions state machine (Start, Wait/Check until
 * available, Finish; Abort, retried, from every step), its schedule with a dead-letter queue, and
 * the alarms (drill failed, slower than the RTO, execution failed/timed out/aborted, schedule
 * undeliverable), all in `scope` so that each drill keeps its construct paths.
 */
export function orchestrateDrill(scope: Construct, props: OrchestrationProps) {
  const invoke = (name: string, payload: Record<string, unknown>, resultPath: string) =>
    new tasks.LambdaInvoke(scope, name, {
      lambdaFunction: props.fn,
      payload: sfn.TaskInput.fromObject(payload),
      payloadResponseOnly: true,
      resultPath,
      retryOnServiceExceptions: true,
    });

  const abort = invoke('Abort', { step: 'abort', 'state.$': '$.drill', 'error.$': '$.error' }, '$.outcome').addRetry({
    errors: ['DELETE_FAILED', 'States.TaskFailed'],
    interval: Duration.minutes(2),
    maxAttempts: 5,
    backoffRate: 2,
  });
  const failed = new sfn.Fail(scope, 'DrillFailed', { error: 'RestoreDrillFailed', cause: 'See the drill log' });
  abort.next(failed);

  const start = invoke('Start', { step: 'start' }, '$.drill').addRetry({
    errors: ['ThrottlingException', 'Throttling'],
    maxAttempts: 3,
  });
  const wait = new sfn.Wait(scope, 'WaitForRestore', {
    time: sfn.WaitTime.duration(props.pollInterval),
  });
  const check = invoke('Check', { step: 'check', 'state.$': '$.drill' }, '$.check');
  const finish = invoke('Finish', { step: 'finish', 'state.$': '$.drill' }, '$.outcome');
  const catchAll = { resultPath: '$.error', errors: [sfn.Errors.ALL] };
  // Before Start there is no instance: abort with a null state.
  start.addCatch(
    new sfn.Pass(scope, 'NoInstance', { result: sfn.Result.fromObject({}), resultPath: '$.drill' }).next(abort),
    catchAll,
  );
  check.addCatch(abort, catchAll);
  finish.addCatch(abort, catchAll);

  const definition = start
    .next(wait)
    .next(check)
    .next(
      new sfn.Choice(scope, 'Available?')
        .when(sfn.Condition.booleanEquals('$.check.available', true), finish.next(new sfn.Succeed(scope, 'Done')))
        .otherwise(wait),
    );

  const machineLogs = new logs.LogGroup(scope, 'StateMachineLogs', {
    encryptionKey: props.logKey,
    retention: logs.RetentionDays.ONE_YEAR,
    removalPolicy: RemovalPolicy.RETAIN,
  });
  const machineRole = new ServiceRole(scope, 'StateMachineRole', {
    assumedBy: new iam.ServicePrincipal('states.amazonaws.com'),
    description: props.texts.machineRole,
    statements: [
      new iam.PolicyStatement({ actions: ['lambda:InvokeFunction'], resources: [props.fn.functionArn] }),
      new iam.PolicyStatement({
        // Vended log delivery and X-Ray: these actions support no resource-level permissions.
        actions: [
          'logs:CreateLogDelivery',
          'logs:GetLogDelivery',
          'logs:UpdateLogDelivery',
          'logs:DeleteLogDelivery',
          'logs:ListLogDeliveries',
          'logs:PutResourcePolicy',
          'logs:DescribeResourcePolicies',
          'logs:DescribeLogGroups',
          'xray:PutTraceSegments',
          'xray:PutTelemetryRecords',
          'xray:GetSamplingRules',
          'xray:GetSamplingTargets',
        ],
        resources: ['*'],
      }),
    ],
  });
  acknowledge(
    machineRole.policy,
    'AwsSolutions-IAM5[Resource::*]',
    'CloudWatch Logs vended-delivery actions and X-Ray trace/sampling actions that Step Functions logging and tracing need support no resource-level permissions.',
  );
  const stateMachine = new sfn.StateMachine(scope, 'StateMachine', {
    role: machineRole.role,
    definitionBody: sfn.DefinitionBody.fromChainable(definition),
    stateMachineType: sfn.StateMachineType.STANDARD,
    timeout: Duration.seconds(props.timeout.toSeconds() + Duration.hours(1).toSeconds()),
    tracingEnabled: true,
    logs: { destination: machineLogs, level: sfn.LogLevel.ALL, includeExecutionData: false },
  });
  machineRole.requiredBy(stateMachine);

  const scheduleRole = new ServiceRole(scope, 'ScheduleRole', {
    assumedBy: new iam.ServicePrincipal('events.amazonaws.com'),
    description: props.texts.scheduleRole,
    statements: [
      new iam.PolicyStatement({ actions: ['states:StartExecution'], resources: [stateMachine.stateMachineArn] }),
    ],
  });
  // A schedule that cannot start the drill lands here, and alarms.
  allowEventsToUseKey(props.logKey);
  const undelivered = deadLetterQueue(scope, 'ScheduleDeadLetters', {
    encryptionKey: props.logKey,
    deadLetterOf: props.texts.deadLetterOf,
  });
  new events.Rule(scope, 'Schedule', {
    description: props.texts.schedule,
    schedule: props.schedule,
    targets: [
      new targets.SfnStateMachine(stateMachine, {
        role: scheduleRole.role,
        deadLetterQueue: undelivered,
        retryAttempts: 3,
        maxEventAge: Duration.hours(2),
      }),
    ],
  });

  const metric = (metricName: string, statistic: string) =>
    new cloudwatch.Metric({
      namespace: DRILL_METRICS.namespace,
      metricName,
      dimensionsMap: { [DRILL_METRICS.dimension]: props.deployment },
      statistic,
      period: Duration.days(1),
    });
  const alarmAction = new actions.SnsAction(props.alarmTopic);
  const failedAlarm = new cloudwatch.Alarm(scope, 'FailedAlarm', {
    alarmDescription: props.texts.failed,
    metric: metric(DRILL_METRICS.failed, 'Maximum'),
    threshold: 1,
    comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
    evaluationPeriods: 1,
    treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
  });
  const rtoAlarm = new cloudwatch.Alarm(scope, 'RtoAlarm', {
    alarmDescription: props.texts.slowerThanRto(props.rto),
    metric: metric(DRILL_METRICS.restoreSeconds, 'Maximum'),
    threshold: props.rto.toSeconds(),
    comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
    evaluationPeriods: 1,
    treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
  });
  // Catches runs that die before the function can report (permissions, throttling, bugs).
  const executionAlarm = new cloudwatch.Alarm(scope, 'ExecutionAlarm', {
    alarmDescription: props.texts.execution,
    metric: new cloudwatch.MathExpression({
      expression: 'failed + timedOut + aborted',
      usingMetrics: {
        failed: stateMachine.metricFailed({ period: Duration.hours(1), statistic: 'Sum' }),
        timedOut: stateMachine.metricTimedOut({ period: Duration.hours(1), statistic: 'Sum' }),
        aborted: stateMachine.metricAborted({ period: Duration.hours(1), statistic: 'Sum' }),
      },
      period: Duration.hours(1),
    }),
    threshold: 1,
    comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
    evaluationPeriods: 1,
    treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
  });
  const scheduleAlarm = undeliveredAlarm(scope, 'ScheduleAlarm', undelivered, props.texts.undelivered);
  for (const alarm of [failedAlarm, rtoAlarm, executionAlarm, scheduleAlarm]) {
    alarm.addAlarmAction(alarmAction);
    alarm.addOkAction(alarmAction);
  }
  return { stateMachine, failedAlarm, rtoAlarm, executionAlarm, metric, alarmAction };
}
