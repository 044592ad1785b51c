/**
 * The tenant lifecycle, export, key and tenant-creation routes through the API handler: real JWTs
 * against a local JWKS, a real PostgreSQL as the application role, the provisioner's Lambda and
 * KMS clients mocked with aws-sdk-client-mock (the BYOK path runs the real provisioner handler behind
 * the mocked Invoke), and download links signed for real by the S3 presigner.
 */
import { randomUUID } from 'node:crypto';
import {
  CreateAliasCommand,
  CreateKeyCommand,
  DescribeKeyCommand,
  EnableKeyRotationCommand,
  GetKeyPolicyCommand,
  GetKeyRotationStatusCommand,
  ListResourceTagsCommand,
  KMSClient,
} from '@aws-sdk/client-kms';
import { InvokeCommand, LambdaClient } from '@aws-sdk/client-lambda';
import { S3Client } from '@aws-sdk/client-s3';
import { mockClient } from 'aws-sdk-client-mock';
import type { Pool } from 'pg';
import type { AuditEvent, AuditSink } from '../../lambda/shared/audit';
import type { SqlClient } from '../../lambda/shared/migrations';
import { securityHeaders } from '../../contracts/security-headers';
import { createApi, type ApiDeps } from '../../lambda/tenant-guard/api';
import { ERROR_STATUS, toGuardError } from '../../lambda/tenant-guard/errors';
import { RefusalLogSink } from '../../lambda/tenant-guard/refusal-log-sink';
import { RecordingLog } from '../support/observability';
import { PgAuditSink } from '../../lambda/audit/pg-sink';
import { tenantKeyPolicy, tenantKeyTags } from '../../lambda/tenant-keys/key-policy';
import { PgTenantKeyStore } from '../../lambda/tenant-keys/pg-stores';
import { PROVISION_ERROR_STATUS } from '../../lambda/tenant-keys/provision-status';
import { makeHandler, makeSweepHandler } from '../../lambda/tenant-keys/provisioner-handler';
import { TenantKeyProvisioner } from '../../lambda/tenant-keys/provisioner';
import { SweepFailed } from '../../lambda/tenant-keys/reconcile';
import { startPostgres, type TestPostgres } from '../support/postgres';
import { DATABASE_ROLES } from '../../contracts/database';
import { authenticateAs, buildWorld, createOrg, createUser, type World } from './fixtures';
import { proxyEvent, SOURCE_IP as IP, testIdentity, type TestIdentity } from './http';
import { defined } from '../support/defined';

const ACCOUNT = '111122223333';
const PROVISIONER = 'bulwark-prod-eu-provisioner';
const BUCKET = 'bulwark-prod-eu-exports-test';
const keyArn = (n: number) => `arn:aws:kms:eu-west-1:${ACCOUNT}:key/${String(n).repeat(8)}-2222-4222-8222-222222222222`;

/** Records what was emitted, and writes it for real: audit_log through the production sink. */
class RecordingAudit implements AuditSink {
  readonly events: { event: AuditEvent; inTx: boolean }[] = [];
  constructor(private readonly durable?: AuditSink) {}
  async record(event: AuditEvent, tx?: SqlClient) {
    this.events.push({ event, inTx: tx !== undefined });
    await this.durable?.record(event, tx);
  }
  last(name: string) {
    return [...this.events].reverse().find((e) => e.event.event === name);
  }
}

const named = (name: string) => Object.assign(new Error(name), { name });
const payload = (v: unknown) => ({ StatusCode: 200, Payload: new Uint8Array(Buffer.from(JSON.stringify(v))) }) as never;

let pg: TestPostgres;
let w: World;
let pool: Pool;
let provisionerPool: Pool;
let lifecyclePool: Pool;
let audit: RecordingAudit;
let api: ReturnType<typeof createApi>;
let bare: ReturnType<typeof createApi>;
let id: TestIdentity;
let deps: Omit<ApiDeps, 'tenantKeys'>;
const lambdaClient = new LambdaClient({ region: 'eu-west-1', credentials: { accessKeyId: 'x', secretAccessKey: 'y' } });
const lambda = mockClient(lambdaClient);
const kmsClient = new KMSClient({ region: 'eu-west-1', credentials: { accessKeyId: 'x', secretAccessKey: 'y' } });
const kms = mockClient(kmsClient);
const s3 = new S3Client({
  region: 'eu-west-1',
  credentials: { accessKeyId: 'AKIAEXAMPLEEXAMPLE00', secretAccessKey: 'secret-for-signing-only' },
});
let store: PgTenantKeyStore;
let provisioner: TenantKeyProvisioner;

beforeAll(async () => {
  pg = await startPostgres();
  w = await buildWorld(pg);
  pool = pg.pool();
  pool.on('error', () => undefined);
  // The provisioner and the lifecycle processor connect as their own roles (migrations/0401).
  provisionerPool = pg.pool(DATABASE_ROLES.keyProvisioner);
  lifecyclePool = pg.pool(DATABASE_ROLES.lifecycle);
  audit = new RecordingAudit(new RefusalLogSink(new PgAuditSink({ pool }), new RecordingLog()));
  id = await testIdentity(pg);
  deps = {
    db: pool,
    verify: id.verify,
    audit,
    logger: new RecordingLog(),
  };
  api = createApi({
    ...deps,
    tenantKeys: { lambda: lambdaClient, provisionerFunction: PROVISIONER, s3, exportBucket: BUCKET },
  });
  bare = createApi(deps);
  store = new PgTenantKeyStore(provisionerPool);
  provisioner = new TenantKeyProvisioner(
    { kms: kmsClient, store, audit: new RecordingAudit(), clock: () => new Date() },
    { deployment: 'prod-eu', account: ACCOUNT, region: 'eu-west-1' },
  );
});
afterAll(async () => {
  lambda.restore();
  kms.restore();
  await pg?.stop();
});
beforeEach(() => {
  lambda.reset();
  kms.reset();
});

const bearer = (user: string, org: string | null) => id.bearer(user, org);
const event = (method: string, path: string, auth?: string, body?: unknown, headers?: Record<string, string>) =>
  proxyEvent(method, path, { auth, body, headers });

async function call(
  method: string,
  path: string,
  auth?: string,
  body?: unknown,
  headers?: Record<string, string>,
  handler = api,
) {
  const r = await handler(event(method, path, auth, body, headers));
  expect(r.headers).toMatchObject(securityHeaders());
  return { status: r.statusCode, body: JSON.parse(r.body) as Record<string, unknown> };
}
const denied = { status: 403, body: { error: 'PERMISSION_DENIED' } };

/** A fresh tenant with its Owner and an admin (everything but Owner). */
async function tenant(plan: 'pro' | 'business' | 'enterprise' = 'business', kind: 'store' | 'network' = 'store') {
  const owner = await createUser(pg);
  const admin = await createUser(pg);
  const c = await pg.client();
  let org: string;
  try {
    org = await createOrg(c, w.platformOwner, kind, owner, kind === 'store' ? w.group : null, plan);
  } finally {
    await c.end();
  }
  await pg.superuser("INSERT INTO memberships (org_id, user_id, role) VALUES ($1, $2, 'admin')", [org, admin]);
  return { org, owner, admin };
}

/** Moves a tenant into its grace period as the processor would (access ended a day ago). */
async function intoGrace(org: string): Promise<void> {
  await pg.superuser(
    `UPDATE organisations SET lifecycle_state = 'cancelled', cancelled_at = now() - interval '2 days',
            access_until = now() - interval '1 day' WHERE id = $1`,
    [org],
  );
  await lifecyclePool.query("SELECT app.advance_tenant_lifecycle($1, 'cancelled', 'grace')", [org]);
}

/**
 * A read-write support grant on `org`, and the support engineer's headers to use it. Opened through
 * the database function directly: POST /support-grants itself is not under test here.
 */
async function supportGrant(org: string): Promise<{ auth: string; headers: Record<string, string> }> {
  const c = await pool.connect();
  let r;
  try {
    await c.query('BEGIN');
    await authenticateAs(c, w.support);
    r = await c.query<{ id: string }>(
      "SELECT (app.open_support_grant($1, $2, 'ticket 42: tenant settings', interval '30 minutes', 'read_write')).id AS id",
      [w.support, org],
    );
    await c.query('COMMIT');
  } finally {
    c.release();
  }
  return { auth: await bearer(w.support, org), headers: { 'X-Bulwark-Support-Grant': defined(r.rows[0]).id } };
}

async function apiKeyOf(owner: string, org: string): Promise<string> {
  const minted = await call('POST', '/api-keys', await bearer(owner, org), { name: 'ci', permissions: ['leads:view'] });
  expect(minted.status).toBe(201);
  return `ApiKey ${String(minted.body['key'])}`;
}

describe('GET /tenant', () => {
  it('shows any member the lifecycle and whether a key is set; the key ARN only to the Owner', async () => {
    const t = await tenant();
    const asOwner = await call('GET', '/tenant', await bearer(t.owner, t.org));
    expect(asOwner).toEqual({
      status: 200,
      body: {
        tenant: expect.objectContaining({
          orgId: t.org,
          role: 'owner',
          lifecycleState: 'active',
          accessUntil: null,
          graceEndsAt: null,
          key: { expected: 'managed', source: null, set: false, arn: null },
        }),
      },
    });
    await provisionerPool.query("SELECT * FROM app.record_tenant_key($1, $2, 'managed')", [t.org, keyArn(1)]);
    expect((await call('GET', '/tenant', await bearer(t.owner, t.org))).body['tenant']).toMatchObject({
      key: { expected: 'managed', source: 'managed', set: true, arn: keyArn(1) },
    });
    const asAdmin = await call('GET', '/tenant', await bearer(t.admin, t.org));
    expect(asAdmin.status).toBe(200);
    expect((asAdmin.body['tenant'] as { key: unknown }).key).toEqual({
      expected: 'managed',
      source: 'managed',
      set: true,
    });
    expect(JSON.stringify(asAdmin.body)).not.toContain(keyArn(1));
  });

  it('works in the grace period, when no tenant context can be entered', async () => {
    const t = await tenant();
    await intoGrace(t.org);
    const auth = await bearer(t.owner, t.org);
    expect(await call('GET', '/leads', auth)).toEqual({ status: 403, body: { error: 'ORGANISATION_INACTIVE' } });
    const r = await call('GET', '/tenant', auth);
    expect(r.status).toBe(200);
    expect(r.body['tenant']).toMatchObject({ lifecycleState: 'grace', status: 'suspended' });
    expect(Date.parse(String((r.body['tenant'] as Record<string, unknown>)['graceEndsAt']))).toBeGreaterThan(
      Date.now(),
    );
  });

  it('refuses non-members, API keys and support grants', async () => {
    const t = await tenant();
    expect(await call('GET', '/tenant', await bearer(w.ownerB, t.org))).toEqual(denied);
    expect(
      await call('GET', '/tenant', await bearer(t.owner, t.org), undefined, { 'X-Bulwark-Org': w.storeB }),
    ).toEqual(denied);
    expect(await call('GET', '/tenant', await apiKeyOf(t.owner, t.org))).toEqual(denied);
    const grant = await supportGrant(t.org);
    expect(await call('GET', '/tenant', grant.auth, undefined, grant.headers)).toEqual(denied);
    // Refusals of an authenticated caller are audited (outside the rolled-back transaction).
    expect(audit.events.at(-1)?.event).toMatchObject({ event: 'access.refused', metadata: { path: '/tenant' } });
  });
});

describe('POST /tenant/cancel and POST /tenant/restore', () => {
  const inDays = (d: number) => new Date(Date.now() + d * 86_400_000).toISOString();

  it('the Owner cancels with the end of the billing period; audited in the same transaction', async () => {
    const t = await tenant();
    const until = inDays(20);
    const r = await call('POST', '/tenant/cancel', await bearer(t.owner, t.org), { accessUntil: until });
    expect(r.status).toBe(200);
    expect(r.body['tenant']).toMatchObject({
      orgId: t.org,
      lifecycleState: 'cancelled',
      accessUntil: until,
      graceEndsAt: new Date(Date.parse(until) + 30 * 86_400_000).toISOString(),
    });
    expect(audit.last('tenant.cancelled')).toEqual({
      inTx: true,
      event: expect.objectContaining({
        orgId: t.org,
        actorType: 'user',
        actorUserId: t.owner,
        ip: IP,
        entityType: 'organisation',
        entityId: t.org,
        metadata: { accessUntil: until },
      }),
    });
    const [row] = (await pg.superuser('SELECT lifecycle_state, access_until FROM organisations WHERE id = $1', [
      t.org,
    ])) as { lifecycle_state: string; access_until: Date }[];
    expect(row).toMatchObject({ lifecycle_state: 'cancelled', access_until: new Date(until) });
    // Still full access until then; a second cancellation is the wrong state.
    expect((await call('GET', '/leads', await bearer(t.owner, t.org))).status).toBe(200);
    expect(await call('POST', '/tenant/cancel', await bearer(t.owner, t.org), { accessUntil: until })).toEqual({
      status: 409,
      body: { error: 'INVALID_TRANSITION' },
    });
  });

  it('refuses non-owners, support grants, API keys and bad billing periods', async () => {
    const t = await tenant();
    const body = { accessUntil: inDays(10) };
    expect(await call('POST', '/tenant/cancel', await bearer(t.admin, t.org), body)).toEqual(denied);
    const grant = await supportGrant(t.org);
    expect(await call('POST', '/tenant/cancel', grant.auth, body, grant.headers)).toEqual(denied);
    expect(await call('POST', '/tenant/cancel', await apiKeyOf(t.owner, t.org), body)).toEqual(denied);
    const owner = await bearer(t.owner, t.org);
    for (const accessUntil of [inDays(-1), inDays(401)]) {
      expect(await call('POST', '/tenant/cancel', owner, { accessUntil })).toEqual({
        status: 400,
        body: { error: 'INVALID_BILLING_PERIOD' },
      });
    }
    expect(await call('POST', '/tenant/cancel', owner, { accessUntil: 'next month' })).toEqual({
      status: 400,
      body: { error: 'VALIDATION_FAILED', field: 'accessUntil' },
    });
    expect(await call('POST', '/tenant/cancel', owner, {})).toEqual({
      status: 400,
      body: { error: 'VALIDATION_FAILED', field: 'accessUntil' },
    });
    const [row] = (await pg.superuser('SELECT lifecycle_state FROM organisations WHERE id = $1', [t.org])) as {
      lifecycle_state: string;
    }[];
    expect(row?.lifecycle_state).toBe('active');
  });

  it('the Owner restores a cancelled tenant, and one in grace until the grace period ends', async () => {
    const t = await tenant();
    const owner = await bearer(t.owner, t.org);
    expect(await call('POST', '/tenant/restore', owner)).toEqual({
      status: 409,
      body: { error: 'INVALID_TRANSITION' },
    });
    await call('POST', '/tenant/cancel', owner, { accessUntil: inDays(5) });
    expect(await call('POST', '/tenant/restore', owner)).toEqual({
      status: 200,
      body: { tenant: { orgId: t.org, lifecycleState: 'active', restoredFrom: 'cancelled' } },
    });
    expect(audit.last('tenant.restored')).toEqual({
      inTx: true,
      event: expect.objectContaining({ orgId: t.org, actorUserId: t.owner, ip: IP, metadata: { from: 'cancelled' } }),
    });

    await intoGrace(t.org);
    expect(await call('POST', '/tenant/restore', await bearer(t.admin, t.org))).toEqual(denied);
    expect(await call('POST', '/tenant/restore', owner)).toMatchObject({
      status: 200,
      body: { tenant: { restoredFrom: 'grace' } },
    });
    expect((await call('GET', '/leads', owner)).status).toBe(200);
    const chain = (await pg.superuser('SELECT event FROM audit_log WHERE org_id = $1 ORDER BY seq', [t.org])) as {
      event: string;
    }[];
    expect(chain.map((r) => r.event)).toEqual(['tenant.cancelled', 'tenant.restored', 'tenant.restored']);

    await intoGrace(t.org);
    await pg.superuser("UPDATE organisations SET grace_ends_at = now() - interval '1 minute' WHERE id = $1", [t.org]);
    expect(await call('POST', '/tenant/restore', owner)).toEqual({
      status: 409,
      body: { error: 'INVALID_TRANSITION' },
    });
  });

  it('restore refuses support grants, API keys and other organisations', async () => {
    const t = await tenant();
    await call('POST', '/tenant/cancel', await bearer(t.owner, t.org), { accessUntil: inDays(3) });
    const key = await apiKeyOf(t.owner, t.org);
    expect(await call('POST', '/tenant/restore', key)).toEqual(denied);
    const grant = await supportGrant(t.org);
    expect(await call('POST', '/tenant/restore', grant.auth, undefined, grant.headers)).toEqual(denied);
    expect(await call('POST', '/tenant/restore', await bearer(w.ownerB, t.org))).toEqual(denied);
    expect(await call('POST', '/tenant/restore', await bearer(t.owner, t.org), { force: true })).toEqual({
      status: 400,
      body: { error: 'VALIDATION_FAILED', field: 'force' },
    });
  });
});

describe('tenant exports', () => {
  it('the Owner requests an export; a pending one is not ready; a ready one gives a signed link of at most 15 minutes', async () => {
    const t = await tenant();
    const owner = await bearer(t.owner, t.org);
    const requested = await call('POST', '/tenant/exports', owner);
    expect(requested).toMatchObject({ status: 202, body: { export: { status: 'pending' } } });
    const id = String((requested.body['export'] as { id: string }).id);
    expect(audit.last('tenant.export_requested')).toMatchObject({
      inTx: true,
      event: { orgId: t.org, actorUserId: t.owner, entityType: 'tenant_export', entityId: id },
    });

    expect(await call('GET', `/tenant/exports/${id}`, owner)).toEqual({
      status: 409,
      body: { error: 'EXPORT_NOT_READY' },
    });

    const key = `exports/${t.org}/${id}.ndjson.gz`;
    await lifecyclePool.query('SELECT app.finish_tenant_export($1, $2, 7)', [id, key]);
    const before = Date.now();
    const ready = await call('GET', `/tenant/exports/${id}`, owner);
    expect(ready.status).toBe(200);
    expect(ready.body['export']).toMatchObject({ id, status: 'ready', rowCount: 7 });
    const url = new URL(String(ready.body['url']));
    expect(url.hostname).toBe(`${BUCKET}.s3.eu-west-1.amazonaws.com`);
    expect(decodeURIComponent(url.pathname)).toBe(`/${key}`);
    const expires = Number(url.searchParams.get('X-Amz-Expires'));
    expect(expires).toBeGreaterThan(0);
    expect(expires).toBeLessThanOrEqual(900);
    expect(url.searchParams.get('X-Amz-Signature')).toMatch(/^[0-9a-f]{64}$/);
    expect(Date.parse(String(ready.body['expiresAt'])) - before).toBeLessThanOrEqual(900_000 + 5_000);
    // Who took the data out, from where and when.
    const downloaded = audit.last('tenant.export_downloaded');
    expect(downloaded).toMatchObject({
      inTx: true,
      event: {
        orgId: t.org,
        actorType: 'user',
        actorUserId: t.owner,
        ip: IP,
        userAgent: 'jest/30',
        entityId: id,
        metadata: { ttlSeconds: expires },
      },
    });
    expect(defined(downloaded).event.occurredAt.getTime()).toBeGreaterThanOrEqual(before - 1000);
  });

  it('refuses non-owners, support grants, other organisations, failed and expired exports', async () => {
    const t = await tenant();
    const owner = await bearer(t.owner, t.org);
    expect(await call('POST', '/tenant/exports', await bearer(t.admin, t.org))).toEqual(denied);
    const grant = await supportGrant(t.org);
    expect(await call('POST', '/tenant/exports', grant.auth, undefined, grant.headers)).toEqual(denied);

    const id = String(((await call('POST', '/tenant/exports', owner)).body['export'] as { id: string }).id);
    await lifecyclePool.query('SELECT app.finish_tenant_export($1, $2, 1)', [id, `exports/${t.org}/${id}.ndjson.gz`]);
    expect(await call('GET', `/tenant/exports/${id}`, await bearer(t.admin, t.org))).toEqual(denied);
    expect(await call('GET', `/tenant/exports/${id}`, grant.auth, undefined, grant.headers)).toEqual(denied);
    // Another organisation's Owner never finds it.
    expect(await call('GET', `/tenant/exports/${id}`, await bearer(w.ownerB, w.storeB))).toEqual({
      status: 404,
      body: { error: 'EXPORT_NOT_FOUND' },
    });
    expect(await call('GET', `/tenant/exports/${randomUUID()}`, owner)).toEqual({
      status: 404,
      body: { error: 'EXPORT_NOT_FOUND' },
    });
    expect(await call('GET', '/tenant/exports/not-a-uuid', owner)).toEqual({
      status: 400,
      body: { error: 'VALIDATION_FAILED', field: 'id' },
    });

    await pg.superuser("UPDATE tenant_exports SET completed_at = now() - interval '8 days' WHERE id = $1", [id]);
    expect(await call('GET', `/tenant/exports/${id}`, owner)).toEqual({
      status: 410,
      body: { error: 'EXPORT_EXPIRED' },
    });

    const failed = String(((await call('POST', '/tenant/exports', owner)).body['export'] as { id: string }).id);
    await lifecyclePool.query('SELECT app.finish_tenant_export($1, NULL, NULL)', [failed]);
    expect(await call('GET', `/tenant/exports/${failed}`, owner)).toEqual({
      status: 409,
      body: { error: 'EXPORT_FAILED' },
    });
    const downloads = audit.events.filter(
      (e) => e.event.event === 'tenant.export_downloaded' && e.event.orgId === t.org,
    );
    expect(downloads).toHaveLength(0);
  });

  it('without the tenant keys wired, downloads answer 503 TENANT_KEYS_UNAVAILABLE', async () => {
    const t = await tenant();
    const owner = await bearer(t.owner, t.org);
    const id = String(((await call('POST', '/tenant/exports', owner)).body['export'] as { id: string }).id);
    await lifecyclePool.query('SELECT app.finish_tenant_export($1, $2, 1)', [id, `exports/${t.org}/${id}.ndjson.gz`]);
    expect(await call('GET', `/tenant/exports/${id}`, owner, undefined, undefined, bare)).toEqual({
      status: 503,
      body: { error: 'TENANT_KEYS_UNAVAILABLE' },
    });
    expect(() =>
      createApi({
        ...deps,
        tenantKeys: {
          lambda: lambdaClient,
          provisionerFunction: PROVISIONER,
          s3,
          exportBucket: BUCKET,
          exportUrlTtlSeconds: 901,
        },
      }),
    ).toThrow(RangeError);
  });
});

describe('PUT /tenant/key (bring your own key)', () => {
  /** The real provisioner handler behind the mocked Invoke; KMS answers for `arn` with `policy`. */
  function realProvisioner(
    org: string,
    arn: string,
    policy = tenantKeyPolicy({ account: ACCOUNT, orgId: org, deployment: 'prod-eu' }),
  ) {
    kms.on(DescribeKeyCommand, { KeyId: arn }).resolves({
      KeyMetadata: {
        KeyId: arn.split('/')[1],
        Arn: arn,
        KeyState: 'Enabled',
        KeyUsage: 'ENCRYPT_DECRYPT',
        KeySpec: 'SYMMETRIC_DEFAULT',
        Origin: 'AWS_KMS',
        MultiRegion: false,
      },
    });
    kms.on(GetKeyPolicyCommand).resolves({ Policy: JSON.stringify(policy) });
    kms.on(GetKeyRotationStatusCommand).resolves({ KeyRotationEnabled: true });
    // The tenant tagged its key as this deployment's tenant key of its organisation.
    kms.on(ListResourceTagsCommand, { KeyId: arn }).resolves({ Tags: tenantKeyTags('prod-eu', org) });
    const handler = makeHandler(provisioner, store, new RecordingLog());
    lambda
      .on(InvokeCommand)
      .callsFake(async (input: { Payload: Uint8Array }) =>
        payload(await handler(JSON.parse(Buffer.from(input.Payload).toString('utf8')))),
      );
  }

  it('an enterprise Owner sets a key that meets the policy expectations: invoked synchronously, recorded', async () => {
    const t = await tenant('enterprise', 'network');
    const arn = keyArn(3);
    realProvisioner(t.org, arn);
    const owner = await bearer(t.owner, t.org);
    expect(await call('PUT', '/tenant/key', owner, { keyArn: arn })).toEqual({
      status: 200,
      body: { key: { source: 'byok', keyArn: arn, changed: true } },
    });
    const calls = lambda.commandCalls(InvokeCommand);
    expect(calls).toHaveLength(1);
    const input = defined(calls[0]).args[0].input;
    expect(input).toMatchObject({ FunctionName: PROVISIONER, InvocationType: 'RequestResponse' });
    expect(JSON.parse(Buffer.from(input.Payload as Uint8Array).toString('utf8'))).toEqual({
      orgId: t.org,
      externalKeyArn: arn,
    });
    expect(await store.get(t.org)).toEqual({ keyArn: arn, source: 'byok' });
    expect(audit.last('tenant_key.byok_set')).toMatchObject({
      inTx: true,
      event: { orgId: t.org, actorUserId: t.owner },
    });
    // Repeating it is harmless and invokes nothing; another key is refused: keys never change.
    expect(await call('PUT', '/tenant/key', owner, { keyArn: arn })).toMatchObject({
      status: 200,
      body: { key: { changed: false } },
    });
    expect(await call('PUT', '/tenant/key', owner, { keyArn: keyArn(4) })).toEqual({
      status: 409,
      body: { error: 'KEY_ALREADY_SET' },
    });
    expect(lambda.commandCalls(InvokeCommand)).toHaveLength(1);
  });

  it("passes on the provisioner's refusals with problems: a policy not bound to the tenant", async () => {
    const t = await tenant('enterprise', 'network');
    const arn = keyArn(5);
    realProvisioner(t.org, arn, tenantKeyPolicy({ account: ACCOUNT, orgId: w.storeA, deployment: 'prod-eu' }));
    const r = await call('PUT', '/tenant/key', await bearer(t.owner, t.org), { keyArn: arn });
    expect(r.status).toBe(422);
    expect(r.body['error']).toBe('BYOK_POLICY_REJECTED');
    expect(r.body['problems']).toEqual(expect.arrayContaining(['use_not_bound_to_org']));
    expect(await store.get(t.org)).toBeNull();
    expect(audit.last('tenant_key.byok_refused')).toMatchObject({
      inTx: true,
      event: { orgId: t.org, metadata: { code: 'BYOK_POLICY_REJECTED' } },
    });
  });

  it.each(Object.entries(PROVISION_ERROR_STATUS))('maps %s to its stable status %d', async (code, status) => {
    const t = await tenant('enterprise', 'network');
    // The status in the payload is ignored: the API's mapping is the contract.
    lambda.on(InvokeCommand).resolves(payload({ ok: false, code, status: 200 }));
    expect(await call('PUT', '/tenant/key', await bearer(t.owner, t.org), { keyArn: keyArn(6) })).toEqual({
      status,
      body: { error: code },
    });
  });

  it('maps a failed or unreachable provisioner, and a mismatched answer, to explicit codes', async () => {
    const t = await tenant('enterprise', 'network');
    const owner = await bearer(t.owner, t.org);
    const body = { keyArn: keyArn(7) };
    lambda
      .on(InvokeCommand)
      .resolves({ StatusCode: 200, FunctionError: 'Unhandled', Payload: new Uint8Array() } as never);
    expect(await call('PUT', '/tenant/key', owner, body)).toEqual({
      status: 502,
      body: { error: 'PROVISIONER_FAILED' },
    });
    lambda.reset();
    lambda.on(InvokeCommand).resolves(payload({ ok: true, keyArn: keyArn(8), source: 'byok', created: false }));
    expect(await call('PUT', '/tenant/key', owner, body)).toEqual({
      status: 502,
      body: { error: 'PROVISIONER_FAILED' },
    });
    lambda.reset();
    lambda.on(InvokeCommand).resolves(payload({ surprise: true }));
    expect(await call('PUT', '/tenant/key', owner, body)).toEqual({
      status: 502,
      body: { error: 'PROVISIONER_FAILED' },
    });
    lambda.reset();
    lambda.on(InvokeCommand).rejects(named('TooManyRequestsException'));
    expect(await call('PUT', '/tenant/key', owner, body)).toEqual({
      status: 503,
      body: { error: 'PROVISIONER_UNAVAILABLE' },
    });
    expect(await call('PUT', '/tenant/key', owner, body, undefined, bare)).toEqual({
      status: 503,
      body: { error: 'TENANT_KEYS_UNAVAILABLE' },
    });
  });

  it('refuses non-enterprise plans, non-owners, support grants and malformed ARNs without invoking', async () => {
    const business = await tenant('business');
    expect(await call('PUT', '/tenant/key', await bearer(business.owner, business.org), { keyArn: keyArn(9) })).toEqual(
      {
        status: 403,
        body: { error: 'BYOK_NOT_ENTITLED' },
      },
    );
    const t = await tenant('enterprise', 'network');
    expect(await call('PUT', '/tenant/key', await bearer(t.admin, t.org), { keyArn: keyArn(9) })).toEqual(denied);
    const grant = await supportGrant(t.org);
    expect(await call('PUT', '/tenant/key', grant.auth, { keyArn: keyArn(9) }, grant.headers)).toEqual(denied);
    for (const bad of ['alias/mine', `${keyArn(9)}x`, 'arn:aws:kms:eu-west-1:111122223333:alias/x']) {
      expect(await call('PUT', '/tenant/key', await bearer(t.owner, t.org), { keyArn: bad })).toEqual({
        status: 400,
        body: { error: 'VALIDATION_FAILED', field: 'keyArn' },
      });
    }
    expect(lambda.commandCalls(InvokeCommand)).toHaveLength(0);
  });
});

describe('POST /organisations and the keyless sweep', () => {
  const newOrg = (extra: Record<string, unknown> = {}) => ({
    kind: 'store',
    name: 'Harbour Motors',
    plan: 'business',
    parentId: w.group,
    owner: { subject: randomUUID(), email: 'owner@harbour.example' },
    ...extra,
  });

  it('a platform owner creates a tenant; after COMMIT the provisioner is invoked asynchronously', async () => {
    let committed: unknown[] = [];
    lambda.on(InvokeCommand).callsFake(async (input: { Payload: Uint8Array }) => {
      // Invoked only once the row is visible to other connections.
      const { orgId } = JSON.parse(Buffer.from(input.Payload).toString('utf8')) as { orgId: string };
      committed = await pg.superuser('SELECT id FROM organisations WHERE id = $1', [orgId]);
      return { StatusCode: 202 };
    });
    const body = newOrg();
    const r = await call('POST', '/organisations', await bearer(w.platformOwner, w.storeA), body);
    expect(r.status).toBe(201);
    expect(r.body).toMatchObject({
      organisation: { kind: 'store', plan: 'business', parentId: w.group, keySource: 'managed' },
      keyProvisioning: 'requested',
    });
    const orgId = String((r.body['organisation'] as { id: string }).id);
    expect(committed).toHaveLength(1);
    const calls = lambda.commandCalls(InvokeCommand);
    expect(calls).toHaveLength(1);
    expect(defined(calls[0]).args[0].input).toMatchObject({ FunctionName: PROVISIONER, InvocationType: 'Event' });
    expect(JSON.parse(Buffer.from(defined(calls[0]).args[0].input.Payload as Uint8Array).toString('utf8'))).toEqual({
      orgId,
    });
    expect(audit.last('organisation.created')).toMatchObject({
      inTx: true,
      event: { orgId, actorType: 'user', actorUserId: w.platformOwner, metadata: { keySource: 'managed' } },
    });
    // Durable: the first row of the new tenant's hash chain, naming the platform owner.
    expect(
      await pg.superuser('SELECT seq, event, actor_user_id FROM audit_log WHERE org_id = $1 ORDER BY seq', [orgId]),
    ).toEqual([{ seq: '1', event: 'organisation.created', actor_user_id: w.platformOwner }]);
    // The named Owner is the Owner.
    const owner = `Bearer ${await id.tokenForSubject(body.owner.subject, orgId)}`;
    expect((await call('GET', '/tenant', owner)).body['tenant']).toMatchObject({ role: 'owner', plan: 'business' });
  });

  it('refuses everyone but platform owners, and invalid organisations', async () => {
    expect(await call('POST', '/organisations', await bearer(w.ownerA, w.storeA), newOrg())).toEqual(denied);
    expect(await call('POST', '/organisations', await bearer(w.support, w.storeA), newOrg())).toEqual(denied);
    const po = await bearer(w.platformOwner, w.storeA);
    expect(await call('POST', '/organisations', po, newOrg({ kind: 'network', parentId: w.group }))).toEqual({
      status: 400,
      body: { error: 'VALIDATION_FAILED', field: 'parentId' },
    });
    expect(await call('POST', '/organisations', po, newOrg({ plan: 'platinum' }))).toEqual({
      status: 400,
      body: { error: 'VALIDATION_FAILED', field: 'plan' },
    });
    expect(await call('POST', '/organisations', po, newOrg({ keySource: 'byok' }))).toEqual({
      status: 403,
      body: { error: 'BYOK_NOT_ENTITLED' },
    });
    expect(lambda.commandCalls(InvokeCommand)).toHaveLength(0);
  });

  it('an enterprise tenant created for its own key is never given a managed one', async () => {
    const r = await call(
      'POST',
      '/organisations',
      await bearer(w.platformOwner, w.storeA),
      newOrg({ kind: 'network', parentId: null, plan: 'enterprise', keySource: 'byok' }),
    );
    expect(r).toMatchObject({ status: 201, body: { keyProvisioning: 'awaiting_byok' } });
    const orgId = String((r.body['organisation'] as { id: string }).id);
    expect(lambda.commandCalls(InvokeCommand)).toHaveLength(0);
    await pg.superuser("UPDATE organisations SET created_at = now() - interval '1 hour' WHERE id = $1", [orgId]);
    expect(await store.keyless(100, 300)).not.toContain(orgId);
  });

  it('a lost invocation is reconciled: the sweep provisions the keyless tenant, and only live, due ones', async () => {
    lambda.on(InvokeCommand).rejects(named('ServiceException'));
    const po = await bearer(w.platformOwner, w.storeA);
    const lost = await call('POST', '/organisations', po, newOrg());
    // Committed regardless: the key follows from the sweep.
    expect(lost).toMatchObject({ status: 201, body: { keyProvisioning: 'deferred' } });
    const orgId = String((lost.body['organisation'] as { id: string }).id);
    const fresh = String(
      ((await call('POST', '/organisations', po, newOrg())).body['organisation'] as { id: string }).id,
    );
    const graceTenant = await tenant();
    await intoGrace(graceTenant.org);
    await pg.superuser("UPDATE organisations SET created_at = now() - interval '10 minutes' WHERE id = ANY ($1)", [
      [orgId, graceTenant.org],
    ]);

    const due = await store.keyless(100, 300);
    expect(due).toContain(orgId);
    expect(due).not.toContain(fresh); // its creation-time invocation still gets its chance
    expect(due).not.toContain(graceTenant.org);

    const created = keyArn(1).replace('11111111-2222', 'abcdef12-2222');
    kms.on(DescribeKeyCommand).rejects(named('NotFoundException'));
    kms.on(CreateKeyCommand).callsFake(async () => ({
      KeyMetadata: { KeyId: created.split('/')[1], Arn: created, KeyState: 'Enabled' },
    }));
    kms.on(CreateAliasCommand).resolves({});
    kms.on(EnableKeyRotationCommand).resolves({});
    // Only the backdated keyless tenant is due now (other tests' tenants are young or keyed).
    await pg.superuser(
      "UPDATE organisations SET created_at = now() WHERE kms_key_arn IS NULL AND id <> $1 AND created_at > now() - interval '1 day'",
      [orgId],
    );
    // The scheduled event the KeylessSweep rule sends, through the function's event router.
    const sweepLog = new RecordingLog();
    const summary = await makeHandler(provisioner, store, sweepLog)({ sweep: true });
    expect(summary).toEqual({ type: 'keyless_sweep', found: 1, provisioned: 1, throttled: 0, failed: [] });
    // Counts, ids and codes only.
    expect(sweepLog.entries).toEqual([
      {
        level: 'info',
        message: 'keyless sweep',
        fields: { found: 1, provisioned: 1, throttled: 0, failed: 0, failures: '' },
      },
    ]);
    expect(defined(kms.commandCalls(CreateAliasCommand)[0]).args[0].input.AliasName).toBe(
      `alias/bulwark/prod-eu/tenant/${orgId}`,
    );
    expect(await store.get(orgId)).toEqual({ keyArn: created, source: 'managed' });
    expect(await store.keyless(100, 0)).not.toContain(orgId);
  });

  it('a sweep that leaves a tenant keyless fails, so the provisioner error alarm fires', async () => {
    lambda.on(InvokeCommand).rejects(named('ServiceException'));
    const r = await call('POST', '/organisations', await bearer(w.platformOwner, w.storeA), newOrg());
    const orgId = String((r.body['organisation'] as { id: string }).id);
    await pg.superuser("UPDATE organisations SET created_at = now() - interval '10 minutes' WHERE id = $1", [orgId]);
    kms.on(DescribeKeyCommand).rejects(named('NotFoundException'));
    kms.on(CreateKeyCommand).rejects(named('AccessDeniedException'));
    const log = new RecordingLog();
    const sweep = makeSweepHandler(provisioner, store, log);
    await expect(sweep()).rejects.toBeInstanceOf(SweepFailed);
    expect(log.entries[0]).toMatchObject({
      level: 'error',
      message: 'keyless sweep',
      fields: { failures: expect.stringContaining(`${orgId}=AccessDeniedException`) },
    });
    await expect(sweep()).rejects.toMatchObject({
      summary: { failed: expect.arrayContaining([{ orgId, error: 'AccessDeniedException' }]) },
    });
    expect(await store.get(orgId)).toBeNull();
  });
});

describe('refusal codes', () => {
  it('every code of these routes has a stable status', () => {
    expect(ERROR_STATUS).toMatchObject({
      INVALID_TRANSITION: 409,
      INVALID_BILLING_PERIOD: 400,
      TENANT_NOT_FOUND: 404,
      TENANT_SHREDDED: 410,
      KEY_ALREADY_SET: 409,
      BYOK_NOT_ENTITLED: 403,
      EXPORT_NOT_FOUND: 404,
      EXPORT_NOT_READY: 409,
      EXPORT_FAILED: 409,
      EXPORT_EXPIRED: 410,
      PROVISIONER_FAILED: 502,
      PROVISIONER_UNAVAILABLE: 503,
      TENANT_KEYS_UNAVAILABLE: 503,
    });
    // The database's refusals reach the API as these codes.
    expect(['BW301', 'BW302', 'BW303', 'BW304', 'BW305', 'BW308'].map((code) => toGuardError({ code }).code)).toEqual([
      'TENANT_SHREDDED',
      'KEY_ALREADY_SET',
      'TENANT_NOT_FOUND',
      'INVALID_TRANSITION',
      'INVALID_BILLING_PERIOD',
      'BYOK_NOT_ENTITLED',
    ]);
  });
});
