/**
 * Per-organisation webhook secrets in a real PostgreSQL 17, under the tenancy contract: sealed
 * ciphertext only, tenant-confined management through RLS, and verification through the one
 * SECURITY DEFINER reader.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import type { Client } from 'pg';
import { buildRuntime, parseWebhookEnv } from '../../lambda/webhooks/config';
import { createWebhookHandler } from '../../lambda/webhooks/handler';
import { PgWebhookSecretReader, PgWebhookSecretStore } from '../../lambda/webhooks/pg-secret-store';
import { StoredSecretResolver, WebhookSecretService } from '../../lambda/webhooks/secrets';
import { RecordingLog, RecordingMetrics } from '../support/observability';
import { authenticateAs, buildWorld, type World } from '../tenant-guard/fixtures';
import { APP_ROLE, startPostgres, type TestPostgres } from '../support/postgres';
import { DATABASE_ROLES } from '../../contracts/database';
import { appPool, hmacSign, Lines, MemoryAudit, proxyEvent, TestCipher } from './support';
import { defined } from '../support/defined';

let pg: TestPostgres;
let w: World;
let c: Client;
/** The webhook ingress's own role, which verification reads with (migrations/0401). */
let ingress: Client;
const cipher = new TestCipher();
const audit = new MemoryAudit();

beforeAll(async () => {
  pg = await startPostgres();
  w = await buildWorld(pg);
  c = await pg.client(APP_ROLE);
  ingress = await pg.client(DATABASE_ROLES.webhooks);
});
afterAll(async () => {
  await c?.end();
  await ingress?.end();
  await pg?.stop();
});

/** Runs `fn` in a committed transaction entered as (user, org). */
async function inTenant<T>(user: string, org: string, fn: (svc: WebhookSecretService) => Promise<T>): Promise<T> {
  await c.query('BEGIN');
  try {
    await authenticateAs(c, user, org);
    await c.query('SELECT * FROM app.set_tenant_context($1, $2)', [user, org]);
    const result = await fn(new WebhookSecretService({ store: new PgWebhookSecretStore(c), cipher, audit }));
    await c.query('COMMIT');
    return result;
  } catch (e) {
    await c.query('ROLLBACK');
    throw e;
  }
}

const actor = (userId: string) => ({ userId, email: null });

describe('organisation_webhook_secrets', () => {
  const secretA = randomBytes(32);

  beforeAll(async () => {
    await inTenant(w.ownerA, w.storeA, (svc) => svc.setSecret(w.storeA, 'frejun', secretA, actor(w.ownerA)));
  });

  it('reports secret_set only, and stores nothing but ciphertext', async () => {
    const status = await inTenant(w.ownerA, w.storeA, (svc) => svc.status(w.storeA, 'frejun'));
    expect(status).toEqual({ provider: 'frejun', secret_set: true, previous_secret_active: false });
    expect(await inTenant(w.ownerA, w.storeA, (svc) => svc.status(w.storeA, 'didlogic'))).toMatchObject({
      secret_set: false,
    });
    const rows = (await pg.superuser('SELECT * FROM organisation_webhook_secrets WHERE org_id = $1', [
      w.storeA,
    ])) as Record<string, unknown>[];
    expect(rows).toHaveLength(1);
    const dump = JSON.stringify(rows);
    expect(dump).not.toContain(secretA.toString('hex'));
    expect(dump).not.toContain(secretA.toString('base64'));
    expect(String(defined(rows[0])['current_sealed'])).toMatch(/^v1\./);
  });

  it('is invisible and unwritable from another tenant and without a context', async () => {
    expect(await inTenant(w.ownerB, w.storeB, (svc) => svc.status(w.storeA, 'frejun'))).toMatchObject({
      secret_set: false,
    });
    await expect(
      inTenant(w.ownerB, w.storeB, (svc) => svc.setSecret(w.storeA, 'frejun', randomBytes(32), actor(w.ownerB))),
    ).rejects.toThrow(/row-level security/);
    const bare = await c.query('SELECT count(*)::int AS n FROM organisation_webhook_secrets');
    expect(bare.rows[0].n).toBe(0);
  });

  it('rotates in place: the replaced secret becomes previous, with its window', async () => {
    const org = w.storeC;
    const [first, second] = [randomBytes(32), randomBytes(32)];
    await inTenant(w.ownerC, org, (svc) => svc.setSecret(org, 'didlogic', first, actor(w.ownerC)));
    const status = await inTenant(w.ownerC, org, (svc) => svc.setSecret(org, 'didlogic', second, actor(w.ownerC)));
    expect(status.previous_secret_active).toBe(true);
    const keys = await new StoredSecretResolver({ store: new PgWebhookSecretReader(ingress), cipher }).secretsFor(
      org,
      'didlogic',
    );
    expect(keys.map((k) => k.export().toString('hex'))).toEqual([second.toString('hex'), first.toString('hex')]);
    await inTenant(w.ownerC, org, (svc) => svc.endRotation(org, 'didlogic', actor(w.ownerC)));
    expect(await new PgWebhookSecretReader(ingress).read(org, 'didlogic')).toMatchObject({ previous: null });
  });

  it('reads ciphertext for verification without a tenant context, only for active organisations', async () => {
    const reader = new PgWebhookSecretReader(ingress);
    expect(await reader.read(w.storeA, 'frejun')).toMatchObject({ current: expect.stringMatching(/^v1\./) });
    expect(await reader.read(w.storeB, 'frejun')).toBeNull();
    expect(await reader.read(randomUUID(), 'frejun')).toBeNull();
    await pg.superuser(`UPDATE organisations SET status = 'suspended' WHERE id = $1`, [w.storeA]);
    try {
      expect(await reader.read(w.storeA, 'frejun')).toBeNull();
    } finally {
      await pg.superuser(`UPDATE organisations SET status = 'active' WHERE id = $1`, [w.storeA]);
    }
  });

  it('verifies a FreJun webhook end to end with the organisation secret from PostgreSQL', async () => {
    const pool = appPool(pg);
    const logs = new Lines();
    const logger = new RecordingLog(logs.write);
    const handle = createWebhookHandler({
      runtime: buildRuntime(
        parseWebhookEnv({ BULWARK_ENVIRONMENT: 'production' }),
        new StoredSecretResolver({ store: new PgWebhookSecretReader(pool), cipher }),
        logger,
      ),
      pool,
      processor: { process: async () => undefined },
      metrics: new RecordingMetrics(logs.write),
      logger,
    });
    const body = Buffer.from(
      JSON.stringify({ event_id: randomUUID(), event: 'call.completed', timestamp: Math.floor(Date.now() / 1000) }),
    );
    const event = (org: string) =>
      proxyEvent({
        path: '/webhooks/frejun',
        body,
        query: { org },
        headers: [['X-FreJun-Signature', hmacSign(secretA, body, 'hex')]],
      });
    const ok = await handle(event(w.storeA));
    expect([ok.statusCode, JSON.parse(ok.body)]).toEqual([200, { status: 'accepted' }]);
    // The same signed request aimed at another organisation finds no secret there: refused.
    const other = await handle(event(w.storeB));
    expect([other.statusCode, JSON.parse(other.body)]).toEqual([503, { code: 'WEBHOOK_SECRET_MISSING' }]);
  });

  it('a forged GUC context (set_config) reads nothing from the table', async () => {
    await expect(c.query(`SELECT set_config('app.org_id', $1, false)`, [w.storeA])).resolves.toBeDefined();
    const r = await c.query('SELECT count(*)::int AS n FROM organisation_webhook_secrets');
    expect(r.rows[0].n).toBe(0);
  });
});
