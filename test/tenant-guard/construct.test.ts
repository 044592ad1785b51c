/**
 * The TenantGuard construct in a test stage of its own (imported VPC, security group, REST API,
 * proxy endpoint and secrets, as the data-tier and API branches will provide), under the full
 * compliance gate.
 */
import { type App, Stack, Stage } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as apigateway from 'aws-cdk-lib/aws-apigateway';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { applyComplianceGate } from '../../lib/compliance';
import { TenantGuard } from '../../lib/tenant-guard';
import { testApp } from '../support/cdk';

function build(): { app: App; stack: Stack; guard: TenantGuard } {
  const app = testApp();
  const stage = new Stage(app, 'GuardTest', { env: { account: '111111111111', region: 'eu-west-1' } });
  const stack = new Stack(stage, 'Guard');
  const vpc = ec2.Vpc.fromVpcAttributes(stack, 'Vpc', {
    vpcId: 'vpc-0123456789abcdef0',
    availabilityZones: ['eu-west-1a', 'eu-west-1b'],
    privateSubnetIds: ['subnet-0aaaaaaaaaaaaaaa1', 'subnet-0aaaaaaaaaaaaaaa2'],
    privateSubnetRouteTableIds: ['rtb-0aaaaaaaaaaaaaaa1', 'rtb-0aaaaaaaaaaaaaaa2'],
  });
  const sg = ec2.SecurityGroup.fromSecurityGroupId(stack, 'Sg', 'sg-0123456789abcdef0', { allowAllOutbound: false });
  const api = apigateway.RestApi.fromRestApiAttributes(stack, 'Api', {
    restApiId: 'abcdef1234',
    rootResourceId: 'root123456',
  });
  const arn = (n: string) => `arn:aws:secretsmanager:eu-west-1:111111111111:secret:${n}-AbCdEf`;
  const guard = new TenantGuard(stack, 'TenantGuard', {
    vpc,
    securityGroup: sg,
    api,
    database: {
      endpoint: 'bulwark.proxy-abc.eu-west-1.rds.amazonaws.com',
      databaseName: 'bulwark',
      appSecret: secretsmanager.Secret.fromSecretCompleteArn(stack, 'AppSecret', arn('app')),
      migratorSecret: secretsmanager.Secret.fromSecretCompleteArn(stack, 'MigratorSecret', arn('migrator')),
    },
  });
  applyComplianceGate(stage);
  return { app, stack, guard };
}

describe('TenantGuard construct', () => {
  let t: Template;
  let built: ReturnType<typeof build>;
  beforeAll(() => {
    built = build();
    t = Template.fromStack(built.stack);
  });

  it('passes the compliance gate in a stage of its own', () => {
    // app.synth() runs the validation plugins: any unacknowledged finding throws.
    expect(() => built.app.synth()).not.toThrow();
  });

  it('requires MFA, carries a custom org_id attribute, and enforces threat protection', () => {
    t.hasResourceProperties('AWS::Cognito::UserPool', {
      MfaConfiguration: 'ON',
      Schema: Match.arrayWith([Match.objectLike({ Name: 'org_id', Mutable: true })]),
      UserPoolAddOns: { AdvancedSecurityMode: 'ENFORCED' },
      AdminCreateUserConfig: { AllowAdminCreateUserOnly: true },
    });
    t.hasResource('AWS::Cognito::UserPool', { DeletionPolicy: 'Retain' });
  });

  it('runs the API and migration functions on Node.js 22 in the VPC, with bounded concurrency', () => {
    const fns = t.findResources('AWS::Lambda::Function', { Properties: { Runtime: 'nodejs22.x' } });
    expect(Object.keys(fns)).toHaveLength(2);
    for (const f of Object.values(fns)) {
      expect(f['Properties']['VpcConfig']['SecurityGroupIds']).toEqual(['sg-0123456789abcdef0']);
      expect(f['Properties']['ReservedConcurrentExecutions']).toBeGreaterThan(0);
    }
    t.hasResourceProperties('AWS::Lambda::Function', {
      Environment: { Variables: Match.objectLike({ DB_HOST: 'bulwark.proxy-abc.eu-west-1.rds.amazonaws.com' }) },
      ReservedConcurrentExecutions: 50,
    });
  });

  it('puts every tenant route behind the Cognito authorizer', () => {
    const methods = t.findResources('AWS::ApiGateway::Method');
    expect(Object.keys(methods)).toHaveLength(10);
    for (const m of Object.values(methods)) expect(m['Properties']['AuthorizationType']).toBe('COGNITO_USER_POOLS');
  });

  it('applies migrations at deploy through a custom resource keyed by the migration checksums', () => {
    t.hasResourceProperties('Custom::BulwarkSchema', { Migrations: Match.stringLikeRegexp('^1:[0-9a-f]{64},2:') });
  });
});
