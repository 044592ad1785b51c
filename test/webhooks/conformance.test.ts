/**
 * Conformance suite: every case of the issue, per provider, through the real handler with API
 * Gateway proxy events and a real PostgreSQL for the dedup path.
 */
import { randomBytes, randomUUID, type KeyObject } from 'node:crypto';
import { buildRuntime, parseWebhookEnv } from '../../lambda/webhooks/config';
import { createWebhookHandler, type WebhookEvent, type WebhookHandler } from '../../lambda/webhooks/handler';
import type { HmacProvider, Provider } from '../../contracts/webhooks';
import { HMAC_SCHEMES } from '../../lambda/webhooks/providers';
import { StoredSecretResolver, WebhookSecretService } from '../../lambda/webhooks/secrets';
import { RecordingLog, RecordingMetrics } from '../support/observability';
import { securityHeaders } from '../../contracts/security-headers';
import { startPostgres, type TestPostgres } from '../support/postgres';
import { DATABASE_ROLES } from '../../contracts/database';

/** The webhook ingress connects as its own role (migrations/0401). */
const WEBHOOKS_ROLE = DATABASE_ROLES.webhooks;
import {
  appPool,
  hmacSign,
  Lines,
  MemoryAudit,
  MemorySecretStore,
  proxyEvent,
  telnyxKeyPair,
  telnyxSign,
  TestCipher,
  type EventOptions,
} from './support';
import { defined } from '../support/defined';

const NOW_MS = 1_795_000_000_000;
const NOW = Math.floor(NOW_MS / 1000);
const MAX_BODY = 4096;
const ORG = randomUUID();
const actor = { userId: randomUUID(), email: 'owner@example.com' };
const MARKER = 'BODY-MARKER-do-not-log';

type Key = 'current' | 'previous' | 'wrong';

/** The carrier side of one provider's protocol. */
interface Carrier {
  readonly provider: Provider;
  /** A well-formed event body; `ts` is the signed send time where the provider puts it in the body. */
  body(eventId: string, ts?: unknown): Buffer;
  /** Headers for `body`; `ts` is the timestamp header for providers that sign one. */
  headers(body: Buffer, key?: Key, ts?: string): Array<[string, string]>;
  readonly query?: Record<string, string>;
  readonly signatureHeader: string;
  /** A signature in the right encoding but of the wrong length, and one in no valid encoding. */
  readonly shortSignature: string;
  readonly badEncoding: string;
  readonly emptyTimestampCode: string;
}

const telnyx = telnyxKeyPair();
const otherTelnyx = telnyxKeyPair();
const previousTelnyx = telnyxKeyPair();
const secrets: Record<HmacProvider, Record<Key, Buffer>> = {
  frejun: { current: randomBytes(32), previous: randomBytes(32), wrong: randomBytes(32) },
  didlogic: { current: randomBytes(32), previous: randomBytes(32), wrong: randomBytes(32) },
};

const telnyxCarrier: Carrier = {
  provider: 'telnyx',
  body: (id) =>
    Buffer.from(JSON.stringify({ data: { id, event_type: 'message.received', payload: { text: MARKER } } })),
  headers: (body, key = 'current', ts = String(NOW)) => [
    [
      'Telnyx-Signature-Ed25519',
      telnyxSign({ current: telnyx, previous: previousTelnyx, wrong: otherTelnyx }[key].privateKey, ts, body),
    ],
    ['Telnyx-Timestamp', ts],
  ],
  signatureHeader: 'telnyx-signature-ed25519',
  shortSignature: randomBytes(63).toString('base64'),
  badEncoding: `${randomBytes(64).toString('base64').slice(0, -4)}*==*`,
  emptyTimestampCode: 'HEADER_MISSING',
};

function hmacCarrier(provider: HmacProvider): Carrier {
  const scheme = HMAC_SCHEMES[provider];
  const idField = provider === 'frejun' ? 'event_id' : 'id';
  const typeField = provider === 'frejun' ? 'event' : 'type';
  return {
    provider,
    body: (id, ts = NOW) =>
      Buffer.from(JSON.stringify({ [idField]: id, [typeField]: 'call.completed', timestamp: ts, note: MARKER })),
    headers: (body, key = 'current') => [
      [scheme.signatureHeader.toUpperCase(), hmacSign(secrets[provider][key], body, scheme.encoding)],
    ],
    query: { org: ORG },
    signatureHeader: scheme.signatureHeader,
    shortSignature: scheme.encoding === 'hex' ? 'ab'.repeat(31) : randomBytes(31).toString('base64'),
    badEncoding: scheme.encoding === 'hex' ? 'zz'.repeat(32) : `${'A'.repeat(40)}=A==`,
    emptyTimestampCode: 'TIMESTAMP_INVALID',
  };
}

const CARRIERS: Carrier[] = [telnyxCarrier, hmacCarrier('frejun'), hmacCarrier('didlogic')];

let pg: TestPostgres;
let handle: WebhookHandler;
let store: MemorySecretStore;
const processed: WebhookEvent[] = [];
const logs = new Lines();
const metrics = new Lines();

beforeAll(async () => {
  pg = await startPostgres();
  await pg.superuser(`CREATE TABLE webhook_effects (provider text, event_id text)`);
  await pg.superuser(`GRANT INSERT, SELECT ON webhook_effects TO ${WEBHOOKS_ROLE}`);
  const clock = () => NOW_MS;
  store = new MemorySecretStore(clock);
  const cipher = new TestCipher();
  const service = new WebhookSecretService({ store, cipher, audit: new MemoryAudit(), clock });
  for (const p of ['frejun', 'didlogic'] as const) {
    await service.setSecret(ORG, p, secrets[p].previous, actor);
    await service.setSecret(ORG, p, secrets[p].current, actor);
  }
  const logger = new RecordingLog(logs.write);
  const env = parseWebhookEnv({
    BULWARK_ENVIRONMENT: 'production',
    TELNYX_PUBLIC_KEY: telnyx.publicKeyBase64,
    TELNYX_PREVIOUS_PUBLIC_KEY: previousTelnyx.publicKeyBase64,
    WEBHOOK_MAX_BODY_BYTES: String(MAX_BODY),
  });
  handle = createWebhookHandler({
    runtime: buildRuntime(env, new StoredSecretResolver({ store, cipher, clock }), logger),
    pool: appPool(pg),
    processor: {
      async process(event, tx) {
        processed.push(event);
        await tx.query('INSERT INTO webhook_effects VALUES ($1, $2)', [event.provider, event.eventId]);
      },
    },
    metrics: new RecordingMetrics(metrics.write),
    logger,
    clock,
  });
});

afterAll(async () => pg?.stop());

async function send(carrier: Carrier, o: Omit<EventOptions, 'path'>): Promise<{ status: number; body: unknown }> {
  const r = await handle(proxyEvent({ path: `/webhooks/${carrier.provider}`, query: carrier.query, ...o }));
  // Every answer, acceptance or refusal, carries the exact security headers (HSTS preload and friends).
  expect(r.headers).toMatchObject(securityHeaders());
  return { status: r.statusCode, body: JSON.parse(r.body) };
}

async function effects(provider: Provider, eventId: string): Promise<number> {
  const c = await pg.client(WEBHOOKS_ROLE);
  try {
    const r = await c.query('SELECT count(*)::int AS n FROM webhook_effects WHERE provider = $1 AND event_id = $2', [
      provider,
      eventId,
    ]);
    return defined(r.rows[0]).n as number;
  } finally {
    await c.end();
  }
}

/**
 * What a refusal must name besides its code: the header, query parameter or body field at fault,
 * written out here per carrier (not derived from the handler's own table).
 */
function blame(carrier: Carrier, code: string): Record<string, string> {
  if (code.startsWith('SIGNATURE_') || code.startsWith('HEADER_')) return { header: carrier.signatureHeader };
  if (code.startsWith('TIMESTAMP_')) {
    return carrier.provider === 'telnyx' ? { header: 'telnyx-timestamp' } : { field: 'timestamp' };
  }
  if (code.startsWith('BODY_') || code === 'PAYLOAD_INVALID') return { field: 'body' };
  if (code === 'ORGANISATION_INVALID') return { query: 'org' };
  return {};
}

describe.each(CARRIERS)('$provider conformance', (carrier) => {
  const refused = (code: string, status: number, culprit: Record<string, string> = blame(carrier, code)) => ({
    status,
    body: { code, ...culprit },
  });
  const id = () => `evt-${randomUUID()}`;
  const signed = (body: Buffer, key?: Key, ts?: string) => ({ body, headers: carrier.headers(body, key, ts) });
  const tsCase = (ts: unknown) =>
    carrier.provider === 'telnyx' ? signed(carrier.body(id()), 'current', String(ts)) : signed(carrier.body(id(), ts));

  it('accepts a valid event and processes it once', async () => {
    const eventId = id();
    expect(await send(carrier, signed(carrier.body(eventId)))).toEqual({ status: 200, body: { status: 'accepted' } });
    expect(await effects(carrier.provider, eventId)).toBe(1);
  });

  it('refuses a body with one byte changed', async () => {
    const body = carrier.body(id());
    const { headers } = signed(body);
    const tampered = Buffer.from(body);
    tampered[10] = defined(tampered[10]) ^ 0x01;
    expect(await send(carrier, { body: tampered, headers })).toEqual(refused('SIGNATURE_INVALID', 401));
  });

  it('refuses a tampered signature', async () => {
    const body = carrier.body(id());
    const headers = carrier.headers(body).map(([n, v]): [string, string] => {
      if (n.toLowerCase() !== carrier.signatureHeader) return [n, v];
      const encoding = /^[0-9a-f]+$/.test(v) ? 'hex' : 'base64';
      const bytes = Buffer.from(v, encoding);
      bytes[3] = defined(bytes[3]) ^ 0x80;
      return [n, bytes.toString(encoding)];
    });
    expect(await send(carrier, { body, headers })).toEqual(refused('SIGNATURE_INVALID', 401));
  });

  it('refuses a signature made with the wrong key', async () => {
    expect(await send(carrier, signed(carrier.body(id()), 'wrong'))).toEqual(refused('SIGNATURE_INVALID', 401));
  });

  it('refuses a timestamp 301 s old and 301 s in the future, accepts 300 s', async () => {
    expect(await send(carrier, tsCase(NOW - 301))).toEqual(refused('TIMESTAMP_OUT_OF_RANGE', 401));
    expect(await send(carrier, tsCase(NOW + 301))).toEqual(refused('TIMESTAMP_OUT_OF_RANGE', 401));
    expect((await send(carrier, tsCase(NOW - 300))).status).toBe(200);
    expect((await send(carrier, tsCase(NOW + 300))).status).toBe(200);
  });

  it('refuses non-numeric, fractional, signed, exponent and empty timestamps', async () => {
    expect(await send(carrier, tsCase('abc'))).toEqual(refused('TIMESTAMP_INVALID', 400));
    expect(await send(carrier, tsCase(carrier.provider === 'telnyx' ? `${NOW}.5` : NOW + 0.5))).toEqual(
      refused('TIMESTAMP_INVALID', 400),
    );
    expect(await send(carrier, tsCase(`+${NOW}`))).toEqual(refused('TIMESTAMP_INVALID', 400));
    expect(await send(carrier, tsCase(`${NOW / 1000}e3`))).toEqual(refused('TIMESTAMP_INVALID', 400));
    const empty = await send(carrier, tsCase(''));
    // Telnyx: an empty timestamp header is a missing one; the HMAC carriers' is an invalid event field.
    expect(empty).toEqual(
      carrier.provider === 'telnyx'
        ? refused('HEADER_MISSING', 400, { header: 'telnyx-timestamp' })
        : refused(carrier.emptyTimestampCode, 400),
    );
  });

  it('refuses fractional and exponent spellings of an integer timestamp, naming the header or field', async () => {
    // Each is an integer to JSON.parse (or Number); the documented format is digits only.
    const forms = ['1.79e9', `${NOW}.0`, `${NOW}e0`, `${NOW}E0`, `${NOW / 1000}e3`, `${NOW * 10}e-1`, `${NOW}.00`];
    if (carrier.provider === 'telnyx') {
      for (const form of forms) expect(await send(carrier, tsCase(form))).toEqual(refused('TIMESTAMP_INVALID', 400));
      return;
    }
    // The HMAC carriers sign the time inside the event: as a JSON number, and as a JSON string.
    const raw = (source: string, extra = '') =>
      signed(
        Buffer.from(carrier.body(id(), '@TS@').toString('utf8').replace('"@TS@"', source).replace('{', `{${extra}`)),
      );
    for (const form of forms) {
      expect(await send(carrier, raw(form))).toEqual(refused('TIMESTAMP_INVALID', 400, { field: 'timestamp' }));
      expect(await send(carrier, raw(JSON.stringify(form)))).toEqual(
        refused('TIMESTAMP_INVALID', 400, { field: 'timestamp' }),
      );
    }
    // Digits as a number or a string are accepted; a nested `timestamp` is not the signed one, an
    // escaped member name is the same member, and of two members the last counts (as JSON.parse reads).
    expect((await send(carrier, raw(String(NOW)))).status).toBe(200);
    expect((await send(carrier, raw(`"${NOW}"`))).status).toBe(200);
    expect((await send(carrier, raw(String(NOW), '"meta": {"timestamp": 1.5, "x": [1e9, "}"]}, '))).status).toBe(200);
    expect(await send(carrier, raw(String(NOW), `"time\\u0073tamp" : ${NOW}.0 , `))).toEqual({
      status: 200,
      body: { status: 'accepted' },
    });
    const escapedLast = Buffer.from(
      carrier.body(id(), '@TS@').toString('utf8').replace('"timestamp":"@TS@"', `"time\\u0073tamp":${NOW}.0`),
    );
    expect(await send(carrier, signed(escapedLast))).toEqual(refused('TIMESTAMP_INVALID', 400, { field: 'timestamp' }));
  });

  it('refuses a missing signature header', async () => {
    const body = carrier.body(id());
    const headers = carrier.headers(body).filter(([n]) => n.toLowerCase() !== carrier.signatureHeader);
    expect(await send(carrier, { body, headers })).toEqual(refused('HEADER_MISSING', 400));
  });

  it('refuses a duplicated signature header, in the same or another case', async () => {
    const body = carrier.body(id());
    const headers = carrier.headers(body);
    const sig = defined(headers.find(([n]) => n.toLowerCase() === carrier.signatureHeader));
    // Both copies carry the valid signature: a duplicate is refused, not "the last one wins".
    expect(await send(carrier, { body, headers: [...headers, sig] })).toEqual(refused('HEADER_DUPLICATED', 400));
    expect(await send(carrier, { body, headers: [...headers, [sig[0].toLowerCase(), sig[1]]] })).toEqual(
      refused('HEADER_DUPLICATED', 400),
    );
    // Only `headers` (no multiValueHeaders), with two case variants of the name.
    const event = proxyEvent({ path: `/webhooks/${carrier.provider}`, query: carrier.query, body, headers });
    const r = await handle({
      ...event,
      multiValueHeaders: {},
      headers: { ...event.headers, [carrier.signatureHeader.toLowerCase()]: sig[1] },
    });
    expect(r.statusCode === 400 && JSON.parse(r.body).code).toBe('HEADER_DUPLICATED');
  });

  if (carrier.provider === 'telnyx') {
    it('refuses a missing or duplicated timestamp header', async () => {
      const body = carrier.body(id());
      const headers = carrier.headers(body);
      expect(await send(carrier, { body, headers: headers.filter(([n]) => n !== 'Telnyx-Timestamp') })).toEqual(
        refused('HEADER_MISSING', 400, { header: 'telnyx-timestamp' }),
      );
      expect(await send(carrier, { body, headers: [...headers, ['telnyx-timestamp', String(NOW)]] })).toEqual(
        refused('HEADER_DUPLICATED', 400, { header: 'telnyx-timestamp' }),
      );
    });
  } else {
    it('refuses a missing, repeated or malformed org parameter', async () => {
      const body = carrier.body(id());
      const headers = carrier.headers(body);
      expect(await send(carrier, { body, headers, query: {} })).toEqual(refused('ORGANISATION_INVALID', 400));
      expect(await send(carrier, { body, headers, query: { org: 'not-a-uuid' } })).toEqual(
        refused('ORGANISATION_INVALID', 400),
      );
      const event = proxyEvent({ path: `/webhooks/${carrier.provider}`, body, headers, query: { org: ORG } });
      const r = await handle({ ...event, multiValueQueryStringParameters: { org: [ORG, randomUUID()] } });
      expect(JSON.parse(r.body)).toEqual({ code: 'ORGANISATION_INVALID', query: 'org' });
    });

    it('refuses a known organisation that has no secret with WEBHOOK_SECRET_MISSING, never success', async () => {
      const body = carrier.body(id());
      const org = randomUUID();
      store.organisations.add(org);
      expect(await send(carrier, { body, headers: carrier.headers(body), query: { org } })).toEqual(
        refused('WEBHOOK_SECRET_MISSING', 503),
      );
    });

    it('refuses an unknown organisation exactly like a wrong signature', async () => {
      const body = carrier.body(id());
      expect(await send(carrier, { body, headers: carrier.headers(body), query: { org: randomUUID() } })).toEqual(
        refused('SIGNATURE_INVALID', 401),
      );
    });
  }

  it('refuses a signature of the wrong length', async () => {
    const body = carrier.body(id());
    const headers = carrier
      .headers(body)
      .map(([n, v]): [string, string] => [n, n.toLowerCase() === carrier.signatureHeader ? carrier.shortSignature : v]);
    expect(await send(carrier, { body, headers })).toEqual(refused('SIGNATURE_MALFORMED', 401));
  });

  it('refuses a signature that is not valid in its encoding', async () => {
    const body = carrier.body(id());
    const headers = carrier
      .headers(body)
      .map(([n, v]): [string, string] => [n, n.toLowerCase() === carrier.signatureHeader ? carrier.badEncoding : v]);
    expect(await send(carrier, { body, headers })).toEqual(refused('SIGNATURE_MALFORMED', 401));
  });

  it('refuses an empty body, even when correctly signed', async () => {
    const empty = Buffer.alloc(0);
    expect(await send(carrier, { body: empty, headers: carrier.headers(empty) })).toEqual(refused('BODY_EMPTY', 400));
    expect(await send(carrier, { body: null, headers: carrier.headers(empty) })).toEqual(refused('BODY_EMPTY', 400));
  });

  it('refuses an oversized body, plain or base64-encoded, and accepts one at the limit', async () => {
    const pad = (n: number) => {
      const base = carrier.body(id());
      return Buffer.concat([base.subarray(0, base.length - 1), Buffer.from(`,"pad":"${'x'.repeat(n)}"}`)]);
    };
    const atLimit = pad(MAX_BODY - carrier.body('evt-00000000-0000-0000-0000-000000000000').length - 9);
    expect(atLimit.length).toBe(MAX_BODY);
    expect((await send(carrier, signed(atLimit))).status).toBe(200);
    const over = pad(MAX_BODY);
    expect(await send(carrier, signed(over))).toEqual(refused('BODY_TOO_LARGE', 413));
    expect(await send(carrier, { ...signed(over), base64: true })).toEqual(refused('BODY_TOO_LARGE', 413));
  });

  it('verifies a base64-encoded event body over its decoded bytes, including non-UTF-8 bytes', async () => {
    const eventId = id();
    const body = carrier.body(eventId);
    expect(await send(carrier, { ...signed(body), base64: true })).toEqual({
      status: 200,
      body: { status: 'accepted' },
    });
    // A body that is not valid UTF-8 survives only through base64; it verifies, then fails parsing.
    const binary = Buffer.concat([body, Buffer.from([0xff, 0xfe])]);
    expect(await send(carrier, { ...signed(binary), base64: true })).toEqual(refused('PAYLOAD_INVALID', 400));
    const notBase64 = proxyEvent({ path: `/webhooks/${carrier.provider}`, query: carrier.query, ...signed(body) });
    const r = await handle({ ...notBase64, isBase64Encoded: true, body: `${notBase64.body}` });
    expect(JSON.parse(r.body)).toEqual({ code: 'BODY_MALFORMED', field: 'body' });
  });

  it('acknowledges a replay of an accepted event with success and does not process it again', async () => {
    const eventId = id();
    const request = signed(carrier.body(eventId));
    expect(await send(carrier, request)).toEqual({ status: 200, body: { status: 'accepted' } });
    expect(await send(carrier, request)).toEqual({ status: 200, body: { status: 'duplicate' } });
    // A carrier retry re-signs with a new timestamp: still the same event.
    const retry = carrier.provider === 'telnyx' ? signed(carrier.body(eventId), 'current', String(NOW + 5)) : request;
    expect(await send(carrier, retry)).toEqual({ status: 200, body: { status: 'duplicate' } });
    expect(await effects(carrier.provider, eventId)).toBe(1);
    expect(processed.filter((e) => e.eventId === eventId && e.provider === carrier.provider)).toHaveLength(1);
  });

  it('accepts the previous secret (Telnyx: previous public key) during the rotation window', async () => {
    const eventId = id();
    expect(await send(carrier, signed(carrier.body(eventId), 'previous'))).toEqual({
      status: 200,
      body: { status: 'accepted' },
    });
    expect(processed.find((e) => e.eventId === eventId)?.orgId).toBe(carrier.provider === 'telnyx' ? null : ORG);
  });

  it('refuses a signed body that is not the provider event (verified first, parsed after)', async () => {
    const notJson = Buffer.from(`not json ${MARKER}`);
    expect(await send(carrier, signed(notJson))).toEqual(refused('PAYLOAD_INVALID', 400));
    // An unsigned, unparseable body is refused for its signature: parsing never runs first.
    expect(await send(carrier, { body: notJson, headers: carrier.headers(carrier.body(id())) })).toEqual(
      refused('SIGNATURE_INVALID', 401),
    );
  });
});

describe('telemetry of the conformance run', () => {
  it('counted every refusal and acceptance as an EMF metric per provider and outcome', () => {
    const emf = metrics.parsed();
    const outcomes = new Set(
      emf
        .filter((m) => 'Provider' in m && 'Outcome' in m)
        .map((m) => `${String(m['Provider'])}:${String(m['Outcome'])}`),
    );
    for (const p of ['telnyx', 'frejun', 'didlogic']) {
      for (const o of ['accepted', 'duplicate', 'SIGNATURE_INVALID', 'TIMESTAMP_OUT_OF_RANGE', 'BODY_TOO_LARGE']) {
        expect(outcomes).toContain(`${p}:${o}`);
      }
    }
    // Every request is counted under [Provider, Outcome], [Provider] and [Outcome]: the construct's
    // alarms read the [Outcome] set across providers. (The namespace: runtime.test.ts, entry point.)
    const sets = emf.map((m) => {
      expect(m).toMatchObject({ Requests: 1, Latency: expect.any(Number) });
      return JSON.stringify(
        (m['_aws'] as { CloudWatchMetrics: { Dimensions: string[][] }[] }).CloudWatchMetrics[0]?.Dimensions,
      );
    });
    const count = (set: string[]) => sets.filter((s) => s === JSON.stringify([set])).length;
    expect(count(['Provider', 'Outcome'])).toBeGreaterThan(50);
    expect(count(['Provider'])).toBe(count(['Provider', 'Outcome']));
    expect(count(['Outcome'])).toBe(count(['Provider', 'Outcome']));
    expect(sets).toHaveLength(3 * count(['Provider', 'Outcome']));
  });

  it('never logged a body, a signature or a secret', () => {
    const all = [...logs.lines, ...metrics.lines].join('\n');
    expect(logs.lines.length).toBeGreaterThan(50);
    expect(all).not.toContain(MARKER);
    for (const p of ['frejun', 'didlogic'] as const) {
      for (const s of Object.values(secrets[p])) {
        expect(all).not.toContain(s.toString('hex'));
        expect(all).not.toContain(s.toString('base64'));
      }
      const sig = hmacSign(secrets[p].current, hmacCarrier(p).body('x'), HMAC_SCHEMES[p].encoding);
      expect(all).not.toContain(sig.slice(0, 16));
    }
    expect(all).not.toMatch(/"(body|headers|signature|secret)"\s*:/i);
  });
});

export type { KeyObject };
