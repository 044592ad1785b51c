/**
 * The TenantGuard construct in a test stage of its own (imported VPC, security group, REST API,
 * proxy endpoint and secrets, as the data-tier and API branches will provide), under the full
 * compliance gate.
 */
import { type App, Duration, Stack, Stage } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as apigateway from 'aws-cdk-lib/aws-apigateway';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import { applyComplianceGate } from '../../lib/compliance';
import { TenantGuard } from '../../lib/tenant-guard';
import { GateKey } from '../../lib/tenant-guard/gate-key';
import { testApp } from '../support/cdk';
import { HSTS_VALUE } from '../../contracts/security-headers';
import { defined } from '../support/defined';
import { importedDatabaseAccess } from '../support/database-access';
import { DATABASE_ROLES } from '../../contracts/database';
import { roleStatements } from '../support/deploy-order';

function build(authorizerCacheTtl?: Duration): { app: App; stack: Stack; guard: TenantGuard } {
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
    authorizerCacheTtl,
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

  it('refuses a verdict cache that could outlive the files credentials a verdict carries', () => {
    expect(() => build(Duration.minutes(10))).toThrow(/authorizerCacheTtl must be shorter than 600 s/);
    expect(() => build(Duration.seconds(599))).not.toThrow();
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

  it('runs the API function on Node.js 24 in the VPC, with bounded concurrency', () => {
    const fns = t.findResources('AWS::Lambda::Function', { Properties: { Runtime: 'nodejs24.x' } });
    expect(Object.keys(fns)).toHaveLength(2);
    const inVpc = Object.entries(fns).filter(([id]) => !id.startsWith('TenantGuardAuthorizer'));
    expect(inVpc).toHaveLength(1);
    for (const [, f] of inVpc) {
      expect(f['Properties']['VpcConfig']['SecurityGroupIds']).toEqual(['sg-0123456789abcdef0']);
      expect(f['Properties']['ReservedConcurrentExecutions']).toBeGreaterThan(0);
    }
    t.hasResourceProperties('AWS::Lambda::Function', {
      Environment: { Variables: Match.objectLike({ DB_HOST: 'bulwark.proxy-abc.eu-west-1.rds.amazonaws.com' }) },
      ReservedConcurrentExecutions: 50,
    });
  });

  it('puts every tenant route behind the REQUEST authorizer, keyed on the Authorization header', () => {
    const methods = t.findResources('AWS::ApiGateway::Method');
    // ANY on each tenant resource and on each one's {proxy+}.
    const tenantResources = [
      'leads',
      'memberships',
      'roles',
      'api-keys',
      'support-grants',
      'audit',
      'webhook-secrets',
      'tenant',
      'organisations',
      'calls',
      'credentials',
      'files',
    ];
    expect(Object.keys(methods)).toHaveLength(2 * tenantResources.length);
    const paths = Object.values(t.findResources('AWS::ApiGateway::Resource')).map((r) => r['Properties']['PathPart']);
    expect(paths).toEqual(expect.arrayContaining(tenantResources));
    const authorizers = t.findResources('AWS::ApiGateway::Authorizer');
    expect(Object.keys(authorizers)).toHaveLength(1);
    const [authorizerId, authorizer] = defined(Object.entries(authorizers)[0]);
    expect(authorizer['Properties']).toMatchObject({
      Type: 'REQUEST',
      IdentitySource: 'method.request.header.Authorization',
      AuthorizerResultTtlInSeconds: 240, // shorter than a gate ticket's life
    });
    for (const m of Object.values(methods)) {
      expect(m['Properties']['AuthorizationType']).toBe('CUSTOM');
      expect(m['Properties']['AuthorizerId']).toEqual({ Ref: authorizerId });
    }
    t.resourceCountIs('AWS::Cognito::UserPoolAuthorizer', 0);
  });

  it('runs the authorizer outside the VPC with no data access, and only it knows the token issuer', () => {
    const fns = t.findResources('AWS::Lambda::Function', { Properties: { Runtime: 'nodejs24.x' } });
    const [id, fn] = Object.entries(fns).find(([k]) => k.startsWith('TenantGuardAuthorizer'))!;
    expect(fn['Properties']['VpcConfig']).toBeUndefined();
    expect(fn['Properties']['ReservedConcurrentExecutions']).toBe(100);
    const vars = fn['Properties']['Environment']['Variables'] as Record<string, unknown>;
    expect(Object.keys(vars)).toEqual(expect.arrayContaining(['JWT_AUDIENCE', 'JWT_ISSUER']));
    expect(JSON.stringify(vars['JWT_ISSUER'])).toContain('cognito-idp.eu-west-1.');
    expect(Object.keys(vars).some((k) => k.startsWith('DB_'))).toBe(false);
    const statements = roleStatements(t.toJSON().Resources, fn);
    const actions = statements.flatMap((st) => [st['Action']].flat() as string[]);
    // Its own logs, tracing, its encrypted environment, and the gate key: nothing else.
    expect(
      actions.filter(
        (a) =>
          !/^(xray:|logs:(CreateLogStream|PutLogEvents)$|kms:Decrypt$|secretsmanager:(GetSecretValue|DescribeSecret)$)/.test(
            a,
          ),
      ),
    ).toEqual([]);
    expect(JSON.stringify(statements)).not.toMatch(/rds-db|ec2:/);
    // The one secret it reads is the gate key it signs tickets with.
    const secretReads = statements.filter((st) => JSON.stringify(st['Action']).includes('secretsmanager:'));
    expect(secretReads.map((st) => JSON.stringify(st['Resource']))).toEqual([expect.stringMatching(/GateKeySecret/)]);
    expect(vars['GATE_KEY_SECRET_ARN']).toEqual({ Ref: expect.stringMatching(/GateKeySecret/) });
    // The API function no longer needs the issuer: it honours the authorizer's verdicts.
    const api = defined(Object.entries(fns).find(([k]) => k.startsWith('TenantGuardApi')))[1];
    expect(Object.keys(api['Properties']['Environment']['Variables'])).not.toContain('JWT_ISSUER');
    expect(id).toMatch(/^TenantGuardAuthorizer/);
  });

  it('answers the authorizer refusals with 401, the reason code and the security headers', () => {
    const hsts = `'${HSTS_VALUE}'`;
    t.hasResourceProperties('AWS::ApiGateway::GatewayResponse', {
      ResponseType: 'UNAUTHORIZED',
      StatusCode: '401',
      ResponseTemplates: { 'application/json': '{"error":"TOKEN_MISSING","header":"authorization"}' },
      ResponseParameters: Match.objectLike({ 'gatewayresponse.header.Strict-Transport-Security': hsts }),
    });
    t.hasResourceProperties('AWS::ApiGateway::GatewayResponse', {
      ResponseType: 'ACCESS_DENIED',
      StatusCode: '401',
      ResponseTemplates: { 'application/json': '{"error":"$context.authorizer.error","header":"authorization"}' },
      ResponseParameters: Match.objectLike({
        'gatewayresponse.header.Strict-Transport-Security': hsts,
        'gatewayresponse.header.Cache-Control': "'no-store'",
      }),
    });
  });

  it('the API connects through the proxy as bulwark_app with an IAM token', () => {
    const [apiId, api] = Object.entries(
      t.findResources('AWS::Lambda::Function', { Properties: { ReservedConcurrentExecutions: 50 } }),
    )[0]!;
    const vars = api['Properties']['Environment']['Variables'] as Record<string, unknown>;
    expect(vars).toMatchObject({
      DB_HOST: 'bulwark.proxy-abc.eu-west-1.rds.amazonaws.com',
      DB_PORT: '5432',
      DB_NAME: 'bulwark',
      DB_USER: 'bulwark_app',
    });
    expect(Object.keys(vars).filter((k) => /SECRET|PASSWORD/.test(k))).toEqual([]);
    // rds-db:connect for bulwark_app only, and no secret read.
    const statements = roleStatements(t.toJSON().Resources, api);
    const connect = statements.filter((st) => JSON.stringify(st['Action']).includes('rds-db:connect'));
    expect(connect).toHaveLength(1);
    expect(JSON.stringify(defined(connect[0])['Resource'])).toContain(':dbuser:prx-0123456789abcdef0/bulwark_app');
    expect(JSON.stringify(statements)).not.toContain('secretsmanager:GetSecretValue');
    expect(apiId).toMatch(/^TenantGuardApi/);
  });

  it('holds every function permission in one customer-managed policy per function, logs only to its own group', () => {
    const all = t.toJSON().Resources as Record<string, { Type: string; Properties: Record<string, unknown> }>;
    t.resourceCountIs('AWS::IAM::Policy', 0);
    for (const [, fn] of Object.entries(all).filter(([, r]) => r.Type === 'AWS::Lambda::Function')) {
      const roleId = (fn.Properties['Role'] as { 'Fn::GetAtt': [string] })['Fn::GetAtt'][0];
      const arns = all[roleId]!.Properties['ManagedPolicyArns'] as unknown[];
      // No AWS-managed policy (logs on "*"): only customer-managed policies of this template.
      expect(JSON.stringify(arns)).not.toContain('iam::aws:policy');
      const logGroup = (fn.Properties['LoggingConfig'] as { LogGroup: { Ref: string } }).LogGroup.Ref;
      const logs = roleStatements(all, fn).filter((st) => JSON.stringify(st['Action']).includes('logs:'));
      expect(logs).toEqual([expect.objectContaining({ Resource: { 'Fn::GetAtt': [logGroup, 'Arn'] } })]);
      // Synchronous API Gateway functions: no dead-letter queue that could never receive.
      expect(fn.Properties['DeadLetterConfig']).toBeUndefined();
    }
  });
});
