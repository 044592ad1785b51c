/**
 * Key policy refresh (docs/tenant-keys.md, "Key policy refresh"): every managed tenant key is
 * brought up to KEY_POLICY_VERSION once, with the policy key-policy.ts renders for its own
 * organisation, after its tags are checked; bring-your-own keys are only checked, never written.
 * KMS is aws-sdk-client-mock (a small in-memory key table); time and sleep are injected.
 */
import {
  GetKeyPolicyCommand,
  KMSClient,
  ListResourceTagsCommand,
  PutKeyPolicyCommand,
  type Tag,
} from '@aws-sdk/client-kms';
import { mockClient } from 'aws-sdk-client-mock';
import { KEY_POLICY_REFRESH_LOG } from '../../contracts/tenant-keys';
import {
  FILES_STATEMENT_SID,
  KEY_POLICY_VERSION,
  KNOWN_POLICY_VERSIONS,
  recognisePolicyVersion,
  tenantKeyPolicy,
  tenantKeyTags,
} from '../../lambda/tenant-keys/key-policy';
import {
  refreshKeyPolicies,
  type KeyBehindPolicy,
  type KeyPolicyVersions,
} from '../../lambda/tenant-keys/policy-refresh';
import { makeSweepHandler } from '../../lambda/tenant-keys/provisioner-handler';
import type { TenantKeyProvisioner } from '../../lambda/tenant-keys/provisioner';
import { RecordingLog } from '../support/observability';

const ACCOUNT = '111122223333';
const DEPLOYMENT = 'prod-eu';
const CONFIG = { deployment: DEPLOYMENT, account: ACCOUNT };
const org = (n: number) => `00000000-0000-4000-8000-${n.toString(16).padStart(12, '0')}`;
const arn = (n: number) => `arn:aws:kms:eu-west-1:${ACCOUNT}:key/${org(n)}`;
const policyFor = (orgId: string, version: number = KEY_POLICY_VERSION) =>
  JSON.stringify(KNOWN_POLICY_VERSIONS[version]!({ account: ACCOUNT, deployment: DEPLOYMENT, orgId }));

function named(name: string): Error {
  return Object.assign(new Error(name), { name });
}

/** The organisations table's view: keys, their source and recorded version, in org id order. */
class Versions implements KeyPolicyVersions {
  readonly rows = new Map<string, { keyArn: string; source: 'managed' | 'byok'; version: number | null }>();
  async behind(version: number, after: string | null, limit: number): Promise<KeyBehindPolicy[]> {
    return [...this.rows]
      .filter(([id, r]) => (r.version ?? 0) < version && (after === null || id > after))
      .sort(([a], [b]) => (a < b ? -1 : 1))
      .slice(0, Math.min(limit, 100))
      .map(([orgId, r]) => ({ orgId, keyArn: r.keyArn, source: r.source }));
  }
  async record(orgId: string, keyArn: string, version: number): Promise<boolean> {
    const r = this.rows.get(orgId);
    if (!r || r.keyArn !== keyArn) return false;
    r.version = Math.max(r.version ?? 0, version);
    return true;
  }
  async count(version: number) {
    const behind = [...this.rows.values()].filter((r) => (r.version ?? 0) < version);
    return {
      managed: behind.filter((r) => r.source === 'managed').length,
      byok: behind.filter((r) => r.source === 'byok').length,
    };
  }
}

/** KMS keys: policy and tags per ARN; GetKeyPolicy / PutKeyPolicy / ListResourceTags on them. */
function world() {
  const client = new KMSClient({ region: 'eu-west-1', credentials: { accessKeyId: 'x', secretAccessKey: 'y' } });
  const kms = mockClient(client);
  const keys = new Map<string, { policy: string; tags: Tag[] }>();
  kms.on(GetKeyPolicyCommand).callsFake((i: { KeyId: string }) => ({ Policy: keys.get(i.KeyId)!.policy }));
  kms.on(ListResourceTagsCommand).callsFake((i: { KeyId: string }) => ({ Tags: keys.get(i.KeyId)!.tags }));
  kms.on(PutKeyPolicyCommand).callsFake((i: { KeyId: string; Policy: string }) => {
    keys.get(i.KeyId)!.policy = i.Policy;
    return {};
  });
  const versions = new Versions();
  const managed = (n: number, version: number | null, policyVersion = 1) => {
    keys.set(arn(n), { policy: policyFor(org(n), policyVersion), tags: tenantKeyTags(DEPLOYMENT, org(n)) });
    versions.rows.set(org(n), { keyArn: arn(n), source: 'managed', version });
  };
  return { client, kms, keys, versions, managed };
}

describe('key policy versions', () => {
  it('recognises each known rendering for its own organisation only, keys in any order', () => {
    const input = { account: ACCOUNT, deployment: DEPLOYMENT, orgId: org(1) };
    expect(recognisePolicyVersion(policyFor(org(1), 1), input)).toBe(1);
    expect(recognisePolicyVersion(policyFor(org(1), 2), input)).toBe(2);
    expect(JSON.parse(policyFor(org(1), 1)).Statement.map((s: { Sid: string }) => s.Sid)).not.toContain(
      FILES_STATEMENT_SID,
    );
    // Reordered object keys are the same document.
    const reordered = JSON.stringify({ Statement: JSON.parse(policyFor(org(1))).Statement, Version: '2012-10-17' });
    expect(recognisePolicyVersion(reordered, input)).toBe(KEY_POLICY_VERSION);
    expect(recognisePolicyVersion(policyFor(org(2)), input)).toBeNull();
    expect(recognisePolicyVersion('{', input)).toBeNull();
  });
});

describe('refreshKeyPolicies', () => {
  it('re-puts an older managed key with the current policy rendered for its organisation, then records it', async () => {
    const { client, kms, keys, versions, managed } = world();
    managed(1, null, 1);
    managed(2, null, KEY_POLICY_VERSION);
    managed(3, 1, 1);
    const s = await refreshKeyPolicies(client, versions, CONFIG);
    expect(s).toMatchObject({ checked: 3, reput: 2, current: 1, failed: [], behind: { managed: 0, byok: 0 } });
    const puts = kms.commandCalls(PutKeyPolicyCommand).map((c) => c.args[0].input);
    expect(puts).toEqual([1, 3].map((n) => ({ KeyId: arn(n), PolicyName: 'default', Policy: policyFor(org(n)) })));
    // The lock-out safety check is never bypassed.
    expect(puts.every((p) => !('BypassPolicyLockoutSafetyCheck' in p))).toBe(true);
    expect(JSON.parse(keys.get(arn(1))!.policy)).toEqual(
      tenantKeyPolicy({ account: ACCOUNT, deployment: DEPLOYMENT, orgId: org(1) }),
    );
    // Tags are read before each managed key's policy is touched.
    expect(kms.commandCalls(ListResourceTagsCommand).map((c) => c.args[0].input.KeyId)).toEqual([1, 2, 3].map(arn));
    expect([...versions.rows.values()].map((r) => r.version)).toEqual([2, 2, 2]);

    // Once per version: the next run finds nothing behind and calls KMS not at all.
    kms.resetHistory();
    expect(await refreshKeyPolicies(client, versions, CONFIG)).toMatchObject({ checked: 0, reput: 0 });
    expect(kms.calls()).toHaveLength(0);
  });

  it('never writes a key whose tags name another organisation, or whose policy it does not recognise', async () => {
    const { client, kms, keys, versions, managed } = world();
    managed(1, null);
    managed(2, null);
    managed(3, null);
    managed(4, null);
    // A row pointing at another tenant's key: its policy would lock that tenant out.
    keys.get(arn(1))!.tags = tenantKeyTags(DEPLOYMENT, org(9));
    // Edited by hand (or another organisation's rendering): left for an operator.
    keys.get(arn(2))!.policy = policyFor(org(9), 1);
    // Tags this role may not read: not ours.
    kms.on(ListResourceTagsCommand, { KeyId: arn(3) }).rejects(named('AccessDeniedException'));
    const s = await refreshKeyPolicies(client, versions, CONFIG);
    expect(s.failed).toEqual([
      { orgId: org(1), error: 'KEY_TAGS_MISMATCH' },
      { orgId: org(2), error: 'KEY_POLICY_UNRECOGNISED' },
      { orgId: org(3), error: 'KEY_TAGS_MISMATCH' },
    ]);
    // The others proceed; only org 4's key is written.
    expect(kms.commandCalls(PutKeyPolicyCommand).map((c) => c.args[0].input.KeyId)).toEqual([arn(4)]);
    expect(s.behind).toEqual({ managed: 3, byok: 0 });
  });

  it('only checks a bring-your-own key: recorded once its policy allows files, never written', async () => {
    const { client, kms, keys, versions } = world();
    keys.set(arn(5), { policy: policyFor(org(5), 1), tags: tenantKeyTags(DEPLOYMENT, org(5)) });
    versions.rows.set(org(5), { keyArn: arn(5), source: 'byok', version: null });
    const first = await refreshKeyPolicies(client, versions, CONFIG);
    expect(first).toMatchObject({ checked: 1, reput: 0, failed: [], behind: { managed: 0, byok: 1 } });
    expect(first.byokBehind).toEqual([{ orgId: org(5), problems: ['files_not_allowed'] }]);
    expect(kms.commandCalls(PutKeyPolicyCommand)).toHaveLength(0);
    expect(versions.rows.get(org(5))!.version).toBeNull();

    // The customer adds the files statement to their policy.
    keys.get(arn(5))!.policy = policyFor(org(5));
    const second = await refreshKeyPolicies(client, versions, CONFIG);
    expect(second).toMatchObject({ checked: 1, current: 1, byokBehind: [], behind: { managed: 0, byok: 0 } });
    expect(kms.commandCalls(PutKeyPolicyCommand)).toHaveLength(0);
    expect(versions.rows.get(org(5))!.version).toBe(KEY_POLICY_VERSION);
  });

  it('backs off on throttling with jittered, growing waits, and retries the key', async () => {
    const { client, kms, versions, managed } = world();
    managed(1, null);
    let throttles = 2;
    kms.on(PutKeyPolicyCommand).callsFake(() => {
      if (throttles-- > 0) throw named('ThrottlingException');
      return {};
    });
    const sleeps: number[] = [];
    const s = await refreshKeyPolicies(client, versions, CONFIG, {
      sleep: async (ms) => void sleeps.push(ms),
      random: () => 0.5,
    });
    expect(s).toMatchObject({ reput: 1, throttled: 2, failed: [] });
    expect(sleeps).toEqual([500, 1000]);
    expect(kms.commandCalls(PutKeyPolicyCommand)).toHaveLength(3);
  });

  it('fails a key that stays throttled past its backoffs, and goes on with the next', async () => {
    const { client, kms, versions, managed } = world();
    managed(1, null);
    managed(2, null);
    kms.on(PutKeyPolicyCommand, { KeyId: arn(1) }).rejects(named('ThrottlingException'));
    const s = await refreshKeyPolicies(client, versions, CONFIG, { sleep: async () => undefined, maxBackoffs: 3 });
    expect(s.failed).toEqual([{ orgId: org(1), error: 'ThrottlingException' }]);
    expect(s).toMatchObject({ throttled: 3, reput: 1 });
  });

  it('is bounded by the invocation time and resumes where the recorded versions say', async () => {
    const { client, kms, versions, managed } = world();
    for (let n = 1; n <= 250; n++) managed(n, null);
    // Every KMS call costs 50 ms of a 5-minute invocation.
    const run = async (ms: number) => {
      let left = ms;
      kms.on(GetKeyPolicyCommand).callsFake((i: { KeyId: string }) => {
        left -= 50;
        return { Policy: policyFor(org(Number.parseInt(i.KeyId.slice(-12), 16)), 1) };
      });
      return refreshKeyPolicies(client, versions, CONFIG, { remainingMs: () => left, reserveMs: 30_000 });
    };
    const first = await run(36_000);
    // (36 s - 30 s reserve) / 50 ms per key (only GetKeyPolicy is charged here): 120 keys, then it stops.
    expect(first.reput).toBe(120);
    expect(first.behind.managed).toBe(130);
    const second = await run(300_000);
    expect(second.reput).toBe(130);
    expect(second.behind.managed).toBe(0);
    // Each key written exactly once over both runs.
    const written = kms.commandCalls(PutKeyPolicyCommand).map((c) => c.args[0].input.KeyId);
    expect(new Set(written).size).toBe(250);
    expect(written).toHaveLength(250);
  });
});

describe('scheduled provisioner run', () => {
  const idle = { provision: async () => ({}) } as unknown as TenantKeyProvisioner;
  const noKeyless = { keyless: async () => [] };

  it('logs the keys still behind (the metric) and fails the run when a managed key is left behind', async () => {
    const { client, keys, versions, managed } = world();
    managed(1, null);
    managed(2, null);
    keys.get(arn(2))!.tags = [];
    const log = new RecordingLog();
    const run = makeSweepHandler(idle, noKeyless, log, {}, () => refreshKeyPolicies(client, versions, CONFIG));
    await expect(run()).rejects.toThrow('KEY_POLICY_REFRESH_FAILED: 1 managed key(s) left behind');
    const line = log.entries.find((e) => e.message === KEY_POLICY_REFRESH_LOG)!;
    expect(line.level).toBe('error');
    expect(line.fields).toMatchObject({
      version: KEY_POLICY_VERSION,
      reput: 1,
      behindManaged: 1,
      behindByok: 0,
      failures: `${org(2)}=KEY_TAGS_MISMATCH`,
    });

    keys.get(arn(2))!.tags = tenantKeyTags(DEPLOYMENT, org(2));
    await expect(run()).resolves.toMatchObject({
      type: 'keyless_sweep',
      policyRefresh: { reput: 1, behind: { managed: 0, byok: 0 } },
    });
  });
});
