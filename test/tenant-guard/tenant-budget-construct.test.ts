/**
 * The per-tenant budget's infrastructure (lib/tenant-guard/tenant-budget.ts, wired by TenantGuard):
 * the counter table as synthesized, under the full compliance gate, and the API's environment.
 * What the API role may and may not do with it is proven by access-proof rows (tools/access-proof,
 * `tenant-api-spends-budget` and `tenant-api-budget-*`), not here.
 */
import { Stack, Stage } from 'aws-cdk-lib';
import { Annotations, Match, Template } from 'aws-cdk-lib/assertions';
import * as apigateway from 'aws-cdk-lib/aws-apigateway';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as sns from 'aws-cdk-lib/aws-sns';
import { DATABASE_ROLES } from '../../contracts/database';
import { applyComplianceGate } from '../../lib/compliance';
import { TenantGuard } from '../../lib/tenant-guard';
import { GateKey } from '../../lib/tenant-guard/gate-key';
import { BUDGET_KEY_PATTERN } from '../../lib/tenant-guard/tenant-budget';
import { testApp } from '../support/cdk';
import { importedDatabaseAccess } from '../support/database-access';

const ALARMS = 'arn:aws:sns:eu-west-1:111111111111:alarms';

function build(budget?: ConstructorParameters<typeof TenantGuard>[2]['budget'], withAlarm = false) {
  const app = testApp();
  const stage = new Stage(app, 'BudgetTest', { env: { account: '111111111111', region: 'eu-west-1' } });
  const stack = new Stack(stage, 'Guard');
  const vpc = ec2.Vpc.fromVpcAttributes(stack, 'Vpc', {
    vpcId: 'vpc-0123456789abcdef0',
    availabilityZones: ['eu-west-1a', 'eu-west-1b'],
    privateSubnetIds: ['subnet-0aaaaaaaaaaaaaaa1', 'subnet-0aaaaaaaaaaaaaaa2'],
    privateSubnetRouteTableIds: ['rtb-0aaaaaaaaaaaaaaa1', 'rtb-0aaaaaaaaaaaaaaa2'],
  });
  const sg = ec2.SecurityGroup.fromSecurityGroupId(stack, 'Sg', 'sg-0123456789abcdef0', { allowAllOutbound: false });
  const api = apigateway.RestApi.fromRestApiAttributes(stack, 'Api', { restApiId: 'abcdef1234', rootResourceId: 'r1' });
  const guard = new TenantGuard(stack, 'TenantGuard', {
    api,
    database: importedDatabaseAccess(stack, {
      role: DATABASE_ROLES.app,
      region: 'eu-west-1',
      account: '111111111111',
      vpc,
      securityGroup: sg,
    }),
    gateKey: new GateKey(stack, 'GateKey'),
    ...(budget
      ? { budget: { ...budget, ...(withAlarm ? { alarmTopic: sns.Topic.fromTopicArn(stack, 'Alarms', ALARMS) } : {}) } }
      : {}),
  });
  applyComplianceGate(stage);
  return { stack, guard };
}

describe('per-tenant budget table', () => {
  const built = build(
    { requestsPerMinute: 3000, endpointUrl: 'https://vpce-0abc.dynamodb.eu-west-1.vpce.amazonaws.com' },
    true,
  );
  const t = Template.fromStack(built.stack);

  it('is on demand, encrypted with its own customer-managed key, keyed on pk with TTL on expiresAt, retained and protected', () => {
    const keyId = built.stack.getLogicalId(built.guard.budgetTable!.key.node.defaultChild as never);
    t.resourceCountIs('AWS::DynamoDB::Table', 1);
    t.hasResource('AWS::DynamoDB::Table', {
      DeletionPolicy: 'Retain',
      UpdateReplacePolicy: 'Retain',
      Properties: {
        BillingMode: 'PAY_PER_REQUEST',
        KeySchema: [{ AttributeName: 'pk', KeyType: 'HASH' }],
        AttributeDefinitions: [{ AttributeName: 'pk', AttributeType: 'S' }],
        SSESpecification: { SSEEnabled: true, SSEType: 'KMS', KMSMasterKeyId: { 'Fn::GetAtt': [keyId, 'Arn'] } },
        TimeToLiveSpecification: { AttributeName: 'expiresAt', Enabled: true },
        DeletionProtectionEnabled: true,
        PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: false },
      },
    });
    t.hasResource('AWS::KMS::Key', { DeletionPolicy: 'Retain', Properties: { EnableKeyRotation: true } });
  });

  it('lets the API role update counter items only, from a policy attached on the policy’s side', () => {
    const policies = t.findResources('AWS::IAM::ManagedPolicy', {
      Properties: { PolicyDocument: { Statement: Match.arrayWith([Match.objectLike({ Sid: 'SpendTenantBudgets' })]) } },
    });
    const [policy] = Object.values(policies);
    expect(Object.keys(policies)).toHaveLength(1);
    expect(policy?.Properties.PolicyDocument.Statement).toEqual([
      {
        Sid: 'SpendTenantBudgets',
        Effect: 'Allow',
        Action: 'dynamodb:UpdateItem',
        Resource: expect.anything(),
        Condition: {
          'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': [BUDGET_KEY_PATTERN] },
          Null: { 'dynamodb:LeadingKeys': 'false' },
        },
      },
    ]);
    expect(policy?.Properties.Roles).toHaveLength(1);
  });

  it('gives the API its table, budget and endpoint, and deploys it after its permission', () => {
    t.hasResourceProperties('AWS::Lambda::Function', {
      Environment: {
        Variables: Match.objectLike({
          TENANT_BUDGET_TABLE: Match.anyValue(),
          TENANT_BUDGET_PER_MINUTE: '3000',
          TENANT_BUDGET_ENDPOINT: 'https://vpce-0abc.dynamodb.eu-west-1.vpce.amazonaws.com',
        }),
      },
    });
    const fns = t.findResources('AWS::Lambda::Function', {
      Properties: { Environment: { Variables: Match.objectLike({ TENANT_BUDGET_TABLE: Match.anyValue() }) } },
    });
    const policyId = Object.keys(
      t.findResources('AWS::IAM::ManagedPolicy', {
        Properties: { Description: Match.stringLikeRegexp('per-tenant budgets') },
      }),
    )[0];
    expect(Object.values(fns)[0]?.DependsOn).toEqual(expect.arrayContaining([policyId]));
  });

  it('alarms the alarm topic when requests pass uncounted (the budget failing open)', () => {
    t.hasResourceProperties('AWS::CloudWatch::Alarm', {
      Namespace: 'Bulwark',
      MetricName: 'TenantBudgetUnavailable',
      Statistic: 'Sum',
      Period: 300,
      Threshold: 10,
      ComparisonOperator: 'GreaterThanOrEqualToThreshold',
      TreatMissingData: 'notBreaching',
      AlarmActions: [ALARMS],
    });
  });

  it('passes the compliance gate: the PITR and backup-plan findings are acknowledged with the reason, nothing else', () => {
    const errors = Annotations.fromStack(built.stack).findError('*', Match.anyValue());
    expect(errors.map((e) => e.entry.data)).toEqual([]);
  });

  it('is absent without a budget, and refuses a budget that is not a positive whole number', () => {
    expect(Template.fromStack(build().stack).findResources('AWS::DynamoDB::Table')).toEqual({});
    expect(() => build({ requestsPerMinute: 0 })).toThrow(/budget.requestsPerMinute must be a positive integer/);
  });
});
