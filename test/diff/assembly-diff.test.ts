import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { App, Stack, Stage } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import {
  diffAssemblies,
  diffTemplates,
  diffValues,
  normaliseAssets,
  readAssembly,
  renderDiff,
} from '../../tools/diff/assembly-diff';

const HASH_A = 'a'.repeat(64);
const HASH_B = 'b'.repeat(64);

describe('template diff', () => {
  const fn = (hash: string, memory: number) => ({
    Type: 'AWS::Lambda::Function',
    Properties: { Code: { S3Bucket: 'cdk-assets', S3Key: `${hash}.zip` }, MemorySize: memory, Role: 'r1' },
    Metadata: { 'aws:asset:path': `asset.${hash}` },
  });

  it('normalises asset hashes in values and keys', () => {
    expect(normaliseAssets({ [`asset.${HASH_A}`]: [`${HASH_A}.zip`, 3] })).toEqual({
      'asset.<asset>': ['<asset>.zip', 3],
    });
  });

  it('names the property paths that changed, arrays by position', () => {
    expect(diffValues({ a: [1, { b: 2 }], c: 1 }, { a: [1, { b: 3 }, 4], d: 1 })).toEqual([
      { path: 'a[1].b', before: 2, after: 3 },
      { path: 'a[2]', after: 4 },
      { path: 'c', before: 1 },
      { path: 'd', after: 1 },
    ]);
  });

  it('ignores a rebuilt asset, reports real changes and marks policy changes', () => {
    const before = {
      Resources: {
        Fn: fn(HASH_A, 256),
        Policy: {
          Type: 'AWS::IAM::ManagedPolicy',
          Properties: { PolicyDocument: { Statement: [{ Effect: 'Allow', Action: 's3:GetObject', Resource: '*' }] } },
        },
        Old: { Type: 'AWS::SQS::Queue' },
      },
      Outputs: { Url: { Value: 'x' } },
    };
    const after = {
      Resources: {
        Fn: fn(HASH_B, 256),
        Policy: {
          Type: 'AWS::IAM::ManagedPolicy',
          Properties: { PolicyDocument: { Statement: [{ Effect: 'Allow', Action: 's3:*', Resource: '*' }] } },
        },
        New: { Type: 'AWS::S3::Bucket' },
      },
      Outputs: { Url: { Value: 'y' } },
    };
    expect(diffTemplates(before, { ...before, Resources: { ...before.Resources, Fn: fn(HASH_B, 256) } })).toEqual({
      resources: [],
      other: [],
    });
    const d = diffTemplates(before, after);
    expect(d.resources).toEqual([
      { logicalId: 'New', type: 'AWS::S3::Bucket', kind: 'added', changes: [], policy: false },
      { logicalId: 'Old', type: 'AWS::SQS::Queue', kind: 'removed', changes: [], policy: false },
      {
        logicalId: 'Policy',
        type: 'AWS::IAM::ManagedPolicy',
        kind: 'changed',
        changes: [{ path: 'Properties.PolicyDocument.Statement[0].Action', before: 's3:GetObject', after: 's3:*' }],
        policy: true,
      },
    ]);
    expect(d.other).toEqual([{ path: 'Outputs.Url.Value', before: 'x', after: 'y' }]);
    const role = diffTemplates(
      { Resources: { Fn: fn(HASH_A, 256) } },
      { Resources: { Fn: { ...fn(HASH_A, 512), Properties: { ...fn(HASH_A, 512).Properties, Role: 'r2' } } } },
    );
    expect(role.resources[0]).toMatchObject({ policy: true });
    expect(
      diffTemplates({ Resources: { Fn: fn(HASH_A, 256) } }, { Resources: { Fn: fn(HASH_A, 512) } }).resources[0],
    ).toMatchObject({ policy: false });
  });
});

describe('assembly diff over synthesized assemblies', () => {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'assembly-diff-'));
  afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

  /** One app with a stage per deployment, as Bulwark synthesizes them. */
  function synth(dir: string, variant: 'a' | 'b'): string {
    const outdir = path.join(work, dir);
    const app = new App({ outdir });
    for (const name of ['dep-one', 'dep-two']) {
      const stage = new Stage(app, name, { env: { account: '111111111111', region: 'eu-west-1' } });
      const stack = new Stack(stage, 'Data', { stackName: `${name}-Data` });
      const queue = new sqs.Queue(stack, 'Queue');
      const role = new iam.Role(stack, 'Role', { assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com') });
      queue.grantSendMessages(role);
      if (variant === 'b' && name === 'dep-two') {
        queue.grantConsumeMessages(role);
        new s3.Bucket(stack, 'Bucket');
      }
    }
    app.synth();
    return outdir;
  }
  const a = synth('a', 'a');
  const b = synth('b', 'b');

  it('reads every stack of every nested stage assembly', () => {
    expect([...readAssembly(a).keys()].sort()).toEqual(['dep-one/Data', 'dep-two/Data']);
  });

  it('reports only the stage that changed, the policy change first', () => {
    expect(diffAssemblies(a, a)).toEqual([]);
    const diffs = diffAssemblies(a, b);
    expect(diffs.map((d) => d.stack)).toEqual(['dep-two/Data']);
    const text = renderDiff(diffs);
    const lines = text.split('\n');
    expect(lines[0]).toBe('~ stack dep-two/Data');
    expect(lines[1]).toMatch(/^ {2}\[IAM\] ~ AWS::IAM::Policy RoleDefaultPolicy/);
    expect(text).toMatch(/^ {6}[+~] Properties\.PolicyDocument\.Statement\[\d\]/m);
    expect(text).toMatch(/sqs:ReceiveMessage/);
    expect(text).toMatch(/^ {2}\+ AWS::S3::Bucket Bucket/m);
    expect(lines[lines.length - 1]).toBe(
      '1 stack(s) differ: 1 resource(s) added, 0 removed, 1 changed; 1 with IAM or resource-policy changes',
    );
  });

  it('runs as npm run diff: exit 0 when equal, 1 with the report when not, 2 on bad usage', () => {
    const run = (...args: string[]) =>
      spawnSync(
        process.execPath,
        [require.resolve('tsx/cli'), path.join(__dirname, '../../scripts/diff.ts'), ...args],
        {
          encoding: 'utf8',
        },
      );
    const same = run(a, a);
    expect([same.status, same.stdout.trim()]).toEqual([0, 'no differences (asset hashes normalised)']);
    const differ = run(a, b);
    expect(differ.status).toBe(1);
    expect(differ.stdout).toContain('[IAM] ~ AWS::IAM::Policy');
    const missing = run(a, path.join(work, 'nowhere'));
    expect(missing.status).toBe(2);
    expect(missing.stderr).toContain('holds no cloud assembly (no manifest.json)');
    expect(run(a).status).toBe(2);
  });
});
