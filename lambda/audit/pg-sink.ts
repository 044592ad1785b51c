/**
 * PostgreSQL implementation of the shared {@link AuditSink}: appends to `audit_log`, extending the
 * organisation's hash chain, through `app.append_audit_event` (migrations/0404).
 *
 * The database proves every row: the organisation must be the transaction's verified tenant context,
 * the actor (user, e-mail, actor type, support grant) is taken from that context, never from the
 * event, and the hash is computed by the database over the canonical form of `canonicalRecord` (./chain.ts)
 * and the previous row's hash. The event is linked into the chain when the transaction commits
 * (a deferred trigger), under a per-organisation lock row only that trigger can take: the lock is
 * held for the commit, not for the rest of the caller's transaction, and no other session can take
 * it for another tenant. Use READ COMMITTED (PostgreSQL's default).
 */
import type { Pool } from 'pg';
import type { AuditEvent, AuditSink } from '../shared/audit';
import { withTransaction } from '../shared/db';
import type { SqlClient } from '../shared/migrations';
import { validateEvent, type AuditRecord } from './chain';
import { normaliseMetadata } from './canonical';

export const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** Audit failures, each with a stable code (the API maps them to 500/400 as documented). */
export class AuditError extends Error {
  constructor(
    readonly code: 'AUDIT_EVENT_INVALID' | 'AUDIT_CONTEXT_REQUIRED' | 'AUDIT_WRITE_FAILED',
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'AuditError';
  }
}

export const AUDIT_COLUMNS =
  'seq, org_id, occurred_at, actor_type, actor_user_id, actor_email, event, entity_type, entity_id, ip, ' +
  'user_agent, support_grant_id, metadata, prev_hash, hash';

/** A record's values in {@link AUDIT_COLUMNS} order ($1 .. $15). */
export function recordValues(record: AuditRecord): unknown[] {
  return [
    record.seq,
    record.orgId,
    record.occurredAt,
    record.actorType,
    record.actorUserId,
    record.actorEmail,
    record.event,
    record.entityType,
    record.entityId,
    record.ip,
    record.userAgent,
    record.supportGrantId,
    JSON.stringify(record.metadata),
    record.prevHash,
    record.hash,
  ];
}

/** Maps a row selected with {@link AUDIT_COLUMNS} back to the record that was hashed. */
export function rowToRecord(row: Record<string, unknown>): AuditRecord {
  const text = (k: string): string | null => (row[k] === null || row[k] === undefined ? null : String(row[k]));
  return {
    seq: Number(row['seq']),
    orgId: String(row['org_id']),
    occurredAt: row['occurred_at'] instanceof Date ? row['occurred_at'] : new Date(String(row['occurred_at'])),
    actorType: String(row['actor_type']) as AuditRecord['actorType'],
    actorUserId: text('actor_user_id'),
    actorEmail: text('actor_email'),
    event: String(row['event']),
    entityType: text('entity_type'),
    entityId: text('entity_id'),
    ip: text('ip'),
    userAgent: text('user_agent'),
    supportGrantId: text('support_grant_id'),
    metadata: (row['metadata'] ?? {}) as AuditRecord['metadata'],
    prevHash: String(row['prev_hash']),
    hash: String(row['hash']),
  };
}

/**
 * Queues one event of the tenant context's organisation inside `tx` (which must hold that context);
 * the database links it into the chain when `tx` commits, naming the context's actor. The event's
 * actor fields only choose whom {@link PgAuditSink} enters the tenant as; the row never takes them
 * from the caller.
 */
export async function appendAuditEvent(tx: SqlClient, event: AuditEvent): Promise<void> {
  const orgId = typeof event.orgId === 'string' ? event.orgId.toLowerCase() : '';
  if (!UUID.test(orgId)) throw new AuditError('AUDIT_EVENT_INVALID', 'audit event: orgId must be a UUID');
  let metadata: string;
  try {
    validateEvent(event);
    metadata = JSON.stringify(normaliseMetadata(event.metadata));
  } catch (e) {
    if (e instanceof TypeError) throw new AuditError('AUDIT_EVENT_INVALID', e.message, { cause: e });
    throw e;
  }
  await tx.query('SELECT app.append_audit_event($1, $2, $3, $4, $5, $6, $7, $8)', [
    orgId,
    event.occurredAt,
    event.event,
    event.entityType ?? null,
    event.entityId ?? null,
    event.ip ?? null,
    event.userAgent ?? null,
    metadata,
  ]);
}

export interface PgAuditSinkProps {
  /** Connections as the application role, for events recorded outside a caller's transaction. */
  readonly pool: Pick<Pool, 'connect'>;
}

export class PgAuditSink implements AuditSink {
  constructor(private readonly props: PgAuditSinkProps) {}

  /**
   * With `tx`: appends in the caller's transaction (which already entered the tenant through
   * `app.set_tenant_context`), so the event commits or rolls back with the action.
   * Without: opens its own transaction, proves the acting user with `proof` and enters the tenant as
   * them (and their support grant), so the database checks that this user may act in that
   * organisation right now.
   */
  async record(event: AuditEvent, tx?: SqlClient, proof?: string): Promise<void> {
    if (tx) {
      await appendAuditEvent(tx, event);
      return;
    }
    if (!event.actorUserId || !proof) {
      throw new AuditError(
        'AUDIT_CONTEXT_REQUIRED',
        'an event without an acting user and their proof must be recorded inside a transaction that holds a tenant context',
      );
    }
    try {
      await withTransaction(this.props.pool, async (client) => {
        await client.query('SELECT 1 FROM app.authenticate($1)', [proof]);
        await client.query('SELECT 1 FROM app.set_tenant_context($1, $2, $3)', [
          event.actorUserId,
          event.orgId,
          event.supportGrantId,
        ]);
        await appendAuditEvent(client, event);
      });
    } catch (e) {
      if (e instanceof AuditError) throw e;
      throw new AuditError('AUDIT_WRITE_FAILED', 'the audit event could not be recorded', { cause: e });
    }
  }
}
