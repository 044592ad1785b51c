/**
 * Cold start and the real Lambda entry point: verification can never be disabled in production, a
 * missing or unreadable key or secret is an explicit 503, and the opt-out warns at every cold start.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { buildRuntime, parseWebhookEnv } from '../../lambda/webhooks/config';
import type { ConnectionPool } from '../../lambda/webhooks/dedup';
import { createWebhookHandler, type WebhookHandler } from '../../lambda/webhooks/handler';
import type { ProxyEventLike } from '../../lambda/webhooks/request';
import { StoredSecretResolver, WebhookSecretService } from '../../lambda/webhooks/secrets';
import { lambdaContext, RecordingLog, RecordingMetrics } from '../support/observability';
import {
  hmacSign,
  Lines,
  MemoryAudit,
  MemorySecretStore,
  proxyEvent,
  telnyxKeyPair,
  telnyxSign,
  TestCipher,
} from './support';
import { defined } from '../support/defined';

/** A pool that must never be reached: these cases are all refused before the database. */
const unreachablePool: ConnectionPool = {
  connect: () => Promise.reject(new Error('the database must not be reached')),
};

function telnyxRequest(privateKey = telnyxKeyPair().privateKey): ProxyEventLike {
  const ts = String(Math.floor(Date.now() / 1000));
  const body = Buffer.from(JSON.stringify({ data: { id: randomUUID(), event_type: 'call.answered' } }));
  return proxyEvent({
    path: '/webhooks/telnyx',
    body,
    headers: [
      ['telnyx-signature-ed25519', telnyxSign(privateKey, ts, body)],
      ['telnyx-timestamp', ts],
    ],
  });
}

function handlerFor(env: Record<string, string>, logs = new Lines(), resolver: StoredSecretResolver | null = null) {
  const logger = new RecordingLog(logs.write);
  return createWebhookHandler({
    runtime: buildRuntime(parseWebhookEnv(env), resolver, logger),
    pool: unreachablePool,
    processor: { process: async () => undefined },
    metrics: new RecordingMetrics(logs.write),
    logger,
  });
}

const json = async (h: WebhookHandler, e: ProxyEventLike) => {
  const r = await h(e);
  return { status: r.statusCode, body: JSON.parse(r.body) as unknown };
};

describe('cold-start configuration', () => {
  it('refuses to start a production function with verification disabled', () => {
    expect(() => parseWebhookEnv({ BULWARK_ENVIRONMENT: 'production', WEBHOOK_VERIFICATION: 'disabled' })).toThrow(
      /WEBHOOK_VERIFICATION: webhook verification cannot be disabled in production/,
    );
    // Even a runtime assembled by hand (bypassing the schema) refuses.
    expect(() =>
      buildRuntime(
        { BULWARK_ENVIRONMENT: 'production', WEBHOOK_VERIFICATION: 'disabled', WEBHOOK_MAX_BODY_BYTES: 1024 },
        null,
        new RecordingLog(),
      ),
    ).toThrow(/cannot be disabled in production/);
  });

  it('refuses an unknown environment or verification mode, and a silly body limit', () => {
    expect(() => parseWebhookEnv({})).toThrow(/BULWARK_ENVIRONMENT/);
    expect(() => parseWebhookEnv({ BULWARK_ENVIRONMENT: 'staging', WEBHOOK_VERIFICATION: 'off' })).toThrow(
      /WEBHOOK_VERIFICATION/,
    );
    expect(() => parseWebhookEnv({ BULWARK_ENVIRONMENT: 'staging', WEBHOOK_MAX_BODY_BYTES: '10' })).toThrow(
      /WEBHOOK_MAX_BODY_BYTES/,
    );
    expect(parseWebhookEnv({ BULWARK_ENVIRONMENT: 'staging' })).toMatchObject({
      WEBHOOK_VERIFICATION: 'required',
      WEBHOOK_MAX_BODY_BYTES: 256 * 1024,
    });
  });

  it('a non-production opt-out warns at every cold start and lets unsigned events through to the dedup step', async () => {
    for (let coldStart = 0; coldStart < 2; coldStart++) {
      const logs = new Lines();
      const h = handlerFor({ BULWARK_ENVIRONMENT: 'development', WEBHOOK_VERIFICATION: 'disabled' }, logs);
      expect(logs.parsed()[0]).toMatchObject({
        level: 'warn',
        message: expect.stringMatching(/VERIFICATION IS DISABLED/),
      });
      // Unverified events still go through body limits and dedup (here: the database is reached).
      const r = await h(
        proxyEvent({ path: '/webhooks/telnyx', body: JSON.stringify({ data: { id: 'e', event_type: 't' } }) }),
      );
      expect(r.statusCode).toBe(500);
    }
  });
});

describe('missing or unreadable keys and secrets fail loudly, never succeed', () => {
  it('Telnyx without a configured public key: WEBHOOK_SECRET_MISSING (503), logged at cold start', async () => {
    const logs = new Lines();
    const h = handlerFor({ BULWARK_ENVIRONMENT: 'production' }, logs);
    expect(logs.parsed()[0]).toMatchObject({ level: 'error', code: 'WEBHOOK_SECRET_MISSING' });
    expect(await json(h, telnyxRequest())).toEqual({ status: 503, body: { code: 'WEBHOOK_SECRET_MISSING' } });
  });

  it.each([
    ['not base64', 'not base64!'],
    ['31 bytes', randomBytes(31).toString('base64')],
    ['33 bytes', randomBytes(33).toString('base64')],
  ])('Telnyx with an unreadable public key (%s): WEBHOOK_SECRET_UNREADABLE (503)', async (_n, key) => {
    const h = handlerFor({ BULWARK_ENVIRONMENT: 'production', TELNYX_PUBLIC_KEY: key });
    expect(await json(h, telnyxRequest())).toEqual({ status: 503, body: { code: 'WEBHOOK_SECRET_UNREADABLE' } });
  });

  it('a malformed previous Telnyx key fails as loudly as a malformed current one', async () => {
    const { privateKey, publicKeyBase64 } = telnyxKeyPair();
    const h = handlerFor({
      BULWARK_ENVIRONMENT: 'production',
      TELNYX_PUBLIC_KEY: publicKeyBase64,
      TELNYX_PREVIOUS_PUBLIC_KEY: 'not-a-key',
    });
    expect(await json(h, telnyxRequest(privateKey))).toEqual({
      status: 503,
      body: { code: 'WEBHOOK_SECRET_UNREADABLE' },
    });
  });

  it('imports the Telnyx key once per cold start, not per request', async () => {
    const crypto = jest.requireActual<typeof import('node:crypto')>('node:crypto');
    const spy = jest.spyOn(crypto, 'createPublicKey');
    const { privateKey, publicKeyBase64 } = telnyxKeyPair();
    const h = handlerFor({ BULWARK_ENVIRONMENT: 'production', TELNYX_PUBLIC_KEY: publicKeyBase64 });
    expect(spy).toHaveBeenCalledTimes(1);
    for (let i = 0; i < 3; i++) await h(telnyxRequest(privateKey));
    expect(spy).toHaveBeenCalledTimes(1);
    spy.mockRestore();
  });

  it('FreJun/DIDLogic without a secret store: WEBHOOK_SECRET_MISSING (503), logged at cold start', async () => {
    const logs = new Lines();
    const h = handlerFor({ BULWARK_ENVIRONMENT: 'production' }, logs);
    expect(logs.parsed().some((l) => l['level'] === 'error' && /FreJun and DIDLogic/.test(String(l['message'])))).toBe(
      true,
    );
    const body = Buffer.from(JSON.stringify({ event_id: 'e1', event: 't', timestamp: Math.floor(Date.now() / 1000) }));
    const r = await json(
      h,
      proxyEvent({
        path: '/webhooks/frejun',
        body,
        query: { org: randomUUID() },
        headers: [['x-frejun-signature', hmacSign(randomBytes(32), body, 'hex')]],
      }),
    );
    expect(r).toEqual({ status: 503, body: { code: 'WEBHOOK_SECRET_MISSING' } });
  });

  it('a secret that no longer decrypts: WEBHOOK_SECRET_UNREADABLE (503), the secret and error text not logged', async () => {
    const store = new MemorySecretStore();
    const cipher = new TestCipher();
    const org = randomUUID();
    const secret = randomBytes(32);
    await new WebhookSecretService({ store, cipher, audit: new MemoryAudit() }).setSecret(org, 'didlogic', secret, {
      userId: randomUUID(),
      email: null,
    });
    cipher.failOpen = true;
    const logs = new Lines();
    const h = handlerFor({ BULWARK_ENVIRONMENT: 'production' }, logs, new StoredSecretResolver({ store, cipher }));
    const body = Buffer.from(JSON.stringify({ id: 'e1', type: 't', timestamp: Math.floor(Date.now() / 1000) }));
    const r = await json(
      h,
      proxyEvent({
        path: '/webhooks/didlogic',
        body,
        query: { org },
        headers: [['x-didlogic-signature', hmacSign(secret, body, 'base64')]],
      }),
    );
    expect(r).toEqual({ status: 503, body: { code: 'WEBHOOK_SECRET_UNREADABLE' } });
    const all = logs.lines.join('\n');
    expect(all).not.toContain('kms unavailable');
    expect(all).not.toContain(secret.toString('base64'));
  });

  it('an unknown route is a 404 with its own code', async () => {
    const h = handlerFor({ BULWARK_ENVIRONMENT: 'production' });
    expect(await json(h, proxyEvent({ path: '/webhooks/twilio', body: '{}' }))).toEqual({
      status: 404,
      body: { code: 'ROUTE_UNKNOWN' },
    });
  });
});

describe('the Lambda entry point (lambda/webhooks/index.ts)', () => {
  const saved = { ...process.env };
  afterEach(() => {
    process.env = { ...saved };
  });
  const db = {
    DB_HOST: 'proxy.example.internal',
    DB_PORT: '5432',
    DB_NAME: 'bulwark',
    DB_USER: 'bulwark_app',
    AWS_REGION: 'eu-west-1',
  };

  /** A fresh module registry per call: each load is a cold start. */
  async function load(): Promise<WebhookHandler> {
    let handler: WebhookHandler | undefined;
    await jest.isolateModulesAsync(async () => {
      const entry = (await import('../../lambda/webhooks/index')).handler;
      handler = (event) => entry(event, lambdaContext());
    });
    return defined(handler);
  }

  it('refuses to cold-start in production with verification disabled', async () => {
    process.env = { ...saved, ...db, BULWARK_ENVIRONMENT: 'production', WEBHOOK_VERIFICATION: 'disabled' };
    await expect(load()).rejects.toThrow(/cannot be disabled in production/);
  });

  it('refuses to cold-start without database settings', async () => {
    process.env = { ...saved, BULWARK_ENVIRONMENT: 'production' };
    delete process.env.DB_HOST;
    await expect(load()).rejects.toThrow(/DB_HOST/);
  });

  it('serves API Gateway proxy events: a forged Telnyx event is refused before any database access', async () => {
    const writes: string[] = [];
    // Powertools writes INFO and metrics to stdout, WARN and ERROR to stderr (both reach CloudWatch).
    const spies = [process.stdout, process.stderr].map((stream) =>
      jest.spyOn(stream, 'write').mockImplementation((s) => {
        writes.push(String(s));
        return true;
      }),
    );
    try {
      const { publicKeyBase64 } = telnyxKeyPair();
      process.env = { ...saved, ...db, BULWARK_ENVIRONMENT: 'production', TELNYX_PUBLIC_KEY: publicKeyBase64 };
      const handler = await load();
      const r = await handler(telnyxRequest(telnyxKeyPair().privateKey));
      expect(r.statusCode).toBe(401);
      expect(JSON.parse(r.body)).toEqual({ code: 'SIGNATURE_INVALID', header: 'telnyx-signature-ed25519' });
      const frejun = await handler(
        proxyEvent({
          path: '/webhooks/frejun',
          body: '{}',
          query: { org: randomUUID() },
          headers: [['x-frejun-signature', 'ab'.repeat(32)]],
        }),
      );
      // The entry point wires the per-organisation secret store (sealed under the tenant key); with no
      // database to read it from, the request fails loudly as unreadable, never as a success.
      expect(frejun.statusCode).toBe(503);
      expect(JSON.parse(frejun.body)).toEqual({ code: 'WEBHOOK_SECRET_UNREADABLE' });
    } finally {
      for (const spy of spies) spy.mockRestore();
    }
    // Powertools wrote the logs and the EMF metrics as JSON lines (Node's own warnings are not JSON).
    const lines = writes.filter((w) => w.startsWith('{')).map((w) => JSON.parse(w) as Record<string, unknown>);
    // The first request's three documents (then the FreJun request's).
    const emf = lines.filter((l) => '_aws' in l).slice(0, 3);
    // Exactly the namespace, metrics and dimension sets the alarms watch (no `service` dimension).
    expect(
      emf.map((l) => {
        const [directive] = (l['_aws'] as { CloudWatchMetrics: Record<string, unknown>[] }).CloudWatchMetrics;
        const { _aws, ...values } = l;
        return { ...directive, values };
      }),
    ).toEqual(
      [
        [['Provider', 'Outcome'], { Provider: 'telnyx', Outcome: 'SIGNATURE_INVALID' }],
        [['Provider'], { Provider: 'telnyx' }],
        [['Outcome'], { Outcome: 'SIGNATURE_INVALID' }],
      ].map(([dimensions, values]) => ({
        Namespace: 'Bulwark/Webhooks',
        Dimensions: [dimensions],
        Metrics: [
          { Name: 'Requests', Unit: 'Count' },
          { Name: 'Latency', Unit: 'Milliseconds' },
        ],
        values: { ...(values as object), Requests: 1, Latency: expect.any(Number) },
      })),
    );
    // The refusal's log line carries the correlation ids: Lambda's request id and API Gateway's.
    expect(lines).toContainEqual(
      expect.objectContaining({
        level: 'WARN',
        message: 'webhook refused',
        code: 'SIGNATURE_INVALID',
        service: 'webhooks',
        function_request_id: lambdaContext().awsRequestId,
      }),
    );
  });
});
