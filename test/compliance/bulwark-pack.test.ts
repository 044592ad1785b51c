import { App, Duration, Stack, Tags } from 'aws-cdk-lib';
import * as apigw from 'aws-cdk-lib/aws-apigateway';
import * as cloudfront from 'aws-cdk-lib/aws-cloudfront';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as rds from 'aws-cdk-lib/aws-rds';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as wafv2 from 'aws-cdk-lib/aws-wafv2';
import type { IConstruct } from 'constructs';
import { AUDIT_BUCKET_TAG, BulwarkChecks, HSTS_VALUE, TENANT_KEY_TAG } from '../../lib/compliance';

/** Rule id -> construct paths the Bulwark pack reports, for a scope. */
function violations(scope: IConstruct): Map<string, string[]> {
  // Synthesis runs aspects (tags are applied by one), as it does before the gate runs for real.
  (scope.node.root as App).synth();
  const report = new BulwarkChecks().validateScope(scope);
  const out = new Map<string, string[]>();
  for (const v of report.violations) {
    out.set(
      v.ruleName,
      v.violatingResources.map((r) => r.constructPath ?? '?'),
    );
  }
  return out;
}

function stack(): Stack {
  // The fixtures are deliberately non-compliant (an unencrypted RDS instance, say) to exercise the
  // Bulwark pack; CDK's own CloudFormation validator is not under test and would only print warnings.
  return new Stack(new App({ builtinCloudFormationValidation: false }), 'S', {
    env: { account: '123456789012', region: 'eu-west-1' },
  });
}

const inlineCode = lambda.Code.fromInline('exports.handler = async () => ({})');

describe('Bulwark-ObjectLockCompliance', () => {
  it('flags GOVERNANCE mode, short retention, and an audit bucket without Object Lock', () => {
    const s = stack();
    new s3.Bucket(s, 'Governance', {
      objectLockEnabled: true,
      objectLockDefaultRetention: s3.ObjectLockRetention.governance(Duration.days(400)),
    });
    new s3.Bucket(s, 'Short', {
      objectLockEnabled: true,
      objectLockDefaultRetention: s3.ObjectLockRetention.compliance(Duration.days(30)),
    });
    new s3.Bucket(s, 'NoDefault', { objectLockEnabled: true });
    const audit = new s3.Bucket(s, 'AuditUnlocked');
    Tags.of(audit).add(AUDIT_BUCKET_TAG, 'audit');
    expect(violations(s).get('Bulwark-ObjectLockCompliance')?.sort()).toEqual([
      'S/AuditUnlocked/Resource',
      'S/Governance/Resource',
      'S/NoDefault/Resource',
      'S/Short/Resource',
    ]);
  });

  it('accepts COMPLIANCE mode with at least 12 months, and ignores ordinary buckets', () => {
    const s = stack();
    const audit = new s3.Bucket(s, 'Audit', {
      objectLockEnabled: true,
      objectLockDefaultRetention: s3.ObjectLockRetention.compliance(Duration.days(365)),
    });
    Tags.of(audit).add(AUDIT_BUCKET_TAG, 'audit');
    new s3.Bucket(s, 'Plain');
    expect(violations(s).get('Bulwark-ObjectLockCompliance')).toBeUndefined();
  });
});

describe('Bulwark-RdsForceSsl', () => {
  function db(s: Stack, id: string, parameters?: Record<string, string>) {
    const vpc = new ec2.Vpc(s, `${id}Vpc`, {
      maxAzs: 2,
      natGateways: 0,
      subnetConfiguration: [{ name: 'db', subnetType: ec2.SubnetType.PRIVATE_ISOLATED }],
    });
    const engine = rds.DatabaseInstanceEngine.postgres({ version: rds.PostgresEngineVersion.VER_17 });
    return new rds.DatabaseInstance(s, id, {
      engine,
      vpc,
      vpcSubnets: { subnetType: ec2.SubnetType.PRIVATE_ISOLATED },
      parameterGroup: parameters ? new rds.ParameterGroup(s, `${id}Params`, { engine, parameters }) : undefined,
    });
  }

  it('flags a default parameter group and one without rds.force_ssl = 1', () => {
    const s = stack();
    db(s, 'Default');
    db(s, 'Lax', { 'rds.force_ssl': '0' });
    expect(violations(s).get('Bulwark-RdsForceSsl')?.sort()).toEqual([
      'S/Default/Resource',
      'S/Lax/Resource',
      'S/LaxParams/Resource',
    ]);
  });

  it('accepts an instance whose parameter group forces TLS', () => {
    const s = stack();
    db(s, 'Strict', { 'rds.force_ssl': '1' });
    expect(violations(s).get('Bulwark-RdsForceSsl')).toBeUndefined();
  });
});

describe('Bulwark-HstsPreload', () => {
  function policy(s: Stack, id: string, maxAge: Duration, preload: boolean) {
    new cloudfront.ResponseHeadersPolicy(s, id, {
      securityHeadersBehavior: {
        strictTransportSecurity: { accessControlMaxAge: maxAge, includeSubdomains: true, preload, override: true },
      },
    });
  }

  it('flags a response headers policy with a short max-age, without preload, or without HSTS', () => {
    const s = stack();
    policy(s, 'Short', Duration.days(365), true);
    policy(s, 'NoPreload', Duration.seconds(63072000), false);
    new cloudfront.ResponseHeadersPolicy(s, 'None', {
      securityHeadersBehavior: { contentTypeOptions: { override: true } },
    });
    expect(violations(s).get('Bulwark-HstsPreload')?.sort()).toEqual([
      'S/NoPreload/Resource',
      'S/None/Resource',
      'S/Short/Resource',
    ]);
  });

  it('flags an API Gateway response that sets another HSTS value, accepts the exact one', () => {
    const s = stack();
    const api = new apigw.RestApi(s, 'Api');
    api.root.addMethod('GET');
    api.addGatewayResponse('Bad', {
      type: apigw.ResponseType.DEFAULT_4XX,
      responseHeaders: { 'Strict-Transport-Security': "'max-age=300'" },
    });
    api.addGatewayResponse('Good', {
      type: apigw.ResponseType.DEFAULT_5XX,
      responseHeaders: { 'Strict-Transport-Security': `'${HSTS_VALUE}'` },
    });
    expect(violations(s).get('Bulwark-HstsPreload')).toEqual(['S/Api/Bad/Resource']);
  });

  it('accepts the exact preload policy', () => {
    const s = stack();
    policy(s, 'Exact', Duration.seconds(63072000), true);
    expect(violations(s).get('Bulwark-HstsPreload')).toBeUndefined();
  });
});

describe('Bulwark-WafRateBasedRule', () => {
  const base = {
    defaultAction: { allow: {} },
    scope: 'REGIONAL',
    visibilityConfig: { cloudWatchMetricsEnabled: true, metricName: 'm', sampledRequestsEnabled: true },
  };
  const visibility = { cloudWatchMetricsEnabled: true, metricName: 'r', sampledRequestsEnabled: true };

  it('flags a web ACL without a rate-based rule', () => {
    const s = stack();
    new wafv2.CfnWebACL(s, 'NoRate', {
      ...base,
      rules: [
        {
          name: 'common',
          priority: 0,
          overrideAction: { none: {} },
          statement: { managedRuleGroupStatement: { vendorName: 'AWS', name: 'AWSManagedRulesCommonRuleSet' } },
          visibilityConfig: visibility,
        },
      ],
    });
    expect(violations(s).get('Bulwark-WafRateBasedRule')).toEqual(['S/NoRate']);
  });

  it('accepts a web ACL with a per-IP rate-based rule', () => {
    const s = stack();
    new wafv2.CfnWebACL(s, 'Rate', {
      ...base,
      rules: [
        {
          name: 'rate',
          priority: 0,
          action: { block: {} },
          statement: { rateBasedStatement: { limit: 2000, aggregateKeyType: 'IP' } },
          visibilityConfig: visibility,
        },
      ],
    });
    expect(violations(s).get('Bulwark-WafRateBasedRule')).toBeUndefined();
  });
});

describe('Bulwark-TenantKeyEncryptionContext', () => {
  const crypto = ['kms:Encrypt', 'kms:Decrypt', 'kms:GenerateDataKey'];

  it('flags a role that may use any key without the org_id encryption context', () => {
    const s = stack();
    const role = new iam.Role(s, 'Api', { assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com') });
    role.addToPolicy(
      new iam.PolicyStatement({ actions: crypto, resources: [`arn:aws:kms:eu-west-1:123456789012:key/*`] }),
    );
    expect(violations(s).get('Bulwark-TenantKeyEncryptionContext')).toEqual(['S/Api/DefaultPolicy/Resource']);
  });

  it('flags a tenant-tagged key whose policy grants data actions without the condition', () => {
    const s = stack();
    const key = new kms.Key(s, 'Tenant');
    Tags.of(key).add(TENANT_KEY_TAG, 'tenant');
    key.addToResourcePolicy(
      new iam.PolicyStatement({
        actions: crypto,
        principals: [new iam.ArnPrincipal('arn:aws:iam::123456789012:role/api')],
        resources: ['*'],
      }),
    );
    expect(violations(s).get('Bulwark-TenantKeyEncryptionContext')).toEqual(['S/Tenant/Resource']);
  });

  it('accepts grants conditioned on kms:EncryptionContext:org_id and grants on one specific key', () => {
    const s = stack();
    const role = new iam.Role(s, 'Api', { assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com') });
    role.addToPolicy(
      new iam.PolicyStatement({
        actions: crypto,
        resources: [`arn:aws:kms:eu-west-1:123456789012:key/*`],
        conditions: { StringEquals: { 'kms:EncryptionContext:org_id': '${aws:PrincipalTag/org_id}' } },
      }),
    );
    const own = new kms.Key(s, 'Own');
    own.grantEncryptDecrypt(role);
    expect(violations(s).get('Bulwark-TenantKeyEncryptionContext')).toBeUndefined();
  });
});

describe('Bulwark-LambdaDatabaseInVpc', () => {
  function fixture() {
    const s = stack();
    const vpc = new ec2.Vpc(s, 'Vpc', {
      maxAzs: 2,
      natGateways: 0,
      subnetConfiguration: [{ name: 'db', subnetType: ec2.SubnetType.PRIVATE_ISOLATED }],
    });
    const engine = rds.DatabaseInstanceEngine.postgres({ version: rds.PostgresEngineVersion.VER_17 });
    const db = new rds.DatabaseInstance(s, 'Db', {
      engine,
      vpc,
      vpcSubnets: { subnetType: ec2.SubnetType.PRIVATE_ISOLATED },
    });
    const fn = (id: string, inVpc: boolean) =>
      new lambda.Function(s, id, {
        runtime: lambda.Runtime.NODEJS_22_X,
        handler: 'index.handler',
        code: inlineCode,
        ...(inVpc ? { vpc, vpcSubnets: { subnetType: ec2.SubnetType.PRIVATE_ISOLATED } } : {}),
      });
    return { s, db, fn };
  }

  it('flags out-of-VPC functions given the endpoint, rds-db:connect, or the database secret', () => {
    const { s, db, fn } = fixture();
    fn('WithEndpoint', false).addEnvironment('DB_HOST', db.dbInstanceEndpointAddress);
    db.grantConnect(fn('WithConnect', false), 'app');
    db.secret?.grantRead(fn('WithSecret', false));
    fn('Unrelated', false);
    expect(violations(s).get('Bulwark-LambdaDatabaseInVpc')?.sort()).toEqual([
      'S/WithConnect/Resource',
      'S/WithEndpoint/Resource',
      'S/WithSecret/Resource',
    ]);
  });

  it('accepts in-VPC functions with database access', () => {
    const { s, db, fn } = fixture();
    const inside = fn('Inside', true);
    inside.addEnvironment('DB_HOST', db.dbInstanceEndpointAddress);
    db.grantConnect(inside, 'app');
    db.secret?.grantRead(inside);
    expect(violations(s).get('Bulwark-LambdaDatabaseInVpc')).toBeUndefined();
  });
});
