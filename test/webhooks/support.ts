/** Test doubles and signers for the webhook tests (carrier side of the protocol). */
import {
  createCipheriv,
  createDecipheriv,
  createHmac,
  generateKeyPairSync,
  randomBytes,
  sign,
  type KeyObject,
} from 'node:crypto';
import type { Pool, PoolConfig } from 'pg';
import type { AuditEvent, AuditSink } from '../../lambda/shared/audit';
import type { SealedSecret, SecretCipher, SecretPurpose } from '../../lambda/shared/secret-cipher';
import type { HmacProvider } from '../../contracts/webhooks';
import type { ProxyEventLike } from '../../lambda/webhooks/request';
import type { SqlClient } from '../../lambda/shared/migrations';
import type {
  OrganisationSecret,
  StoredWebhookSecret,
  VerificationSecretReader,
  WebhookSecretStore,
} from '../../lambda/webhooks/secrets';
import { type TestPostgres } from '../support/postgres';
import { defined } from '../support/defined';
import { DATABASE_ROLES } from '../../contracts/database';

/** The webhook ingress connects as its own role (migrations/0401). */
const WEBHOOKS_ROLE = DATABASE_ROLES.webhooks;

/** An Ed25519 key pair as Telnyx holds it, plus the raw public key as the portal shows it. */
export function telnyxKeyPair(): { privateKey: KeyObject; publicKeyBase64: string } {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const jwk = publicKey.export({ format: 'jwk' });
  return { privateKey, publicKeyBase64: Buffer.from(defined(jwk.x), 'base64url').toString('base64') };
}

export function telnyxSign(privateKey: KeyObject, timestamp: string, body: Buffer): string {
  return sign(null, Buffer.concat([Buffer.from(`${timestamp}|`), body]), privateKey).toString('base64');
}

export function hmacSign(secret: Uint8Array, body: Buffer, encoding: 'hex' | 'base64'): string {
  return createHmac('sha256', secret).update(body).digest(encoding);
}

/** AES-256-GCM bound to (org, purpose), standing in for the tenant-keys KMS envelope cipher. */
export class TestCipher implements SecretCipher {
  private readonly key = randomBytes(32);
  public opened = 0;
  public failOpen = false;

  async seal(orgId: string, purpose: SecretPurpose, plaintext: Uint8Array): Promise<SealedSecret> {
    const iv = randomBytes(12);
    const c = createCipheriv('aes-256-gcm', this.key, iv);
    c.setAAD(Buffer.from(`${orgId}|${purpose}`));
    const ct = Buffer.concat([c.update(plaintext), c.final()]);
    return `v1.${Buffer.concat([iv, c.getAuthTag(), ct]).toString('base64')}`;
  }

  async open(orgId: string, purpose: SecretPurpose, sealed: SealedSecret): Promise<Uint8Array> {
    this.opened++;
    if (this.failOpen) throw new Error('kms unavailable');
    const raw = Buffer.from(sealed.slice(3), 'base64');
    const d = createDecipheriv('aes-256-gcm', this.key, raw.subarray(0, 12));
    d.setAAD(Buffer.from(`${orgId}|${purpose}`));
    d.setAuthTag(raw.subarray(12, 28));
    return Buffer.concat([d.update(raw.subarray(28)), d.final()]);
  }
}

/**
 * In-memory management store and verification reader (PostgreSQL's are in pg-secret-store.ts).
 * An organisation is known once it has had a secret or was added to `organisations`.
 */
export class MemorySecretStore implements WebhookSecretStore, VerificationSecretReader {
  readonly rows = new Map<string, StoredWebhookSecret>();
  readonly organisations = new Set<string>();
  /** Verification lookups served (each one stands for a database read). */
  lookups = 0;

  constructor(private readonly clock: () => number = Date.now) {}

  async lookup(orgId: string, provider: HmacProvider): Promise<OrganisationSecret> {
    this.lookups++;
    if (!this.organisations.has(orgId)) return { known: false };
    return { known: true, stored: this.rows.get(`${orgId}/${provider}`) ?? null };
  }

  async accepts(_tx: SqlClient, orgId: string, provider: HmacProvider, sealed: SealedSecret): Promise<boolean> {
    const row = this.rows.get(`${orgId}/${provider}`);
    if (!row || !this.organisations.has(orgId)) return false;
    if (row.current === sealed) return true;
    return row.previous === sealed && (row.previousValidUntil?.getTime() ?? 0) > this.clock();
  }

  async read(orgId: string, provider: HmacProvider): Promise<StoredWebhookSecret | null> {
    return this.rows.get(`${orgId}/${provider}`) ?? null;
  }

  async rotate(orgId: string, provider: HmacProvider, sealed: SealedSecret, at: Date, until: Date): Promise<void> {
    this.organisations.add(orgId);
    const old = this.rows.get(`${orgId}/${provider}`);
    this.rows.set(`${orgId}/${provider}`, {
      current: sealed,
      previous: old?.current ?? null,
      previousValidUntil: old ? until : null,
      rotatedAt: at,
    });
  }

  async dropPrevious(orgId: string, provider: HmacProvider): Promise<void> {
    const old = this.rows.get(`${orgId}/${provider}`);
    if (old) this.rows.set(`${orgId}/${provider}`, { ...old, previous: null, previousValidUntil: null });
  }
}

export class MemoryAudit implements AuditSink {
  readonly events: AuditEvent[] = [];
  async record(event: AuditEvent): Promise<void> {
    this.events.push(event);
  }
}

/** Collects log and EMF lines. */
export class Lines {
  readonly lines: string[] = [];
  readonly write = (line: string): void => {
    this.lines.push(line);
  };
  parsed(): Record<string, unknown>[] {
    return this.lines.map((l) => JSON.parse(l) as Record<string, unknown>);
  }
}

export interface EventOptions {
  readonly path: string;
  readonly body: string | Buffer | null;
  readonly base64?: boolean;
  /** Each entry is one header line as the carrier sent it (names in any case, repeats allowed). */
  readonly headers?: ReadonlyArray<readonly [string, string]>;
  readonly query?: Readonly<Record<string, string>>;
}

/** An API Gateway REST proxy event shaped as API Gateway builds it (both header maps). */
export function proxyEvent(o: EventOptions): ProxyEventLike {
  const headers: Record<string, string> = {};
  const multiValueHeaders: Record<string, string[]> = {};
  for (const [name, value] of o.headers ?? []) {
    headers[name] = value;
    (multiValueHeaders[name] ??= []).push(value);
  }
  const body =
    o.body === null ? null : o.base64 ? Buffer.from(o.body).toString('base64') : Buffer.from(o.body).toString('utf8');
  return {
    resource: o.path,
    path: o.path,
    httpMethod: 'POST',
    body,
    isBase64Encoded: !!o.base64,
    headers,
    multiValueHeaders,
    queryStringParameters: o.query ? { ...o.query } : null,
    multiValueQueryStringParameters: o.query
      ? Object.fromEntries(Object.entries(o.query).map(([k, v]) => [k, [v]]))
      : null,
    requestContext: { requestId: `req-${Math.random().toString(16).slice(2)}` } as ProxyEventLike['requestContext'],
  };
}

/**
 * An application-role pool. pg-pool's `end()` resolves before its idle connections have closed, so
 * the harness's server shutdown can reach them first; that one error (57P01, admin shutdown) is
 * expected at teardown and ignored, any other pool error still fails the test run.
 */
export function appPool(pg: TestPostgres, extra: PoolConfig = {}): Pool {
  const pool = pg.pool(WEBHOOKS_ROLE, extra);
  pool.on('error', (e: Error & { code?: string }) => {
    if (e.code !== '57P01') throw e;
  });
  return pool;
}
