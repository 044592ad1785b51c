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
        Rules: [{ NoncurrentVersionExpiration: { NoncurrentDays: 30 }, Status: 'Enabled' }],
      },
    });
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
