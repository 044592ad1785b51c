/**
 * Per-organisation webhook secrets. Stored only as `SecretCipher` ciphertext (sealed for the
 * organisation and the `webhook_secret` purpose), current plus previous during a rotation window,
 * and never returned by any API after being saved: callers see `secret_set: true|false` only.
 */
import { createSecretKey, type KeyObject } from 'node:crypto';
import type { HmacProvider } from '../../contracts/webhooks';
import type { AuditSink } from '../shared/audit';
import type { SealedSecret, SecretCipher } from '../shared/secret-cipher';
import { WebhookError } from './errors';

export interface StoredWebhookSecret {
  readonly current: SealedSecret;
  /** The secret replaced by the last rotation, accepted until `previousValidUntil`. */
  readonly previous: SealedSecret | null;
  readonly previousValidUntil: Date | null;
  readonly rotatedAt: Date;
}

/** Reads sealed secrets; the verification path needs nothing more. */
export interface WebhookSecretReader {
  read(orgId: string, provider: HmacProvider): Promise<StoredWebhookSecret | null>;
}

/** Where sealed secrets live (PostgreSQL in production). Implementations see ciphertext only. */
export interface WebhookSecretStore extends WebhookSecretReader {
  /**
   * Atomically makes `sealed` current and the former current (if any) previous until
   * `previousValidUntil`, so two concurrent rotations cannot lose a secret.
   */
  rotate(
    orgId: string,
    provider: HmacProvider,
    sealed: SealedSecret,
    at: Date,
    previousValidUntil: Date,
  ): Promise<void>;
  /** Ends a rotation window early: only the current secret verifies from now on. */
  dropPrevious(orgId: string, provider: HmacProvider): Promise<void>;
}

/** What an API may report about a secret. Deliberately has no field that could carry it. */
export interface WebhookSecretStatus {
  readonly provider: HmacProvider;
  readonly secret_set: boolean;
  readonly previous_secret_active: boolean;
}

export const MIN_SECRET_BYTES = 16;
export const MAX_SECRET_BYTES = 512;
/** Default overlap in which the previous secret still verifies: a day to update the carrier's portal. */
export const DEFAULT_ROTATION_WINDOW_SECONDS = 24 * 60 * 60;

export interface WebhookSecretActor {
  readonly userId: string;
  readonly email: string | null;
}

export interface WebhookSecretServiceProps {
  readonly store: WebhookSecretStore;
  readonly cipher: SecretCipher;
  readonly audit: AuditSink;
  /** @default Date.now */
  readonly clock?: () => number;
  /** @default 86400 (24 h) */
  readonly rotationWindowSeconds?: number;
}

/** Setting, rotating and reporting secrets; the API layer adds authentication and RBAC around it. */
export class WebhookSecretService {
  private readonly clock: () => number;
  private readonly window: number;

  constructor(private readonly props: WebhookSecretServiceProps) {
    this.clock = props.clock ?? Date.now;
    this.window = props.rotationWindowSeconds ?? DEFAULT_ROTATION_WINDOW_SECONDS;
  }

  async status(orgId: string, provider: HmacProvider): Promise<WebhookSecretStatus> {
    const stored = await this.props.store.read(orgId, provider);
    return statusOf(provider, stored, this.clock());
  }

  /** Sets a new secret; the one it replaces keeps verifying for the rotation window. */
  async setSecret(
    orgId: string,
    provider: HmacProvider,
    secret: Uint8Array,
    actor: WebhookSecretActor,
  ): Promise<WebhookSecretStatus> {
    if (secret.length < MIN_SECRET_BYTES || secret.length > MAX_SECRET_BYTES) {
      throw new RangeError(`webhook secret must be ${MIN_SECRET_BYTES}-${MAX_SECRET_BYTES} bytes`);
    }
    const sealed = await this.props.cipher.seal(orgId, 'webhook_secret', secret);
    const now = this.clock();
    await this.props.store.rotate(orgId, provider, sealed, new Date(now), new Date(now + this.window * 1000));
    await this.props.audit.record({
      orgId,
      actorType: 'user',
      actorUserId: actor.userId,
      actorEmail: actor.email,
      event: 'webhook_secret.rotated',
      entityType: 'webhook_secret',
      entityId: provider,
      ip: null,
      userAgent: null,
      supportGrantId: null,
      metadata: { provider, rotationWindowSeconds: this.window },
      occurredAt: new Date(now),
    });
    return this.status(orgId, provider);
  }

  async endRotation(orgId: string, provider: HmacProvider, actor: WebhookSecretActor): Promise<WebhookSecretStatus> {
    await this.props.store.dropPrevious(orgId, provider);
    await this.props.audit.record({
      orgId,
      actorType: 'user',
      actorUserId: actor.userId,
      actorEmail: actor.email,
      event: 'webhook_secret.rotation_ended',
      entityType: 'webhook_secret',
      entityId: provider,
      ip: null,
      userAgent: null,
      supportGrantId: null,
      metadata: { provider },
      occurredAt: new Date(this.clock()),
    });
    return this.status(orgId, provider);
  }
}

function statusOf(provider: HmacProvider, stored: StoredWebhookSecret | null, now: number): WebhookSecretStatus {
  return {
    provider,
    secret_set: stored !== null,
    previous_secret_active: previousActive(stored, now),
  };
}

function previousActive(stored: StoredWebhookSecret | null, now: number): boolean {
  return !!stored?.previous && !!stored.previousValidUntil && stored.previousValidUntil.getTime() > now;
}

/** The verification side: the keys an organisation's webhooks may be signed with, current first. */
export interface WebhookSecretResolver {
  /**
   * Throws WEBHOOK_SECRET_MISSING when the organisation has no secret (or does not exist) and
   * WEBHOOK_SECRET_UNREADABLE when the ciphertext does not open. `fresh` asks to bypass a cache
   * (implementations may rate-limit it).
   */
  secretsFor(orgId: string, provider: HmacProvider, fresh?: boolean): Promise<readonly KeyObject[]>;
}

export interface StoredSecretResolverProps {
  readonly store: WebhookSecretReader;
  readonly cipher: SecretCipher;
  /** @default Date.now */
  readonly clock?: () => number;
  /** How long opened secrets are reused within one function instance. @default 60 */
  readonly cacheSeconds?: number;
  /**
   * Minimum age of a cache entry before a `fresh` request re-reads it, so a flood of forged
   * signatures cannot turn into a flood of store reads and KMS decrypts. @default 5
   */
  readonly minRefreshSeconds?: number;
}

/** Opens sealed secrets through the cipher, with a short per-instance cache. */
export class StoredSecretResolver implements WebhookSecretResolver {
  private readonly cache = new Map<string, { keys: readonly KeyObject[]; until: number; loadedAt: number }>();
  private readonly clock: () => number;
  private readonly ttlMs: number;
  private readonly minRefreshMs: number;

  constructor(private readonly props: StoredSecretResolverProps) {
    this.clock = props.clock ?? Date.now;
    this.ttlMs = (props.cacheSeconds ?? 60) * 1000;
    this.minRefreshMs = (props.minRefreshSeconds ?? 5) * 1000;
  }

  async secretsFor(orgId: string, provider: HmacProvider, fresh = false): Promise<readonly KeyObject[]> {
    const key = `${orgId}/${provider}`;
    const now = this.clock();
    const hit = this.cache.get(key);
    if (hit && hit.until > now && (!fresh || now - hit.loadedAt < this.minRefreshMs)) return hit.keys;
    let stored: StoredWebhookSecret | null;
    try {
      stored = await this.props.store.read(orgId, provider);
    } catch (e) {
      throw new WebhookError('WEBHOOK_SECRET_UNREADABLE', 'secret store read failed', { cause: e });
    }
    if (!stored) {
      this.cache.delete(key);
      throw new WebhookError('WEBHOOK_SECRET_MISSING', `no ${provider} secret for the organisation`);
    }
    const sealed =
      previousActive(stored, now) && stored.previous ? [stored.current, stored.previous] : [stored.current];
    const keys: KeyObject[] = [];
    for (const s of sealed) {
      try {
        keys.push(createSecretKey(Buffer.from(await this.props.cipher.open(orgId, 'webhook_secret', s))));
      } catch (e) {
        throw new WebhookError('WEBHOOK_SECRET_UNREADABLE', `${provider} secret does not decrypt`, { cause: e });
      }
    }
    // Never cache past the end of the rotation window, so the previous secret stops on time.
    const until = Math.min(now + this.ttlMs, stored.previousValidUntil?.getTime() ?? Infinity);
    this.cache.set(key, { keys, until: until > now ? until : now + this.ttlMs, loadedAt: now });
    return keys;
  }
}
