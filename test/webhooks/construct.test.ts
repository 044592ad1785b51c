/**
 * The WebhookIngress construct in a test stage (the real API and VPC come from other capabilities),
 * synthesized through the compliance gate: every pack runs and the stage must come out green.
 */
import { Stack, Stage } from 'aws-cdk-lib';
import { Capture, Match, Template } from 'aws-cdk-lib/assertions';
import * as apigateway from 'aws-cdk-lib/aws-apigateway';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as sns from 'aws-cdk-lib/aws-sns';
import { acknowledge, applyComplianceGate, readFindings } from '../../lib/compliance';
import { WebhookIngress, type WebhookIngressProps } from '../../lib/webhooks';
import { deployment, testApp } from '../support/cdk';
import { importedDatabaseAccess } from '../support/database-access';
import { DATABASE_ROLES } from '../../contracts/database';
import { telnyxKeyPair } from './support';
import { defined } from '../support/defined';
import { EU } from '../support/catalogue';

const TELNYX_KEY = telnyxKeyPair().publicKeyBase64;

function build(overrides: Partial<WebhookIngressProps> = {}, env: 'production' | 'development' = 'production') {
  const d = deployment(EU.name);
  const app = testApp();
  const stage = new Stage(app, 'WebhookTest', { env: { account: d.account, region: d.region } });
  const stack = new Stack(stage, 'Webhooks');
  // Stand-ins for the data tier's VPC and the edge's API (other capabilities own the real ones).
  const vpc = new ec2.Vpc(stack, 'Vpc', {
    availabilityZones: d.availabilityZones,
    natGateways: 0,
    subnetConfiguration: [{ name: 'app', subnetType: ec2.SubnetType.PRIVATE_ISOLATED }],
  });
  const scaffold = 'Test scaffold standing in for a resource another capability owns and hardens.';
  for (const id of ['AwsSolutions-VPC7', 'HIPAA.Security-VPCFlowLogsEnabled', 'NIST.800.53.R5-VPCFlowLogsEnabled']) {
    acknowledge(vpc, id, scaffold);
  }
  acknowledge(vpc, 'PCI.DSS.321-VPCFlowLogsEnabled', scaffold);
  const securityGroup = new ec2.SecurityGroup(stack, 'FunctionSg', { vpc, allowAllOutbound: false });
  const api = new apigateway.RestApi(stack, 'Api', { deploy: false });
  acknowledge(api, 'AwsSolutions-APIG2', scaffold);
  const ingress = new WebhookIngress(stack, 'Ingress', {
    api,
    environment: env,
    telnyxPublicKey: TELNYX_KEY,
    // No subnets given: the VPC's private (here isolated) subnets.
    database: importedDatabaseAccess(stack, {
      role: DATABASE_ROLES.webhooks,
      region: d.region,
      account: d.account,
      vpc,
      securityGroup,
    }),
    alarmTopic: sns.Topic.fromTopicArn(stack, 'Alarms', `arn:aws:sns:${d.region}:${d.account}:alarms`),
    ...overrides,
  });
  applyComplianceGate(stage);
  return { app, stage, stack, ingress };
}

describe('WebhookIngress', () => {
  it('synthesizes through the compliance gate with no unacknowledged finding', () => {
    const { app } = build();
    // Validation plugins run when the App (not a single stage or stack) is synthesized.
    const assembly = app.synth();
    expect(readFindings(assembly.directory)).toEqual([]);
  });

  describe('template', () => {
    let template: Template;
    beforeAll(() => {
      template = Template.fromStack(build().stack);
    });

    it('routes POST /webhooks/{telnyx,frejun,didlogic} to the function through a Lambda proxy integration', () => {
      for (const provider of ['telnyx', 'frejun', 'didlogic']) {
        template.hasResourceProperties('AWS::ApiGateway::Resource', { PathPart: provider });
      }
      const methods = template.findResources('AWS::ApiGateway::Method');
      expect(Object.values(methods)).toHaveLength(3);
      for (const m of Object.values(methods)) {
        expect(m.Properties).toMatchObject({
          HttpMethod: 'POST',
          AuthorizationType: 'NONE',
          Integration: { Type: 'AWS_PROXY', IntegrationHttpMethod: 'POST' },
        });
      }
      template.hasResourceProperties('AWS::ApiGateway::Resource', {
        PathPart: 'webhooks',
        ParentId: { 'Fn::GetAtt': [Match.stringLikeRegexp('^Api'), 'RootResourceId'] },
      });
    });

    it('runs the function on Node.js 24 in the VPC with the given security group, traced, with capped concurrency', () => {
      const sg = new Capture();
      template.hasResourceProperties('AWS::Lambda::Function', {
        Runtime: 'nodejs24.x',
        TracingConfig: { Mode: 'Active' },
        ReservedConcurrentExecutions: 50,
        KmsKeyArn: Match.anyValue(),
        LoggingConfig: { LogFormat: 'JSON', LogGroup: Match.anyValue() },
        VpcConfig: { SecurityGroupIds: [{ 'Fn::GetAtt': [sg, 'GroupId'] }], SubnetIds: Match.anyValue() },
        Environment: {
          Variables: Match.objectLike({
            BULWARK_ENVIRONMENT: 'production',
            WEBHOOK_VERIFICATION: 'required',
            TELNYX_PUBLIC_KEY: TELNYX_KEY,
            WEBHOOK_MAX_BODY_BYTES: '262144',
            DB_USER: 'bulwark_webhooks',
            DB_NAME: 'bulwark',
          }),
        },
      });
      expect(sg.asString()).toMatch(/^FunctionSg/);
      // No subnets given: the VPC's private (here isolated) subnets, one per AZ, never public ones.
      const fn = Object.entries(
        template.findResources('AWS::Lambda::Function', { Properties: { Runtime: 'nodejs24.x' } }),
      ).find(([id]) => id.startsWith('IngressFunction'))![1];
      const subnets = fn.Properties.VpcConfig.SubnetIds as Array<{ Ref: string }>;
      expect(subnets).toHaveLength(3);
      for (const s of subnets) expect(s.Ref).toMatch(/^VpcappSubnet\d/);
    });

    it('grants exactly one customer-managed policy: no AWS-managed or inline policies, IAM auth as the app role', () => {
      // (The scaffold VPC's default-security-group custom resource brings a role of its own.)
      const roles = Object.entries(template.findResources('AWS::IAM::Role'))
        .filter(([id]) => id.startsWith('IngressFunctionRole'))
        .map(([, r]) => r);
      expect(roles).toHaveLength(1);
      expect(roles[0]!.Properties.ManagedPolicyArns).toEqual([
        { Ref: expect.stringMatching(/^IngressFunctionPolicy/) },
      ]);
      expect(roles[0]!.Properties.Policies).toBeUndefined();
      expect(template.findResources('AWS::IAM::Policy')).toEqual({});
      const policy = JSON.stringify(template.findResources('AWS::IAM::ManagedPolicy'));
      expect(policy).toContain('rds-db:connect');
      expect(policy).toContain('prx-0123456789abcdef0/bulwark_webhooks');
      expect(policy).not.toMatch(/"Action":"\*"|"[a-z0-9-]+:\*"/);
    });

    it('keeps its logs encrypted with a rotating key, for a year, retained on stack deletion', () => {
      template.hasResource('AWS::Logs::LogGroup', {
        Properties: { RetentionInDays: 365, KmsKeyId: Match.anyValue() },
        DeletionPolicy: 'Retain',
      });
      template.hasResourceProperties('AWS::KMS::Key', { EnableKeyRotation: true });
      // CloudWatch Logs may use the key only for this account's log groups in this region.
      const [key] = Object.values(template.findResources('AWS::KMS::Key'));
      const logs = (defined(key)['Properties']['KeyPolicy']['Statement'] as Record<string, unknown>[]).filter((st) =>
        JSON.stringify(st['Principal']).includes('logs.'),
      );
      expect(logs).toHaveLength(1);
      expect(JSON.stringify(defined(logs[0])['Condition'])).toContain('kms:EncryptionContext:aws:logs:arn');
    });
  });

  it('alarms to the deployment topic on refused configuration, processing failures, forged traffic and crashes', () => {
    const template = Template.fromStack(build().stack);
    const alarms = template.findResources('AWS::CloudWatch::Alarm');
    expect(Object.keys(alarms)).toHaveLength(4);
    for (const a of Object.values(alarms)) {
      expect(a.Properties.AlarmActions).toEqual([expect.stringMatching(/^arn:aws:sns:eu-west-1:\d{12}:alarms$/)]);
    }
    const secret = Object.values(alarms).find((a) => /WEBHOOK_SECRET_MISSING/.test(a.Properties.AlarmDescription));
    expect(JSON.stringify(secret)).toContain('"Value":"WEBHOOK_SECRET_UNREADABLE"');
    expect(defined(secret).Properties.Threshold).toBe(1);
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      Namespace: 'Bulwark/Webhooks',
      Dimensions: [{ Name: 'Outcome', Value: 'SIGNATURE_INVALID' }],
      Threshold: 50,
    });
  });

  it('refuses to disable verification in production, at synth', () => {
    expect(() => build({ verification: 'disabled' }, 'production')).toThrow(
      /verification cannot be disabled in a production deployment/,
    );
  });

  it('lets a development deployment opt out, which the function then announces at every cold start', () => {
    const template = Template.fromStack(build({ verification: 'disabled' }, 'development').stack);
    template.hasResourceProperties('AWS::Lambda::Function', {
      Environment: {
        Variables: Match.objectLike({ BULWARK_ENVIRONMENT: 'development', WEBHOOK_VERIFICATION: 'disabled' }),
      },
    });
  });

  it('refuses a Telnyx key that is not a raw 32-byte Ed25519 key, and a previous key without a current one', () => {
    expect(() => build({ telnyxPublicKey: 'MCowBQYDK2VwAyEA' })).toThrow(/telnyxPublicKey must be a raw 32-byte/);
    expect(() => build({ telnyxPreviousPublicKey: 'x' })).toThrow(/telnyxPreviousPublicKey must be a raw 32-byte/);
    // Right length and alphabet, but non-zero padding bits: the function would refuse it at every cold start.
    const b64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
    const last = b64.indexOf(defined(TELNYX_KEY.at(-2))); // carries the two padding bits, zero in canonical form
    const sloppy = `${TELNYX_KEY.slice(0, -2)}${b64[last | 1]}=`;
    expect(sloppy).not.toBe(TELNYX_KEY);
    expect(() => build({ telnyxPublicKey: sloppy })).toThrow(/telnyxPublicKey must be a raw 32-byte/);
    expect(() => build({ maxBodyBytes: 512 })).toThrow(/maxBodyBytes must be an integer from 1024/);
    expect(() => build({ telnyxPublicKey: undefined, telnyxPreviousPublicKey: TELNYX_KEY })).toThrow(
      /needs a current telnyxPublicKey/,
    );
  });

  it('passes a previous Telnyx key for a rotation window', () => {
    const previous = telnyxKeyPair().publicKeyBase64;
    Template.fromStack(build({ telnyxPreviousPublicKey: previous }).stack).hasResourceProperties(
      'AWS::Lambda::Function',
      {
        Environment: {
          Variables: Match.objectLike({ TELNYX_PUBLIC_KEY: TELNYX_KEY, TELNYX_PREVIOUS_PUBLIC_KEY: previous }),
        },
      },
    );
  });
});
