/**
 * Gives a tenant its own KMS key: pure logic around an injected `KMSClient`.
 *
 * Managed keys: CreateKey (symmetric, tagged, with the tenant key policy), alias under
 * `alias/bulwark/<deployment>/tenant/<orgId>`, rotation on, ARN recorded on the tenant row.
 * Idempotent: the alias is the lock, so a retry (or a concurrent second run) finds the key that the
 * first one made. Throttling is retried by the client (`sdkRetries`, adaptive mode).
 *
 * Bring your own key: enterprise tenants supply a key ARN; it is accepted only if its metadata,
 * its tags and its policy meet the same expectations (see `checkByokPolicy`), including that the
 * lifecycle may schedule it for deletion when the tenant is shredded (docs/tenant-keys.md).
 *
 * No ARN is recorded for a tenant unless the key's tags say this deployment, the tenant class and
 * this organisation (`tenantTagProblems`): a key found by alias or supplied by a tenant is read first.
 */
import {
  CreateAliasCommand,
  CreateKeyCommand,
  DescribeKeyCommand,
  EnableKeyRotationCommand,
  GetKeyPolicyCommand,
  GetKeyRotationStatusCommand,
  ScheduleKeyDeletionCommand,
  type KeyMetadata,
  type KMSClient,
} from '@aws-sdk/client-kms';
import { systemEvent, type AuditEvent, type AuditSink } from '../shared/audit';
import type { AndThen } from './and-then';
import { errorName } from '../shared/sdk';
import {
  aliasName,
  assertDeployment,
  assertOrgId,
  checkByokPolicy,
  tenantKeyPolicy,
  tenantKeyTags,
} from './key-policy';
import { readKeyTags, tenantTagProblems } from './key-tags';

export type KeySource = 'managed' | 'byok';

export interface TenantKeyRecord {
  readonly keyArn: string;
  readonly source: KeySource;
}

/** Where the key ARN lives: the tenant row. */
export interface TenantKeyStore {
  get(orgId: string): Promise<TenantKeyRecord | null>;
  /**
   * Records the key; must not overwrite a different key already recorded (returns the recorded one).
   * `andThen` runs with the recorded key in the same transaction (its audit event; a throw undoes it).
   */
  record(orgId: string, key: TenantKeyRecord, andThen: AndThen<TenantKeyRecord>): Promise<TenantKeyRecord>;
}

export interface ProvisionerDeps {
  readonly kms: KMSClient;
  readonly store: TenantKeyStore;
  readonly audit: AuditSink;
  readonly clock: () => Date;
}

export interface ProvisionerConfig {
  readonly deployment: string;
  readonly account: string;
  readonly region: string;
  readonly partition?: string;
  /** Pending window for a key that lost an alias race (it was never used). @default 7 */
  readonly orphanDeletionDays?: number;
}

import { ProvisionError, type ProvisionErrorCode } from './provision-status';

// Defined with their HTTP statuses (provision-status.ts), which the API imports without this module.
export { ProvisionError, type ProvisionErrorCode };

export interface ProvisionResult {
  readonly keyArn: string;
  readonly source: KeySource;
  /** True when this call created the key (false: found by alias or already recorded). */
  readonly created: boolean;
}

const KEY_ARN = /^arn:(aws[a-z-]*):kms:([a-z0-9-]+):(\d{12}):key\/[0-9a-f-]{36}$/;

export class TenantKeyProvisioner {
  constructor(
    private readonly deps: ProvisionerDeps,
    private readonly config: ProvisionerConfig,
  ) {
    assertDeployment(config.deployment);
  }

  private call<T>(call: (kms: KMSClient) => Promise<T>): Promise<T> {
    // Throttling is retried by the client itself (sdkRetries: adaptive mode).
    return call(this.deps.kms);
  }

  private event(orgId: string, event: string, keyArn: string, metadata: Record<string, unknown>): AuditEvent {
    return systemEvent(orgId, event, { type: 'tenant_key', id: keyArn }, metadata, this.deps.clock());
  }

  /** Ensures the tenant has a managed key; safe to call any number of times. */
  async provision(orgId: string): Promise<ProvisionResult> {
    try {
      assertOrgId(orgId);
    } catch (e) {
      throw new ProvisionError('INVALID_REQUEST', (e as Error).message);
    }
    const recorded = await this.deps.store.get(orgId);
    if (recorded) return { ...recorded, created: false };

    const alias = aliasName(this.config.deployment, orgId);
    const existing = await this.describe(alias);
    if (existing) return this.adopt(orgId, existing, false);

    const created = await this.call((kms) =>
      kms.send(
        new CreateKeyCommand({
          Description: `Bulwark ${this.config.deployment} tenant ${orgId}`,
          KeySpec: 'SYMMETRIC_DEFAULT',
          KeyUsage: 'ENCRYPT_DECRYPT',
          Origin: 'AWS_KMS',
          MultiRegion: false,
          Policy: JSON.stringify(
            tenantKeyPolicy({
              partition: this.config.partition,
              account: this.config.account,
              deployment: this.config.deployment,
              orgId,
            }),
          ),
          Tags: tenantKeyTags(this.config.deployment, orgId),
        }),
      ),
    );
    const meta = created.KeyMetadata;
    if (!meta?.KeyId || !meta.Arn) throw new Error('CreateKey returned no key metadata');

    try {
      await this.call((kms) => kms.send(new CreateAliasCommand({ AliasName: alias, TargetKeyId: meta.KeyId })));
    } catch (e) {
      if (errorName(e) !== 'AlreadyExistsException') throw e;
      // A concurrent run won the alias. Ours was never used: schedule it for deletion, adopt theirs.
      await this.call((kms) =>
        kms.send(
          new ScheduleKeyDeletionCommand({
            KeyId: meta.KeyId,
            PendingWindowInDays: this.config.orphanDeletionDays ?? 7,
          }),
        ),
      );
      const winner = await this.describe(alias);
      if (!winner) throw new ProvisionError('KEY_CONFLICT', `alias ${alias} exists but cannot be described`);
      return this.adopt(orgId, winner, false);
    }
    return this.adopt(orgId, meta, true);
  }

  private async describe(keyId: string): Promise<KeyMetadata | null> {
    try {
      const r = await this.call((kms) => kms.send(new DescribeKeyCommand({ KeyId: keyId })));
      return r.KeyMetadata ?? null;
    } catch (e) {
      if (errorName(e) === 'NotFoundException') return null;
      throw e;
    }
  }

  /**
   * Refuses (KEY_TAGS_MISMATCH) a key whose tags do not say this deployment, the tenant class and
   * `orgId`. An alias is only a name: whoever can create aliases under the prefix could point one
   * at another key, so the key's own tags decide.
   */
  private async assertTenantTags(orgId: string, keyId: string): Promise<void> {
    let problems: string[];
    try {
      const tags = await readKeyTags(this.deps.kms, keyId);
      problems = tenantTagProblems(tags, { deployment: this.config.deployment, orgId });
    } catch (e) {
      // Not readable by this account's IAM: the key policy does not delegate it, so it is not ours.
      if (errorName(e) !== 'AccessDeniedException') throw e;
      problems = ['tags not readable'];
    }
    if (problems.length > 0) {
      throw new ProvisionError('KEY_TAGS_MISMATCH', `key is not tagged as tenant ${orgId}'s: ${problems.join(', ')}`);
    }
  }

  private async adopt(orgId: string, meta: KeyMetadata, created: boolean): Promise<ProvisionResult> {
    if (!meta.Arn || !meta.KeyId) throw new Error('key metadata without ARN');
    if (meta.KeyState === 'PendingDeletion') {
      // The tenant was shredded; its key must never come back into use.
      throw new ProvisionError('KEY_PENDING_DELETION', `tenant ${orgId} key is pending deletion`);
    }
    if (meta.KeyState !== 'Enabled' && meta.KeyState !== 'Creating') {
      throw new ProvisionError('KEY_NOT_USABLE', `tenant ${orgId} key is ${String(meta.KeyState)}`);
    }
    // A key this call created carries the tags CreateKey was authorized with (and ListResourceTags
    // may not show them yet); a key found by alias is checked.
    if (!created) await this.assertTenantTags(orgId, meta.Arn);
    // Idempotent: enabling rotation on a key that rotates already is a no-op.
    await this.call((kms) => kms.send(new EnableKeyRotationCommand({ KeyId: meta.KeyId })));
    const arn = meta.Arn;
    // Recorded and audited in one transaction: a retry after a failed event finds no recorded key
    // and records (and audits) it again, so the event is never lost.
    await this.deps.store.record(orgId, { keyArn: arn, source: 'managed' }, async (stored, tx) => {
      if (stored.keyArn !== arn) {
        throw new ProvisionError('KEY_CONFLICT', `tenant ${orgId} already records a different key`);
      }
      const name = created ? 'tenant_key.created' : 'tenant_key.adopted';
      await this.deps.audit.record(this.event(orgId, name, arn, { source: 'managed' }), tx);
    });
    return { keyArn: meta.Arn, source: 'managed', created };
  }

  /**
   * Accepts an enterprise tenant's own key after checking it: a symmetric ENCRYPT_DECRYPT key,
   * enabled, in this deployment's account and region (residency; and GetKeyPolicy works only
   * in-account), tagged like a managed tenant key of this deployment and organisation, whose policy
   * meets `checkByokPolicy` (which includes letting this account schedule its deletion, and S3 use it
   * for the tenant's files under its own prefix). Adopting
   * it is the tenant's consent that shredding the tenant schedules the key for deletion, recorded
   * in the audit event. Rotation is reported, not imposed.
   */
  async adoptExternalKey(orgId: string, keyArn: string): Promise<ProvisionResult & { rotation: boolean }> {
    try {
      assertOrgId(orgId);
    } catch (e) {
      throw new ProvisionError('INVALID_REQUEST', (e as Error).message);
    }
    const m = KEY_ARN.exec(keyArn);
    if (!m) throw new ProvisionError('INVALID_REQUEST', 'external key must be a KMS key ARN (not an alias)');
    if (m[2] !== this.config.region || m[3] !== this.config.account) {
      throw new ProvisionError(
        'BYOK_WRONG_REGION_OR_ACCOUNT',
        `external key must be in account ${this.config.account}, region ${this.config.region}`,
      );
    }
    const meta = await this.describe(keyArn);
    if (!meta) throw new ProvisionError('KEY_NOT_USABLE', 'external key not found or not visible');
    if (
      meta.KeyState !== 'Enabled' ||
      meta.KeyUsage !== 'ENCRYPT_DECRYPT' ||
      meta.KeySpec !== 'SYMMETRIC_DEFAULT' ||
      meta.MultiRegion === true
    ) {
      throw new ProvisionError(
        'KEY_NOT_USABLE',
        'external key must be an enabled single-region SYMMETRIC_DEFAULT ENCRYPT_DECRYPT key',
      );
    }
    // Tags first: IAM lets the provisioner read the policy only of keys tagged as this deployment's
    // tenant keys (lib/tenant-keys), and a key not tagged as this tenant's is refused anyway.
    await this.assertTenantTags(orgId, keyArn);
    let policy: string | undefined;
    try {
      policy = (await this.call((kms) => kms.send(new GetKeyPolicyCommand({ KeyId: keyArn, PolicyName: 'default' }))))
        .Policy;
    } catch (e) {
      if (errorName(e) === 'AccessDeniedException') {
        throw new ProvisionError('BYOK_POLICY_UNREADABLE', 'the key policy must let this account read it');
      }
      throw e;
    }
    const findings = checkByokPolicy(policy ?? '', {
      account: this.config.account,
      deployment: this.config.deployment,
      orgId,
      partition: this.config.partition,
    });
    if (findings.length > 0) {
      throw new ProvisionError('BYOK_POLICY_REJECTED', findings.map((f) => f.problem).join(', '), findings);
    }
    let rotation = false;
    if (meta.Origin === 'AWS_KMS') {
      const r = await this.call((kms) => kms.send(new GetKeyRotationStatusCommand({ KeyId: keyArn })));
      rotation = r.KeyRotationEnabled === true;
    }
    await this.deps.store.record(orgId, { keyArn, source: 'byok' }, async (stored, tx) => {
      if (stored.keyArn !== keyArn) {
        throw new ProvisionError('KEY_CONFLICT', `tenant ${orgId} already records a different key`);
      }
      await this.deps.audit.record(
        this.event(orgId, 'tenant_key.byok_adopted', keyArn, { source: 'byok', rotation, deletedOnShred: true }),
        tx,
      );
    });
    return { keyArn, source: 'byok', created: false, rotation };
  }
}
