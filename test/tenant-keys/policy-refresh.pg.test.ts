/**
 * Key policy versions against a real PostgreSQL 17 (migrations/0414), connected as the
 * provisioner's own role: which keys are behind, recording a version only for the key the row
 * still names, and a full refresh run over mocked KMS that re-puts each managed key once. The
 * superuser only sets up keys on tenant rows.
 */
import { GetKeyPolicyCommand, KMSClient, ListResourceTagsCommand, PutKeyPolicyCommand } from '@aws-sdk/client-kms';
import { mockClient } from 'aws-sdk-client-mock';
import type { Pool } from 'pg';
import { DATABASE_ROLES } from '../../contracts/database';
import { KEY_POLICY_VERSION, KNOWN_POLICY_VERSIONS, tenantKeyTags } from '../../lambda/tenant-keys/key-policy';
import { PgKeyPolicyVersions } from '../../lambda/tenant-keys/pg-stores';
import { refreshKeyPolicies } from '../../lambda/tenant-keys/policy-refresh';
import { startPostgres, type TestPostgres } from '../support/postgres';
import { buildWorld, type World } from '../tenant-guard/fixtures';

const ACCOUNT = '111122223333';
const DEPLOYMENT = 'prod-eu';
const keyOf = (org: string) => `arn:aws:kms:eu-west-1:${ACCOUNT}:key/${org}`;

let pg: TestPostgres;
let w: World;
let provisionerPool: Pool;
let appPool: Pool;

beforeAll(async () => {
  pg = await startPostgres();
  w = await buildWorld(pg);
  provisionerPool = pg.pool(DATABASE_ROLES.keyProvisioner);
  appPool = pg.pool();
  await pg.superuser("UPDATE organisations SET kms_key_arn = $2, kms_key_source = 'managed' WHERE id = $1", [
    w.storeA,
    keyOf(w.storeA),
  ]);
  await pg.superuser("UPDATE organisations SET kms_key_arn = $2, kms_key_source = 'byok' WHERE id = $1", [
    w.storeB,
    keyOf(w.storeB),
  ]);
});
afterAll(async () => pg?.stop());

const version = async (org: string) =>
  ((await pg.superuser('SELECT kms_policy_version AS v FROM organisations WHERE id = $1', [org])) as { v: number }[])[0]
    ?.v ?? null;

describe('key policy versions in the database (as bulwark_key_provisioner)', () => {
  it('lists keys behind a version in org id order after a cursor, and never a keyless tenant', async () => {
    const store = new PgKeyPolicyVersions(provisionerPool);
    const behind = await store.behind(KEY_POLICY_VERSION, null, 100);
    expect(behind).toEqual(
      [
        { orgId: w.storeA, keyArn: keyOf(w.storeA), source: 'managed' },
        { orgId: w.storeB, keyArn: keyOf(w.storeB), source: 'byok' },
      ].sort((a, b) => (a.orgId < b.orgId ? -1 : 1)),
    );
    const [first] = behind;
    expect((await store.behind(KEY_POLICY_VERSION, first!.orgId, 100)).map((k) => k.orgId)).toEqual([behind[1]!.orgId]);
    expect(await store.count(KEY_POLICY_VERSION)).toEqual({ managed: 1, byok: 1 });
  });

  it('records a version only for the key the row names, and never lowers it', async () => {
    const store = new PgKeyPolicyVersions(provisionerPool);
    expect(await store.record(w.storeA, keyOf(w.storeB), KEY_POLICY_VERSION)).toBe(false);
    expect(await version(w.storeA)).toBeNull();
    expect(await store.record(w.storeA, keyOf(w.storeA), 1)).toBe(true);
    expect(await version(w.storeA)).toBe(1);
    expect(await store.record(w.storeA, keyOf(w.storeA), KEY_POLICY_VERSION)).toBe(true);
    expect(await store.record(w.storeA, keyOf(w.storeA), 1)).toBe(true);
    expect(await version(w.storeA)).toBe(KEY_POLICY_VERSION);
    await pg.superuser('UPDATE organisations SET kms_policy_version = NULL WHERE id = $1', [w.storeA]);
  });

  it('the tenant API role can neither record a version nor write the column', async () => {
    await expect(
      appPool.query('SELECT app.record_key_policy_version($1, $2, 2)', [w.storeB, keyOf(w.storeB)]),
    ).rejects.toThrow(/permission denied/);
    await expect(
      appPool.query('UPDATE organisations SET kms_policy_version = 2 WHERE id = $1', [w.storeB]),
    ).rejects.toThrow(/permission denied/);
    await expect(appPool.query('SELECT * FROM app.tenant_keys_behind_policy(2, NULL, 10)')).rejects.toThrow(
      /permission denied/,
    );
  });

  it('a refresh run re-puts the managed key once, checks the bring-your-own key, and resumes from the database', async () => {
    const client = new KMSClient({ region: 'eu-west-1', credentials: { accessKeyId: 'x', secretAccessKey: 'y' } });
    const kms = mockClient(client);
    const policies = new Map([
      [
        keyOf(w.storeA),
        JSON.stringify(KNOWN_POLICY_VERSIONS[1]!({ account: ACCOUNT, deployment: DEPLOYMENT, orgId: w.storeA })),
      ],
      [
        keyOf(w.storeB),
        JSON.stringify(KNOWN_POLICY_VERSIONS[1]!({ account: ACCOUNT, deployment: DEPLOYMENT, orgId: w.storeB })),
      ],
    ]);
    kms.on(GetKeyPolicyCommand).callsFake((i: { KeyId: string }) => ({ Policy: policies.get(i.KeyId) }));
    kms.on(PutKeyPolicyCommand).callsFake((i: { KeyId: string; Policy: string }) => {
      policies.set(i.KeyId, i.Policy);
      return {};
    });
    kms.on(ListResourceTagsCommand).callsFake((i: { KeyId: string }) => ({
      Tags: tenantKeyTags(DEPLOYMENT, i.KeyId === keyOf(w.storeA) ? w.storeA : w.storeB),
    }));
    const store = new PgKeyPolicyVersions(provisionerPool);
    const config = { deployment: DEPLOYMENT, account: ACCOUNT };

    const first = await refreshKeyPolicies(client, store, config);
    expect(first).toMatchObject({ reput: 1, failed: [], behind: { managed: 0, byok: 1 } });
    expect(first.byokBehind).toEqual([{ orgId: w.storeB, problems: ['files_not_allowed'] }]);
    expect(kms.commandCalls(PutKeyPolicyCommand).map((c) => c.args[0].input.KeyId)).toEqual([keyOf(w.storeA)]);
    expect(await version(w.storeA)).toBe(KEY_POLICY_VERSION);
    expect(await version(w.storeB)).toBeNull();

    // The next run re-puts nothing: only the bring-your-own key is still behind, and it is only read.
    kms.resetHistory();
    await refreshKeyPolicies(client, store, config);
    expect(kms.commandCalls(PutKeyPolicyCommand)).toHaveLength(0);
    expect(kms.commandCalls(GetKeyPolicyCommand).map((c) => c.args[0].input.KeyId)).toEqual([keyOf(w.storeB)]);
  });
});
