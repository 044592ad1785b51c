import * as path from 'node:path';
import { ArnFormat, Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as events from 'aws-cdk-lib/aws-events';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as kms from 'aws-cdk-lib/aws-kms';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import * as rds from 'aws-cdk-lib/aws-rds';
import type * as sns from 'aws-cdk-lib/aws-sns';
import type * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import { Construct } from 'constructs';
import { DRILL_METRICS } from '../../contracts/restore-drill';
import { acknowledge } from '../compliance/acknowledge';
import { BulwarkFunction } from '../shared/function';
import { AUDIT_PARAMETERS, POSTGRES_VERSION } from './database';
import { findingArn, orchestrateDrill, type DrillTexts } from './restore-drill';
import { recordFlows } from './network';

/** Subnet group name of the isolated restore network. */
export const RESTORE_SUBNETS = 'restore';

export interface IsolatedRestoreNetworkProps {
  /** Availability zones of the stack's region, listed so that synth makes no lookups. At least 2. */
  readonly availabilityZones: readonly string[];
  /** Encrypts the flow-log group. */
  readonly logKey: kms.IKey;
  /** @default 10.90.0.0/20 */
  readonly cidr?: string;
}

/**
 * Where a drill restores into, in the backup region: a VPC of isolated subnets only (no internet
 * gateway, no NAT, no endpoints: nothing in it calls anything), flow-logged; a DB subnet group over
 * those subnets; a security group that admits nothing and sends nothing; and the database's own
 * server parameters (TLS 1.2+ mandatory), so that the restored instance is configured like the
 * primary one.
 */
export class IsolatedRestoreNetwork extends Construct {
  public readonly vpc: ec2.IVpc;
  public readonly subnetGroup: rds.ISubnetGroup;
  public readonly securityGroup: ec2.ISecurityGroup;
  public readonly parameterGroup: rds.IParameterGroup;

  constructor(scope: Construct, id: string, props: IsolatedRestoreNetworkProps) {
    super(scope, id);
    if (props.availabilityZones.length < 2) {
      throw new Error(`IsolatedRestoreNetwork needs at least 2 availability zones (a DB subnet group spans two)`);
    }
    const vpc = new ec2.Vpc(this, 'Vpc', {
      ipAddresses: ec2.IpAddresses.cidr(props.cidr ?? '10.90.0.0/20'),
      availabilityZones: [...props.availabilityZones],
      natGateways: 0,
      createInternetGateway: false,
      restrictDefaultSecurityGroup: true,
      subnetConfiguration: [{ name: RESTORE_SUBNETS, subnetType: ec2.SubnetType.PRIVATE_ISOLATED, cidrMask: 24 }],
    });
    for (const subnet of vpc.isolatedSubnets) {
      acknowledge(
        subnet,
        'CloudFormation-Validate::W3010',
        'Availability zones are listed explicitly (lib/config/regions.ts) so that synth needs no context lookup.',
      );
    }

    recordFlows(this, vpc, {
      logKey: props.logKey,
      description: 'Restore network flow logs: write to the flow-log group',
    });

    this.securityGroup = new ec2.SecurityGroup(this, 'InstanceSecurityGroup', {
      vpc,
      description: 'Restored drill instances: admit nothing, send nothing',
      allowAllOutbound: false,
    });
    this.subnetGroup = new rds.SubnetGroup(this, 'Subnets', {
      vpc,
      description: 'Isolated subnets for restore-drill instances',
      vpcSubnets: { subnetGroupName: RESTORE_SUBNETS },
      removalPolicy: RemovalPolicy.DESTROY,
    });
    this.parameterGroup = new rds.ParameterGroup(this, 'Parameters', {
      engine: rds.DatabaseInstanceEngine.postgres({ version: POSTGRES_VERSION }),
      description: 'Restore drill: the primary database parameters (TLS 1.2+ only, audit logging)',
      parameters: { ...AUDIT_PARAMETERS },
    });
    this.vpc = vpc;
  }
}

export interface CopyRestoreDrillProps {
  readonly deployment: string;
  /** Identifier of the primary region's database: the copies are snapshots of it. */
  readonly sourceInstanceId: string;
  /** The backup region's copy key. Copies are encrypted with it, and so is what is restored from them. */
  readonly copyKey: kms.IKey;
  /** Where to restore. */
  readonly network: IsolatedRestoreNetwork;
  /** Encrypts the drill's log groups and dead-letter queue. */
  readonly logKey: kms.IKey;
  /** An alarm topic of this region (CloudWatch alarms publish only to topics of their own region). */
  readonly alarmTopic: sns.ITopic;
  /** Identifier prefix of restored instances; the drill may delete only these. */
  readonly targetPrefix: string;
  /** @default the 1st of every month, 05:00 UTC */
  readonly schedule?: events.Schedule;
  /** Target time from the restore request to an available instance. @default 2 hours */
  readonly rto?: Duration;
  /**
   * Oldest acceptable data in the newest copy when the drill starts. @default 36 hours: the daily
   * 02:00 backup plus its copy, with a day's slack for a copy still running
   */
  readonly rpo?: Duration;
  /** How often the state machine checks the restore. @default 1 minute */
  readonly pollInterval?: Duration;
}

const COPY_TEXTS: DrillTexts = {
  machineRole: 'Backup-copy restore drill state machine: invoke the drill function, log, trace',
  scheduleRole: 'Backup-copy restore drill schedule: start the drill state machine',
  deadLetterOf: 'the backup-copy restore drill schedule target (an alarm watches it)',
  schedule: 'Monthly restore drill from the backup-region copy',
  failed: 'The monthly restore drill from the backup-region copy failed (see the drill log for the error code)',
  slowerThanRto: (rto) =>
    `The monthly restore drill from the backup-region copy took longer than its ${rto.toHumanString()} target`,
  execution: 'The backup-copy restore drill state machine failed, timed out or was aborted',
  undelivered: 'The backup-copy restore drill schedule could not start the drill',
};

/**
 * The monthly drill from the backup region's copy: in the backup region, on the steps of the weekly
 * drill (lambda/restore-drill), it restores the newest AWS Backup copy of the database (encrypted
 * with the backup region's key) into an isolated network of that region, measures the time to an
 * available instance and the age of the data restored (the achieved RPO), and always deletes the
 * instance. Alarms go to an alarm topic of the backup region: the drill failed or timed out, was
 * slower than its target, restored data older than the RPO, or could not run.
 */
export class CopyRestoreDrill extends Construct {
  public readonly function: lambda.IFunction;
  /** The drill function's role, for the access proof and tests. */
  public readonly role: iam.IRole;
  public readonly stateMachine: sfn.StateMachine;
  public readonly failedAlarm: cloudwatch.Alarm;
  public readonly rtoAlarm: cloudwatch.Alarm;
  public readonly rpoAlarm: cloudwatch.Alarm;
  public readonly executionAlarm: cloudwatch.Alarm;

  constructor(scope: Construct, id: string, props: CopyRestoreDrillProps) {
    super(scope, id);
    const stack = Stack.of(this);
    const rto = props.rto ?? Duration.hours(2);
    const rpo = props.rpo ?? Duration.hours(36);
    const timeout = Duration.seconds(rto.toSeconds() * 2);
    const { network } = props;
    const parameterGroupName = network.parameterGroup.bindToInstance({}).parameterGroupName;

    const drill = new BulwarkFunction(this, 'Function', {
      entry: path.join(__dirname, '..', '..', 'lambda', 'restore-drill', 'handler.ts'),
      description: 'Backup-copy restore drill: restore the newest copy, watch and delete drill instances only',
      invocation: {
        kind: 'synchronous',
        caller: 'The backup-copy restore drill state machine (Step Functions, which catches every failure)',
      },
      outsideVpc:
        'It calls only the RDS API of its region (describe, restore, delete drill instances) and can reach no database: no credentials, and the restore network admits nothing. In the isolated restore network it would need an RDS interface endpoint in every zone, all month, for a monthly run.',
      reservedConcurrentExecutions: 2,
      encryptionKey: props.logKey,
      memorySize: 256,
      timeout: Duration.seconds(60),
      environment: {
        DEPLOYMENT: props.deployment,
        SOURCE_INSTANCE_ID: props.sourceInstanceId,
        TARGET_PREFIX: props.targetPrefix,
        SUBNET_GROUP_NAME: network.subnetGroup.subnetGroupName,
        SECURITY_GROUP_ID: network.securityGroup.securityGroupId,
        PARAMETER_GROUP_NAME: parameterGroupName,
        RTO_SECONDS: String(rto.toSeconds()),
        TIMEOUT_SECONDS: String(timeout.toSeconds()),
        RESTORE_FROM: 'backup-copy',
        COPY_KEY_ARN: props.copyKey.keyArn,
      },
    });

    const rdsArn = (resource: string, name: string) =>
      stack.formatArn({ service: 'rds', resource, resourceName: name, arnFormat: ArnFormat.COLON_RESOURCE_NAME });
    const drillInstances = rdsArn('db', `${props.targetPrefix}-*`);
    const backupSnapshots = rdsArn('snapshot', 'awsbackup:*');
    const defaultOptionGroups = rdsArn('og', 'default:postgres-*');
    drill.addToPolicy(
      // Listing instances (leftovers of earlier drills) and AWS Backup snapshots (the newest copy).
      new iam.PolicyStatement({
        sid: 'DescribeInstancesAndCopies',
        actions: ['rds:DescribeDBInstances', 'rds:DescribeDBSnapshots'],
        resources: [rdsArn('db', '*'), rdsArn('snapshot', '*')],
      }),
      // Restores only from AWS Backup's snapshots, only into drill-named instances of the isolated network.
      new iam.PolicyStatement({
        sid: 'RestoreCopiesIntoDrillInstancesOnly',
        actions: ['rds:RestoreDBInstanceFromDBSnapshot'],
        resources: [
          backupSnapshots,
          drillInstances,
          rdsArn('subgrp', network.subnetGroup.subnetGroupName),
          rdsArn('pg', parameterGroupName),
          defaultOptionGroups,
        ],
      }),
      new iam.PolicyStatement({
        sid: 'TagDrillInstancesOnly',
        actions: ['rds:AddTagsToResource'],
        resources: [drillInstances],
      }),
      // Both the drill's name and its tag: an instance the drill did not create carries neither.
      new iam.PolicyStatement({
        sid: 'DeleteDrillInstancesOnly',
        actions: ['rds:DeleteDBInstance'],
        resources: [drillInstances],
        conditions: { StringEquals: { 'aws:ResourceTag/bulwark:restore-drill': 'true' } },
      }),
      new iam.PolicyStatement({
        sid: 'UseCopyKeyThroughRds',
        actions: ['kms:CreateGrant', 'kms:DescribeKey', 'kms:Decrypt', 'kms:GenerateDataKey*'],
        resources: [props.copyKey.keyArn],
        conditions: { StringEquals: { 'kms:ViaService': `rds.${stack.region}.amazonaws.com` } },
      }),
    );
    const reasons: Record<string, string> = {
      [`Resource::${findingArn(stack, drillInstances)}`]:
        'Restored drill instances get a timestamped name at run time; the wildcard is confined to the drill prefix, and deletion also needs the drill tag.',
      [`Resource::${findingArn(stack, rdsArn('db', '*'))}`]:
        'Only rds:DescribeDBInstances and rds:DescribeDBSnapshots (read-only metadata) use this: listing instances to find and delete leftovers of earlier drills.',
      [`Resource::${findingArn(stack, rdsArn('snapshot', '*'))}`]:
        'Only rds:DescribeDBInstances and rds:DescribeDBSnapshots (read-only metadata) use this: listing the AWS Backup copies to pick the newest.',
      [`Resource::${findingArn(stack, backupSnapshots)}`]:
        'AWS Backup names each copied snapshot awsbackup:copyjob-<id> at run time; the drill restores the newest, only into drill instances.',
      [`Resource::${findingArn(stack, defaultOptionGroups)}`]:
        'A restore is authorised against the default option group of the engine major version, which RDS names; nothing is modified.',
      'Action::kms:GenerateDataKey*':
        'RDS needs GenerateDataKey and GenerateDataKeyWithoutPlaintext on the copy key to restore from the copy; limited by kms:ViaService to RDS.',
    };
    for (const [finding, reason] of Object.entries(reasons)) {
      acknowledge(drill.policy, `AwsSolutions-IAM5[${finding}]`, reason);
    }

    const run = orchestrateDrill(this, {
      fn: drill.function,
      deployment: props.deployment,
      logKey: props.logKey,
      alarmTopic: props.alarmTopic,
      schedule: props.schedule ?? events.Schedule.cron({ minute: '0', hour: '5', day: '1' }),
      rto,
      timeout,
      pollInterval: props.pollInterval ?? Duration.minutes(1),
      texts: COPY_TEXTS,
    });
    const rpoAlarm = new cloudwatch.Alarm(this, 'RpoAlarm', {
      alarmDescription: `The newest backup-region copy was older than the ${rpo.toHumanString()} RPO when the monthly drill restored it`,
      metric: run.metric(DRILL_METRICS.recoveryPointAgeSeconds, 'Maximum'),
      threshold: rpo.toSeconds(),
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
      evaluationPeriods: 1,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    });
    rpoAlarm.addAlarmAction(run.alarmAction);
    rpoAlarm.addOkAction(run.alarmAction);

    this.function = drill.function;
    this.role = drill.role;
    this.stateMachine = run.stateMachine;
    this.failedAlarm = run.failedAlarm;
    this.rtoAlarm = run.rtoAlarm;
    this.rpoAlarm = rpoAlarm;
    this.executionAlarm = run.executionAlarm;
  }
}
