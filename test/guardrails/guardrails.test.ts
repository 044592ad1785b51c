import * as fs from 'node:fs';
import { runSimulation, type Simulation } from '@cloud-copilot/iam-simulate';
import { REGIONS } from '../../lib/config/regions';
import { BREAK_GLASS_ROLE_NAME } from '../../lib/observability/keys';
import { TENANT_KEY_USER_TAG } from '../../contracts/tenant-keys';
import {
  GUARDRAILS,
  GUARDRAILS_DIR,
  GUARDRAILS_DOC,
  readGuardrail,
  renderGuardrails,
} from '../../tools/guardrails/guardrails';
import { buildTestStages, stacksOf } from '../support/cdk';

// The guardrail bundle, read the way AWS reads it: each request is evaluated by the IAM policy
// simulator with the SCPs at an OU between the root and the account (FullAWSAccess at every level,
// as AWS Organizations attaches it), and an administrator's identity policy.
const ACCOUNT = '111122223333';
const FULL = { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: '*', Resource: '*' }] };
const DEFAULT_KEY_POLICY = {
  Version: '2012-10-17',
  Statement: [{ Effect: 'Allow', Principal: { AWS: `arn:aws:iam::${ACCOUNT}:root` }, Action: 'kms:*', Resource: '*' }],
};
const role = (name: string): string => `arn:aws:iam::${ACCOUNT}:role/${name}`;
const ADMIN = role('AWSReservedSSO_AdministratorAccess_0123456789abcdef');
const BREAK_GLASS = role(BREAK_GLASS_ROLE_NAME);
const DEPLOY = role(`cdk-hnb659fds-cfn-exec-role-${ACCOUNT}-eu-west-1`);
const LIFECYCLE = role('prod-eu-TenantKeys-TenantKeysLifecycleRole-1A2B3C4D');

interface Req {
  readonly principal: string;
  readonly action: string;
  readonly resource: string;
  readonly region?: string;
  readonly context?: Record<string, string | string[]>;
}

async function verdict(req: Req, opts: { scps?: string[]; identity?: object } = {}): Promise<string> {
  const simulation: Simulation = {
    request: {
      principal: req.principal,
      action: req.action,
      resource: { resource: req.resource, accountId: ACCOUNT },
      contextVariables: {
        'aws:RequestedRegion': req.region ?? 'eu-west-1',
        'aws:PrincipalArn': req.principal,
        'aws:PrincipalAccount': ACCOUNT,
        ...req.context,
      },
    },
    identityPolicies: [{ name: 'identity', policy: opts.identity ?? FULL }],
    serviceControlPolicies: opts.scps
      ? [
          { orgIdentifier: 'r-root', policies: [{ name: 'FullAWSAccess', policy: FULL }] },
          {
            orgIdentifier: 'ou-bulwark',
            policies: [
              { name: 'FullAWSAccess', policy: FULL },
              ...opts.scps.map((f) => ({ name: f, policy: readGuardrail(f) })),
            ],
          },
          { orgIdentifier: ACCOUNT, policies: [{ name: 'FullAWSAccess', policy: FULL }] },
        ]
      : [],
    resourceControlPolicies: [],
    // A key is usable only through its key policy: the default one delegates to the account's IAM.
    resourcePolicy: req.resource.startsWith('arn:aws:kms:') ? DEFAULT_KEY_POLICY : undefined,
  };
  const result = await runSimulation(simulation, {});
  if (result.resultType === 'error') throw new Error(`simulation: ${JSON.stringify(result.errors)}`);
  if (result.resultType === 'wildcard') return result.overallResult === 'Allowed' ? 'allow' : 'deny';
  // A context key the action does not have would be dropped silently: the row would prove nothing.
  expect(result.result.ignoredContextKeys ?? []).toEqual([]);
  return result.result.analysis.result === 'Allowed' ? 'allow' : 'deny';
}

const keyArn = (region = 'eu-west-1'): string =>
  `arn:aws:kms:${region}:${ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab`;
const platformKey = { 'aws:ResourceTag/bulwark:key-class': 'platform' };
const tenantKey = { 'aws:ResourceTag/bulwark:key-class': 'tenant' };
const trail = `arn:aws:cloudtrail:eu-west-1:${ACCOUNT}:trail/prod-eu-Audit-CloudTrail`;

describe('region SCPs', () => {
  const zones = ['eu', 'in', 'us'] as const;

  it.each(zones)('%s lists exactly the regions of the zone (lib/config/regions.ts)', (zone) => {
    const doc = readGuardrail(`scp-deny-regions-outside-${zone}.json`);
    const [statement] = doc.Statement;
    const listed = (statement?.['Condition'] as { StringNotEquals: { 'aws:RequestedRegion': string[] } })
      .StringNotEquals['aws:RequestedRegion'];
    const expected = Object.entries(REGIONS)
      .filter(([, f]) => (f.residency as readonly string[]).includes(zone))
      .map(([r]) => r)
      .sort();
    expect([...listed].sort()).toEqual(expected);
  });

  const eu = ['scp-deny-regions-outside-eu.json'];
  it.each([
    ['a queue in the zone', 'sqs:CreateQueue', `arn:aws:sqs:eu-central-1:${ACCOUNT}:q`, 'eu-central-1', 'allow'],
    ['a queue in us-east-1', 'sqs:CreateQueue', `arn:aws:sqs:us-east-1:${ACCOUNT}:q`, 'us-east-1', 'deny'],
    ['a bucket in London (not EU)', 's3:CreateBucket', 'arn:aws:s3:::b', 'eu-west-2', 'deny'],
    ['a key in us-east-1 (KMS is not exempt)', 'kms:CreateKey', '*', 'us-east-1', 'deny'],
    ['AWS Config in us-east-1 (not exempt)', 'config:PutConfigurationRecorder', '*', 'us-east-1', 'deny'],
    ['IAM (global, us-east-1)', 'iam:CreateRole', role('x'), 'us-east-1', 'allow'],
    ['STS from us-east-1', 'sts:AssumeRole', role('x'), 'us-east-1', 'allow'],
    [
      'CloudFront (global)',
      'cloudfront:CreateInvalidation',
      `arn:aws:cloudfront::${ACCOUNT}:distribution/E1`,
      'us-east-1',
      'allow',
    ],
    ['Support (global)', 'support:CreateCase', '*', 'us-east-1', 'allow'],
  ])('eu: %s is %s', async (_what, action, resource, region, expected) => {
    expect(await verdict({ principal: ADMIN, action, resource, region }, { scps: eu })).toBe(expected);
  });

  it('does not exempt break-glass: residency is a legal boundary', async () => {
    const req = { principal: BREAK_GLASS, action: 'kms:CreateKey', resource: '*', region: 'us-east-1' };
    expect(await verdict(req, { scps: eu })).toBe('deny');
  });
});

describe('key and tag SCP', () => {
  const scps = ['scp-protect-keys-and-tags.json'];
  it.each([
    ['an administrator disables a platform key', ADMIN, 'kms:DisableKey', platformKey, 'deny'],
    ['an administrator schedules deletion of a platform key', ADMIN, 'kms:ScheduleKeyDeletion', platformKey, 'deny'],
    ['an administrator schedules deletion of an untagged key', ADMIN, 'kms:ScheduleKeyDeletion', {}, 'deny'],
    ['the deploy role disables a key', DEPLOY, 'kms:DisableKey', platformKey, 'deny'],
    ['break-glass disables a platform key', BREAK_GLASS, 'kms:DisableKey', platformKey, 'allow'],
    ['break-glass schedules deletion of a platform key', BREAK_GLASS, 'kms:ScheduleKeyDeletion', platformKey, 'allow'],
    ['the lifecycle shreds a tenant key', LIFECYCLE, 'kms:ScheduleKeyDeletion', tenantKey, 'allow'],
  ])('%s: %s', async (_what, principal, action, context, expected) => {
    expect(await verdict({ principal, action, resource: keyArn(), context }, { scps })).toBe(expected);
  });

  const tagKey = (principal: string, context: Record<string, string | string[]>) =>
    verdict({ principal, action: 'kms:TagResource', resource: keyArn(), context }, { scps });
  it('denies retagging a Bulwark key (a platform key made to look like a tenant key) except deploy/break-glass', async () => {
    const retag = {
      ...platformKey,
      'aws:TagKeys': ['bulwark:key-class'],
      'aws:RequestTag/bulwark:key-class': 'tenant',
    };
    expect(await tagKey(ADMIN, retag)).toBe('deny');
    expect(await tagKey(DEPLOY, retag)).toBe('allow');
    expect(await tagKey(BREAK_GLASS, retag)).toBe('allow');
  });

  it('lets a new key be created with its tags (nothing is tagged yet)', async () => {
    const create = { 'aws:TagKeys': ['bulwark:key-class'], 'aws:RequestTag/bulwark:key-class': 'tenant' };
    expect(await tagKey(LIFECYCLE, create)).toBe('allow');
  });

  const tagRole = (principal: string, keys: string[]) =>
    verdict(
      {
        principal,
        action: 'iam:TagRole',
        resource: role('prod-eu-Edge-TenantGuardApiRole-1A2B'),
        context: { 'aws:TagKeys': keys, ...Object.fromEntries(keys.map((k) => [`aws:RequestTag/${k}`, 'prod-eu'])) },
      },
      { scps },
    );
  it(`denies adding ${TENANT_KEY_USER_TAG} (tenant key access) to a role except deploy/break-glass`, async () => {
    expect(await tagRole(ADMIN, [TENANT_KEY_USER_TAG])).toBe('deny');
    expect(await tagRole(DEPLOY, [TENANT_KEY_USER_TAG])).toBe('allow');
    expect(await tagRole(BREAK_GLASS, [TENANT_KEY_USER_TAG])).toBe('allow');
    expect(await tagRole(ADMIN, ['team:cost-centre'])).toBe('allow');
  });
});

describe('detection SCP', () => {
  const scps = ['scp-protect-detection.json'];
  it.each([
    ['an administrator stops the trail', ADMIN, 'cloudtrail:StopLogging', trail, 'deny'],
    ['the deploy role stops the trail', DEPLOY, 'cloudtrail:StopLogging', trail, 'deny'],
    ['break-glass stops the trail', BREAK_GLASS, 'cloudtrail:StopLogging', trail, 'allow'],
    ['an administrator deletes the trail', ADMIN, 'cloudtrail:DeleteTrail', trail, 'deny'],
    ['an administrator updates the trail', ADMIN, 'cloudtrail:UpdateTrail', trail, 'deny'],
    ['a deployment updates the trail', DEPLOY, 'cloudtrail:UpdateTrail', trail, 'allow'],
    ['an administrator reads the trail', ADMIN, 'cloudtrail:GetTrailStatus', trail, 'allow'],
    [
      'an administrator deletes the GuardDuty detector',
      ADMIN,
      'guardduty:DeleteDetector',
      `arn:aws:guardduty:eu-west-1:${ACCOUNT}:detector/12abc34d567e8fa901bc2d34e56789f0`,
      'deny',
    ],
    ['an administrator stops AWS Config', ADMIN, 'config:StopConfigurationRecorder', '*', 'deny'],
  ])('%s: %s', async (_what, principal, action, resource, expected) => {
    expect(await verdict({ principal, action, resource }, { scps })).toBe(expected);
  });
});

describe('CDK bootstrap execution policy', () => {
  const policy = readGuardrail('cdk-bootstrap-execution-policy.json');
  const asDeploy = (action: string, resource: string, context: Record<string, string | string[]> = {}) =>
    verdict({ principal: DEPLOY, action, resource, context }, { identity: policy });

  it.each([
    ['creates a function', 'lambda:CreateFunction', `arn:aws:lambda:eu-west-1:${ACCOUNT}:function:f`, {}, 'allow'],
    ['creates a workload role', 'iam:CreateRole', role('prod-eu-Data-MigrateRole-1A2B'), {}, 'allow'],
    [
      'passes a role to Lambda',
      'iam:PassRole',
      role('prod-eu-Data-MigrateRole-1A2B'),
      { 'iam:PassedToService': 'lambda.amazonaws.com' },
      'allow',
    ],
    [
      'passes a role to EC2',
      'iam:PassRole',
      role('prod-eu-Data-MigrateRole-1A2B'),
      { 'iam:PassedToService': 'ec2.amazonaws.com' },
      'deny',
    ],
    ['creates a user', 'iam:CreateUser', `arn:aws:iam::${ACCOUNT}:user/x`, {}, 'deny'],
    ['creates an access key', 'iam:CreateAccessKey', `arn:aws:iam::${ACCOUNT}:user/x`, {}, 'deny'],
    ['changes the break-glass trust policy', 'iam:UpdateAssumeRolePolicy', BREAK_GLASS, {}, 'deny'],
    ['changes its own role', 'iam:PutRolePolicy', DEPLOY, {}, 'deny'],
    [
      'grants AdministratorAccess',
      'iam:AttachRolePolicy',
      role('prod-eu-Data-MigrateRole-1A2B'),
      { 'iam:PolicyARN': 'arn:aws:iam::aws:policy/AdministratorAccess' },
      'deny',
    ],
    ['schedules key deletion', 'kms:ScheduleKeyDeletion', keyArn(), {}, 'deny'],
    ['stops the trail', 'cloudtrail:StopLogging', trail, {}, 'deny'],
    ['leaves the organisation', 'organizations:LeaveOrganization', '*', {}, 'deny'],
  ])('the deploy role %s: %s', async (_what, action, resource, context, expected) => {
    expect(await asDeploy(action, resource, context)).toBe(expected);
  });

  it('covers every resource type the shipped deployments synthesize', () => {
    const { app, stages } = buildTestStages();
    const assembly = app.synth();
    const types = new Set<string>();
    for (const stage of stages) {
      for (const stack of stacksOf(stage)) {
        const template = assembly.getStackArtifact(stack.artifactId).template as {
          Resources?: Record<string, { Type: string }>;
        };
        for (const r of Object.values(template.Resources ?? {})) types.add(r.Type);
      }
    }
    const PREFIX: Record<string, string> = {
      AccessAnalyzer: 'access-analyzer',
      ApiGateway: 'apigateway',
      Cognito: 'cognito-idp',
      StepFunctions: 'states',
      Serverless: 'serverlessrepo',
    };
    const allowed = policy.Statement.filter((s) => s['Effect'] === 'Allow').flatMap((s) =>
      ([] as string[]).concat(s['Action'] as string | string[]),
    );
    const uncovered = [...types]
      .filter((t) => t.startsWith('AWS::') && t !== 'AWS::CDK::Metadata')
      .filter((t) => {
        const ns = t.split('::')[1]!;
        const prefix = PREFIX[ns] ?? ns.toLowerCase();
        return !allowed.some((a) => a === `${prefix}:*` || a.startsWith(`${prefix}:`));
      });
    expect(uncovered).toEqual([]);
    // Custom resources are Lambda-backed: CloudFormation invokes their providers.
    expect(allowed).toContain('lambda:*');
  }, 600_000);
});

describe('guardrail bundle', () => {
  it('documents every file in guardrails/', () => {
    const files = fs.readdirSync(GUARDRAILS_DIR).filter((f) => f.endsWith('.json'));
    expect(GUARDRAILS.map((g) => g.file).sort()).toEqual(files.sort());
  });

  it('docs/guardrails.md is current (run `npm run docs:guardrails`)', () => {
    expect(fs.readFileSync(GUARDRAILS_DOC, 'utf8')).toBe(renderGuardrails());
  });
});
