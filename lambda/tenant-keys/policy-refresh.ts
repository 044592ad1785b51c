/**
 * Key policy refresh (docs/tenant-keys.md, "Key policy refresh"): a tenant key carries the policy of
 * its creation, so a change to `tenantKeyPolicy` reaches existing keys only when someone re-puts
 * them. The provisioner does, after each keyless sweep, for as long as the invocation has time:
 *
 * - every key the database records below `KEY_POLICY_VERSION` (app.tenant_keys_behind_policy, in
 *   org id order after a cursor: each run walks them once, so a key that fails never blocks others);
 * - a managed key: its tags first (this deployment, the tenant class, this organisation: the ARN on
 *   the row is only a pointer), then `GetKeyPolicy`; a known older rendering is replaced with
 *   `PutKeyPolicy` of the current one for that organisation (never `BypassPolicyLockoutSafetyCheck`:
 *   the new policy keeps the account's administration, so KMS's lock-out check passes); the current
 *   one is only recorded; anything else (edited by hand, another tenant's) is left alone and failed;
 * - a bring-your-own key is the customer's: never written. Its policy is checked
 *   (`checkByokPolicy`) and the version recorded once it passes, files statement included; until
 *   then it is counted behind and the file routes refuse the tenant (FILES_KEY_UNSUPPORTED);
 * - the version is recorded in the database (migrations/0414) for the key the row still names, so
 *   a key is re-put once per policy version; a run interrupted anywhere repeats at most one
 *   idempotent `PutKeyPolicy`;
 * - throttling after the client's own retries backs off (exponential, full jitter) and retries.
 */
import { GetKeyPolicyCommand, PutKeyPolicyCommand, type KMSClient } from '@aws-sdk/client-kms';
import { errorName } from '../shared/sdk';
import { BoundedRun, type BoundedRunOptions } from './bounded-run';
import { KEY_POLICY_VERSION, checkByokPolicy, recognisePolicyVersion, tenantKeyPolicy } from './key-policy';
import { readKeyTags, tenantTagProblems } from './key-tags';
import type { KeySource } from './provisioner';

export interface KeyBehindPolicy {
  readonly orgId: string;
  readonly keyArn: string;
  readonly source: KeySource;
}

export interface KeyPolicyVersions {
  /** Keys recorded below `version`, org ids after `after`, in org id order, at most `limit` (<= 100). */
  behind(version: number, after: string | null, limit: number): Promise<KeyBehindPolicy[]>;
  /** Records `version` for `orgId` if its row still names `keyArn`; false otherwise. */
  record(orgId: string, keyArn: string, version: number): Promise<boolean>;
  count(version: number): Promise<{ managed: number; byok: number }>;
}

export interface PolicyRefreshConfig {
  readonly deployment: string;
  readonly account: string;
  readonly partition?: string;
}

export interface PolicyRefreshOptions extends BoundedRunOptions {
  /** @default 100 */
  readonly pageSize?: number;
}

export interface PolicyRefreshSummary {
  readonly type: 'key_policy_refresh';
  readonly version: number;
  readonly checked: number;
  /** Managed keys whose policy was replaced. */
  readonly reput: number;
  /** Keys found at the current version (recorded, nothing written). */
  readonly current: number;
  readonly throttled: number;
  /** Bring-your-own keys whose customer policy does not meet the version yet (never written). */
  readonly byokBehind: readonly { readonly orgId: string; readonly problems: readonly string[] }[];
  /** Managed keys left behind: org ids and codes only. */
  readonly failed: readonly { readonly orgId: string; readonly error: string }[];
  /** Keys still behind after this run (the metric). */
  readonly behind: { readonly managed: number; readonly byok: number };
}

export class KeyPolicyRefreshFailed extends Error {
  constructor(readonly summary: PolicyRefreshSummary) {
    super(`KEY_POLICY_REFRESH_FAILED: ${summary.failed.length} managed key(s) left behind`);
    this.name = 'KeyPolicyRefreshFailed';
  }
}

/** A key the refresh will not write: its code names why (logged, and the run fails). */
class Refused extends Error {
  constructor(readonly code: string) {
    super(code);
  }
}

type Outcome = 'reput' | 'current' | { readonly byokProblems: readonly string[] };

async function refreshOne(
  kms: KMSClient,
  store: KeyPolicyVersions,
  config: PolicyRefreshConfig,
  key: KeyBehindPolicy,
): Promise<Outcome> {
  const input = {
    partition: config.partition,
    account: config.account,
    deployment: config.deployment,
    orgId: key.orgId,
  };
  const read = async (): Promise<string> =>
    (await kms.send(new GetKeyPolicyCommand({ KeyId: key.keyArn, PolicyName: 'default' }))).Policy ?? '';

  if (key.source === 'byok') {
    const findings = checkByokPolicy(await read(), input);
    if (findings.length > 0) return { byokProblems: [...new Set(findings.map((f) => f.problem))] };
    await store.record(key.orgId, key.keyArn, KEY_POLICY_VERSION);
    return 'current';
  }

  // Tags decide, not the row: the policy rendered for this organisation goes only on its own key.
  let problems: string[];
  try {
    problems = tenantTagProblems(await readKeyTags(kms, key.keyArn), {
      deployment: config.deployment,
      orgId: key.orgId,
    });
  } catch (e) {
    if (errorName(e) !== 'AccessDeniedException') throw e;
    problems = ['tags not readable'];
  }
  if (problems.length > 0) throw new Refused('KEY_TAGS_MISMATCH');

  const version = recognisePolicyVersion(await read(), input);
  if (version === null) throw new Refused('KEY_POLICY_UNRECOGNISED');
  if (version < KEY_POLICY_VERSION) {
    // Idempotent: the same document for the same key. The lock-out safety check is left on.
    await kms.send(
      new PutKeyPolicyCommand({
        KeyId: key.keyArn,
        PolicyName: 'default',
        Policy: JSON.stringify(tenantKeyPolicy(input)),
      }),
    );
  }
  await store.record(key.orgId, key.keyArn, KEY_POLICY_VERSION);
  return version < KEY_POLICY_VERSION ? 'reput' : 'current';
}

export async function refreshKeyPolicies(
  kms: KMSClient,
  store: KeyPolicyVersions,
  config: PolicyRefreshConfig,
  options: PolicyRefreshOptions = {},
): Promise<PolicyRefreshSummary> {
  const pageSize = options.pageSize ?? 100;
  if (!Number.isInteger(pageSize) || pageSize < 1 || pageSize > 100) throw new RangeError('refresh page must be 1-100');
  const run = new BoundedRun(options);
  let checked = 0;
  let reput = 0;
  let current = 0;
  const byokBehind: { orgId: string; problems: readonly string[] }[] = [];
  const failed: { orgId: string; error: string }[] = [];
  let after: string | null = null;
  refresh: while (run.nextPage()) {
    const page = await store.behind(KEY_POLICY_VERSION, after, pageSize);
    if (page.length === 0) break;
    for (const key of page) {
      const r = await run.attempt(
        () => refreshOne(kms, store, config, key),
        (e) => (e instanceof Refused ? e.code : undefined),
      );
      if (r.kind === 'out_of_time') break refresh;
      checked++;
      if (r.kind === 'done') {
        if (r.value === 'reput') reput++;
        else if (r.value === 'current') current++;
        else byokBehind.push({ orgId: key.orgId, problems: r.value.byokProblems });
      } else if (key.source === 'byok') {
        // A bring-your-own key we cannot read is the customer's to fix, like one that lacks a statement.
        byokBehind.push({ orgId: key.orgId, problems: [r.error] });
      } else {
        failed.push({ orgId: key.orgId, error: r.error });
      }
      after = key.orgId;
    }
    if (page.length < pageSize) break;
  }
  const behind = await store.count(KEY_POLICY_VERSION);
  return {
    type: 'key_policy_refresh',
    version: KEY_POLICY_VERSION,
    checked,
    reput,
    current,
    throttled: run.throttled,
    byokBehind,
    failed,
    behind,
  };
}
