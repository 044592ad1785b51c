/** The dedup path against a real PostgreSQL 17, as the application role. */
import { randomUUID } from 'node:crypto';
import { processOnce, purgeExpired, type DedupKey } from '../../lambda/webhooks/dedup';
import { buildRuntime, parseWebhookEnv } from '../../lambda/webhooks/config';
import { createWebhookHandler } from '../../lambda/webhooks/handler';
import { WebhookError } from '../../lambda/webhooks/errors';
import { RecordingLog, RecordingMetrics } from '../support/observability';
import { gate, startPostgres, waitForLockWaiters, type TestPostgres } from '../support/postgres';
import { DATABASE_ROLES } from '../../contracts/database';

/** The webhook ingress connects as its own role (migrations/0401). */
const WEBHOOKS_ROLE = DATABASE_ROLES.webhooks;
import { appPool, Lines, proxyEvent, telnyxKeyPair, telnyxSign } from './support';

let pg: TestPostgres;

beforeAll(async () => {
  pg = await startPostgres();
  await pg.superuser(`CREATE TABLE effects (event_id text NOT NULL)`);
  await pg.superuser(`GRANT INSERT, SELECT ON effects TO ${WEBHOOKS_ROLE}`);
});
afterAll(async () => pg?.stop());

const key = (eventId = randomUUID()): DedupKey => ({
  provider: 'telnyx',
  scope: 'platform',
  eventId,
  eventType: 'message.received',
});

async function count(sql: string, params: unknown[]): Promise<number> {
  const c = await pg.client(WEBHOOKS_ROLE);
  try {
    return Number((await c.query(sql, params)).rows[0]?.n);
  } finally {
    await c.end();
  }
}

describe('processOnce', () => {
  it('processes an event once and reports the replay as a duplicate', async () => {
    const pool = appPool(pg);
    const k = key();
    const effect = jest.fn(async (tx) => {
      await tx.query('INSERT INTO effects VALUES ($1)', [k.eventId]);
    });
    expect(await processOnce(pool, k, effect)).toBe('processed');
    expect(await processOnce(pool, k, effect)).toBe('duplicate');
    expect(effect).toHaveBeenCalledTimes(1);
    expect(await count('SELECT count(*) AS n FROM effects WHERE event_id = $1', [k.eventId])).toBe(1);
  });

  it('of two concurrent deliveries of the same event, exactly one processes', async () => {
    const pool = appPool(pg, { max: 20 });
    for (let round = 0; round < 3; round++) {
      const k = key();
      let inside = 0;
      const entered = gate();
      const release = gate();
      const effect = async (tx: { query: (s: string, p?: unknown[]) => Promise<unknown> }) => {
        inside++;
        entered.open();
        // Hold the transaction open until the second delivery is blocked on its dedup row.
        await release.opened;
        await tx.query('INSERT INTO effects VALUES ($1)', [k.eventId]);
      };
      const first = processOnce(pool, k, effect);
      await entered.opened;
      const second = processOnce(pool, k, effect);
      await waitForLockWaiters(pg, 1);
      release.open();
      expect(await first).toBe('processed');
      expect(await second).toBe('duplicate');
      expect(inside).toBe(1);
      expect(await count('SELECT count(*) AS n FROM effects WHERE event_id = $1', [k.eventId])).toBe(1);
    }
  });

  it('of ten concurrent deliveries, exactly one processes', async () => {
    const pool = appPool(pg, { max: 20 });
    const k = key();
    const outcomes = await Promise.all(
      Array.from({ length: 10 }, () =>
        processOnce(pool, k, async (tx) => {
          await tx.query('INSERT INTO effects VALUES ($1)', [k.eventId]);
        }),
      ),
    );
    expect(outcomes.filter((o) => o === 'processed')).toHaveLength(1);
    expect(await count('SELECT count(*) AS n FROM effects WHERE event_id = $1', [k.eventId])).toBe(1);
  });

  it('rolls the dedup row back with a failed effect, so the carrier retry processes it', async () => {
    const pool = appPool(pg);
    const k = key();
    await expect(
      processOnce(pool, k, async (tx) => {
        await tx.query('INSERT INTO effects VALUES ($1)', [k.eventId]);
        throw new Error('downstream failed');
      }),
    ).rejects.toThrow('downstream failed');
    expect(await count('SELECT count(*) AS n FROM webhook_event_dedup WHERE event_id = $1', [k.eventId])).toBe(0);
    expect(await count('SELECT count(*) AS n FROM effects WHERE event_id = $1', [k.eventId])).toBe(0);
    expect(await processOnce(pool, k, async () => undefined)).toBe('processed');
  });

  it('when the first of two concurrent deliveries fails, the second processes', async () => {
    const pool = appPool(pg, { max: 20 });
    const k = key();
    const entered = gate();
    const release = gate();
    const failing = processOnce(pool, k, async () => {
      entered.open();
      await release.opened;
      throw new Error('first attempt failed');
    });
    // The first holds the dedup row; the second blocks on it until the first rolls back.
    await entered.opened;
    const second = processOnce(pool, k, async (tx) => {
      await tx.query('INSERT INTO effects VALUES ($1)', [k.eventId]);
    });
    await waitForLockWaiters(pg, 1);
    release.open();
    await expect(failing).rejects.toThrow('first attempt failed');
    expect(await second).toBe('processed');
    expect(await count('SELECT count(*) AS n FROM effects WHERE event_id = $1', [k.eventId])).toBe(1);
  });

  it('keys per scope: the same event id from two organisations is two events', async () => {
    const pool = appPool(pg);
    const eventId = randomUUID();
    const a = { provider: 'frejun', scope: randomUUID(), eventId, eventType: 't' } as const;
    const b = { ...a, scope: randomUUID() };
    expect(await processOnce(pool, a, async () => undefined)).toBe('processed');
    expect(await processOnce(pool, b, async () => undefined)).toBe('processed');
    expect(await processOnce(pool, a, async () => undefined)).toBe('duplicate');
  });
});

describe('webhook_event_dedup table', () => {
  it('expires rows after the documented 7-day retention, and the purge removes only expired ones', async () => {
    const pool = appPool(pg);
    const k = key();
    await processOnce(pool, k, async () => undefined);
    expect(
      await count(
        `SELECT count(*) AS n FROM webhook_event_dedup
         WHERE event_id = $1 AND expires_at - received_at = interval '7 days'`,
        [k.eventId],
      ),
    ).toBe(1);
    const expired = randomUUID();
    await pg.superuser(
      `INSERT INTO webhook_event_dedup (provider, scope, event_id, event_type, received_at, expires_at)
       VALUES ('telnyx', 'platform', $1, 't', now() - interval '8 days', now() - interval '1 day')`,
      [expired],
    );
    const c = await pg.client(WEBHOOKS_ROLE);
    try {
      expect(await purgeExpired(c)).toBeGreaterThanOrEqual(1);
    } finally {
      await c.end();
    }
    expect(await count('SELECT count(*) AS n FROM webhook_event_dedup WHERE event_id = $1', [expired])).toBe(0);
    expect(await count('SELECT count(*) AS n FROM webhook_event_dedup WHERE event_id = $1', [k.eventId])).toBe(1);
  });

  it('lets the application insert, read and purge but never rewrite a row', async () => {
    const c = await pg.client(WEBHOOKS_ROLE);
    try {
      await expect(c.query(`UPDATE webhook_event_dedup SET expires_at = now()`)).rejects.toThrow(/permission denied/);
      await expect(c.query(`TRUNCATE webhook_event_dedup`)).rejects.toThrow(/permission denied/);
    } finally {
      await c.end();
    }
  });

  it('refuses unknown providers and malformed scopes', async () => {
    const c = await pg.client(WEBHOOKS_ROLE);
    try {
      await expect(
        c.query(
          `INSERT INTO webhook_event_dedup (provider, scope, event_id, event_type) VALUES ('x', 'platform', 'e', 't')`,
        ),
      ).rejects.toThrow(/check constraint/);
      await expect(
        c.query(
          `INSERT INTO webhook_event_dedup (provider, scope, event_id, event_type) VALUES ('frejun', 'org', 'e', 't')`,
        ),
      ).rejects.toThrow(/check constraint/);
    } finally {
      await c.end();
    }
  });
});

describe('handler under concurrent delivery', () => {
  it('two concurrent deliveries of one Telnyx event through the handler: one accepted, one duplicate', async () => {
    const { privateKey, publicKeyBase64 } = telnyxKeyPair();
    const logs = new Lines();
    const logger = new RecordingLog(logs.write);
    let processedCount = 0;
    const entered = gate();
    const release = gate();
    const handle = createWebhookHandler({
      runtime: buildRuntime(
        parseWebhookEnv({ BULWARK_ENVIRONMENT: 'production', TELNYX_PUBLIC_KEY: publicKeyBase64 }),
        null,
        logger,
      ),
      pool: appPool(pg, { max: 10 }),
      processor: {
        async process() {
          processedCount++;
          entered.open();
          await release.opened;
        },
      },
      metrics: new RecordingMetrics(logs.write),
      logger,
      purgeEvery: 1,
    });
    const ts = String(Math.floor(Date.now() / 1000));
    const body = Buffer.from(JSON.stringify({ data: { id: randomUUID(), event_type: 'call.hangup' } }));
    const event = proxyEvent({
      path: '/webhooks/telnyx',
      body,
      headers: [
        ['telnyx-signature-ed25519', telnyxSign(privateKey, ts, body)],
        ['telnyx-timestamp', ts],
      ],
    });
    const both = Promise.all([handle(event), handle(event)]);
    // Whichever delivery inserted the dedup row first holds it; the other waits on it.
    await entered.opened;
    await waitForLockWaiters(pg, 1);
    release.open();
    const results = await both;
    expect(results.map((r) => r.statusCode)).toEqual([200, 200]);
    expect(results.map((r) => JSON.parse(r.body).status).sort()).toEqual(['accepted', 'duplicate']);
    expect(processedCount).toBe(1);
    // purgeEvery: 1 ran the purge after the processed event, as the application role.
    expect(logs.parsed().some((l) => l['message'] === 'purged expired webhook dedup rows')).toBe(true);
  });

  it('maps a failing effect to PROCESSING_FAILED (500) so the carrier retries, without logging its message', async () => {
    const { privateKey, publicKeyBase64 } = telnyxKeyPair();
    const logs = new Lines();
    const logger = new RecordingLog(logs.write);
    const handle = createWebhookHandler({
      runtime: buildRuntime(
        parseWebhookEnv({ BULWARK_ENVIRONMENT: 'production', TELNYX_PUBLIC_KEY: publicKeyBase64 }),
        null,
        logger,
      ),
      pool: appPool(pg),
      processor: {
        async process() {
          throw new Error('leaky message with customer text');
        },
      },
      metrics: new RecordingMetrics(logs.write),
      logger,
    });
    const ts = String(Math.floor(Date.now() / 1000));
    const eventId = randomUUID();
    const body = Buffer.from(JSON.stringify({ data: { id: eventId, event_type: 'call.hangup' } }));
    const r = await handle(
      proxyEvent({
        path: '/webhooks/telnyx',
        body,
        headers: [
          ['telnyx-signature-ed25519', telnyxSign(privateKey, ts, body)],
          ['telnyx-timestamp', ts],
        ],
      }),
    );
    expect(r.statusCode).toBe(500);
    expect(JSON.parse(r.body)).toEqual({ code: 'PROCESSING_FAILED' });
    expect(logs.lines.join('\n')).not.toContain('customer text');
    expect(await count('SELECT count(*) AS n FROM webhook_event_dedup WHERE event_id = $1', [eventId])).toBe(0);
  });
});

describe('dedup transaction timeouts', () => {
  it('a retry of an event whose first delivery is frozen fails fast with DELIVERY_IN_PROGRESS (503)', async () => {
    const pool = appPool(pg, { max: 4 });
    const k = key();
    const entered = gate();
    const release = gate();
    // The first delivery inserts the dedup row, then freezes inside its effect, holding the row lock.
    const first = processOnce(pool, k, async () => {
      entered.open();
      await release.opened;
    });
    await entered.opened;
    // The retry, on a second connection: its lock timeout (100 ms here) ends the wait, not a test timer.
    const started = Date.now();
    const retry = await processOnce(pool, k, async () => undefined, {
      timeouts: { lockMs: 100, statementMs: 5000, idleInTransactionMs: 10_000 },
    }).catch((e: unknown) => e);
    expect(retry).toBeInstanceOf(WebhookError);
    expect(retry).toMatchObject({ code: 'DELIVERY_IN_PROGRESS', status: 503 });
    // Well under the role's own 5 s lock_timeout: the SET LOCAL bound applied.
    expect(Date.now() - started).toBeLessThan(4000);
    release.open();
    expect(await first).toBe('processed');
    // The retry after that finds the event recorded.
    expect(await processOnce(pool, k, async () => undefined)).toBe('duplicate');
  });

  it('sets the bounds with SET LOCAL: they hold inside the transaction and never leak to the pooled connection', async () => {
    const pool = appPool(pg, { max: 1 });
    const seen: Record<string, unknown>[] = [];
    await processOnce(pool, key(), async (tx) => {
      const r = await tx.query(
        `SELECT current_setting('lock_timeout') AS lock, current_setting('statement_timeout') AS statement,
                current_setting('idle_in_transaction_session_timeout') AS idle`,
      );
      seen.push(...r.rows);
    });
    expect(seen).toEqual([{ lock: '1s', statement: '3s', idle: '8s' }]);
    // The same (only) pooled connection afterwards: back to the role's defaults (lambda/tenant-guard/bootstrap.ts).
    const after = await pool.query(
      `SELECT current_setting('lock_timeout') AS lock, current_setting('statement_timeout') AS statement`,
    );
    expect(after.rows).toEqual([{ lock: '5s', statement: '30s' }]);
  });

  it('through the handler: the carrier gets 503 DELIVERY_IN_PROGRESS while the first delivery is frozen', async () => {
    const { privateKey, publicKeyBase64 } = telnyxKeyPair();
    const logs = new Lines();
    const logger = new RecordingLog(logs.write);
    const entered = gate();
    const release = gate();
    let calls = 0;
    const handle = createWebhookHandler({
      runtime: buildRuntime(
        parseWebhookEnv({ BULWARK_ENVIRONMENT: 'production', TELNYX_PUBLIC_KEY: publicKeyBase64 }),
        null,
        logger,
      ),
      pool: appPool(pg, { max: 4 }),
      processor: {
        async process() {
          if (calls++ > 0) return;
          entered.open();
          await release.opened;
        },
      },
      metrics: new RecordingMetrics(logs.write),
      logger,
      dedupTimeouts: { lockMs: 100, statementMs: 5000, idleInTransactionMs: 10_000 },
    });
    const ts = String(Math.floor(Date.now() / 1000));
    const body = Buffer.from(JSON.stringify({ data: { id: randomUUID(), event_type: 'call.hangup' } }));
    const event = proxyEvent({
      path: '/webhooks/telnyx',
      body,
      headers: [
        ['telnyx-signature-ed25519', telnyxSign(privateKey, ts, body)],
        ['telnyx-timestamp', ts],
      ],
    });
    const first = handle(event);
    await entered.opened;
    const retry = await handle(event);
    expect([retry.statusCode, JSON.parse(retry.body)]).toEqual([503, { code: 'DELIVERY_IN_PROGRESS' }]);
    release.open();
    expect(JSON.parse((await first).body)).toEqual({ status: 'accepted' });
    expect(JSON.parse((await handle(event)).body)).toEqual({ status: 'duplicate' });
    expect(calls).toBe(1);
  });
});
