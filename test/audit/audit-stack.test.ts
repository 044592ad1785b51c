import { Stage } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import { AuditArchive } from '../../lib/audit/audit-archive';
import { retentionDays } from '../../lib/audit/locked-bucket';
import { BulwarkChecks, applyComplianceGate } from '../../lib/compliance';
import { OperationsStack } from '../../lib/stacks/operations-stack';
import { AuditStack } from '../../lib/stacks/audit-stack';
import { buildTestStages, deployment, templateOf, testApp } from '../support/cdk';
import { importedDatabaseAccess } from '../support/database-access';
import { DATABASE_ROLES } from '../../contracts/database';
import { appWithOutdir, gateFindings, stageFor } from '../edge/helpers';
import { defined } from '../support/defined';
import { EU, INDIA } from '../support/catalogue';

type Json = Record<string, unknown>;

const { app: stageApp, stages } = buildTestStages([EU.name]);
const stage = defined(stages[0]);
const template = templateOf(stage.audit);

function resources(type: string): [string, Json][] {
  return Object.entries(template.findResources(type)) as [string, Json][];
}
const props = (r: Json): Json => (r['Properties'] ?? {}) as Json;

describe('audit stack (prod-eu, compliance gate passing)', () => {
  it('passes the compliance gate of the whole stage', () => {
    expect(() => stageApp.synth()).not.toThrow();
  });

  it('locks every audit bucket in COMPLIANCE mode for at least 12 months', () => {
    const locked = resources('AWS::S3::Bucket').filter(([, r]) => props(r)['ObjectLockEnabled'] === true);
    expect(locked).toHaveLength(2); // archive and CloudTrail
    for (const [, r] of locked) {
      expect(props(r)['ObjectLockConfiguration']).toEqual({
        ObjectLockEnabled: 'Enabled',
        Rule: { DefaultRetention: { Mode: 'COMPLIANCE', Days: retentionDays(12) } },
      });
      expect(retentionDays(12)).toBeGreaterThanOrEqual(366);
      expect(props(r)).toMatchObject({
        VersioningConfiguration: { Status: 'Enabled' },
        PublicAccessBlockConfiguration: {
          BlockPublicAcls: true,
          BlockPublicPolicy: true,
          IgnorePublicAcls: true,
          RestrictPublicBuckets: true,
        },
        BucketEncryption: {
          ServerSideEncryptionConfiguration: [
            {
              BucketKeyEnabled: true,
              ServerSideEncryptionByDefault: { SSEAlgorithm: 'aws:kms', KMSMasterKeyID: expect.anything() },
            },
          ],
        },
        LoggingConfiguration: { DestinationBucketName: expect.anything() },
        LifecycleConfiguration: {
          Rules: expect.arrayContaining([
            expect.objectContaining({
              Status: 'Enabled',
              Transitions: [
                { StorageClass: 'GLACIER_IR', TransitionInDays: 90 },
                { StorageClass: 'DEEP_ARCHIVE', TransitionInDays: 365 },
              ],
            }),
          ]),
        },
        Tags: expect.arrayContaining([{ Key: 'bulwark:data-class', Value: 'audit' }]),
      });
      // The only expiration is after the longest plan retention plus the margin (test/audit/replication.test.ts).
      const expirations = JSON.stringify(props(r)['LifecycleConfiguration']).match(/"ExpirationInDays":\d+/g);
      expect(expirations).toEqual([`"ExpirationInDays":${retentionDays(84) + 30}`]);
    }
  });

  it('encrypts the archive with its own rotating key, not shared with CloudTrail', () => {
    const keyIds = resources('AWS::S3::Bucket')
      .filter(([, r]) => props(r)['ObjectLockEnabled'] === true)
      .map(([, r]) => JSON.stringify(props(r)['BucketEncryption']));
    expect(new Set(keyIds).size).toBe(2);
    for (const [, k] of resources('AWS::KMS::Key')) expect(props(k)['EnableKeyRotation']).toBe(true);
  });

  it('denies non-TLS access and every deletion on every bucket, for every principal', () => {
    const buckets = resources('AWS::S3::Bucket').map(([id]) => id);
    const policies = resources('AWS::S3::BucketPolicy');
    expect(policies.map(([, p]) => props(p)['Bucket'])).toEqual(
      expect.arrayContaining(buckets.map((id) => ({ Ref: id }))),
    );
    for (const [, p] of policies) {
      const statements = (props(p)['PolicyDocument'] as { Statement: Json[] }).Statement;
      expect(statements).toEqual(
        expect.arrayContaining([
          expect.objectContaining({
            Effect: 'Deny',
            Principal: { AWS: '*' },
            Action: 's3:*',
            Condition: { Bool: { 'aws:SecureTransport': 'false' } },
          }),
          expect.objectContaining({
            Effect: 'Deny',
            Principal: { AWS: '*' },
            Action: expect.arrayContaining(['s3:DeleteObject', 's3:DeleteObjectVersion', 's3:DeleteBucket']),
          }),
          expect.objectContaining({
            Effect: 'Deny',
            Condition: { NumericLessThan: { 's3:TlsVersion': 1.2 } },
          }),
        ]),
      );
    }
  });

  it('logs access to a separate bucket that is not itself an archive', () => {
    const targets = new Set(
      resources('AWS::S3::Bucket')
        .map(([, r]) =>
          JSON.stringify((props(r)['LoggingConfiguration'] as Json | undefined)?.['DestinationBucketName']),
        )
        .filter((t) => t !== undefined),
    );
    expect(targets.size).toBe(1);
    const [logBucketRef] = [...targets];
    const logBucketId = (JSON.parse(defined(logBucketRef)) as { Ref: string }).Ref;
    expect(props(template.toJSON().Resources[logBucketId])['ObjectLockEnabled']).toBeUndefined();
  });

  it('runs a multi-region CloudTrail with validation, KMS encryption and data events, into a locked bucket', () => {
    const trails = resources('AWS::CloudTrail::Trail');
    expect(trails).toHaveLength(1);
    const trail = props(defined(trails[0])[1]);
    expect(trail).toMatchObject({
      EnableLogFileValidation: true,
      IsLogging: true,
      // Every region, and the global services (IAM, STS, sign-in) that only us-east-1 records.
      IsMultiRegionTrail: true,
      IncludeGlobalServiceEvents: true,
      KMSKeyId: expect.anything(),
      CloudWatchLogsLogGroupArn: expect.anything(),
    });
    const bucketId = (trail['S3BucketName'] as { Ref: string }).Ref;
    expect(props(template.toJSON().Resources[bucketId])['ObjectLockConfiguration']).toMatchObject({
      Rule: { DefaultRetention: { Mode: 'COMPLIANCE' } },
    });
    template.hasResourceProperties('AWS::CloudTrail::Trail', {
      EventSelectors: Match.arrayWith([
        Match.objectLike({
          ReadWriteType: 'All',
          DataResources: [
            {
              Type: 'AWS::S3::Object',
              // The archive (this stack), the tenant export and file buckets and, prod-eu being
              // production, the account baseline's Config bucket (all imported from their stacks), and
              // the backup region's Config bucket (by its fixed name: no cross-region reference).
              Values: [
                Match.objectLike({ 'Fn::Join': Match.arrayWith([Match.arrayWith(['/'])]) }),
                ...[
                  stage.tenantKeys.stackName,
                  stage.tenantKeys.stackName,
                  defined(stage.accountBaseline).stackName,
                ].map((StackName) =>
                  Match.objectLike({
                    'Fn::Join': Match.arrayWith([
                      Match.arrayWith([Match.objectLike({ 'Fn::GetStackOutput': Match.objectLike({ StackName }) })]),
                    ]),
                  }),
                ),
                `arn:aws:s3:::bulwark-config-${stage.deployment.account}-${stage.deployment.backupRegion}/`,
              ],
            },
          ],
        }),
      ]),
    });
  });

  it('refuses an archive default retention below 12 months', () => {
    const app = testApp();
    const stack = new OperationsStack(app, 'X', { deployment: deployment(EU.name) });
    expect(() => new AuditArchive(stack, 'A', { defaultRetentionMonths: 11 })).toThrow(/below 12/);
  });
});

describe('archive shipper', () => {
  const app = testApp();
  const d = deployment(INDIA.name);
  const shipperStage = new Stage(app, 'shipper-test', { env: { account: d.account, region: d.region } });
  const ops = new OperationsStack(shipperStage, 'Operations', { deployment: d });
  // A stand-in for the data tier (the stage wires the real one; test/foundation proves that).
  const net = ops;
  const vpc = ec2.Vpc.fromVpcAttributes(net, 'Vpc', {
    vpcId: 'vpc-0123456789abcdef0',
    availabilityZones: ['ap-south-1a', 'ap-south-1b'],
    privateSubnetIds: ['subnet-0aaaaaaaaaaaaaaa1', 'subnet-0aaaaaaaaaaaaaaa2'],
    privateSubnetRouteTableIds: ['rtb-0aaaaaaaaaaaaaaa1', 'rtb-0aaaaaaaaaaaaaaa2'],
  });
  const audit = new AuditStack(shipperStage, 'Audit', {
    deployment: d,
    alarmTopic: ops.alarmTopic,
    shipperDatabase: importedDatabaseAccess(net, {
      role: DATABASE_ROLES.auditShipper,
      region: 'ap-south-1',
      account: '000000000000',
      vpc,
      securityGroup: ec2.SecurityGroup.fromSecurityGroupId(net, 'Sg', 'sg-0123456789abcdef0'),
    }),
  });
  applyComplianceGate(shipperStage, { extraPacks: [new BulwarkChecks({ minimumAuditRetentionDays: 365 })] });
  const t = Template.fromStack(audit);

  it('passes the compliance gate with the shipper in place', () => {
    expect(() => app.synth()).not.toThrow();
  });

  it('runs on Node.js 24 every 5 minutes, two workers at once, with the plan retention validated at cold start', () => {
    t.hasResourceProperties('AWS::Lambda::Function', {
      Runtime: 'nodejs24.x',
      ReservedConcurrentExecutions: 2,
      TracingConfig: { Mode: 'Active' },
      Environment: {
        Variables: Match.objectLike({
          AUDIT_RETENTION_MONTHS: JSON.stringify({ pro: 12, business: 24, enterprise: 84 }),
          DB_USER: 'bulwark_audit_shipper',
          DEPLOYMENT: 'prod-ap-south-1',
        }),
      },
    });
    // One schedule per worker, each starting one invocation of the same function.
    const rules = Object.values(t.findResources('AWS::Events::Rule')) as Json[];
    expect(rules.map((r) => props(r)['ScheduleExpression'])).toEqual(['rate(5 minutes)', 'rate(5 minutes)']);
    const [fnId] = Object.keys(t.findResources('AWS::Lambda::Function'));
    for (const r of rules) {
      expect(props(r)['Targets']).toEqual([expect.objectContaining({ Arn: { 'Fn::GetAtt': [defined(fnId), 'Arn'] } })]);
    }
  });

  it('may only write archive objects with their retention, and use the archive key', () => {
    // Every policy of the stack but the replication role's (S3's own, test/audit/replication.test.ts).
    const policies = [
      ...Object.entries(t.findResources('AWS::IAM::Policy')),
      ...Object.entries(t.findResources('AWS::IAM::ManagedPolicy')),
    ]
      .filter(([id]) => !id.startsWith('ReplicationRole'))
      .map(([, p]) => p) as Json[];
    const statements = policies.flatMap((p) => (props(p)['PolicyDocument'] as { Statement: Json[] }).Statement);
    const s3 = statements.filter((s) => JSON.stringify(s['Action']).includes('s3:'));
    expect(s3).toEqual([
      expect.objectContaining({ Action: ['s3:GetObject', 's3:PutObject', 's3:PutObjectRetention'], Effect: 'Allow' }),
    ]);
    expect(JSON.stringify(defined(s3[0])['Resource'])).toContain('/orgs/*');
    expect(JSON.stringify(statements)).not.toMatch(/s3:Delete|s3:PutObjectLegalHold|s3:BypassGovernanceRetention/);
  });

  it('runs in the VPC and connects through the proxy as its own role only (IAM token, no secret)', () => {
    const [fn] = Object.values(t.findResources('AWS::Lambda::Function')) as Json[];
    expect(props(defined(fn))['VpcConfig']).toEqual({
      SubnetIds: ['subnet-0aaaaaaaaaaaaaaa1', 'subnet-0aaaaaaaaaaaaaaa2'],
      SecurityGroupIds: ['sg-0123456789abcdef0'],
    });
    expect((props(defined(fn))['Environment'] as { Variables: Json }).Variables).toMatchObject({
      DB_HOST: 'bulwark.proxy-abc.ap-south-1.rds.amazonaws.com',
      DB_PORT: '5432',
      DB_NAME: 'bulwark',
      DB_USER: 'bulwark_audit_shipper',
    });
    const statements = (Object.values(t.findResources('AWS::IAM::ManagedPolicy')) as Json[]).flatMap(
      (p) => (props(p)['PolicyDocument'] as { Statement: Json[] }).Statement,
    );
    const connect = statements.filter((st) => JSON.stringify(st['Action']).includes('rds-db:'));
    expect(connect).toHaveLength(1);
    expect(JSON.stringify(defined(connect[0])['Resource'])).toMatch(
      /:dbuser:prx-0123456789abcdef0\/bulwark_audit_shipper"/,
    );
    expect(JSON.stringify(statements)).not.toContain('secretsmanager:');
  });

  it('alarms on errors, throttles, undeliverable invocations and the archive delay', () => {
    // The trail's own alarms (test/audit/trail-alarms.test.ts) live in the Bulwark/<deployment>/Trail namespace.
    const alarms = (Object.values(t.findResources('AWS::CloudWatch::Alarm')) as Json[]).filter(
      (a) => !String(props(a)['Namespace']).endsWith('/Trail'),
    );
    expect(alarms.map((a) => props(a)['MetricName']).sort()).toEqual(
      ['ApproximateNumberOfMessagesVisible', 'ArchiveOldestUnshippedSeconds', 'Errors', 'Throttles'].sort(),
    );
    for (const a of alarms) expect(props(a)['AlarmActions']).toHaveLength(1);
  });

  it('alarms when a record has waited over an hour, or when the shipper publishes nothing', () => {
    t.hasResourceProperties('AWS::CloudWatch::Alarm', {
      Namespace: 'Bulwark/Audit',
      MetricName: 'ArchiveOldestUnshippedSeconds',
      Dimensions: [{ Name: 'Deployment', Value: 'prod-ap-south-1' }],
      Statistic: 'Maximum',
      Period: 900,
      EvaluationPeriods: 1,
      Threshold: 3600,
      ComparisonOperator: 'GreaterThanThreshold',
      TreatMissingData: 'breaching',
    });
  });
});

describe('audit retention floor', () => {
  it('is the shortest plan promise, whichever plan that is: a pro plan promising more than business still passes', () => {
    const app = appWithOutdir();
    const d = deployment(EU.name);
    stageFor(app, { ...d, auditRetentionMonths: { pro: 30, business: 24, enterprise: 84 } });
    expect(gateFindings(app)).toEqual([]);
  });
});
