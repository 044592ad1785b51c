/**
 * `SecretCipher` by envelope encryption under the tenant's own KMS key.
 *
 * seal: a 256-bit data key from GenerateDataKey under the tenant key with encryption context
 * {org_id, purpose}; AES-256-GCM locally with a random 96-bit IV and AAD binding format version,
 * org, purpose and key ARN; the wrapped data key travels inside the ciphertext.
 * open: Decrypt of the wrapped data key with the same context (KMS refuses any other context, and
 * the key policy refuses any other org), then GCM verification against the same AAD.
 *
 * Ciphertext (self-describing, versioned): `bwk1.` + base64url of
 *   u8 version=1 | u16 len | key ARN | u16 len | wrapped data key | 12 B IV | 16 B tag | ciphertext
 */
import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import type { KMSClient } from '@aws-sdk/client-kms';
import { SECRET_PURPOSES, type SealedSecret, type SecretCipher, type SecretPurpose } from '../shared/secret-cipher';
import { DataKeyCache } from './data-key-cache';
import { CONTEXT_ORG, CONTEXT_PURPOSE, assertOrgId } from './key-policy';

export const SEALED_PREFIX = 'bwk1.';
const VERSION = 1;
const IV_BYTES = 12;
const TAG_BYTES = 16;

/** Resolves the tenant's current key ARN (from the tenant row). Throws if the tenant has none. */
export type TenantKeyResolver = (orgId: string) => Promise<string>;

export interface EnvelopeCipherProps {
  readonly kms: Pick<KMSClient, 'send'>;
  readonly keyFor: TenantKeyResolver;
  /** @default a DataKeyCache with its defaults */
  readonly cache?: DataKeyCache;
}

export class SecretFormatError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SecretFormatError';
  }
}

/** Raised when a secret cannot be opened: tampered, or sealed for another org, purpose or key. */
export class SecretOpenError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'SecretOpenError';
  }
}

interface Parsed {
  readonly keyArn: string;
  readonly wrapped: Buffer;
  readonly iv: Buffer;
  readonly tag: Buffer;
  readonly ciphertext: Buffer;
}

function aad(orgId: string, purpose: SecretPurpose, keyArn: string): Buffer {
  // Length-prefixed so no two (org, purpose, key) triples share an encoding.
  const parts = [`bulwark-secret-v${VERSION}`, orgId, purpose, keyArn].map((s) => Buffer.from(s, 'utf8'));
  return Buffer.concat(
    parts.flatMap((p) => {
      const len = Buffer.alloc(2);
      len.writeUInt16BE(p.length);
      return [len, p];
    }),
  );
}

function u16(b: Buffer): Buffer {
  const len = Buffer.alloc(2);
  len.writeUInt16BE(b.length);
  return Buffer.concat([len, b]);
}

export function encodeSealed(p: Parsed): SealedSecret {
  const arn = Buffer.from(p.keyArn, 'utf8');
  return (
    SEALED_PREFIX +
    Buffer.concat([Buffer.from([VERSION]), u16(arn), u16(p.wrapped), p.iv, p.tag, p.ciphertext]).toString('base64url')
  );
}

export function decodeSealed(sealed: SealedSecret): Parsed {
  if (typeof sealed !== 'string' || !sealed.startsWith(SEALED_PREFIX)) {
    throw new SecretFormatError('not a Bulwark sealed secret');
  }
  const b = Buffer.from(sealed.slice(SEALED_PREFIX.length), 'base64url');
  let at = 0;
  const take = (n: number): Buffer => {
    if (at + n > b.length) throw new SecretFormatError('sealed secret is truncated');
    const out = b.subarray(at, at + n);
    at += n;
    return out;
  };
  const version = take(1)[0];
  if (version !== VERSION) throw new SecretFormatError(`unsupported sealed secret version ${String(version)}`);
  const keyArn = take(take(2).readUInt16BE()).toString('utf8');
  const wrapped = Buffer.from(take(take(2).readUInt16BE()));
  const iv = Buffer.from(take(IV_BYTES));
  const tag = Buffer.from(take(TAG_BYTES));
  const ciphertext = Buffer.from(b.subarray(at));
  return { keyArn, wrapped, iv, tag, ciphertext };
}

function assertPurpose(purpose: string): asserts purpose is SecretPurpose {
  // Runtime check too: e.g. an OAuth *access* token is not a purpose, so it can never be persisted.
  if (!(SECRET_PURPOSES as readonly string[]).includes(purpose)) {
    throw new TypeError(`${JSON.stringify(purpose)} is not a secret purpose that may be stored`);
  }
}

export class EnvelopeCipher implements SecretCipher {
  readonly cache: DataKeyCache;

  constructor(private readonly props: EnvelopeCipherProps) {
    this.cache = props.cache ?? new DataKeyCache();
  }

  async seal(orgId: string, purpose: SecretPurpose, plaintext: Uint8Array): Promise<SealedSecret> {
    assertOrgId(orgId);
    assertPurpose(purpose);
    const keyArn = await this.props.keyFor(orgId);
    const cacheKey = `seal\0${orgId}\0${purpose}\0${keyArn}`;
    let dk = this.cache.get(cacheKey);
    if (!dk) {
      // Loaded on first use: the API loads the KMS client only when a route seals or opens a secret.
      const { GenerateDataKeyCommand } = await import('@aws-sdk/client-kms');
      const r = await this.props.kms.send(
        new GenerateDataKeyCommand({
          KeyId: keyArn,
          KeySpec: 'AES_256',
          EncryptionContext: { [CONTEXT_ORG]: orgId, [CONTEXT_PURPOSE]: purpose },
        }),
      );
      if (!r.Plaintext || !r.CiphertextBlob || r.Plaintext.length !== 32) {
        throw new Error('GenerateDataKey returned no 256-bit data key');
      }
      dk = { plaintext: Buffer.from(r.Plaintext), wrapped: Buffer.from(r.CiphertextBlob), keyArn: r.KeyId ?? keyArn };
      r.Plaintext.fill(0);
      this.cache.set(cacheKey, dk);
    }
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', dk.plaintext, iv, { authTagLength: TAG_BYTES });
    cipher.setAAD(aad(orgId, purpose, dk.keyArn));
    const ciphertext = Buffer.concat([cipher.update(plaintext), cipher.final()]);
    return encodeSealed({ keyArn: dk.keyArn, wrapped: dk.wrapped, iv, tag: cipher.getAuthTag(), ciphertext });
  }

  async open(orgId: string, purpose: SecretPurpose, sealed: SealedSecret): Promise<Uint8Array> {
    assertOrgId(orgId);
    assertPurpose(purpose);
    const p = decodeSealed(sealed);
    // The org and purpose are part of the cache key: a cached data key is never served to another context.
    const digest = createHash('sha256').update(p.wrapped).digest('hex');
    const cacheKey = `open\0${orgId}\0${purpose}\0${p.keyArn}\0${digest}`;
    let key = this.cache.get(cacheKey)?.plaintext;
    if (!key) {
      const { DecryptCommand } = await import('@aws-sdk/client-kms');
      let r;
      try {
        r = await this.props.kms.send(
          new DecryptCommand({
            KeyId: p.keyArn,
            CiphertextBlob: p.wrapped,
            EncryptionContext: { [CONTEXT_ORG]: orgId, [CONTEXT_PURPOSE]: purpose },
          }),
        );
      } catch (e) {
        const name = (e as { name?: string }).name;
        if (
          name === 'InvalidCiphertextException' ||
          name === 'IncorrectKeyException' ||
          name === 'AccessDeniedException'
        ) {
          throw new SecretOpenError(`secret cannot be opened for this organisation and purpose (${name})`, {
            cause: e,
          });
        }
        throw e;
      }
      if (!r.Plaintext || r.Plaintext.length !== 32) throw new Error('Decrypt returned no 256-bit data key');
      key = Buffer.from(r.Plaintext);
      r.Plaintext.fill(0);
      this.cache.set(cacheKey, { plaintext: key, wrapped: p.wrapped, keyArn: p.keyArn });
    }
    try {
      const decipher = createDecipheriv('aes-256-gcm', key, p.iv, { authTagLength: TAG_BYTES });
      decipher.setAAD(aad(orgId, purpose, p.keyArn));
      decipher.setAuthTag(p.tag);
      return new Uint8Array(Buffer.concat([decipher.update(p.ciphertext), decipher.final()]));
    } catch (e) {
      throw new SecretOpenError('secret failed authentication (tampered, or sealed for another context)', {
        cause: e,
      });
    }
  }

  /**
   * Forgets every cached data key of one organisation. No deployed function calls it: the shredding
   * runs in the lifecycle function; other functions' caches
   * expire on their own TTL (docs/tenant-keys.md).
   */
  forget(orgId: string): void {
    this.cache.deleteWhere((k) => k.split('\0')[1] === orgId);
  }
}
