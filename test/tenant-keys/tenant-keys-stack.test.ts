import { App, Duration, Stack, Stage } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as sns from 'aws-cdk-lib/aws-sns';
import { BulwarkChecks, applyComplianceGate, readFindings } from '../../lib/compliance';
import { TenantKeys } from '../../lib/tenant-keys/tenant-keys';
import { buildTestStages, templateOf, testApp } from '../support/cdk';
import { defined } from '../support/defined';
import { importedDatabaseAccess } from '../support/database-access';
import { DATABASE_ROLES } from '../../contracts/database';
import { EU } from '../support/catalogue';

type Json = Record<string, unknown>;

function statementsOf(t: Template): Json[] {
  const out: Json[] = [];
  for (const type of ['AWS::IAM::ManagedPolicy', 'AWS::IAM::Policy']) {
    for (const r of Object.values(t.findResources(type)) as Json[]) {
      const doc = (r['Properties'] as Json)['PolicyDocument'] as Json;
      out.push(...(doc['Statement'] as Json[]));
    }
  }
  return out;
}

const list = (v: unknown): unknown[] => (Array.isArray(v) ? v : [v]);

describe('TenantKeys stack in a shipped stage (prod-eu)', () => {
  // Template.fromStack synthesizes the stage, so the compliance gate (five packs, the Bulwark pack and
  // the residency guard) runs over it: building the template at all proves the gate passes.
  const { stages } = buildTestStages([EU.name]);
  const stage = defined(stages[0]);
  const t = templateOf(stage.tenantKeys.tenantKeys.node.scope as Stack);
  const statements = statementsOf(t);
  const bySid = (sid: string) => statements.filter((s) => s['Sid'] === sid);

  it('passes the compliance gate with no unacknowledged finding', () => {
    expect(readFindings(stage.outdir)).toEqual([]);
  });

  it('creates keys only with the required tags and a symmetric single-region spec', () => {
    expect(bySid('CreateTenantKeysOnlyWithTheirTags')).toEqual([
      {
        Sid: 'CreateTenantKeysOnlyWithTheirTags',
        Effect: 'Allow',
        Action: 'kms:CreateKey',
        Resource: '*',
        Condition: {
          StringEquals: {
            'aws:RequestTag/bulwark:deployment': EU.name,
            'aws:RequestTag/bulwark:key-class': 'tenant',
            'kms:KeySpec': 'SYMMETRIC_DEFAULT',
            'kms:KeyUsage': 'ENCRYPT_DECRYPT',
            'kms:KeyOrigin': 'AWS_KMS',
          },
          'ForAllValues:StringEquals': { 'aws:TagKeys': ['bulwark:deployment', 'bulwark:org-id', 'bulwark:key-class'] },
          Null: { 'aws:RequestTag/bulwark:org-id': 'false' },
          Bool: { 'kms:MultiRegion': 'false' },
        },
      },
    ]);
  });

  it('alias operations only under alias/bulwark/<deployment>/tenant/, key administration only on own tagged keys', () => {
    const [alias] = bySid('AliasesOnlyUnderTheTenantPrefix');
    expect(alias?.['Action']).toBe('kms:CreateAlias');
    expect(JSON.stringify(alias?.['Resource'])).toContain(`:alias/bulwark/${EU.name}/tenant/*`);
    for (const sid of ['AdministerOwnTenantKeys', 'RefreshOwnTenantKeyPolicies', 'ScheduleDeletionOfOwnTenantKeys']) {
      const [s] = bySid(sid);
      expect(s?.['Condition']).toEqual({
        StringEquals: {
          'aws:ResourceTag/bulwark:deployment': EU.name,
          'aws:ResourceTag/bulwark:key-class': 'tenant',
        },
      });
    }
    // Every alias permission anywhere is confined to the prefix or to own tagged keys.
    for (const s of statements.filter((x) => list(x['Action']).some((a) => String(a).includes('Alias')))) {
      const prefixed = JSON.stringify(s['Resource']).includes(`:alias/bulwark/${EU.name}/tenant/*`);
      expect(prefixed || s['Condition'] !== undefined).toBe(true);
    }
  });

  it('never grants kms:* (or *), and no KMS data action on arbitrary keys without conditions', () => {
    for (const s of statements) {
      const actions = list(s['Action']).map(String);
      expect(actions).not.toContain('kms:*');
      expect(actions).not.toContain('*');
      const data = actions.filter((a) => /^kms:(Encrypt|Decrypt|ReEncrypt|GenerateDataKey)/.test(a));
      if (data.length > 0) expect(s['Condition']).toBeDefined();
    }
  });

  it('runs both functions on Node.js 24 with tracing, bounded concurrency and a dead-letter queue', () => {
    // The two tenant-keys functions, and the file store's quarantine checker (test/tenant-files).
    const fns = t.findResources('AWS::Lambda::Function');
    expect(Object.keys(fns)).toHaveLength(3);
    t.resourcePropertiesCountIs(
      'AWS::Lambda::Function',
      {
        Runtime: 'nodejs24.x',
        TracingConfig: { Mode: 'Active' },
        DeadLetterConfig: { TargetArn: Match.anyValue() },
        ReservedConcurrentExecutions: Match.anyValue(),
      },
      3,
    );
    t.hasResourceProperties('AWS::Lambda::Function', {
      Description: Match.stringLikeRegexp('Creates or adopts a tenant KMS key'),
      ReservedConcurrentExecutions: 2,
      // The keyless sweep works through a backlog for up to this long (every 5 minutes).
      Timeout: 300,
      Environment: { Variables: Match.objectLike({ DEPLOYMENT: EU.name }) },
    });
    // Wired to the data tier: in its function subnets behind the API security group, IAM auth to the proxy.
    for (const [id, f] of Object.entries(fns) as [string, Json][]) {
      const p = f['Properties'] as Json;
      const vpc = p['VpcConfig'] as Json;
      expect((vpc['SubnetIds'] as unknown[]).length).toBe(3);
      expect(JSON.stringify(vpc['SecurityGroupIds'])).toContain('ApiSecurityGroup');
      const env = (p['Environment'] as Json)['Variables'] as Json;
      // Each function as its own role (migrations/0401).
      const own = /^TenantKeysProvisioner/.test(id)
        ? 'bulwark_key_provisioner'
        : /^FilesChecker/.test(id)
          ? 'bulwark_file_checker'
          : 'bulwark_lifecycle';
      expect(env['DB_USER']).toBe(own);
      expect(JSON.stringify(env['DB_HOST'])).toContain(`${EU.name}-Data`);
    }
    t.hasResourceProperties('AWS::Events::Rule', {
      ScheduleExpression: 'rate(5 minutes)',
      State: 'ENABLED',
      Targets: [Match.objectLike({ DeadLetterConfig: { Arn: Match.anyValue() }, RetryPolicy: Match.anyValue() })],
    });
  });

  it('not yet wired (no database prop): outside any VPC, no endpoint, schedule disabled, and still compliant', () => {
    const app = testApp();
    const wiredless = new Stage(app, 'unwired', { env: { account: '111122223333', region: 'eu-west-1' } });
    const s = new Stack(wiredless, 'S');
    new TenantKeys(s, 'TenantKeys', {
      deployment: 'prod-eu',
      alarmTopic: sns.Topic.fromTopicArn(s, 'Alarms', 'arn:aws:sns:eu-west-1:111122223333:alarms'),
    });
    applyComplianceGate(wiredless, { extraPacks: [new BulwarkChecks()] });
    const u = Template.fromStack(s);
    for (const f of Object.values(u.findResources('AWS::Lambda::Function')) as Json[]) {
      const p = f['Properties'] as Json;
      expect(p['VpcConfig']).toBeUndefined();
      expect(JSON.stringify(p['Environment'])).not.toContain('DB_HOST');
    }
    u.hasResourceProperties('AWS::Events::Rule', { State: 'DISABLED' });
  });

  it('keeps exports in a KMS-encrypted, TLS-only, versioned bucket where they expire after 7 days', () => {
    t.hasResourceProperties('AWS::S3::Bucket', {
      BucketEncryption: {
        ServerSideEncryptionConfiguration: [
          Match.objectLike({ ServerSideEncryptionByDefault: Match.objectLike({ SSEAlgorithm: 'aws:kms' }) }),
        ],
      },
      VersioningConfiguration: { Status: 'Enabled' },
      LifecycleConfiguration: {
        Rules: [Match.objectLike({ Id: 'ExpireExports', ExpirationInDays: 7, Status: 'Enabled' })],
      },
    });
    // The export bucket's and the tenant file store's (lib/tenant-files/file-store.ts).
    const policies = Object.values(t.findResources('AWS::S3::BucketPolicy')) as Json[];
    expect(policies.length).toBe(2);
    for (const p of policies) {
      expect(JSON.stringify(p)).toContain('"aws:SecureTransport":"false"');
    }
    t.allResources('AWS::S3::Bucket', { DeletionPolicy: 'Retain' } as never);
  });

  it('alarms on failures to the alarm topic', () => {
    const alarms = Object.values(t.findResources('AWS::CloudWatch::Alarm')) as Json[];
    // With the quarantine checker's errors and dead letters.
    expect(alarms.map((a) => (a['Properties'] as Json)['MetricName']).sort()).toEqual([
      'ApproximateNumberOfMessagesVisible',
      'ApproximateNumberOfMessagesVisible',
      'Errors',
      'Errors',
      'Errors',
      'KeyDeletionRefused',
      'ManagedKeysBehindPolicy',
      'Throttles',
    ]);
    for (const a of alarms) expect(((a['Properties'] as Json)['AlarmActions'] as unknown[]).length).toBe(1);
  });

  it("alarms when the lifecycle refuses to delete a key, from the refusal code in the lifecycle's logs", () => {
    const filters = Object.values(t.findResources('AWS::Logs::MetricFilter')) as Json[];
    const refusals = filters.filter((f) => JSON.stringify(f).includes('KEY_OWNERSHIP_MISMATCH'));
    expect(refusals).toHaveLength(1);
    const p = refusals[0]!['Properties'] as Json;
    expect(p['FilterPattern']).toBe('"KEY_OWNERSHIP_MISMATCH"');
    expect(JSON.stringify(p['LogGroupName'])).toContain('TenantKeysLifecycleLogs');
    expect(p['MetricTransformations']).toEqual([
      { MetricName: 'KeyDeletionRefused', MetricNamespace: 'Bulwark/prod-eu/TenantKeys', MetricValue: '1' },
    ]);
  });

  it("counts the keys still behind the current key policy from the provisioner's refresh log, and alarms after three hours", () => {
    const filters = (Object.values(t.findResources('AWS::Logs::MetricFilter')) as Json[])
      .map((f) => f['Properties'] as Json)
      .filter((p) => String(p['FilterPattern']).includes('key policy refresh'));
    expect(filters.map((p) => p['MetricTransformations'])).toEqual([
      [
        {
          MetricName: 'ManagedKeysBehindPolicy',
          MetricNamespace: 'Bulwark/prod-eu/TenantKeys',
          MetricValue: '$.behindManaged',
        },
      ],
      [
        {
          MetricName: 'ByokKeysBehindPolicy',
          MetricNamespace: 'Bulwark/prod-eu/TenantKeys',
          MetricValue: '$.behindByok',
        },
      ],
    ]);
    for (const p of filters) expect(JSON.stringify(p['LogGroupName'])).toContain('TenantKeysProvisionerLogs');
    const alarm = (Object.values(t.findResources('AWS::CloudWatch::Alarm')) as Json[])
      .map((a) => a['Properties'] as Json)
      .find((a) => a['MetricName'] === 'ManagedKeysBehindPolicy');
    expect(alarm).toMatchObject({ Statistic: 'Minimum', Period: 3600, EvaluationPeriods: 3, Threshold: 1 });
  });
});

/** A stage with TenantKeys wired to an (imported) data tier, under the same gate as shipped stages. */
function wiredStage(grant?: (tk: TenantKeys, stack: Stack) => void) {
  const app: App = testApp();
  const stage = new Stage(app, 'wired', { env: { account: '111122223333', region: 'eu-west-1' } });
  const stack = new Stack(stage, 'S');
  const vpc = ec2.Vpc.fromVpcAttributes(stack, 'Vpc', {
    vpcId: 'vpc-0123456789abcdef0',
    availabilityZones: ['eu-west-1a', 'eu-west-1b'],
    privateSubnetIds: ['subnet-0123456789abcdef0', 'subnet-0123456789abcdef1'],
  });
  const sg = ec2.SecurityGroup.fromSecurityGroupId(stack, 'Sg', 'sg-0123456789abcdef0');
  const tk = new TenantKeys(stack, 'TenantKeys', {
    deployment: 'prod-eu',
    alarmTopic: sns.Topic.fromTopicArn(stack, 'Alarms', 'arn:aws:sns:eu-west-1:111122223333:alarms'),
    databases: {
      keyProvisioner: importedDatabaseAccess(stack, {
        role: DATABASE_ROLES.keyProvisioner,
        region: 'eu-west-1',
        account: '111122223333',
        vpc,
        securityGroup: sg,
      }),
      lifecycle: importedDatabaseAccess(stack, {
        role: DATABASE_ROLES.lifecycle,
        region: 'eu-west-1',
        account: '111122223333',
        vpc,
        securityGroup: sg,
      }),
    },
    keyPendingWindow: Duration.days(10),
  });
  grant?.(tk, stack);
  applyComplianceGate(stage, { extraPacks: [new BulwarkChecks()] });
  return { app, stage, stack, tk };
}

describe('TenantKeys wired to the data tier', () => {
  it('runs in the VPC with IAM database auth, each function as its own role, and the schedule on', () => {
    const { stack } = wiredStage();
    const t = Template.fromStack(stack);
    t.resourcePropertiesCountIs(
      'AWS::Lambda::Function',
      {
        VpcConfig: {
          SubnetIds: ['subnet-0123456789abcdef0', 'subnet-0123456789abcdef1'],
          SecurityGroupIds: ['sg-0123456789abcdef0'],
        },
        Environment: {
          Variables: Match.objectLike({
            DB_HOST: 'bulwark.proxy-abc.eu-west-1.rds.amazonaws.com',
            DB_PORT: '5432',
            DB_NAME: 'bulwark',
          }),
        },
      },
      2,
    );
    for (const user of ['bulwark_key_provisioner', 'bulwark_lifecycle']) {
      t.resourcePropertiesCountIs(
        'AWS::Lambda::Function',
        { Environment: { Variables: Match.objectLike({ DB_USER: user }) } },
        1,
      );
    }
    t.hasResourceProperties('AWS::Lambda::Function', {
      Environment: { Variables: Match.objectLike({ KEY_PENDING_WINDOW_DAYS: '10' }) },
    });
    t.hasResourceProperties('AWS::Events::Rule', { State: 'ENABLED' });
    const connect = statementsOf(t).filter((s) => s['Sid'] === 'ConnectToDatabase');
    expect(connect).toHaveLength(2);
    expect(connect.map((st) => JSON.stringify(st['Resource']).match(/\/(bulwark_[a-z_]+)/)?.[1]).sort()).toEqual([
      'bulwark_key_provisioner',
      'bulwark_lifecycle',
    ]);
  });

  it('grantTenantKeyUse refuses a role it cannot tag (an immutable view), instead of leaving it silently untagged', () => {
    expect(() =>
      wiredStage((tk, s) => {
        const role = new iam.Role(s, 'ApiRole', { assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com') });
        const policy = new iam.ManagedPolicy(s, 'ApiPolicy', { roles: [role] });
        tk.grantTenantKeyUse(role.withoutPolicyUpdates(), policy);
      }),
    ).toThrow(/needs a role defined in this app/);
  });

  it('grantTenantKeyUse tags the API role and grants data actions only with an org_id context (Bulwark pack passes)', () => {
    const { stack, stage } = wiredStage((tk, s) => {
      const role = new iam.Role(s, 'ApiRole', { assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com') });
      const policy = new iam.ManagedPolicy(s, 'ApiPolicy', { roles: [role] });
      tk.grantTenantKeyUse(role, policy);
    });
    const t = Template.fromStack(stack);
    t.hasResourceProperties('AWS::IAM::Role', {
      Tags: Match.arrayWith([{ Key: 'bulwark:tenant-key-user', Value: 'prod-eu' }]),
    });
    const [use] = statementsOf(t).filter((s) => s['Sid'] === 'UseTenantKeysOnlyWithAnOrgContext');
    expect(use?.['Condition']).toEqual({
      StringEquals: { 'aws:ResourceTag/bulwark:deployment': 'prod-eu', 'aws:ResourceTag/bulwark:key-class': 'tenant' },
      Null: { 'kms:EncryptionContext:org_id': 'false' },
    });
    expect(readFindings(stage.outdir)).toEqual([]);
  });

  it('a naive grant of tenant-key use without the org_id context is refused by the gate', () => {
    const { app } = wiredStage((_tk, s) => {
      const role = new iam.Role(s, 'ApiRole', { assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com') });
      new iam.ManagedPolicy(s, 'NaivePolicy', {
        roles: [role],
        statements: [
          new iam.PolicyStatement({
            actions: ['kms:Decrypt'],
            resources: ['arn:aws:kms:eu-west-1:111122223333:key/*'],
            conditions: { StringEquals: { 'aws:ResourceTag/bulwark:key-class': 'tenant' } },
          }),
        ],
      });
    });
    expect(() => app.synth()).toThrow();
    const rules = readFindings(app.outdir).map((f) => `${f.rule} ${f.constructPath}`);
    expect(rules.some((r) => r.startsWith('Bulwark-TenantKeyEncryptionContext') && r.includes('NaivePolicy'))).toBe(
      true,
    );
  });

  it('refuses a KMS pending window outside 7-30 days', () => {
    const app = testApp();
    const stack = new Stack(app, 'S', { env: { account: '111122223333', region: 'eu-west-1' } });
    const alarmTopic = sns.Topic.fromTopicArn(stack, 'A', 'arn:aws:sns:eu-west-1:111122223333:a');
    expect(
      () => new TenantKeys(stack, 'TK', { deployment: 'prod-eu', alarmTopic, keyPendingWindow: Duration.days(6) }),
    ).toThrow(/7-30 days/);
  });
});
