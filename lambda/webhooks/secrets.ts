/**
 * Per-organisation webhook secrets. Stored only as `SecretCipher` ciphertext (sealed for the
 * organisation and the `webhook_secret` purpose), current plus previous during a rotation window,
 * and never returned by any API after being saved: callers see `secret_set: true|false` only.
 */
import { createSecretKey, randomBytes, type KeyObject } from 'node:crypto';
import { HMAC_PROVIDERS, type HmacProvider } from '../../contracts/webhooks';
import type { AuditSink } from '../shared/audit';
import type { SqlClient } from '../shared/migrations';
import type { SealedSecret, SecretCipher } from '../shared/secret-cipher';
import { WebhookError } from './errors';

export interface StoredWebhookSecret {
  readonly current: SealedSecret;
  /** The secret replaced by the last rotation, accepted until `previousValidUntil`. */
  readonly previous: SealedSecret | null;
  readonly previousValidUntil: Date | null;
  readonly rotatedAt: Date;
}

/** Reads an organisation's sealed secrets (management reports `secret_set` from it). */
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

/**
 * What verification reads about an organisation: `known: false` for an unknown or inactive one (the
 * two are indistinguishable to a caller), otherwise its stored secret, or null when it has none.
 */
export type OrganisationSecret =
  { readonly known: false } | { readonly known: true; readonly stored: StoredWebhookSecret | null };

/** The verification side's store: a carrier (not a user) is calling, so there is no tenant context. */
export interface VerificationSecretReader {
  lookup(orgId: string, provider: HmacProvider): Promise<OrganisationSecret>;
  /**
   * Whether `sealed` is still accepted now (the current secret, or the previous one inside its
   * window), asked on the dedup transaction `tx`: the authority a cache cannot outlive.
   */
  accepts(tx: SqlClient, orgId: string, provider: HmacProvider, sealed: SealedSecret): Promise<boolean>;
}

/** The keys an organisation's webhooks may be signed with, current first. */
export interface OrganisationKeys {
  /**
   * False for an unknown or inactive organisation. `keys` is then one random decoy key, so the request
   * costs the same HMAC as a wrong signature and is refused exactly like one.
   */
  readonly known: boolean;
  readonly keys: readonly KeyObject[];
  /** The ciphertext each key was opened from (same order), for `stillAccepted`. */
  readonly sealed: readonly SealedSecret[];
}

/** The verification side: the keys an organisation's webhooks may be signed with. */
export interface WebhookSecretResolver {
  /**
   * Throws WEBHOOK_SECRET_MISSING when a known organisation has no secret and
   * WEBHOOK_SECRET_UNREADABLE when the ciphertext does not open. `fresh` asks to bypass a cache
   * (implementations may rate-limit it).
   */
  secretsFor(orgId: string, provider: HmacProvider, fresh?: boolean): Promise<OrganisationKeys>;
  /** Whether the secret sealed as `sealed` still verifies now, asked on the dedup transaction. */
  stillAccepted(tx: SqlClient, orgId: string, provider: HmacProvider, sealed: SealedSecret): Promise<boolean>;
}

export interface StoredSecretResolverProps {
  readonly store: VerificationSecretReader;
  readonly cipher: SecretCipher;
  /** @default Date.now */
  readonly clock?: () => number;
  /** How long opened secrets are reused within one function instance. @default 60 */
  readonly cacheSeconds?: number;
  /**
   * Minimum age of a cache entry before a `fresh` request re-reads it, so a flood of forged
   * signatures cannot turn into a flood of store reads and KMS decrypts. Also how long "this known
   * organisation has no secret" is remembered. @default 5
   */
  readonly minRefreshSeconds?: number;
  /**
   * How long an unknown or inactive organisation is remembered as such (no store read meanwhile); an
   * organisation created or reactivated since becomes reachable within this time. @default 60
   */
  readonly unknownCacheSeconds?: number;
  /** Most unknown organisations remembered at once; the oldest is forgotten first. @default 10000 */
  readonly maxUnknownEntries?: number;
}

interface CachedKeys {
  readonly result: OrganisationKeys | null; // null: known, without a secret
  readonly until: number;
  readonly loadedAt: number;
}

/**
 * Opens sealed secrets through the cipher, with a short per-instance cache, and remembers unknown
 * organisations in a bounded negative cache so a flood of random `?org=` values costs one store read
 * per value and never a KMS call.
 */
export class StoredSecretResolver implements WebhookSecretResolver {
  private readonly cache = new Map<string, CachedKeys>();
  /** Unknown organisation id → when to ask the store again. Insertion order is age order. */
  private readonly unknown = new Map<string, number>();
  private readonly clock: () => number;
  private readonly ttlMs: number;
  private readonly minRefreshMs: number;
  private readonly unknownTtlMs: number;
  private readonly maxUnknown: number;
  /** One decoy per instance: never a real secret, and the same object on every call (see the handler). */
  private readonly decoy: OrganisationKeys = { known: false, keys: [createSecretKey(randomBytes(32))], sealed: [''] };

  constructor(private readonly props: StoredSecretResolverProps) {
    this.clock = props.clock ?? Date.now;
    this.ttlMs = (props.cacheSeconds ?? 60) * 1000;
    this.minRefreshMs = (props.minRefreshSeconds ?? 5) * 1000;
    this.unknownTtlMs = (props.unknownCacheSeconds ?? 60) * 1000;
    this.maxUnknown = props.maxUnknownEntries ?? 10_000;
    if (!(this.maxUnknown >= 1)) throw new RangeError('maxUnknownEntries must be at least 1');
  }

  async secretsFor(orgId: string, provider: HmacProvider, fresh = false): Promise<OrganisationKeys> {
    const now = this.clock();
    const unknownUntil = this.unknown.get(orgId);
    if (unknownUntil !== undefined) {
      // Not re-read on `fresh`: nothing verified against a real secret, so there is nothing to refresh.
      if (unknownUntil > now) return this.decoy;
      this.unknown.delete(orgId);
    }
    const key = `${orgId}/${provider}`;
    const hit = this.cache.get(key);
    if (hit && hit.until > now && (!fresh || now - hit.loadedAt < this.minRefreshMs)) return this.served(hit, provider);

    let found: OrganisationSecret;
    try {
      found = await this.props.store.lookup(orgId, provider);
    } catch (e) {
      throw new WebhookError('WEBHOOK_SECRET_UNREADABLE', 'secret store read failed', { cause: e });
    }
    if (!found.known) {
      for (const p of HMAC_PROVIDERS) this.cache.delete(`${orgId}/${p}`);
      this.rememberUnknown(orgId, now);
      return this.decoy;
    }
    const stored = found.stored;
    if (!stored) {
      // Remembered briefly: a known organisation's first secret is honoured within minRefreshSeconds.
      const entry = { result: null, until: now + this.minRefreshMs, loadedAt: now };
      this.cache.set(key, entry);
      return this.served(entry, provider);
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
    const entry = {
      result: { known: true, keys, sealed },
      until: until > now ? until : now + this.ttlMs,
      loadedAt: now,
    };
    this.cache.set(key, entry);
    return this.served(entry, provider);
  }

  async stillAccepted(tx: SqlClient, orgId: string, provider: HmacProvider, sealed: SealedSecret): Promise<boolean> {
    const accepted = await this.props.store.accepts(tx, orgId, provider, sealed);
    // The cache is provably stale: the next request reads the store. Only a request signed with a
    // once-valid secret gets here, and the re-read drops that secret, so this cannot be flooded.
    if (!accepted) this.cache.delete(`${orgId}/${provider}`);
    return accepted;
  }

  private served(entry: CachedKeys, provider: HmacProvider): OrganisationKeys {
    if (!entry.result) throw new WebhookError('WEBHOOK_SECRET_MISSING', `no ${provider} secret for the organisation`);
    return entry.result;
  }

  private rememberUnknown(orgId: string, now: number): void {
    while (this.unknown.size >= this.maxUnknown) {
      const oldest = this.unknown.keys().next().value;
      if (oldest === undefined) break;
      this.unknown.delete(oldest);
    }
    this.unknown.set(orgId, now + this.unknownTtlMs);
  }
}
