/**
 * The one function recipe (lib/shared/function.ts): runtime, logging, tracing, encryption, one
 * customer-managed policy scoped to the function's own resources, and dead letters that work.
 */
import * as path from 'node:path';
import { Stack, Stage } from 'aws-cdk-lib';
import { Capture, Match, Template } from 'aws-cdk-lib/assertions';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import { customerKey } from '../../lib/observability/keys';
import { BulwarkFunction } from '../../lib/shared/function';
import { testApp } from '../support/cdk';
import { roleStatements } from '../support/deploy-order';

const ENTRY = path.join(__dirname, '..', '..', 'lambda', 'restore-drill', 'handler.ts');

function build() {
  const app = testApp();
  const stage = new Stage(app, 'RecipeTest', { env: { account: '111111111111', region: 'eu-west-1' } });
  const stack = new Stack(stage, 'S');
  const key = customerKey(stack, 'Key', 'test');
  const vpc = ec2.Vpc.fromVpcAttributes(stack, 'Vpc', {
    vpcId: 'vpc-0123456789abcdef0',
    availabilityZones: ['eu-west-1a'],
    privateSubnetIds: ['subnet-0aaaaaaaaaaaaaaa1'],
  });
  const sg = ec2.SecurityGroup.fromSecurityGroupId(stack, 'Sg', 'sg-0123456789abcdef0');
  const sync = new BulwarkFunction(stack, 'Sync', {
    entry: ENTRY,
    description: 'synchronous, in the VPC',
    invocation: { kind: 'synchronous', caller: 'API Gateway' },
    reservedConcurrentExecutions: 5,
    encryptionKey: key,
    network: { vpc, securityGroups: [sg] },
    environment: { A: 'b' },
  });
  const async = new BulwarkFunction(stack, 'Async', {
    entry: ENTRY,
    description: 'asynchronous, outside the VPC',
    invocation: { kind: 'asynchronous', retryAttempts: 1 },
    reservedConcurrentExecutions: 1,
    encryptionKey: customerKey(stack, 'OtherKey', 'test'),
    outsideVpc: 'A test function outside the VPC, for the recipe test.',
    sourceMap: true,
  });
  async.addToPolicy(
    new iam.PolicyStatement({ sid: 'Extra', actions: ['s3:GetObject'], resources: ['arn:aws:s3:::b/*'] }),
  );
  return { stack, sync, async, t: Template.fromStack(stack) };
}

const fnId = (stack: Stack, f: BulwarkFunction) => stack.getLogicalId(f.function.node.defaultChild as never);

describe('BulwarkFunction', () => {
  const { stack, sync, async, t } = build();
  const all = t.toJSON().Resources as Record<string, { Type: string; Properties: Record<string, unknown> }>;

  it('runs Node.js 24 on ARM64 with tracing, JSON logs into its own encrypted group, environment encrypted', () => {
    for (const f of [sync, async]) {
      const fn = all[fnId(stack, f)]!;
      expect(fn.Properties).toMatchObject({
        Runtime: 'nodejs24.x',
        Architectures: ['arm64'],
        TracingConfig: { Mode: 'Active' },
        LoggingConfig: {
          LogFormat: 'JSON',
          LogGroup: { Ref: stack.getLogicalId(f.logGroup.node.defaultChild as never) },
        },
        KmsKeyArn: expect.anything(),
      });
    }
    t.allResourcesProperties('AWS::Logs::LogGroup', {
      KmsKeyId: { 'Fn::GetAtt': [Match.stringLikeRegexp('Key'), 'Arn'] },
    });
    // Source maps only when asked for.
    expect(JSON.stringify(all[fnId(stack, sync)]!.Properties['Environment'])).not.toContain('NODE_OPTIONS');
    expect(all[fnId(stack, async)]!.Properties['Environment']).toEqual({
      Variables: { NODE_OPTIONS: '--enable-source-maps' },
    });
  });

  it('holds every permission in one customer-managed policy: logs only on its own group, no AWS-managed policy', () => {
    t.resourceCountIs('AWS::IAM::Policy', 0);
    for (const f of [sync, async]) {
      const fn = all[fnId(stack, f)]!;
      const roleId = (fn.Properties['Role'] as { 'Fn::GetAtt': [string] })['Fn::GetAtt'][0];
      expect(all[roleId]!.Properties['ManagedPolicyArns']).toEqual([
        { Ref: stack.getLogicalId(f.policy.node.defaultChild as never) },
      ]);
      const logs = roleStatements(all, fn).filter((st) => JSON.stringify(st['Action']).includes('logs:'));
      expect(logs).toEqual([
        expect.objectContaining({
          Action: ['logs:CreateLogStream', 'logs:PutLogEvents'],
          Resource: { 'Fn::GetAtt': [stack.getLogicalId(f.logGroup.node.defaultChild as never), 'Arn'] },
        }),
      ]);
    }
    // Network-interface actions only for the function in the VPC; added statements land in the one policy.
    expect(JSON.stringify(roleStatements(all, all[fnId(stack, sync)]!))).toContain('ec2:CreateNetworkInterface');
    expect(JSON.stringify(roleStatements(all, all[fnId(stack, async)]!))).not.toContain('ec2:');
    expect(roleStatements(all, all[fnId(stack, async)]!)).toEqual(
      expect.arrayContaining([expect.objectContaining({ Sid: 'Extra', Action: 's3:GetObject' })]),
    );
  });

  it('gives an asynchronous function a dead-letter queue it can write to and encrypt for', () => {
    const fn = all[fnId(stack, async)]!;
    const queue = new Capture();
    expect(fn.Properties['DeadLetterConfig']).toEqual({ TargetArn: { 'Fn::GetAtt': [expect.any(String), 'Arn'] } });
    t.hasResourceProperties('AWS::Lambda::EventInvokeConfig', {
      FunctionName: { Ref: fnId(stack, async) },
      MaximumRetryAttempts: 1,
      DestinationConfig: { OnFailure: { Destination: { 'Fn::GetAtt': [queue, 'Arn'] } } },
    });
    const q = all[queue.asString()]!;
    const queueKey = (q.Properties['KmsMasterKeyId'] as { 'Fn::GetAtt': [string, string] })['Fn::GetAtt'][0];
    const statements = roleStatements(all, fn);
    expect(statements).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ Action: 'sqs:SendMessage', Resource: { 'Fn::GetAtt': [queue.asString(), 'Arn'] } }),
        expect.objectContaining({
          Action: ['kms:Decrypt', 'kms:GenerateDataKey'],
          Resource: { 'Fn::GetAtt': [queueKey, 'Arn'] },
          Condition: { StringEquals: { 'kms:ViaService': 'sqs.eu-west-1.amazonaws.com' } },
        }),
      ]),
    );
    // The queue's key delegates to IAM (account root), so that identity grant is honoured.
    const keyPolicy = JSON.stringify(all[queueKey]!.Properties['KeyPolicy']);
    expect(keyPolicy).toContain(':root');
    expect(keyPolicy).toContain('"kms:*"');
    // A synchronous function has none.
    expect(all[fnId(stack, sync)]!.Properties['DeadLetterConfig']).toBeUndefined();
  });

  it('refuses a function outside the VPC without a reason', () => {
    const s = new Stack(new Stage(testApp(), 'X', { env: { account: '111111111111', region: 'eu-west-1' } }), 'S');
    expect(
      () =>
        new BulwarkFunction(s, 'F', {
          entry: ENTRY,
          description: 'no reason',
          invocation: { kind: 'synchronous', caller: 'API Gateway' },
          reservedConcurrentExecutions: 1,
          encryptionKey: customerKey(s, 'K', 'k'),
        }),
    ).toThrow(/outsideVpc/);
  });
});
