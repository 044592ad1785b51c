/**
 * The one interface every handler emits audit events through. The audit capability makes it
 * durable (PostgreSQL `audit_log` with a per-organisation hash chain, archived to Object Lock S3);
 * handlers depend only on this type.
 */
import type { SqlClient } from './migrations';

export const ACTOR_TYPES = ['user', 'api_key', 'support_grant', 'system'] as const;
export type ActorType = (typeof ACTOR_TYPES)[number];

export interface AuditEvent {
  /** Organisation the event belongs to (the tenant whose audit trail records it). */
  readonly orgId: string;
  readonly actorType: ActorType;
  /** Acting user, when a person (or their API key, or a support engineer) acted. */
  readonly actorUserId: string | null;
  readonly actorEmail: string | null;
  /** Dotted event name, e.g. `lead.deleted`, `support_grant.opened`, `webhook.rejected`. */
  readonly event: string;
  readonly entityType: string | null;
  readonly entityId: string | null;
  readonly ip: string | null;
  readonly userAgent: string | null;
  /** Support grant under which the action was taken, when one was. */
  readonly supportGrantId: string | null;
  /** Free-form detail; never secrets, tokens or message bodies. */
  readonly metadata: Readonly<Record<string, unknown>>;
  /** UTC time of the action. */
  readonly occurredAt: Date;
}

/** An event a system actor records (a scheduled or triggered function): no person is attached. */
export function systemEvent(
  orgId: string,
  event: string,
  entity: { readonly type: string; readonly id: string },
  metadata: Readonly<Record<string, unknown>>,
  occurredAt: Date,
): AuditEvent {
  return {
    orgId,
    actorType: 'system',
    actorUserId: null,
    actorEmail: null,
    event,
    entityType: entity.type,
    entityId: entity.id,
    ip: null,
    userAgent: null,
    supportGrantId: null,
    metadata,
    occurredAt,
  };
}

export interface AuditSink {
  /**
   * Records one event. When `tx` is given the event is written in that transaction, so it commits
   * or rolls back with the action it describes. Without `tx`, a person's event is recorded in a
   * transaction of its own, which the database admits only with `proof`: the acting user's gate
   * ticket or API key secret (lambda/tenant-guard/ticket.ts, migrations/0400).
   */
  record(event: AuditEvent, tx?: SqlClient, proof?: string): Promise<void>;
}
