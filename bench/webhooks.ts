/**
 * Verifications per second per provider: the ingress verification path (header bag from an event
 * with API Gateway's usual twenty-odd headers, header lookup, strict
 * decoding, timestamp check, signature check) next to the bare node:crypto primitive on the same
 * bytes: `crypto.verify` for Ed25519 over the already-joined `ts|body` with the already-decoded
 * signature; for HMAC (node:crypto has no HMAC-verify call), `createHmac` digest plus
 * `timingSafeEqual` against the signature header's value decoded with a plain `Buffer.from`, which is
 * the least any verifier of that header must do. Target: the path within 1.2x.
 *
 * A second HMAC figure compares against the digest alone (the signature decoded once, outside the
 * loop): the path's whole extra cost, header lookup and strict decoding included, for reference.
 *
 *   npx tsx bench/webhooks.ts [--seconds 1]
 */
import { cpus, loadavg } from 'node:os';
import {
  createHmac,
  createSecretKey,
  generateKeyPairSync,
  randomBytes,
  sign,
  timingSafeEqual,
  verify,
} from 'node:crypto';
import { decodeHmacSignature, verifyHmacSha256 } from '../lambda/webhooks/hmac';
import { HMAC_SCHEMES } from '../lambda/webhooks/providers';
import { HeaderBag, rawBody } from '../lambda/webhooks/request';
import { importTelnyxPublicKey, verifyTelnyx } from '../lambda/webhooks/telnyx';
import { defined } from '../test/support/defined';

const seconds = Number(process.argv[process.argv.indexOf('--seconds') + 1]) || 1;
const TARGET = 1.2;

/**
 * Calls per second of `a` and `b`, sampled in interleaved batches (a, b, a, b, ...) so both see the
 * same contention on a shared machine, and summarised by the median batch of each: a batch that a
 * neighbour's burst slowed down does not move the median.
 */
function compare(a: () => void, b: () => void): [number, number] {
  const batch = 32;
  const timeBatch = (fn: () => void): number => {
    const start = process.hrtime.bigint();
    for (let i = 0; i < batch; i++) fn();
    return Number(process.hrtime.bigint() - start);
  };
  for (let i = 0; i < 20; i++) {
    timeBatch(a);
    timeBatch(b);
  }
  const ta: number[] = [];
  const tb: number[] = [];
  const until = Date.now() + seconds * 1000 * 2;
  while (Date.now() < until || ta.length < 50) {
    ta.push(timeBatch(a));
    tb.push(timeBatch(b));
  }
  const median = (xs: number[]) => defined([...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)]);
  return [(batch * 1e9) / median(ta), (batch * 1e9) / median(tb)];
}

/** What API Gateway adds to a carrier's request: about twenty headers, in both header maps. */
const GATEWAY_HEADERS: Record<string, string> = {
  Accept: '*/*',
  'Accept-Encoding': 'gzip',
  'CloudFront-Forwarded-Proto': 'https',
  'CloudFront-Is-Desktop-Viewer': 'true',
  'CloudFront-Viewer-Country': 'US',
  'Content-Type': 'application/json',
  Host: 'api.example.com',
  'User-Agent': 'carrier-webhooks/2.0',
  Via: '1.1 abcdef.cloudfront.net (CloudFront)',
  'X-Amz-Cf-Id': 'Zq2uY3c1G6n8VJqk0x2Zs3r7bQe1A9cWm4PZ5lT6o7uQ8vR9wS0x1A==',
  'X-Amzn-Trace-Id': 'Root=1-67891233-abcdef012345678912345678',
  'X-Forwarded-For': '198.51.100.7, 203.0.113.9',
  'X-Forwarded-Port': '443',
  'X-Forwarded-Proto': 'https',
  traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
  'Content-Length': '1024',
};

/** A proxy event as API Gateway builds it; the ingress builds its HeaderBag from it per request. */
function event(body: Buffer, headers: Record<string, string>) {
  const all = { ...GATEWAY_HEADERS, ...headers };
  return {
    body: body.toString('utf8'),
    isBase64Encoded: false,
    headers: all,
    multiValueHeaders: Object.fromEntries(Object.entries(all).map(([k, v]) => [k, [v]])),
  };
}

interface Row {
  provider: string;
  size: number;
  path: number;
  primitive: number;
}

const rows: Row[] = [];
const now = Math.floor(Date.now() / 1000);

for (const size of [1024, 16 * 1024]) {
  const body = Buffer.from(JSON.stringify({ data: { id: 'e', event_type: 't', pad: 'x'.repeat(size - 50) } }));

  // Telnyx: Ed25519 over `${ts}|${body}`.
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const raw = Buffer.from(defined(publicKey.export({ format: 'jwk' }).x), 'base64url').toString('base64');
  const key = importTelnyxPublicKey(raw);
  const ts = String(now);
  const signed = Buffer.concat([Buffer.from(`${ts}|`), body]);
  const sig = sign(null, signed, privateKey);
  const tEvent = event(body, { 'Telnyx-Signature-Ed25519': sig.toString('base64'), 'Telnyx-Timestamp': ts });
  const [tPath, tPrimitive] = compare(
    () => verifyTelnyx({ body, headers: HeaderBag.fromEvent(tEvent) }, [key], now),
    () => {
      if (!verify(null, signed, publicKey, sig)) throw new Error('primitive failed');
    },
  );
  rows.push({ provider: 'telnyx', size: body.length, path: tPath, primitive: tPrimitive });

  // FreJun (hex) and DIDLogic (base64): HMAC-SHA256 over the body.
  for (const provider of ['frejun', 'didlogic'] as const) {
    const scheme = HMAC_SCHEMES[provider];
    const secret = createSecretKey(randomBytes(32));
    const keys = [secret];
    const text = createHmac('sha256', secret).update(body).digest(scheme.encoding);
    const hEvent = event(body, { [scheme.signatureHeader]: text });
    const path = () => {
      const headers = HeaderBag.fromEvent(hEvent);
      const signature = decodeHmacSignature(headers.single(scheme.signatureHeader), scheme.encoding);
      verifyHmacSha256(body, signature, keys);
    };
    const [hPath, hPrimitive] = compare(path, () => {
      // node:crypto has no HMAC-verify call: digest + timingSafeEqual on the header value as sent.
      const signature = Buffer.from(text, scheme.encoding);
      if (!timingSafeEqual(createHmac('sha256', secret).update(body).digest(), signature)) throw new Error('x');
    });
    rows.push({ provider, size: body.length, path: hPath, primitive: hPrimitive });
    const expected = Buffer.from(text, scheme.encoding);
    const [dPath, dDigest] = compare(path, () => {
      if (!timingSafeEqual(createHmac('sha256', secret).update(body).digest(), expected)) throw new Error('x');
    });
    rows.push({ provider: `${provider} vs digest (ref)`, size: body.length, path: dPath, primitive: dDigest });
  }

  // For reference: raw-body extraction (API Gateway string → bytes), done once per request.
  const ev = event(body, {});
  const [ePath, ePrimitive] = compare(
    () => rawBody(ev, 1 << 20),
    () => Buffer.from(ev.body, 'utf8'),
  );
  rows.push({ provider: 'extract body (ref)', size: body.length, path: ePath, primitive: ePrimitive });
}

const fmt = (n: number) => Math.round(n).toLocaleString('en-US').padStart(12);
console.log(
  `load average ${loadavg()
    .map((l) => l.toFixed(1))
    .join(' ')} on ${cpus().length} CPUs`,
);
console.log(
  `Webhook verification throughput (median of interleaved batches, ${2 * seconds}s per pair, node ${process.version})`,
);
console.log(
  `${'provider'.padEnd(26)} ${'body'.padStart(7)} ${'path/s'.padStart(12)} ${'primitive/s'.padStart(12)}  ratio  overhead/call`,
);
let worst = 0;
for (const r of rows) {
  const ratio = r.primitive / r.path;
  if (!r.provider.includes('(ref)')) worst = Math.max(worst, ratio);
  console.log(
    `${r.provider.padEnd(26)} ${String(r.size).padStart(7)} ${fmt(r.path)} ${fmt(r.primitive)}  ${ratio.toFixed(2)}x` +
      `  ${Math.round(1e9 / r.path - 1e9 / r.primitive)} ns`,
  );
}
console.log(
  `worst verification ratio ${worst.toFixed(2)}x (target <= ${TARGET}x): ${worst <= TARGET ? 'met' : 'NOT met'}`,
);
