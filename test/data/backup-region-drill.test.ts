/**
 * The monthly restore drill from the copy, as synthesized in the BackupVault stack (backup region):
 * the isolated network it restores into, what its function may do, its schedule and its alarms.
 */
import { Capture, Match, type Template } from 'aws-cdk-lib/assertions';
import { CfnElement, Stack } from 'aws-cdk-lib';
import type { IConstruct } from 'constructs';
import type { BulwarkStage } from '../../lib/bulwark-stage';
import type { BulwarkFunction } from '../../lib/shared/function';
import type { IsolatedRestoreNetwork } from '../../lib/data/copy-restore-drill';
import { AUDIT_PARAMETERS } from '../../lib/data/database';
import { DRILL_METRICS } from '../../contracts/restore-drill';
import { buildTestStages, templateOf } from '../support/cdk';
import { defined } from '../support/defined';
import { EU } from '../support/catalogue';

type Resources = Record<string, { Type: string; Properties?: Record<string, unknown> }>;

const { stages } = buildTestStages();
const eu = defined(stages.find((s) => s.stageName === EU.name));
const euTemplate = templateOf(eu.backupVault);

const resourcesOf = (t: Template): Resources => t.toJSON().Resources as Resources;
const idsOf = (t: Template, type: string): string[] =>
  Object.entries(resourcesOf(t))
    .filter(([, r]) => r.Type === type)
    .map(([id]) => id);
/** Logical id of the CloudFormation resource behind a construct. */
function logicalIdOf(construct: IConstruct): string {
  const cfn = construct instanceof CfnElement ? construct : construct.node.defaultChild;
  if (!(cfn instanceof CfnElement)) throw new Error(`${construct.node.path} is not one CloudFormation resource`);
  return Stack.of(cfn).getLogicalId(cfn).toString();
}

/** The statements of the drill function's policy. */
function drillStatements(stage: BulwarkStage, t: Template): Record<string, unknown>[] {
  const fn = stage.backupVault.restoreDrill.node.findChild('Function') as BulwarkFunction;
  const doc = defined(resourcesOf(t)[logicalIdOf(fn.policy)]?.Properties?.PolicyDocument) as {
    Statement: Record<string, unknown>[];
  };
  return doc.Statement;
}

describe.each(stages.map((s) => [s.stageName, s] as const))('%s: monthly drill from the copy', (_name, stage) => {
  const t = templateOf(stage.backupVault);

  it('runs in the backup region, in the residency zone', () => {
    expect(Stack.of(stage.backupVault.restoreDrill).region).toBe(stage.deployment.backupRegion);
    expect(stage.backupVault.region).not.toBe(stage.deployment.region);
  });

  it('restores into a VPC with isolated subnets only: no internet gateway, no NAT, no route out', () => {
    t.resourceCountIs('AWS::EC2::VPC', 1);
    t.resourceCountIs('AWS::EC2::InternetGateway', 0);
    t.resourceCountIs('AWS::EC2::NatGateway', 0);
    t.resourceCountIs('AWS::EC2::VPCEndpoint', 0);
    for (const route of Object.values(resourcesOf(t)).filter((r) => r.Type === 'AWS::EC2::Route')) {
      throw new Error(`unexpected route ${JSON.stringify(route.Properties)}`);
    }
    t.allResourcesProperties('AWS::EC2::Subnet', { MapPublicIpOnLaunch: false });
    t.hasResourceProperties('AWS::EC2::FlowLog', { ResourceType: 'VPC', TrafficType: 'ALL' });
  });

  it('restored instances admit nothing and send nothing', () => {
    const group = new Capture();
    t.hasResourceProperties('AWS::EC2::SecurityGroup', {
      GroupDescription: 'Restored drill instances: admit nothing, send nothing',
      SecurityGroupIngress: Match.absent(),
      SecurityGroupEgress: group,
    });
    // CDK's placeholder for "no egress": a rule no packet can match.
    expect(group.asArray()).toEqual([
      expect.objectContaining({ CidrIp: '255.255.255.255/32', IpProtocol: 'icmp', FromPort: 252, ToPort: 86 }),
    ]);
    t.resourceCountIs('AWS::EC2::SecurityGroupIngress', 0);
  });

  it('restores with the primary database parameters (TLS 1.2+ only)', () => {
    t.hasResourceProperties('AWS::RDS::DBParameterGroup', { Parameters: { ...AUDIT_PARAMETERS } });
  });

  it('runs on the 1st of every month, through the state machine, and retries an undelivered start', () => {
    const target = new Capture();
    t.hasResourceProperties('AWS::Events::Rule', {
      ScheduleExpression: 'cron(0 5 1 * ? *)',
      Targets: [target],
    });
    expect(target.asObject()).toMatchObject({
      Arn: { Ref: logicalIdOf(stage.backupVault.restoreDrill.stateMachine) },
      RetryPolicy: { MaximumRetryAttempts: 3 },
      DeadLetterConfig: { Arn: expect.anything() },
    });
  });

  it('configures the function to restore the newest copy under the copy key into the isolated network', () => {
    const env = new Capture();
    t.hasResourceProperties('AWS::Lambda::Function', {
      Description: Match.stringLikeRegexp('^Backup-copy restore drill'),
      Environment: { Variables: env },
      VpcConfig: Match.absent(),
    });
    const vars = env.asObject();
    expect(vars).toMatchObject({
      DEPLOYMENT: stage.deployment.name,
      SOURCE_INSTANCE_ID: `bulwark-${stage.deployment.name}`,
      TARGET_PREFIX: `bulwark-${stage.deployment.name}-copy-drill`,
      RESTORE_FROM: 'backup-copy',
      RTO_SECONDS: '7200',
      TIMEOUT_SECONDS: '14400',
    });
    // The copy vault's key, i.e. the key of this region that encrypts the copies.
    const vaultKey = new Capture();
    t.hasResourceProperties('AWS::Backup::BackupVault', { EncryptionKeyArn: vaultKey });
    expect(vars.COPY_KEY_ARN).toEqual(vaultKey.asObject());
    const network = stage.backupVault.node.findChild('RestoreNetwork') as IsolatedRestoreNetwork;
    expect(vars.SUBNET_GROUP_NAME).toEqual({ Ref: logicalIdOf(network.subnetGroup) });
    expect(vars.SECURITY_GROUP_ID).toEqual({ 'Fn::GetAtt': [logicalIdOf(network.securityGroup), 'GroupId'] });
  });

  it('deletes only drill-named, drill-tagged instances; restores only AWS Backup copies into drill instances', () => {
    const statements = drillStatements(stage, t);
    const bySid = (sid: string) => defined(statements.find((s) => s.Sid === sid));
    const arn = (resource: string) =>
      `arn:aws:rds:${stage.deployment.backupRegion}:${stage.deployment.account}:${resource}`;
    expect(bySid('DeleteDrillInstancesOnly')).toEqual({
      Sid: 'DeleteDrillInstancesOnly',
      Effect: 'Allow',
      Action: 'rds:DeleteDBInstance',
      Resource: arn(`db:bulwark-${stage.deployment.name}-copy-drill-*`),
      Condition: { StringEquals: { 'aws:ResourceTag/bulwark:restore-drill': 'true' } },
    });
    const restore = bySid('RestoreCopiesIntoDrillInstancesOnly');
    expect(restore.Action).toBe('rds:RestoreDBInstanceFromDBSnapshot');
    expect(restore.Resource).toEqual(
      expect.arrayContaining([arn('snapshot:awsbackup:*'), arn(`db:bulwark-${stage.deployment.name}-copy-drill-*`)]),
    );
    // Nothing else may delete, and the function neither passes roles nor connects to databases.
    const actions = statements.flatMap((s) => [s.Action].flat() as string[]);
    expect(actions.filter((a) => /Delete/.test(a))).toEqual(['rds:DeleteDBInstance']);
    expect(actions.some((a) => a.startsWith('iam:') || a.startsWith('rds-db:') || a === '*')).toBe(false);
    // Every call the copy drill makes is granted.
    for (const action of [
      'rds:DescribeDBInstances',
      'rds:DescribeDBSnapshots',
      'rds:RestoreDBInstanceFromDBSnapshot',
      'rds:AddTagsToResource',
      'kms:CreateGrant',
    ]) {
      expect(actions).toContain(action);
    }
    expect(actions).not.toContain('rds:RestoreDBInstanceToPointInTime');
    expect(bySid('UseCopyKeyThroughRds').Condition).toEqual({
      StringEquals: { 'kms:ViaService': `rds.${stage.deployment.backupRegion}.amazonaws.com` },
    });
  });

  it("alarms reach the backup region's alarm topic, which mails the deployment's alarm contact", () => {
    t.hasResourceProperties('AWS::SNS::Subscription', {
      Protocol: 'email',
      Endpoint: stage.deployment.alarms.email,
    });
    const topic = logicalIdOf(stage.backupVault.alarmTopic);
    const alarms = Object.values(resourcesOf(t)).filter((r) => r.Type === 'AWS::CloudWatch::Alarm');
    // Failed, over the target, copy older than the RPO, execution failed/timed out/aborted, schedule undeliverable.
    expect(alarms).toHaveLength(5);
    for (const alarm of alarms) {
      expect(alarm.Properties?.AlarmActions).toEqual([{ Ref: topic }]);
    }
    t.hasResourceProperties('AWS::CloudWatch::Alarm', {
      MetricName: DRILL_METRICS.recoveryPointAgeSeconds,
      Namespace: DRILL_METRICS.namespace,
      Dimensions: [{ Name: DRILL_METRICS.dimension, Value: stage.deployment.name }],
      Threshold: 36 * 3600,
      ComparisonOperator: 'GreaterThanThreshold',
    });
    t.hasResourceProperties('AWS::CloudWatch::Alarm', {
      MetricName: DRILL_METRICS.failed,
      Threshold: 1,
      ComparisonOperator: 'GreaterThanOrEqualToThreshold',
    });
  });

  it('gives up on a restore after the window and still runs the cleanup (state machine timeout above it)', () => {
    const definition = new Capture();
    t.hasResourceProperties('AWS::StepFunctions::StateMachine', { DefinitionString: definition });
    const text = JSON.stringify(definition.asObject());
    // Abort is the catch of Start, Check and Finish, and retries a failed delete.
    expect(text).toContain('\\"Abort\\"');
    expect(text).toContain('DELETE_FAILED');
    // 2 x the 2-hour target, plus an hour for cleanup.
    expect(text).toContain('\\"TimeoutSeconds\\":18000');
  });

  it('encrypts its log groups with keys of this stack (the backup region)', () => {
    const keys = new Set(idsOf(t, 'AWS::KMS::Key'));
    for (const [id, r] of Object.entries(resourcesOf(t)).filter(([, r]) => r.Type === 'AWS::Logs::LogGroup')) {
      const key = (r.Properties?.KmsKeyId as { 'Fn::GetAtt'?: [string, string] } | undefined)?.['Fn::GetAtt']?.[0];
      expect([id, keys.has(String(key))]).toEqual([id, true]);
    }
  });
});

it('the EU drill restores from eu-central-1 copies only', () => {
  const statements = drillStatements(eu, euTemplate);
  const text = JSON.stringify(statements);
  expect(text).toContain(':rds:eu-central-1:');
  expect(text).not.toContain('eu-west-1');
});
