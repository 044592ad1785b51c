/**
 * Issue 19, item 3, read as AWS reads it: the synthesized provisioner and lifecycle policies and the
 * synthesized key policy of the database key, evaluated with an IAM policy evaluator
 * (@cloud-copilot/iam-simulate, dev-only). The provisioner must not be able to turn a platform key
 * into a "tenant key" and then rewrite its policy or delete it; it must still be able to create a
 * correctly tagged tenant key.
 */
import { runSimulation, type Simulation } from '@cloud-copilot/iam-simulate';
import { App, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { PLATFORM_KEY_PROTECTED_ACTIONS, keyAdministratorArns } from '../../lib/observability/keys';
import { tenantKeyPolicy } from '../../lambda/tenant-keys/key-policy';
import { buildTestStages } from '../support/cdk';
import { EU } from '../support/catalogue';

type Json = Record<string, unknown>;
const ORG = '3f1c2d3e-4b5a-4c6d-8e7f-0a1b2c3d4e5f';

/** Resolves the intrinsics these policies use, with the stack's own (concrete) account and region. */
function resolver(stack: Stack) {
  const account = stack.account;
  const region = stack.region;
  const template = Template.fromStack(stack).toJSON() as { Resources: Record<string, Json> };
  const arnOf = (id: string): string => {
    const type = String(template.Resources[id]?.['Type']);
    if (type === 'AWS::KMS::Key') return `arn:aws:kms:${region}:${account}:key/${id}`;
    if (type === 'AWS::IAM::Role') return `arn:aws:iam::${account}:role/${id}`;
    return `arn:aws:${type.split('::')[1]!.toLowerCase()}:${region}:${account}:${id}`;
  };
  const resolve = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(resolve);
    if (v === null || typeof v !== 'object') return v;
    const o = v as Json;
    if ('Ref' in o) {
      const pseudo: Record<string, string> = {
        'AWS::Partition': 'aws',
        'AWS::AccountId': account,
        'AWS::Region': region,
        'AWS::URLSuffix': 'amazonaws.com',
      };
      return pseudo[String(o['Ref'])] ?? String(o['Ref']);
    }
    if ('Fn::Join' in o) {
      const [sep, parts] = o['Fn::Join'] as [string, unknown[]];
      return (resolve(parts) as unknown[]).join(sep);
    }
    if ('Fn::GetAtt' in o) return arnOf((o['Fn::GetAtt'] as string[])[0]!);
    if ('Fn::ImportValue' in o) return 'imported';
    return Object.fromEntries(Object.entries(o).map(([k, x]) => [k, resolve(x)]));
  };
  return { template, resolve, account, region };
}

const { stages } = buildTestStages([EU.name]);
const stage = stages[0]!;
const data = resolver(stage.data);
const keys = resolver(stage.tenantKeys);
const ACCOUNT = data.account;

const dataKeyId = Object.keys(data.template.Resources).find(
  (id) => data.template.Resources[id]?.['Type'] === 'AWS::KMS::Key' && id.startsWith('DataKey'),
)!;
const dataKeyArn = `arn:aws:kms:${data.region}:${ACCOUNT}:key/${dataKeyId}`;
const dataKeyPolicy = data.resolve((data.template.Resources[dataKeyId]!['Properties'] as Json)['KeyPolicy']) as {
  Statement: Json[];
};
const dataKeyTags = Object.fromEntries(
  ((data.template.Resources[dataKeyId]!['Properties'] as Json)['Tags'] as { Key: string; Value: string }[]).map((t) => [
    `aws:ResourceTag/${t.Key}`,
    t.Value,
  ]),
);

/** The managed policy (resolved) that holds the statement `sid`: one per function. */
function policyWith(sid: string): Json {
  for (const r of Object.values(keys.template.Resources)) {
    if (r['Type'] !== 'AWS::IAM::ManagedPolicy') continue;
    const doc = (r['Properties'] as Json)['PolicyDocument'] as { Statement: Json[] };
    if (doc.Statement.some((s) => s['Sid'] === sid)) return keys.resolve(doc) as Json;
  }
  throw new Error(`no policy with ${sid}`);
}
const provisionerPolicy = policyWith('CreateTenantKeysOnlyWithTheirTags');
const lifecyclePolicy = policyWith('ScheduleDeletionOfOwnTenantKeys');
const PROVISIONER = `arn:aws:iam::${ACCOUNT}:role/${EU.name}-TenantKeys-ProvisionerRole`;
const LIFECYCLE = `arn:aws:iam::${ACCOUNT}:role/${EU.name}-TenantKeys-LifecycleRole`;
const ADMIN = { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: '*', Resource: '*' }] };

interface Ask {
  principal: string;
  identity: Json;
  action: string;
  resource: string;
  resourcePolicy?: Json;
  context?: Record<string, string | string[]>;
}

async function decide(ask: Ask): Promise<string> {
  const simulation: Simulation = {
    request: {
      principal: ask.principal,
      action: ask.action,
      resource: { resource: ask.resource, accountId: ACCOUNT },
      contextVariables: { 'aws:PrincipalArn': ask.principal, 'aws:PrincipalAccount': ACCOUNT, ...ask.context },
    },
    identityPolicies: [{ name: 'identity', policy: ask.identity }],
    serviceControlPolicies: [],
    resourceControlPolicies: [],
    resourcePolicy: ask.resourcePolicy,
  };
  const r = await runSimulation(simulation, {});
  if (r.resultType === 'error') throw new Error(JSON.stringify(r.errors));
  return r.overallResult;
}

const tenantRequestTags = {
  'aws:RequestTag/bulwark:deployment': EU.name,
  'aws:RequestTag/bulwark:key-class': 'tenant',
  'aws:RequestTag/bulwark:org-id': ORG,
  'aws:TagKeys': ['bulwark:deployment', 'bulwark:org-id', 'bulwark:key-class'],
};
/** The data key as it would look had someone re-tagged it into the tenant class. */
const retagged = {
  'aws:ResourceTag/bulwark:deployment': EU.name,
  'aws:ResourceTag/bulwark:key-class': 'tenant',
  'aws:ResourceTag/bulwark:org-id': ORG,
};
const withoutDenies = { ...dataKeyPolicy, Statement: dataKeyPolicy.Statement.filter((s) => s['Effect'] !== 'Deny') };

describe('platform key guards, evaluated on the synthesized policies (prod-eu)', () => {
  it('the database key carries the immutable platform class tag', () => {
    expect(dataKeyTags['aws:ResourceTag/bulwark:key-class']).toBe('platform');
    expect(dataKeyTags['aws:ResourceTag/bulwark:deployment']).toBe(EU.name);
  });

  it('the provisioner cannot re-tag the database key into the tenant class (IAM alone, and the key policy)', async () => {
    const ask = {
      principal: PROVISIONER,
      identity: provisionerPolicy,
      action: 'kms:TagResource',
      resource: dataKeyArn,
      context: { ...dataKeyTags, ...tenantRequestTags },
    };
    expect(await decide({ ...ask, resourcePolicy: dataKeyPolicy })).toBe('ExplicitlyDenied');
    // Even without the key policy's Deny, its own IAM statement no longer reaches a classified key.
    expect(await decide({ ...ask, resourcePolicy: withoutDenies })).toBe('ImplicitlyDenied');
  });

  it.each(['kms:PutKeyPolicy', 'kms:ScheduleKeyDeletion'])(
    'the provisioner is refused %s on the database key, even were it tagged as a tenant key',
    async (action) => {
      const base = { principal: PROVISIONER, identity: provisionerPolicy, action, resource: dataKeyArn };
      expect(await decide({ ...base, resourcePolicy: dataKeyPolicy, context: dataKeyTags })).not.toBe('Allowed');
      // The escalation the issue describes: with tenant tags its IAM statement would match, so the
      // key policy's Deny is what stops it.
      expect(await decide({ ...base, resourcePolicy: withoutDenies, context: retagged })).toBe('Allowed');
      expect(await decide({ ...base, resourcePolicy: dataKeyPolicy, context: retagged })).toBe('ExplicitlyDenied');
    },
  );

  it('the lifecycle cannot schedule deletion of the database key, even were it tagged as a tenant key', async () => {
    const base = {
      principal: LIFECYCLE,
      identity: lifecyclePolicy,
      action: 'kms:ScheduleKeyDeletion',
      resource: dataKeyArn,
      resourcePolicy: dataKeyPolicy,
    };
    expect(await decide({ ...base, context: dataKeyTags })).not.toBe('Allowed');
    expect(await decide({ ...base, context: retagged })).toBe('ExplicitlyDenied');
  });

  it.each([...PLATFORM_KEY_PROTECTED_ACTIONS])(
    '%s: only the deploy role and the break-glass role, never an administrator or the root user',
    async (action) => {
      const as = (principal: string) =>
        decide({
          principal,
          identity: ADMIN,
          action,
          resource: dataKeyArn,
          resourcePolicy: dataKeyPolicy,
          context: dataKeyTags,
        });
      expect(await as(`arn:aws:iam::${ACCOUNT}:role/cdk-hnb659fds-cfn-exec-role-${ACCOUNT}-eu-west-1`)).toBe('Allowed');
      expect(await as(`arn:aws:iam::${ACCOUNT}:role/bulwark-break-glass`)).toBe('Allowed');
      expect(await as(`arn:aws:iam::${ACCOUNT}:role/Administrator`)).toBe('ExplicitlyDenied');
      expect(await as(`arn:aws:iam::${ACCOUNT}:root`)).toBe('ExplicitlyDenied');
      // The exec role of another region's bootstrap is not this key's deploy role.
      expect(await as(`arn:aws:iam::${ACCOUNT}:role/cdk-hnb659fds-cfn-exec-role-${ACCOUNT}-us-east-1`)).toBe(
        'ExplicitlyDenied',
      );
    },
  );

  it('grants on the database key only for AWS resources', async () => {
    const base = {
      principal: `arn:aws:iam::${ACCOUNT}:role/Administrator`,
      identity: ADMIN,
      action: 'kms:CreateGrant',
      resource: dataKeyArn,
      resourcePolicy: dataKeyPolicy,
    };
    expect(await decide({ ...base, context: { 'kms:GrantIsForAWSResource': 'false' } })).toBe('ExplicitlyDenied');
    expect(await decide({ ...base, context: { 'kms:GrantIsForAWSResource': 'true' } })).toBe('Allowed');
  });

  describe('the provisioner still creates a correctly tagged tenant key', () => {
    const newKey = `arn:aws:kms:eu-west-1:${ACCOUNT}:key/5e0b1c2d-0000-4000-8000-000000000001`;
    const created = tenantKeyPolicy({ account: ACCOUNT, deployment: 'prod-eu', orgId: ORG }) as unknown as Json;

    it('CreateKey with the tenant tags and spec', async () => {
      const ask = {
        principal: PROVISIONER,
        identity: provisionerPolicy,
        action: 'kms:CreateKey',
        resource: '*',
        context: {
          ...tenantRequestTags,
          'kms:KeySpec': 'SYMMETRIC_DEFAULT',
          'kms:KeyUsage': 'ENCRYPT_DECRYPT',
          'kms:KeyOrigin': 'AWS_KMS',
          'kms:MultiRegion': 'false',
        },
      };
      expect(await decide(ask)).toBe('Allowed');
      expect(
        await decide({ ...ask, context: { ...ask.context, 'aws:RequestTag/bulwark:key-class': 'platform' } }),
      ).toBe('ImplicitlyDenied');
    });

    it('the TagResource that CreateKey with Tags is authorized as: a key with no tags yet, not an existing one', async () => {
      const ask = {
        principal: PROVISIONER,
        identity: provisionerPolicy,
        action: 'kms:TagResource',
        resource: newKey,
        resourcePolicy: created,
        context: tenantRequestTags,
      };
      expect(await decide(ask)).toBe('Allowed');
      // An existing tenant key (another tenant's) cannot be re-tagged to this one.
      expect(
        await decide({
          ...ask,
          context: { ...tenantRequestTags, 'aws:ResourceTag/bulwark:key-class': 'tenant' },
        }),
      ).toBe('ImplicitlyDenied');
    });
  });
});

describe('the deploy role exempt from the platform-key Deny', () => {
  it("follows the stack's bootstrap qualifier (one place: the synthesizer, i.e. @aws-cdk/core:bootstrapQualifier)", () => {
    const literal = { '@aws-cdk/core:enablePartitionLiterals': true };
    const app = new App({ context: { ...literal, '@aws-cdk/core:bootstrapQualifier': 'bulwark01' } });
    const stack = new Stack(app, 'S', { env: { account: '123456789012', region: 'eu-central-1' } });
    expect(stack.resolve(keyAdministratorArns(stack))).toEqual([
      'arn:aws:iam::123456789012:role/cdk-bulwark01-cfn-exec-role-123456789012-eu-central-1',
      'arn:aws:iam::123456789012:role/bulwark-break-glass',
    ]);
    const fallback = new Stack(new App({ context: literal }), 'S', {
      env: { account: '123456789012', region: 'eu-central-1' },
    });
    expect(fallback.resolve(keyAdministratorArns(fallback))[0]).toBe(
      'arn:aws:iam::123456789012:role/cdk-hnb659fds-cfn-exec-role-123456789012-eu-central-1',
    );
  });
});
