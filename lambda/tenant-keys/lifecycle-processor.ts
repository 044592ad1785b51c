/**
 * Carries out the lifecycle: finds tenants whose deadline has passed, performs the shredding
 * effects (each idempotent, each audited) and commits the new state with its audit events.
 *
 * A failed effect leaves the tenant in `grace`; the next scheduled run repeats the (idempotent)
 * work, so a partial shred always completes. The state is committed only after every effect.
 */
import { ScheduleKeyDeletionCommand, type KMSClient } from '@aws-sdk/client-kms';
import { systemEvent, type AuditEvent, type AuditSink } from '../shared/audit';
import type { AndThen } from './and-then';
import { errorName } from '../shared/sdk';
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

export interface LifecycleProcessorDeps {
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
    if (key.source === 'byok') {
      // Not ours to destroy: the tenant holds it. Recorded so the Owner can be told to delete it.
      await this.deps.audit.record(this.audit(orgId, 'tenant_key.byok_released', { keyArn: key.keyArn }));
      return;
    }
    const days = this.deps.keyPendingWindowDays ?? 7;
    try {
      const r = await this.deps.kms.send(
        new ScheduleKeyDeletionCommand({ KeyId: key.keyArn, PendingWindowInDays: days }),
      );
      await this.deps.audit.record(
        this.audit(orgId, 'tenant_key.deletion_scheduled', {
          keyArn: key.keyArn,
          deletionDate: r.DeletionDate?.toISOString() ?? null,
        }),
      );
    } catch (e) {
      // Already pending deletion (a retried run): the shred of the key is already under way.
      if (errorName(e) !== 'KMSInvalidStateException') throw e;
      await this.deps.audit.record(
        this.audit(orgId, 'tenant_key.deletion_scheduled', { keyArn: key.keyArn, alreadyPending: true }),
      );
    }
  }
}
