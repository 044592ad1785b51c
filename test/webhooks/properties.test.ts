/** Property-based tests: any change to the signed bytes is refused, for every provider. */
import { createSecretKey, randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { decodeBase64Strict, decodeHexStrict } from '../../lambda/webhooks/encoding';
import { WebhookError } from '../../lambda/webhooks/errors';
import { decodeHmacSignature, verifyHmacSha256 } from '../../lambda/webhooks/hmac';
import { HeaderBag } from '../../lambda/webhooks/request';
import { memberSource } from '../../lambda/webhooks/json-source';
import { checkTimestamp } from '../../lambda/webhooks/timestamp';
import { importTelnyxPublicKey, verifyTelnyx } from '../../lambda/webhooks/telnyx';
import { hmacSign, telnyxKeyPair, telnyxSign } from './support';
import { defined } from '../support/defined';

const NOW = 1_795_000_000;
const { privateKey, publicKeyBase64 } = telnyxKeyPair();
const publicKey = importTelnyxPublicKey(publicKeyBase64);

function code(f: () => unknown): string | 'ok' {
  try {
    f();
    return 'ok';
  } catch (e) {
    if (e instanceof WebhookError) return e.code;
    throw e;
  }
}

/** A mutation of a byte string that always yields different bytes. */
const mutation = fc.oneof(
  fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), bit: fc.integer({ min: 0, max: 7 }) }),
  fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), byte: fc.integer({ min: 0, max: 255 }) }),
  fc.record({ kind: fc.constant('delete' as const), at: fc.nat() }),
  fc.record({ kind: fc.constant('append' as const), extra: fc.uint8Array({ minLength: 1, maxLength: 8 }) }),
  fc.record({ kind: fc.constant('truncate' as const), by: fc.integer({ min: 1, max: 8 }) }),
);
type Mutation = typeof mutation extends fc.Arbitrary<infer T> ? T : never;

function mutate(bytes: Buffer, m: Mutation): Buffer {
  const out = Buffer.from(bytes);
  switch (m.kind) {
    case 'flip': {
      const i = m.at % out.length;
      out[i] = defined(out[i]) ^ (1 << m.bit);
      return out;
    }
    case 'insert': {
      const i = m.at % (out.length + 1);
      return Buffer.concat([out.subarray(0, i), Buffer.from([m.byte]), out.subarray(i)]);
    }
    case 'delete': {
      const i = m.at % out.length;
      return Buffer.concat([out.subarray(0, i), out.subarray(i + 1)]);
    }
    case 'append':
      return Buffer.concat([out, Buffer.from(m.extra)]);
    case 'truncate':
      return out.subarray(0, Math.max(0, out.length - m.by));
  }
}

const body = fc.uint8Array({ minLength: 1, maxLength: 512 }).map((b) => Buffer.from(b));
const headers = (pairs: Array<[string, string]>) =>
  HeaderBag.fromEvent({ headers: Object.fromEntries(pairs), multiValueHeaders: undefined as never });

describe('Telnyx Ed25519', () => {
  it('verifies every correctly signed body', () => {
    fc.assert(
      fc.property(body, fc.integer({ min: -300, max: 300 }), (b, skew) => {
        const ts = String(NOW + skew);
        const h = headers([
          ['telnyx-signature-ed25519', telnyxSign(privateKey, ts, b)],
          ['telnyx-timestamp', ts],
        ]);
        return code(() => verifyTelnyx({ body: b, headers: h }, [publicKey], NOW)) === 'ok';
      }),
      { numRuns: 200 },
    );
  });

  it('refuses any change to the signed bytes (body or timestamp)', () => {
    fc.assert(
      fc.property(body, mutation, fc.boolean(), (b, m, inTimestamp) => {
        const ts = String(NOW);
        const signature = telnyxSign(privateKey, ts, b);
        const sentBody = inTimestamp ? b : mutate(b, m);
        // A changed timestamp is either not a plain integer, out of range, or fails the signature.
        const sentTs = inTimestamp ? mutate(Buffer.from(ts), m).toString('latin1') : ts;
        fc.pre(!sentBody.equals(b) || sentTs !== ts);
        const h = headers([
          ['telnyx-signature-ed25519', signature],
          ['telnyx-timestamp', sentTs],
        ]);
        return code(() => verifyTelnyx({ body: sentBody, headers: h }, [publicKey], NOW)) !== 'ok';
      }),
      { numRuns: 500 },
    );
  });

  it('refuses any change to the signature', () => {
    fc.assert(
      fc.property(body, mutation, (b, m) => {
        const ts = String(NOW);
        const signature = Buffer.from(telnyxSign(privateKey, ts, b), 'base64');
        const h = headers([
          ['telnyx-signature-ed25519', mutate(signature, m).toString('base64')],
          ['telnyx-timestamp', ts],
        ]);
        const r = code(() => verifyTelnyx({ body: b, headers: h }, [publicKey], NOW));
        return r === 'SIGNATURE_INVALID' || r === 'SIGNATURE_MALFORMED';
      }),
      { numRuns: 300 },
    );
  });
});

describe.each([
  ['frejun (hex)', 'hex'],
  ['didlogic (base64)', 'base64'],
] as const)('HMAC-SHA256 %s', (_name, encoding) => {
  const secret = randomBytes(32);
  const previous = randomBytes(32);
  const keys = [createSecretKey(secret), createSecretKey(previous)];

  it('verifies bodies signed with the current or the previous secret', () => {
    fc.assert(
      fc.property(body, fc.boolean(), (b, usePrevious) => {
        const sig = decodeHmacSignature(hmacSign(usePrevious ? previous : secret, b, encoding), encoding);
        return verifyHmacSha256(b, sig, keys) === (usePrevious ? 1 : 0);
      }),
      { numRuns: 200 },
    );
  });

  it('refuses any change to the signed body', () => {
    fc.assert(
      fc.property(body, mutation, (b, m) => {
        const sig = decodeHmacSignature(hmacSign(secret, b, encoding), encoding);
        const changed = mutate(b, m);
        fc.pre(!changed.equals(b));
        return code(() => verifyHmacSha256(changed, sig, keys)) === 'SIGNATURE_INVALID';
      }),
      { numRuns: 500 },
    );
  });

  it('refuses any change to the signature text', () => {
    fc.assert(
      fc.property(body, mutation, (b, m) => {
        const text = hmacSign(secret, b, encoding);
        const changed = mutate(Buffer.from(text, 'latin1'), m).toString('latin1');
        fc.pre(changed !== text && changed.toLowerCase() !== text.toLowerCase());
        const r = code(() => verifyHmacSha256(b, decodeHmacSignature(changed, encoding), keys));
        return r === 'SIGNATURE_INVALID' || r === 'SIGNATURE_MALFORMED';
      }),
      { numRuns: 500 },
    );
  });
});

describe('strict decoders and timestamps', () => {
  it('base64: exactly one accepted spelling per byte string', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 96 }), fc.string({ maxLength: 4 }), (bytes, noise) => {
        const text = Buffer.from(bytes).toString('base64');
        expect(decodeBase64Strict(text)?.equals(Buffer.from(bytes))).toBe(true);
        const other = text + noise;
        return (
          other === text ||
          decodeBase64Strict(other) === null ||
          defined(decodeBase64Strict(other)).toString('base64') === other
        );
      }),
    );
    expect(decodeBase64Strict('AB==')).toBeNull(); // non-zero padding bits
    expect(decodeBase64Strict('AA==')).toEqual(Buffer.from([0]));
    expect(decodeBase64Strict('AA')).toBeNull();
    expect(decodeBase64Strict('A A=')).toBeNull();
    expect(decodeHexStrict('abc')).toBeNull();
    expect(decodeHexStrict('zz')).toBeNull();
  });

  it('timestamps: only plain integers within 300 s are accepted', () => {
    fc.assert(
      fc.property(fc.integer({ min: -1000, max: 1000 }), (skew) => {
        const r = code(() => checkTimestamp(String(NOW + skew), NOW));
        return Math.abs(skew) <= 300 ? r === 'ok' : r === 'TIMESTAMP_OUT_OF_RANGE';
      }),
    );
    fc.assert(
      fc.property(fc.string(), (s) => {
        fc.pre(!/^[0-9]{1,15}$/.test(s));
        return code(() => checkTimestamp(s, NOW)) === 'TIMESTAMP_INVALID';
      }),
    );
    for (const bad of [' 1795000000', '1795000000 ', '0x6AFD5A80', '1.795e9', '-1795000000', '', NaN, 1.5, null]) {
      expect(code(() => checkTimestamp(bad, NOW))).toBe('TIMESTAMP_INVALID');
    }
  });

  it('memberSource: the source text of each top-level member reads back as the member, whatever the layout', () => {
    fc.assert(
      fc.property(
        fc.dictionary(
          fc.string().filter((k) => k !== '__proto__'),
          fc.jsonValue(),
        ),
        fc.constantFrom(undefined, 2, '\t'),
        (object, indent) => {
          const text = JSON.stringify(object, null, indent);
          for (const [name, value] of Object.entries(object)) {
            const source = memberSource(text, name);
            if (source === undefined) return false;
            expect(JSON.parse(source)).toEqual(JSON.parse(JSON.stringify(value)));
          }
          return memberSource(text, '\u0000absent') === undefined;
        },
      ),
    );
    // The spelling survives, which is the point: JSON.parse reads all three as 1790000000.
    expect(
      ['1.79e9', '1790000000.0', '1790000000'].map((n) => memberSource(`{"timestamp": ${n}}`, 'timestamp')),
    ).toEqual(['1.79e9', '1790000000.0', '1790000000']);
    expect(memberSource('[1]', 'timestamp')).toBeUndefined();
  });
});
