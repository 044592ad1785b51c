/**
 * Template assertions for the tenant file store and its wiring (what IAM decides is proved by the
 * access-proof rows in tools/access-proof/files-rows.ts; this pins the resources and their wiring).
 */
import { Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import type { CfnResource } from 'aws-cdk-lib';
import { buildTestStages } from '../support/cdk';
import { EU } from '../support/catalogue';
import type { BulwarkStage } from '../../lib/bulwark-stage';

let stage: BulwarkStage;
let keys: Template;
let edge: Template;
beforeAll(() => {
  const built = buildTestStages([EU.name]);
  built.app.synth();
  stage = built.stages[0]!;
  keys = Template.fromStack(stage.tenantKeys);
  edge = Template.fromStack(stage.edge);
}, 300_000);

const logicalId = (c: { node: { defaultChild?: unknown } }) =>
  Stack.of(c as never).getLogicalId(c.node.defaultChild as CfnResource);

describe('the file store', () => {
  it('is a retained, versioned, private, SSE-KMS bucket whose old versions expire after 30 days', () => {
    const id = logicalId(stage.tenantKeys.files.bucket);
    const bucket = keys.toJSON().Resources[id];
    expect(bucket).toMatchObject({ DeletionPolicy: 'Retain', UpdateReplacePolicy: 'Retain' });
    expect(bucket.Properties).toMatchObject({
      VersioningConfiguration: { Status: 'Enabled' },
      PublicAccessBlockConfiguration: {
        BlockPublicAcls: true,
        BlockPublicPolicy: true,
        IgnorePublicAcls: true,
        RestrictPublicBuckets: true,
      },
      BucketEncryption: {
        ServerSideEncryptionConfiguration: [
          { ServerSideEncryptionByDefault: { SSEAlgorithm: 'aws:kms' }, BucketKeyEnabled: false },
        ],
      },
      LifecycleConfiguration: {
        Rules: [
          { Id: 'RecoverableForAWhile', NoncurrentVersionExpiration: { NoncurrentDays: 30 }, Status: 'Enabled' },
          {
            // What the checker rejects goes: current and noncurrent versions marked rejected.
            Id: 'ExpireRejectedUploads',
            TagFilters: [{ Key: 'bulwark-scan', Value: 'rejected' }],
            ExpirationInDays: 1,
            NoncurrentVersionExpiration: { NoncurrentDays: 1 },
            Status: 'Enabled',
          },
        ],
      },
      // Set on the bucket itself: no notifications custom resource (a function outside the recipe).
      NotificationConfiguration: { EventBridgeConfiguration: { EventBridgeEnabled: true } },
    });
    expect(keys.findResources('Custom::S3BucketNotifications')).toEqual({});
  });

  it('has the principal-independent denies in its bucket policy', () => {
    const id = logicalId(stage.tenantKeys.files.bucket);
    const [policy] = Object.values(
      keys.findResources('AWS::S3::BucketPolicy', { Properties: { Bucket: { Ref: id } } }),
    );
    const sids = (policy!.Properties.PolicyDocument.Statement as { Sid?: string; Effect: string }[])
      .filter((s) => s.Effect === 'Deny')
      .map((s) => s.Sid);
    expect(sids).toEqual(
      expect.arrayContaining([
        'DenyPutWithoutSseKms',
        'DenyPutWithoutAnExplicitKeyOfThisAccount',
        'DenyPutOutsideTheTenantRoot',
        'DenyTenantSessionsOutsideTheirPrefix',
        'NobodyWritesTheReleaseMark',
      ]),
    );
  });

  it("exempts the checker's role, and only it, from NobodyWritesTheReleaseMark", () => {
    const id = logicalId(stage.tenantKeys.files.bucket);
    const [policy] = Object.values(
      keys.findResources('AWS::S3::BucketPolicy', { Properties: { Bucket: { Ref: id } } }),
    );
    const mark = (policy!.Properties.PolicyDocument.Statement as { Sid?: string }[]).find(
      (s) => s.Sid === 'NobodyWritesTheReleaseMark',
    );
    expect(mark).toMatchObject({
      Effect: 'Deny',
      Principal: { AWS: '*' },
      Action: [
        's3:DeleteObjectTagging',
        's3:DeleteObjectVersionTagging',
        's3:PutObjectTagging',
        's3:PutObjectVersionTagging',
      ],
      Condition: {
        ArnNotEquals: { 'aws:PrincipalArn': { 'Fn::GetAtt': [logicalId(checker().role), 'Arn'] } },
      },
    });
  });
});

const checker = () => stage.tenantKeys.files.checker!;

describe('the quarantine checker', () => {
  it('receives Object Created events of the files bucket under orgs/ through EventBridge, dead letters kept', () => {
    const [rule] = checker().rules;
    const r = keys.toJSON().Resources[logicalId(rule as never)];
    expect(r.Properties.EventPattern).toEqual({
      source: ['aws.s3'],
      'detail-type': ['Object Created'],
      detail: {
        bucket: { name: [{ Ref: logicalId(stage.tenantKeys.files.bucket) }] },
        object: { key: [{ prefix: 'orgs/' }] },
      },
    });
    expect(r.Properties.Targets).toEqual([
      expect.objectContaining({
        Arn: { 'Fn::GetAtt': [logicalId(checker().function.function), 'Arn'] },
        DeadLetterConfig: { Arn: { 'Fn::GetAtt': [logicalId(checker().deadLetters as never), 'Arn'] } },
        RetryPolicy: { MaximumEventAgeInSeconds: 21600, MaximumRetryAttempts: 8 },
      }),
    ]);
    expect(checker().rules).toHaveLength(1);
  });

  it('is a recipe function in the VPC, connected as bulwark_file_checker, after the schema, alarmed', () => {
    const fn = keys.toJSON().Resources[logicalId(checker().function.function)];
    expect(fn.Properties.VpcConfig).toBeDefined();
    expect(fn.Properties.Environment.Variables).toMatchObject({
      DB_USER: 'bulwark_file_checker',
      FILES_BUCKET: { Ref: logicalId(stage.tenantKeys.files.bucket) },
    });
    expect(fn.Properties.ReservedConcurrentExecutions).toBe(5);
    expect(fn.Properties.DeadLetterConfig).toEqual({
      TargetArn: { 'Fn::GetAtt': [logicalId(checker().deadLetters as never), 'Arn'] },
    });
    // Deploys after the Data stack's schema resource.
    expect(stage.tenantKeys.dependencies.map((d) => d.node.id)).toContain('Data');
    expect(checker().alarms.map((a) => logicalId(a as never))).toHaveLength(2);
  });

  it('tags the checker role as a tenant-key user (the key policies admit it for each org_id through S3)', () => {
    const role = keys.toJSON().Resources[logicalId(checker().role)];
    expect(role.Properties.Tags).toEqual(expect.arrayContaining([{ Key: 'bulwark:tenant-key-user', Value: EU.name }]));
  });
});

describe('wiring', () => {
  it('gives the authorizer the files role and the API the bucket name, never a grant on it', () => {
    const guard = stage.tenantGuard;
    const env = (fn: { node: { defaultChild?: unknown } }) =>
      (edge.toJSON().Resources[logicalId(fn)].Properties.Environment?.Variables ?? {}) as Record<string, unknown>;
    expect(Object.keys(env(guard.authorizerFunction))).toContain('FILES_ROLE_ARN');
    expect(Object.keys(env(guard.apiFunction))).toContain('FILES_BUCKET');
    // Nothing attached to the API role names the files bucket.
    const bucketId = logicalId(stage.tenantKeys.files.bucket);
    const apiRole = edge.toJSON().Resources[logicalId(guard.apiRole)];
    const attached = JSON.stringify([
      apiRole,
      ...Object.values(edge.findResources('AWS::IAM::ManagedPolicy')).filter((p) =>
        JSON.stringify(p).includes(logicalId(guard.apiRole)),
      ),
    ]);
    expect(attached).not.toContain(bucketId);
  });

  it('tags the files role as a tenant-key user and lets only the authorizer assume it, with the org_id tag', () => {
    const role = edge.toJSON().Resources[logicalId(stage.tenantGuard.filesRole!)];
    expect(role.Properties.Tags).toEqual(expect.arrayContaining([{ Key: 'bulwark:tenant-key-user', Value: EU.name }]));
    const trust = role.Properties.AssumeRolePolicyDocument.Statement as {
      Action: string;
      Principal: { AWS: unknown };
      Condition: unknown;
    }[];
    expect(trust.map((s) => s.Action).sort()).toEqual(['sts:AssumeRole', 'sts:TagSession']);
    for (const s of trust) {
      expect(s.Principal.AWS).toEqual({
        'Fn::GetAtt': [logicalId(stage.tenantGuard.authorizerFunction.role as never), 'Arn'],
      });
      expect(s.Condition).toEqual({
        StringLike: { 'aws:RequestTag/org_id': '????????-????-????-????-????????????' },
        'ForAllValues:StringEquals': { 'aws:TagKeys': ['org_id'] },
      });
    }
  });

  it('lets the lifecycle erase files (every version under orgs/)', () => {
    const fn = keys.toJSON().Resources[logicalId(stage.tenantKeys.tenantKeys.lifecycle as never)];
    expect(Object.keys(fn.Properties.Environment.Variables)).toContain('FILES_BUCKET');
  });
});
