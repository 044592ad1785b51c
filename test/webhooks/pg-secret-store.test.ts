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
    expect(keys.keys.map((k) => k.export().toString('hex'))).toEqual([second.toString('hex'), first.toString('hex')]);
    await inTenant(w.ownerC, org, (svc) => svc.endRotation(org, 'didlogic', actor(w.ownerC)));
    expect(await new PgWebhookSecretReader(ingress).lookup(org, 'didlogic')).toMatchObject({
      known: true,
      stored: { previous: null },
    });
  });

  it('reads ciphertext for verification without a tenant context, telling unknown from secret-less', async () => {
    const reader = new PgWebhookSecretReader(ingress);
    expect(await reader.lookup(w.storeA, 'frejun')).toMatchObject({
      known: true,
      stored: { current: expect.stringMatching(/^v1\./) },
    });
    // Active without a secret (an alarm: someone must configure it) versus unknown (refused quietly).
    expect(await reader.lookup(w.storeB, 'frejun')).toEqual({ known: true, stored: null });
    expect(await reader.lookup(randomUUID(), 'frejun')).toEqual({ known: false });
    await pg.superuser(`UPDATE organisations SET status = 'suspended' WHERE id = $1`, [w.storeA]);
    try {
      expect(await reader.lookup(w.storeA, 'frejun')).toEqual({ known: false });
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

/** One warm function instance: its own pool, secret cache and clock, counting its secret reads. */
function instance(clock: () => number = Date.now) {
  const pool = appPool(pg);
  let reads = 0;
  const counting = {
    query: async (sql: string, params?: unknown[]) => {
      reads++;
      return pool.query(sql, params);
    },
  };
  const logs = new Lines();
  const logger = new RecordingLog(logs.write);
  const metrics = new RecordingMetrics(logs.write);
  const handle = createWebhookHandler({
    runtime: buildRuntime(
      parseWebhookEnv({ BULWARK_ENVIRONMENT: 'production' }),
      new StoredSecretResolver({ store: new PgWebhookSecretReader(counting), cipher, clock }),
      logger,
    ),
    pool,
    processor: { process: async () => undefined },
    metrics,
    logger,
    clock,
  });
  const outcomes = () =>
    metrics.published
      .filter((m) => m.dimensions['Provider'] && m.dimensions['Outcome'])
      .map((m) => m.dimensions['Outcome']);
  return { handle, reads: () => reads, outcomes, logger };
}

function frejun(org: string, secret: Uint8Array, nowMs = Date.now()) {
  const body = Buffer.from(
    JSON.stringify({ event_id: randomUUID(), event: 'call.completed', timestamp: Math.floor(nowMs / 1000) }),
  );
  return proxyEvent({
    path: '/webhooks/frejun',
    body,
    query: { org },
    headers: [['x-frejun-signature', hmacSign(secret, body, 'hex')]],
  });
}

const statusOf = (r: { statusCode: number; body: string }) => [r.statusCode, JSON.parse(r.body) as unknown];

describe('an unknown ?org= (real handler, PostgreSQL as bulwark_webhooks)', () => {
  let secret: Buffer;
  beforeAll(async () => {
    secret = randomBytes(32);
    await inTenant(w.ownerA, w.storeA, async (svc) => {
      await svc.setSecret(w.storeA, 'frejun', secret, actor(w.ownerA));
      return svc.endRotation(w.storeA, 'frejun', actor(w.ownerA));
    });
  });

  it('is answered exactly like a bad signature, and costs no database read on repeat', async () => {
    const a = instance();
    expect(statusOf(await a.handle(frejun(w.storeA, secret)))).toEqual([200, { status: 'accepted' }]);
    const badSignature = await a.handle(frejun(w.storeA, randomBytes(32)));
    const unknownOrg = randomUUID();
    const unknown = await a.handle(frejun(unknownOrg, randomBytes(32)));
    // Status, headers and body: identical, so nothing tells an unknown organisation from a wrong secret.
    expect(unknown).toEqual(badSignature);
    expect(statusOf(unknown)).toEqual([401, { code: 'SIGNATURE_INVALID', header: 'x-frejun-signature' }]);
    const reads = a.reads();
    for (let i = 0; i < 20; i++) expect(await a.handle(frejun(unknownOrg, randomBytes(32)))).toEqual(badSignature);
    expect(a.reads()).toBe(reads);
    // Counted as forged traffic; the secret-missing alarm's metric never moves.
    expect(a.outcomes()).toEqual(['accepted', ...Array(22).fill('SIGNATURE_INVALID')]);
    expect(a.logger.entries.filter((e) => e.fields['detail'] === 'unknown or inactive organisation')).toHaveLength(21);
  });

  it('costs the same HMAC work as a wrong signature for a known organisation', async () => {
    const a = instance();
    const unknownOrg = randomUUID();
    // Warm both caches, then count the HMAC computations of one more request each.
    await a.handle(frejun(w.storeA, randomBytes(32)));
    await a.handle(frejun(unknownOrg, randomBytes(32)));
    const crypto = jest.requireActual<typeof import('node:crypto')>('node:crypto');
    const spy = jest.spyOn(crypto, 'createHmac');
    try {
      await a.handle(frejun(w.storeA, randomBytes(32)));
      const known = spy.mock.calls.length;
      await a.handle(frejun(unknownOrg, randomBytes(32)));
      expect(known).toBeGreaterThan(0);
      expect(spy.mock.calls.length - known).toBe(known);
    } finally {
      spy.mockRestore();
    }
  });

  it('only a known organisation without a secret emits WEBHOOK_SECRET_MISSING', async () => {
    const a = instance();
    expect(statusOf(await a.handle(frejun(w.storeB, randomBytes(32))))).toEqual([
      503,
      { code: 'WEBHOOK_SECRET_MISSING' },
    ]);
    expect(a.outcomes()).toEqual(['WEBHOOK_SECRET_MISSING']);
  });

  it('an organisation that becomes active after its negative entry is reachable within the 60 s TTL', async () => {
    let now = Date.now();
    const a = instance(() => now);
    await pg.superuser(`UPDATE organisations SET status = 'suspended' WHERE id = $1`, [w.storeA]);
    try {
      expect(statusOf(await a.handle(frejun(w.storeA, secret, now)))[0]).toBe(401);
    } finally {
      await pg.superuser(`UPDATE organisations SET status = 'active' WHERE id = $1`, [w.storeA]);
    }
    now += 59_000;
    expect(statusOf(await a.handle(frejun(w.storeA, secret, now)))[0]).toBe(401);
    now += 1_000;
    expect(statusOf(await a.handle(frejun(w.storeA, secret, now)))).toEqual([200, { status: 'accepted' }]);
  });
});

describe('ending a rotation revokes the previous secret at once on every warm instance', () => {
  it('two warm instances holding [new, old] refuse the old secret right after endRotation', async () => {
    const org = w.storeC;
    const [old, next] = [randomBytes(32), randomBytes(32)];
    await inTenant(w.ownerC, org, (svc) => svc.setSecret(org, 'frejun', old, actor(w.ownerC)));
    await inTenant(w.ownerC, org, (svc) => svc.setSecret(org, 'frejun', next, actor(w.ownerC)));
    const instances = [instance(), instance()];
    for (const i of instances) {
      expect(statusOf(await i.handle(frejun(org, old)))).toEqual([200, { status: 'accepted' }]);
      expect(statusOf(await i.handle(frejun(org, next)))).toEqual([200, { status: 'accepted' }]);
    }
    await inTenant(w.ownerC, org, (svc) => svc.endRotation(org, 'frejun', actor(w.ownerC)));
    for (const i of instances) {
      const reads = i.reads();
      const refused = [401, { code: 'SIGNATURE_INVALID', header: 'x-frejun-signature' }];
      // Verified against the cache, refused by the database in the dedup transaction.
      expect(statusOf(await i.handle(frejun(org, old)))).toEqual(refused);
      expect(i.reads()).toBe(reads);
      expect(i.outcomes().at(-1)).toBe('SIGNATURE_INVALID');
      // That refusal dropped the stale entry: one re-read, after which the old secret is simply gone.
      expect(statusOf(await i.handle(frejun(org, next)))).toEqual([200, { status: 'accepted' }]);
      expect(statusOf(await i.handle(frejun(org, old)))).toEqual(refused);
      expect(i.reads()).toBe(reads + 1);
    }
  });

  it('a secret cached as current stays valid as previous, and is revoked when that rotation ends', async () => {
    const org = w.storeC;
    const [old, next] = [randomBytes(32), randomBytes(32)];
    await inTenant(w.ownerC, org, (svc) => svc.setSecret(org, 'didlogic', old, actor(w.ownerC)));
    await inTenant(w.ownerC, org, (svc) => svc.endRotation(org, 'didlogic', actor(w.ownerC)));
    const a = instance();
    const didlogic = (secret: Uint8Array) => {
      const body = Buffer.from(
        JSON.stringify({ id: randomUUID(), type: 't', timestamp: Math.floor(Date.now() / 1000) }),
      );
      return proxyEvent({
        path: '/webhooks/didlogic',
        body,
        query: { org },
        headers: [['x-didlogic-signature', hmacSign(secret, body, 'base64')]],
      });
    };
    expect(statusOf(await a.handle(didlogic(old)))[0]).toBe(200); // caches [old]
    await inTenant(w.ownerC, org, (svc) => svc.setSecret(org, 'didlogic', next, actor(w.ownerC)));
    expect(statusOf(await a.handle(didlogic(old)))[0]).toBe(200); // previous, inside its window
    await inTenant(w.ownerC, org, (svc) => svc.endRotation(org, 'didlogic', actor(w.ownerC)));
    expect(statusOf(await a.handle(didlogic(old)))).toEqual([
      401,
      { code: 'SIGNATURE_INVALID', header: 'x-didlogic-signature' },
    ]);
    expect(a.logger.entries.at(-1)?.fields['detail']).toBe('the secret that verified is no longer accepted');
    // The refusal dropped the stale cache entry: the new secret is read at once and accepted.
    expect(statusOf(await a.handle(didlogic(next)))[0]).toBe(200);
  });
});
