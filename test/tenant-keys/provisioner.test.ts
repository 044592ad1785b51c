import {
  CreateAliasCommand,
  CreateKeyCommand,
  DescribeKeyCommand,
  EnableKeyRotationCommand,
  GetKeyPolicyCommand,
  GetKeyRotationStatusCommand,
  KMSClient,
  ListResourceTagsCommand,
  ScheduleKeyDeletionCommand,
  type KeyState,
  type Tag,
} from '@aws-sdk/client-kms';
import { mockClient } from 'aws-sdk-client-mock';
import type { AuditEvent, AuditSink } from '../../lambda/shared/audit';
import type { AndThen } from '../../lambda/tenant-keys/and-then';
import {
  actionMatches,
  aliasName,
  checkByokPolicy,
  tenantKeyPolicy,
  tenantKeyTags,
  type PolicyDocument,
} from '../../lambda/tenant-keys/key-policy';
import {
  ProvisionError,
  TenantKeyProvisioner,
  type TenantKeyRecord,
  type TenantKeyStore,
} from '../../lambda/tenant-keys/provisioner';
import { KEY_A, KEY_B, ORG_A, ORG_B } from './fake-kms';

const ACCOUNT = '111122223333';
const EXPECT = { account: ACCOUNT, deployment: 'prod-eu', orgId: ORG_A };
const NOW = new Date('2026-11-22T12:00:00Z');

function named(name: string): Error {
  const e = new Error(name);
  e.name = name;
  return e;
}

class MemoryKeyStore implements TenantKeyStore {
  readonly rows = new Map<string, TenantKeyRecord>();
  async get(orgId: string) {
    return this.rows.get(orgId) ?? null;
  }
  async record(orgId: string, key: TenantKeyRecord, andThen: AndThen<TenantKeyRecord>) {
    // Like a transaction: a throw from andThen (KEY_CONFLICT, a failed audit) leaves nothing recorded.
    const stored = this.rows.get(orgId) ?? key;
    await andThen(stored, undefined);
    this.rows.set(orgId, stored);
    return stored;
  }
}

class MemoryAudit implements AuditSink {
  readonly events: AuditEvent[] = [];
  async record(e: AuditEvent) {
    this.events.push(e);
  }
}

function setup() {
  const client = new KMSClient({ region: 'eu-west-1' });
  const kms = mockClient(client);
  // The keys' tags as KMS holds them: KEY_A is ORG_A's tenant key of this deployment.
  const tags = new Map<string, Tag[]>([[KEY_A, tenantKeyTags('prod-eu', ORG_A)]]);
  kms.on(ListResourceTagsCommand).callsFake((input: { KeyId: string }) => ({ Tags: tags.get(input.KeyId) ?? [] }));
  const store = new MemoryKeyStore();
  const audit = new MemoryAudit();
  const provisioner = new TenantKeyProvisioner(
    { kms: client, store, audit, clock: () => NOW },
    { deployment: 'prod-eu', account: ACCOUNT, region: 'eu-west-1' },
  );
  return { kms, tags, store, audit, provisioner };
}

const meta = (arn: string, state: KeyState = 'Enabled') => ({
  KeyMetadata: { KeyId: arn.split('/')[1], Arn: arn, KeyState: state, KeyManager: 'CUSTOMER' as const },
});

describe('key policy document', () => {
  const policy = tenantKeyPolicy({ account: ACCOUNT, orgId: ORG_A, deployment: 'prod-eu' });
  const byId = (sid: string) => policy.Statement.find((s) => s.Sid === sid);

  it('lets the API role (tagged tenant-key user of this deployment) use the key only with org_id = that tenant', () => {
    expect(byId('TenantUseOnlyUnderItsOwnContext')).toEqual({
      Sid: 'TenantUseOnlyUnderItsOwnContext',
      Effect: 'Allow',
      Principal: { AWS: `arn:aws:iam::${ACCOUNT}:root` },
      Action: ['kms:GenerateDataKey', 'kms:Decrypt'],
      Resource: '*',
      Condition: {
        StringEquals: {
          'kms:EncryptionContext:org_id': ORG_A,
          'aws:PrincipalTag/bulwark:tenant-key-user': 'prod-eu',
        },
        'ForAllValues:StringEquals': { 'kms:EncryptionContextKeys': ['org_id', 'purpose'] },
      },
    });
  });

  it('denies everyone any cryptographic use under another org_id, and every grant not for an AWS resource', () => {
    expect(byId('DenyUseUnderAnyOtherTenantContext')).toMatchObject({
      Effect: 'Deny',
      Principal: '*',
      Condition: { StringNotEquals: { 'kms:EncryptionContext:org_id': ORG_A } },
    });
    expect(byId('DenyGrantsExceptForAwsResources')).toEqual({
      Sid: 'DenyGrantsExceptForAwsResources',
      Effect: 'Deny',
      Principal: '*',
      Action: 'kms:CreateGrant',
      Resource: '*',
      Condition: { BoolIfExists: { 'kms:GrantIsForAWSResource': 'false' } },
    });
  });

  it('delegates administration to the account but no cryptographic operation, and never kms:*', () => {
    const admin = byId('AccountAdministrationWithoutUse');
    expect(admin?.Principal).toEqual({ AWS: `arn:aws:iam::${ACCOUNT}:root` });
    const actions = admin?.Action as string[];
    for (const crypto of [
      'kms:Decrypt',
      'kms:Encrypt',
      'kms:GenerateDataKey',
      'kms:ReEncryptFrom',
      'kms:CreateGrant',
    ]) {
      expect(actions.some((a) => actionMatches(a, crypto))).toBe(false);
    }
    for (const s of policy.Statement) {
      expect([s.Action].flat()).not.toContain('kms:*');
      // Only the tenant's own statements (envelope use, files through S3) allow a cryptographic operation.
      if (
        s.Effect === 'Allow' &&
        s.Sid !== 'TenantUseOnlyUnderItsOwnContext' &&
        s.Sid !== 'TenantFilesThroughS3UnderItsOwnPrefix'
      ) {
        expect([s.Action].flat().some((a) => actionMatches(a as string, 'kms:Decrypt'))).toBe(false);
      }
    }
  });

  it('refuses an org id that could escape the condition or the alias prefix', () => {
    expect(() => tenantKeyPolicy({ account: ACCOUNT, orgId: '*', deployment: 'prod-eu' })).toThrow(/UUID/);
    expect(aliasName('prod-eu', ORG_A)).toBe(`alias/bulwark/prod-eu/tenant/${ORG_A}`);
  });
});

describe('TenantKeyProvisioner', () => {
  it('creates a tagged symmetric key with the tenant policy, the alias and rotation, and records the ARN', async () => {
    const { kms, store, audit, provisioner } = setup();
    kms.on(DescribeKeyCommand).rejects(named('NotFoundException'));
    kms.on(CreateKeyCommand).resolves(meta(KEY_A));
    kms.on(CreateAliasCommand).resolves({});
    kms.on(EnableKeyRotationCommand).resolves({});

    await expect(provisioner.provision(ORG_A)).resolves.toEqual({ keyArn: KEY_A, source: 'managed', created: true });

    expect(kms.commandCalls(DescribeKeyCommand)[0]?.args[0].input).toEqual({
      KeyId: `alias/bulwark/prod-eu/tenant/${ORG_A}`,
    });
    const create = kms.commandCalls(CreateKeyCommand)[0]?.args[0].input;
    expect(create).toMatchObject({
      KeySpec: 'SYMMETRIC_DEFAULT',
      KeyUsage: 'ENCRYPT_DECRYPT',
      Origin: 'AWS_KMS',
      MultiRegion: false,
      Tags: [
        { TagKey: 'bulwark:deployment', TagValue: 'prod-eu' },
        { TagKey: 'bulwark:org-id', TagValue: ORG_A },
        { TagKey: 'bulwark:key-class', TagValue: 'tenant' },
      ],
    });
    expect(create?.BypassPolicyLockoutSafetyCheck).toBeUndefined();
    expect(JSON.parse(create?.Policy ?? '')).toEqual(
      tenantKeyPolicy({ account: ACCOUNT, orgId: ORG_A, deployment: 'prod-eu' }),
    );
    expect(kms.commandCalls(CreateAliasCommand)[0]?.args[0].input).toEqual({
      AliasName: `alias/bulwark/prod-eu/tenant/${ORG_A}`,
      TargetKeyId: '11111111-1111-4111-8111-111111111111',
    });
    expect(kms.commandCalls(EnableKeyRotationCommand)[0]?.args[0].input).toEqual({
      KeyId: '11111111-1111-4111-8111-111111111111',
    });
    expect(store.rows.get(ORG_A)).toEqual({ keyArn: KEY_A, source: 'managed' });
    expect(audit.events.map((e) => [e.event, e.orgId, e.entityId, e.actorType])).toEqual([
      ['tenant_key.created', ORG_A, KEY_A, 'system'],
    ]);
    // Its tags are the ones CreateKey was authorized with; ListResourceTags may lag behind them.
    expect(kms.commandCalls(ListResourceTagsCommand)).toHaveLength(0);
  });

  it("records a key found by its alias only if the key's own tags name this deployment, class and tenant", async () => {
    const { kms, tags, store, provisioner } = setup();
    kms.on(DescribeKeyCommand).resolves(meta(KEY_B));
    kms.on(EnableKeyRotationCommand).resolves({});
    for (const wrong of [
      tenantKeyTags('prod-eu', ORG_B),
      tenantKeyTags('prod-ap-south-1', ORG_A),
      [
        { TagKey: 'bulwark:deployment', TagValue: 'prod-eu' },
        { TagKey: 'bulwark:key-class', TagValue: 'platform' },
      ],
      [],
    ]) {
      tags.set(KEY_B, wrong);
      await expect(provisioner.provision(ORG_A)).rejects.toMatchObject({ code: 'KEY_TAGS_MISMATCH' });
    }
    expect(store.rows.size).toBe(0);
    expect(kms.commandCalls(ListResourceTagsCommand)[0]?.args[0].input).toEqual({ KeyId: KEY_B });
    tags.set(KEY_B, tenantKeyTags('prod-eu', ORG_A));
    await expect(provisioner.provision(ORG_A)).resolves.toMatchObject({ keyArn: KEY_B, created: false });
  });

  it('reads every page of tags, and treats tags it may not read as not a tenant key', async () => {
    const { kms, store, provisioner } = setup();
    kms.on(DescribeKeyCommand).resolves(meta(KEY_A));
    kms.on(EnableKeyRotationCommand).resolves({});
    const [dep, org, cls] = tenantKeyTags('prod-eu', ORG_A);
    kms
      .on(ListResourceTagsCommand)
      .resolvesOnce({ Tags: [dep!, org!], Truncated: true, NextMarker: 'm1' })
      .resolvesOnce({ Tags: [cls!], Truncated: false });
    await expect(provisioner.provision(ORG_A)).resolves.toMatchObject({ keyArn: KEY_A });
    expect(kms.commandCalls(ListResourceTagsCommand).map((c) => c.args[0].input.Marker)).toEqual([undefined, 'm1']);

    store.rows.clear();
    kms.on(ListResourceTagsCommand).rejects(named('AccessDeniedException'));
    await expect(provisioner.provision(ORG_A)).rejects.toMatchObject({ code: 'KEY_TAGS_MISMATCH' });
  });

  it('is idempotent: a recorded key makes no KMS call; a retry after a crash finds the key by alias', async () => {
    const { kms, store, provisioner } = setup();
    store.rows.set(ORG_B, { keyArn: KEY_B, source: 'managed' });
    await expect(provisioner.provision(ORG_B)).resolves.toEqual({ keyArn: KEY_B, source: 'managed', created: false });
    expect(kms.calls()).toHaveLength(0);

    // Crash after CreateAlias, before the ARN was recorded: the retry adopts the aliased key.
    kms.on(DescribeKeyCommand).resolves(meta(KEY_A));
    kms.on(EnableKeyRotationCommand).resolves({});
    await expect(provisioner.provision(ORG_A)).resolves.toEqual({ keyArn: KEY_A, source: 'managed', created: false });
    expect(kms.commandCalls(CreateKeyCommand)).toHaveLength(0);
    expect(kms.commandCalls(EnableKeyRotationCommand)).toHaveLength(1);
    expect(store.rows.get(ORG_A)?.keyArn).toBe(KEY_A);
  });

  it('never records a key without its audit event: a failed event leaves it unrecorded, the retry audits it', async () => {
    const { kms, store, audit, provisioner } = setup();
    kms.on(DescribeKeyCommand).resolves(meta(KEY_A));
    kms.on(EnableKeyRotationCommand).resolves({});
    const record = jest.spyOn(audit, 'record').mockRejectedValueOnce(new Error('audit down'));
    await expect(provisioner.provision(ORG_A)).rejects.toThrow('audit down');
    expect(store.rows.has(ORG_A)).toBe(false);
    record.mockRestore();
    await expect(provisioner.provision(ORG_A)).resolves.toMatchObject({ keyArn: KEY_A });
    expect(store.rows.get(ORG_A)?.keyArn).toBe(KEY_A);
    expect(audit.events.map((e) => [e.event, e.orgId])).toEqual([['tenant_key.adopted', ORG_A]]);
  });

  it('loses an alias race gracefully: schedules its unused key for deletion and adopts the winner', async () => {
    const { kms, store, provisioner } = setup();
    kms.on(DescribeKeyCommand).rejectsOnce(named('NotFoundException')).resolves(meta(KEY_A));
    kms.on(CreateKeyCommand).resolves(meta(KEY_B));
    kms.on(CreateAliasCommand).rejects(named('AlreadyExistsException'));
    kms.on(ScheduleKeyDeletionCommand).resolves({});
    kms.on(EnableKeyRotationCommand).resolves({});
    await expect(provisioner.provision(ORG_A)).resolves.toMatchObject({ keyArn: KEY_A, created: false });
    expect(kms.commandCalls(ScheduleKeyDeletionCommand)[0]?.args[0].input).toEqual({
      KeyId: '22222222-2222-4222-8222-222222222222',
      PendingWindowInDays: 7,
    });
    expect(store.rows.get(ORG_A)?.keyArn).toBe(KEY_A);
  });

  // The client retries throttling itself (lambda/shared/sdk.ts, test/shared/sdk.test.ts); the mock
  // answers after the client's retries, so what it returns is what the provisioner sees.
  it('surfaces throttling that outlasts the client retries as ThrottlingException, recording nothing', async () => {
    const { kms, store, audit, provisioner } = setup();
    kms.on(DescribeKeyCommand).rejects(named('NotFoundException'));
    kms.on(CreateKeyCommand).rejects(named('ThrottlingException'));
    await expect(provisioner.provision(ORG_A)).rejects.toMatchObject({ name: 'ThrottlingException' });
    expect(kms.commandCalls(CreateAliasCommand)).toHaveLength(0);
    expect(store.rows.size).toBe(0);
    expect(audit.events).toHaveLength(0);
  });

  it('stacks no retry of its own on the client', async () => {
    const { kms, provisioner } = setup();
    kms.on(DescribeKeyCommand).rejects(named('NotFoundException'));
    kms.on(CreateKeyCommand).rejectsOnce(named('ThrottlingException')).resolves(meta(KEY_A));
    await expect(provisioner.provision(ORG_A)).rejects.toMatchObject({ name: 'ThrottlingException' });
    expect(kms.commandCalls(CreateKeyCommand)).toHaveLength(1);

    const second = setup();
    second.kms.on(DescribeKeyCommand).rejects(named('NotFoundException'));
    second.kms.on(CreateKeyCommand).rejects(named('LimitExceededException'));
    await expect(second.provisioner.provision(ORG_A)).rejects.toThrow('LimitExceededException');
    expect(second.kms.commandCalls(CreateKeyCommand)).toHaveLength(1);
  });

  it('never revives the key of a shredded tenant', async () => {
    const { kms, store, provisioner } = setup();
    kms.on(DescribeKeyCommand).resolves(meta(KEY_A, 'PendingDeletion'));
    await expect(provisioner.provision(ORG_A)).rejects.toMatchObject({ code: 'KEY_PENDING_DELETION' });
    expect(kms.commandCalls(CreateKeyCommand)).toHaveLength(0);
    expect(store.rows.size).toBe(0);
  });

  it('refuses a malformed org id before calling KMS', async () => {
    const { kms, provisioner } = setup();
    await expect(provisioner.provision('../other')).rejects.toMatchObject({ code: 'INVALID_REQUEST' });
    expect(kms.calls()).toHaveLength(0);
  });

  describe('bring your own key', () => {
    const good = JSON.stringify(tenantKeyPolicy({ account: ACCOUNT, orgId: ORG_A, deployment: 'prod-eu' }));
    function byok(policy: string) {
      const s = setup();
      s.kms.on(DescribeKeyCommand).resolves({
        KeyMetadata: {
          KeyId: 'k',
          Arn: KEY_A,
          KeyState: 'Enabled',
          KeyUsage: 'ENCRYPT_DECRYPT',
          KeySpec: 'SYMMETRIC_DEFAULT',
          Origin: 'AWS_KMS',
          MultiRegion: false,
        },
      });
      s.kms.on(GetKeyPolicyCommand).resolves({ Policy: policy });
      s.kms.on(GetKeyRotationStatusCommand).resolves({ KeyRotationEnabled: true });
      return s;
    }

    it('accepts a key whose policy meets the tenant-key expectations and records it as byok', async () => {
      const { kms, store, audit, provisioner } = byok(good);
      await expect(provisioner.adoptExternalKey(ORG_A, KEY_A)).resolves.toEqual({
        keyArn: KEY_A,
        source: 'byok',
        created: false,
        rotation: true,
      });
      expect(kms.commandCalls(GetKeyPolicyCommand)[0]?.args[0].input).toEqual({ KeyId: KEY_A, PolicyName: 'default' });
      expect(kms.commandCalls(CreateKeyCommand)).toHaveLength(0);
      expect(store.rows.get(ORG_A)).toEqual({ keyArn: KEY_A, source: 'byok' });
      expect(audit.events[0]?.event).toBe('tenant_key.byok_adopted');
      // The tenant's consent that shredding destroys the key, on the record.
      expect(audit.events[0]?.metadata).toMatchObject({ deletedOnShred: true });
      expect(kms.commandCalls(ListResourceTagsCommand)[0]?.args[0].input).toEqual({ KeyId: KEY_A });
    });

    it("refuses a key that is not tagged as this deployment's tenant key of this tenant", async () => {
      const { provisioner, tags, store } = byok(good);
      tags.set(KEY_A, tenantKeyTags('prod-eu', ORG_B));
      await expect(provisioner.adoptExternalKey(ORG_A, KEY_A)).rejects.toMatchObject({ code: 'KEY_TAGS_MISMATCH' });
      tags.set(KEY_A, []);
      await expect(provisioner.adoptExternalKey(ORG_A, KEY_A)).rejects.toMatchObject({ code: 'KEY_TAGS_MISMATCH' });
      expect(store.rows.size).toBe(0);
    });

    it('refuses a key whose policy does not let this account read its tags and schedule its deletion', async () => {
      const doc = JSON.parse(good) as PolicyDocument;
      const keepForever = {
        ...doc,
        Statement: [
          ...doc.Statement,
          { Sid: 'NeverDelete', Effect: 'Deny', Principal: '*', Action: 'kms:ScheduleKeyDeletion', Resource: '*' },
        ],
      };
      const { provisioner, store } = byok(JSON.stringify(keepForever));
      await expect(provisioner.adoptExternalKey(ORG_A, KEY_A)).rejects.toMatchObject({
        code: 'BYOK_POLICY_REJECTED',
        findings: [expect.objectContaining({ problem: 'deletion_not_delegated' })],
      });
      expect(store.rows.size).toBe(0);
      const noAdmin = {
        ...doc,
        Statement: doc.Statement.filter((s) => s.Sid !== 'AccountAdministrationWithoutUse'),
      };
      expect(checkByokPolicy(JSON.stringify(noAdmin), EXPECT).map((f) => f.problem)).toEqual([
        'deletion_not_delegated',
        'deletion_not_delegated',
      ]);
    });

    it('rejects a policy that is not bound to the tenant, or that allows grants', async () => {
      const doc = JSON.parse(good) as PolicyDocument;
      const unbound = {
        ...doc,
        // Without the tenant-files statement, so that the envelope statement is the only one that
        // could allow the API role (its absence is reported too: files_not_allowed).
        Statement: doc.Statement.filter((s) => s.Sid !== 'TenantFilesThroughS3UnderItsOwnPrefix').map((s) =>
          s.Sid === 'TenantUseOnlyUnderItsOwnContext' ? { ...s, Condition: undefined } : s,
        ),
      };
      const { provisioner, store } = byok(JSON.stringify(unbound));
      await expect(provisioner.adoptExternalKey(ORG_A, KEY_A)).rejects.toMatchObject({
        code: 'BYOK_POLICY_REJECTED',
        findings: [
          expect.objectContaining({ problem: 'api_role_not_allowed' }),
          expect.objectContaining({ problem: 'api_role_not_allowed' }),
          expect.objectContaining({ problem: 'use_not_bound_to_org' }),
          expect.objectContaining({ problem: 'files_not_allowed' }),
          expect.objectContaining({ problem: 'files_not_allowed' }),
        ],
      });
      expect(store.rows.size).toBe(0);

      const other = byok(JSON.stringify(tenantKeyPolicy({ account: ACCOUNT, orgId: ORG_B, deployment: 'prod-eu' })));
      await expect(other.provisioner.adoptExternalKey(ORG_A, KEY_A)).rejects.toThrow(ProvisionError);
    });

    it('reports each missing expectation', () => {
      const doc = JSON.parse(good) as PolicyDocument;
      const noDeny = { ...doc, Statement: doc.Statement.filter((s) => s.Sid !== 'DenyGrantsExceptForAwsResources') };
      expect(checkByokPolicy(JSON.stringify(noDeny), EXPECT).map((f) => f.problem)).toEqual(['grants_not_restricted']);
      const open = { ...doc, Statement: [...doc.Statement, { Effect: 'Allow', Principal: '*', Action: 'kms:*' }] };
      expect(checkByokPolicy(JSON.stringify(open), EXPECT).map((f) => f.problem)).toEqual([
        'use_not_bound_to_org',
        'open_to_everyone',
      ]);
      expect(checkByokPolicy(good, { ...EXPECT, deployment: 'prod-ap-south-1' }).map((f) => f.problem)).toEqual([
        'api_role_not_allowed',
        'api_role_not_allowed',
        'files_not_allowed',
        'files_not_allowed',
      ]);
      expect(checkByokPolicy('{', EXPECT)[0]?.problem).toBe('policy_not_json');
      expect(checkByokPolicy(good, EXPECT)).toEqual([]);
    });

    it('refuses a key whose policy does not let S3 use it for the tenant files under its own prefix', async () => {
      const doc = JSON.parse(good) as PolicyDocument;
      const files = doc.Statement.find((s) => s.Sid === 'TenantFilesThroughS3UnderItsOwnPrefix')!;
      const without = { ...doc, Statement: doc.Statement.filter((s) => s !== files) };
      const { provisioner, store } = byok(JSON.stringify(without));
      await expect(provisioner.adoptExternalKey(ORG_A, KEY_A)).rejects.toMatchObject({
        code: 'BYOK_POLICY_REJECTED',
        findings: [
          expect.objectContaining({ problem: 'files_not_allowed' }),
          expect.objectContaining({ problem: 'files_not_allowed' }),
        ],
      });
      expect(store.rows.size).toBe(0);
      // Not through S3, or for any object rather than the tenant's own prefix: still missing.
      const cond = files.Condition as Record<string, Record<string, string>>;
      const anyService = {
        ...doc,
        Statement: doc.Statement.map((s) =>
          s === files
            ? { ...s, Condition: { ...cond, StringLike: { ...cond['StringLike'], 'kms:ViaService': '*' } } }
            : s,
        ),
      };
      const anyObject = {
        ...doc,
        Statement: doc.Statement.map((s) =>
          s === files
            ? {
                ...s,
                Condition: { ...cond, StringLike: { ...cond['StringLike'], 'kms:EncryptionContext:aws:s3:arn': '*' } },
              }
            : s,
        ),
      };
      for (const policy of [anyService, anyObject]) {
        expect(checkByokPolicy(JSON.stringify(policy), EXPECT).map((f) => f.problem)).toEqual([
          'files_not_allowed',
          'files_not_allowed',
        ]);
      }
    });

    it('reads the tags before the policy, which IAM lets it read only on tagged tenant keys', async () => {
      const { provisioner, kms, tags } = byok(good);
      tags.set(KEY_A, []);
      await expect(provisioner.adoptExternalKey(ORG_A, KEY_A)).rejects.toMatchObject({ code: 'KEY_TAGS_MISMATCH' });
      expect(kms.commandCalls(GetKeyPolicyCommand)).toHaveLength(0);
    });

    it('refuses a key in another account or region, an alias, and an unreadable policy', async () => {
      const { provisioner, kms } = byok(good);
      await expect(
        provisioner.adoptExternalKey(ORG_A, KEY_A.replace('111122223333', '999999999999')),
      ).rejects.toMatchObject({ code: 'BYOK_WRONG_REGION_OR_ACCOUNT' });
      await expect(provisioner.adoptExternalKey(ORG_A, KEY_A.replace('eu-west-1', 'us-east-1'))).rejects.toMatchObject({
        code: 'BYOK_WRONG_REGION_OR_ACCOUNT',
      });
      await expect(provisioner.adoptExternalKey(ORG_A, 'alias/mine')).rejects.toMatchObject({
        code: 'INVALID_REQUEST',
      });
      expect(kms.calls()).toHaveLength(0);
      kms.on(GetKeyPolicyCommand).rejects(named('AccessDeniedException'));
      await expect(provisioner.adoptExternalKey(ORG_A, KEY_A)).rejects.toMatchObject({
        code: 'BYOK_POLICY_UNREADABLE',
      });
    });

    it('refuses an asymmetric or disabled key', async () => {
      const { provisioner, kms } = byok(good);
      kms.on(DescribeKeyCommand).resolves({
        KeyMetadata: { KeyId: 'k', Arn: KEY_A, KeyState: 'Enabled', KeyUsage: 'SIGN_VERIFY', KeySpec: 'RSA_2048' },
      });
      await expect(provisioner.adoptExternalKey(ORG_A, KEY_A)).rejects.toMatchObject({ code: 'KEY_NOT_USABLE' });
    });
  });
});
