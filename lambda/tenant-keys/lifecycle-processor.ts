/**
 * Carries out the lifecycle: finds tenants whose deadline has passed, performs the shredding
 * effects (each idempotent, each audited) and commits the new state with its audit events.
 *
 * A failed effect leaves the tenant in `grace`; the next scheduled run repeats the (idempotent)
 * work, so a partial shred always completes. The state is committed only after every effect.
 *
 * A key is scheduled for deletion only after its own tags say it is this deployment's tenant key of
 * exactly this tenant: a wrong ARN on a tenant row (a bug, or SQL run by an attacker) must never
 * destroy another tenant's or the platform's key. A mismatch is refused with
 * `KEY_OWNERSHIP_MISMATCH`, audited, and fails the run (which alarms).
 */
import { ScheduleKeyDeletionCommand, type KMSClient } from '@aws-sdk/client-kms';
import { systemEvent, type AuditEvent, type AuditSink } from '../shared/audit';
import type { AndThen } from './and-then';
import { errorName } from '../shared/sdk';
import { KEY_OWNERSHIP_MISMATCH } from '../../contracts/tenant-keys';
import { readKeyTags, tenantTagProblems } from './key-tags';
import { advance, type LifecycleEffect, type TenantLifecycle, type Transition } from './lifecycle';
import type { TenantKeyRecord } from './provisioner';

export interface LifecycleStore {
  /** Tenants with a passed deadline (cancelled past access, grace past its end), oldest first. */
  due(now: Date, limit: number): Promise<TenantLifecycle[]>;
  /**
   * Commits `transition.next` if the stored row still equals `from` (optimistic), recording the
   * transition's audit events in the same transaction. Returns false if someone else moved it.
   */
  commit(from: TenantLifecycle, transition: Transition): Promise<boolean>;
  keyOf(orgId: string): Promise<TenantKeyRecord | null>;
}

export interface TenantDataEraser {
  /**
   * Deletes every row the tenant owns; returns how many. Idempotent. `andThen` runs with the count
   * in the same transaction (the audit event: rows and event commit together or not at all).
   */
  deleteRows(orgId: string, andThen: AndThen<number>): Promise<number>;
}

export interface TenantObjectEraser {
  /** Deletes every object (all versions) the tenant owns; returns how many. Idempotent. */
  deleteObjects(orgId: string): Promise<number>;
}

export class KeyOwnershipMismatch extends Error {
  readonly code = KEY_OWNERSHIP_MISMATCH;
  constructor(
    readonly orgId: string,
    readonly problems: readonly string[],
  ) {
    super(
      `${KEY_OWNERSHIP_MISMATCH}: the key recorded for tenant ${orgId} is not its tenant key (${problems.join(', ')})`,
    );
    // The name is what the run reports and logs (a metric filter alarms on it).
    this.name = KEY_OWNERSHIP_MISMATCH;
  }
}

export interface LifecycleProcessorDeps {
  /** Deployment whose tenant keys this processor may delete (the `bulwark:deployment` tag). */
  readonly deployment: string;
  readonly store: LifecycleStore;
  readonly rows: TenantDataEraser;
  readonly objects: TenantObjectEraser;
  readonly kms: KMSClient;
  readonly audit: AuditSink;
  readonly clock: () => Date;
  /** KMS pending window before a shredded tenant's key is destroyed (7-30). @default 7 */
  readonly keyPendingWindowDays?: number;
  /** Tenants per run. @default 25 */
  readonly batchSize?: number;
}

export interface ProcessResult {
  readonly advanced: readonly { orgId: string; to: string }[];
  readonly failed: readonly { orgId: string; error: string }[];
}

export class LifecycleProcessor {
  constructor(private readonly deps: LifecycleProcessorDeps) {
    const w = deps.keyPendingWindowDays ?? 7;
    if (!Number.isInteger(w) || w < 7 || w > 30) throw new RangeError('KMS pending window is 7-30 days');
  }

  private audit(orgId: string, name: string, metadata: Record<string, unknown>): AuditEvent {
    return systemEvent(orgId, name, { type: 'organisation', id: orgId }, metadata, this.deps.clock());
  }

  async run(): Promise<ProcessResult> {
    const now = this.deps.clock();
    const advanced: { orgId: string; to: string }[] = [];
    const failed: { orgId: string; error: string }[] = [];
    for (const due of await this.deps.store.due(now, this.deps.batchSize ?? 25)) {
      // A late run may owe two steps (cancelled -> grace -> shredded); each is committed on its own.
      let t: TenantLifecycle | null = due;
      try {
        for (let transition = advance(t, now); t && transition; transition = t ? advance(t, now) : null) {
          for (const effect of transition.effects) await this.perform(effect);
          if (!(await this.deps.store.commit(t, transition))) {
            t = null; // moved by someone else (restored, or another run): leave it
            break;
          }
          advanced.push({ orgId: due.orgId, to: transition.next.state });
          t = transition.next;
        }
      } catch (e) {
        // Names only: never log or return payloads.
        failed.push({ orgId: due.orgId, error: errorName(e) ?? 'Error' });
      }
    }
    return { advanced, failed };
  }

  private async perform(effect: LifecycleEffect): Promise<void> {
    const { orgId } = effect;
    switch (effect.kind) {
      case 'delete_rows': {
        await this.deps.rows.deleteRows(orgId, (rows, tx) =>
          this.deps.audit.record(this.audit(orgId, 'tenant.rows_deleted', { rows }), tx),
        );
        return;
      }
      case 'delete_objects': {
        const objects = await this.deps.objects.deleteObjects(orgId);
        await this.deps.audit.record(this.audit(orgId, 'tenant.objects_deleted', { objects }));
        return;
      }
      case 'schedule_key_deletion':
        return this.shredKey(orgId);
    }
  }

  private async shredKey(orgId: string): Promise<void> {
    const key = await this.deps.store.keyOf(orgId);
    if (!key) {
      await this.deps.audit.record(this.audit(orgId, 'tenant_key.none_to_delete', {}));
      return;
    }
    // Bring-your-own keys live in this account too, and were adopted only with the tenant's tags and
    // a policy that delegates their deletion: shredding destroys them like any other tenant key.
    await this.assertOwnedBy(orgId, key.keyArn);
    const days = this.deps.keyPendingWindowDays ?? 7;
    try {
      const r = await this.deps.kms.send(
        new ScheduleKeyDeletionCommand({ KeyId: key.keyArn, PendingWindowInDays: days }),
      );
      await this.deps.audit.record(
        this.audit(orgId, 'tenant_key.deletion_scheduled', {
          keyArn: key.keyArn,
          source: key.source,
          deletionDate: r.DeletionDate?.toISOString() ?? null,
        }),
      );
    } catch (e) {
      // Already pending deletion (a retried run): the shred of the key is already under way.
      if (errorName(e) !== 'KMSInvalidStateException') throw e;
      await this.deps.audit.record(
        this.audit(orgId, 'tenant_key.deletion_scheduled', {
          keyArn: key.keyArn,
          source: key.source,
          alreadyPending: true,
        }),
      );
    }
  }

  /** Throws KeyOwnershipMismatch (audited) unless the key's tags name this deployment and tenant. */
  private async assertOwnedBy(orgId: string, keyArn: string): Promise<void> {
    let problems: string[];
    try {
      const tags = await readKeyTags(this.deps.kms, keyArn);
      problems = tenantTagProblems(tags, { deployment: this.deps.deployment, orgId });
    } catch (e) {
      // IAM lets this role read tags only of this deployment's tenant keys: a denial is a mismatch.
      if (errorName(e) !== 'AccessDeniedException') throw e;
      problems = ['tags not readable (not a tenant key of this deployment)'];
    }
    if (problems.length === 0) return;
    await this.deps.audit.record(
      this.audit(orgId, 'tenant_key.deletion_refused', { keyArn, code: KEY_OWNERSHIP_MISMATCH, problems }),
    );
    throw new KeyOwnershipMismatch(orgId, problems);
  }
}
