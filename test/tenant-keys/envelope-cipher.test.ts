import fc from 'fast-check';
import { DecryptCommand, GenerateDataKeyCommand } from '@aws-sdk/client-kms';
import { SECRET_PURPOSES, type SecretPurpose } from '../../lambda/shared/secret-cipher';
import { DataKeyCache } from '../../lambda/tenant-keys/data-key-cache';
import {
  EnvelopeCipher,
  SEALED_PREFIX,
  SecretFormatError,
  SecretOpenError,
  decodeSealed,
  encodeSealed,
} from '../../lambda/tenant-keys/envelope-cipher';
import { FakeKms, KEY_A, KEY_B, ORG_A, ORG_B } from './fake-kms';
import { defined } from '../support/defined';

const text = (b: Uint8Array): string => Buffer.from(b).toString('utf8');
const bytes = (s: string): Uint8Array => Buffer.from(s, 'utf8');

function setup(cache?: DataKeyCache) {
  const kms = new FakeKms();
  kms.createKey(KEY_A);
  kms.createKey(KEY_B);
  const keys: Record<string, string> = { [ORG_A]: KEY_A, [ORG_B]: KEY_B };
  const keyFor = async (orgId: string): Promise<string> => {
    const k = keys[orgId];
    if (!k) throw new Error('no key');
    return k;
  };
  const cipher = new EnvelopeCipher({ kms: kms.client, keyFor, cache });
  return { kms, keyFor, cipher };
}

describe('EnvelopeCipher', () => {
  it('round-trips every purpose, and the ciphertext is self-describing and reveals nothing', async () => {
    const { cipher, kms } = setup();
    for (const purpose of SECRET_PURPOSES) {
      const secret = `s3cret-${purpose}-✓`;
      const sealed = await cipher.seal(ORG_A, purpose, bytes(secret));
      expect(sealed.startsWith(SEALED_PREFIX)).toBe(true);
      expect(sealed).not.toContain(secret);
      expect(Buffer.from(sealed.slice(SEALED_PREFIX.length), 'base64url').includes(Buffer.from(secret))).toBe(false);
      expect(decodeSealed(sealed).keyArn).toBe(KEY_A);
      expect(text(await cipher.open(ORG_A, purpose, sealed))).toBe(secret);
    }
    // The data key came from KMS under the tenant key with the org and purpose as context.
    const calls = kms.mock.commandCalls(GenerateDataKeyCommand);
    expect(calls[0]?.args[0].input).toEqual({
      KeyId: KEY_A,
      KeySpec: 'AES_256',
      EncryptionContext: { org_id: ORG_A, purpose: SECRET_PURPOSES[0] },
    });
  });

  it('round-trips arbitrary bytes (property)', async () => {
    const { cipher } = setup();
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ maxLength: 2048 }), fc.constantFrom(...SECRET_PURPOSES), async (pt, p) => {
        const sealed = await cipher.seal(ORG_B, p, pt);
        expect(Buffer.from(await cipher.open(ORG_B, p, sealed)).equals(Buffer.from(pt))).toBe(true);
      }),
      { numRuns: 50 },
    );
  });

  it('opens with a cold cache: a fresh instance asks KMS to Decrypt with the same context', async () => {
    const { cipher, kms, keyFor } = setup();
    const sealed = await cipher.seal(ORG_A, 'sip_password', bytes('pw'));
    const cold = new EnvelopeCipher({ kms: kms.client, keyFor });
    expect(text(await cold.open(ORG_A, 'sip_password', sealed))).toBe('pw');
    const d = kms.mock.commandCalls(DecryptCommand)[0]?.args[0].input;
    expect(d?.KeyId).toBe(KEY_A);
    expect(d?.EncryptionContext).toEqual({ org_id: ORG_A, purpose: 'sip_password' });
  });

  describe('refuses the wrong context', () => {
    it.each([
      ['another organisation', ORG_B, 'webhook_secret'],
      ['another purpose', ORG_A, 'mailbox_password'],
      ['another organisation and purpose', ORG_B, 'sip_password'],
    ] as const)('%s, with a cold cache (KMS refuses) and a warm one (never served)', async (_n, org, purpose) => {
      const { cipher, kms, keyFor } = setup();
      const sealed = await cipher.seal(ORG_A, 'webhook_secret', bytes('whsec'));
      // Warm: the sealing instance holds the data key, yet must not hand it to another context.
      await expect(cipher.open(org, purpose as SecretPurpose, sealed)).rejects.toThrow(SecretOpenError);
      // Cold: KMS itself refuses the context.
      const cold = new EnvelopeCipher({ kms: kms.client, keyFor });
      await expect(cold.open(org, purpose as SecretPurpose, sealed)).rejects.toThrow(SecretOpenError);
      // And the right context still works afterwards.
      expect(text(await cold.open(ORG_A, 'webhook_secret', sealed))).toBe('whsec');
    });

    it('a ciphertext re-labelled with another tenant key is refused', async () => {
      const { cipher } = setup();
      const sealed = await cipher.seal(ORG_A, 'webhook_secret', bytes('x'));
      const forged = encodeSealed({ ...decodeSealed(sealed), keyArn: KEY_B });
      await expect(cipher.open(ORG_A, 'webhook_secret', forged)).rejects.toThrow(SecretOpenError);
    });

    it('after the tenant key is destroyed nothing opens (crypto-shredding)', async () => {
      const { cipher, kms, keyFor } = setup();
      const sealed = await cipher.seal(ORG_A, 'oauth_refresh_token', bytes('rt'));
      kms.disable(KEY_A);
      cipher.forget(ORG_A);
      await expect(cipher.open(ORG_A, 'oauth_refresh_token', sealed)).rejects.toThrow();
      await expect(
        new EnvelopeCipher({ kms: kms.client, keyFor }).open(ORG_A, 'oauth_refresh_token', sealed),
      ).rejects.toThrow();
    });
  });

  describe('refuses tampering', () => {
    it('any single flipped bit anywhere in the ciphertext (property)', async () => {
      const { cipher, kms, keyFor } = setup();
      const sealed = await cipher.seal(ORG_A, 'mailbox_password', bytes('hunter2-long-enough-secret'));
      const raw = Buffer.from(sealed.slice(SEALED_PREFIX.length), 'base64url');
      await fc.assert(
        fc.asyncProperty(fc.nat({ max: raw.length * 8 - 1 }), fc.boolean(), async (bit, warm) => {
          const t = Buffer.from(raw);
          t[bit >> 3] = (t[bit >> 3] ?? 0) ^ (1 << (bit & 7));
          const c = warm ? cipher : new EnvelopeCipher({ kms: kms.client, keyFor });
          await expect(c.open(ORG_A, 'mailbox_password', SEALED_PREFIX + t.toString('base64url'))).rejects.toThrow();
        }),
        { numRuns: 150 },
      );
    });

    it('truncation, a foreign prefix and an unknown version are format errors', async () => {
      const { cipher } = setup();
      const sealed = await cipher.seal(ORG_A, 'mailbox_password', bytes('x'));
      await expect(cipher.open(ORG_A, 'mailbox_password', sealed.slice(0, 20))).rejects.toThrow(SecretFormatError);
      await expect(cipher.open(ORG_A, 'mailbox_password', 'plaintext')).rejects.toThrow(SecretFormatError);
      const raw = Buffer.from(sealed.slice(SEALED_PREFIX.length), 'base64url');
      raw[0] = 2;
      await expect(cipher.open(ORG_A, 'mailbox_password', SEALED_PREFIX + raw.toString('base64url'))).rejects.toThrow(
        /unsupported sealed secret version 2/,
      );
    });
  });

  it('refuses to store what is not a secret purpose (an OAuth access token is never persisted)', async () => {
    const { cipher, kms } = setup();
    await expect(cipher.seal(ORG_A, 'oauth_access_token' as SecretPurpose, bytes('at'))).rejects.toThrow(
      /not a secret purpose/,
    );
    await expect(cipher.seal('not-a-uuid', 'webhook_secret', bytes('x'))).rejects.toThrow(/UUID/);
    expect(kms.generateCalls).toBe(0);
  });

  describe('data key cache', () => {
    it('reuses a data key within its bounds, then asks KMS again after the TTL', async () => {
      let now = 1_000_000;
      const cache = new DataKeyCache({ ttlMs: 60_000, maxEntries: 16, now: () => now });
      const { cipher, kms } = setup(cache);
      const sealed = [];
      for (let i = 0; i < 50; i++) sealed.push(await cipher.seal(ORG_A, 'webhook_secret', bytes(`s${i}`)));
      expect(kms.generateCalls).toBe(1);
      for (const [i, s] of sealed.entries()) expect(text(await cipher.open(ORG_A, 'webhook_secret', s))).toBe(`s${i}`);
      expect(kms.decryptCalls).toBe(1);
      now += 59_999;
      await cipher.seal(ORG_A, 'webhook_secret', bytes('x'));
      expect(kms.generateCalls).toBe(1);
      now += 1;
      await cipher.seal(ORG_A, 'webhook_secret', bytes('x'));
      expect(kms.generateCalls).toBe(2);
      await cipher.open(ORG_A, 'webhook_secret', sealed[0] ?? '');
      expect(kms.decryptCalls).toBe(2);
    });

    it('caps the uses of one data key', async () => {
      const cache = new DataKeyCache({ maxUses: 10 });
      const { cipher, kms } = setup(cache);
      for (let i = 0; i < 25; i++) await cipher.seal(ORG_A, 'webhook_secret', bytes('x'));
      expect(kms.generateCalls).toBe(3);
    });

    it('never holds more than maxEntries, evicts least recently used, and zeroes evicted keys', () => {
      const cache = new DataKeyCache({ maxEntries: 3 });
      const keys = [0, 1, 2, 3].map((i) => ({
        plaintext: Buffer.alloc(32, i + 1),
        wrapped: Buffer.alloc(4),
        keyArn: KEY_A,
      }));
      cache.set('a', defined(keys[0]));
      cache.set('b', defined(keys[1]));
      cache.set('c', defined(keys[2]));
      expect(cache.get('a')).toBeDefined(); // a is now most recent; b is the LRU
      cache.set('d', defined(keys[3]));
      expect(cache.size).toBe(3);
      expect(cache.get('b')).toBeUndefined();
      expect(defined(keys[1]).plaintext.equals(Buffer.alloc(32, 0))).toBe(true);
      expect(cache.get('a')?.plaintext.equals(Buffer.alloc(32, 1))).toBe(true);
      cache.clear();
      expect(cache.size).toBe(0);
      expect(defined(keys[0]).plaintext.equals(Buffer.alloc(32, 0))).toBe(true);
    });

    it('stays within maxEntries under any sequence of operations (property)', () => {
      fc.assert(
        fc.property(
          fc.integer({ min: 1, max: 8 }),
          fc.array(fc.tuple(fc.boolean(), fc.integer({ min: 0, max: 20 })), { maxLength: 200 }),
          (max, ops) => {
            const cache = new DataKeyCache({ maxEntries: max });
            for (const [isSet, k] of ops) {
              if (isSet)
                cache.set(`k${k}`, { plaintext: Buffer.alloc(32, 1), wrapped: Buffer.alloc(1), keyArn: KEY_A });
              else cache.get(`k${k}`);
              expect(cache.size).toBeLessThanOrEqual(max);
            }
          },
        ),
      );
    });

    it('a warm Lambda serving many tenants keeps at most maxEntries data keys', async () => {
      const cache = new DataKeyCache({ maxEntries: 4 });
      const { cipher } = setup(cache);
      for (const purpose of SECRET_PURPOSES) {
        await cipher.seal(ORG_A, purpose, bytes('x'));
        await cipher.seal(ORG_B, purpose, bytes('x'));
      }
      expect(cache.size).toBe(4);
    });

    it('rejects non-positive bounds', () => {
      expect(() => new DataKeyCache({ maxEntries: 0 })).toThrow(RangeError);
      expect(() => new DataKeyCache({ ttlMs: 0 })).toThrow(RangeError);
    });
  });
});
