/**
 * PostgreSQL {@link AuditSink} for system actors: functions that act for no user and therefore hold
 * no tenant context (the tenant-keys provisioner, lifecycle processor and export worker). Their
 * events join the organisation's one hash chain in `audit_log` through the owner-only functions of
 * `migrations/0301_system_audit_events.sql`:
 *
 *   head   = app.system_audit_head(org)          -- takes PgAuditSink's per-organisation lock
 *   record = link(head, event)                   -- canonical hash, computed here as for user events
 *   app.append_system_audit_event(record...)     -- re-checks the row and the link, inserts as owner
 *
 * The database accepts only person-less `system` rows whose event name is listed in
 * `app.system_audit_events`; this class refuses anything else before the round trip, with the same
 * {@link AuditError} codes as {@link PgAuditSink}.
 */
import type { Pool } from 'pg';
import type { AuditEvent, AuditSink } from '../shared/audit';
import { withTransaction } from '../shared/db';
import type { SqlClient } from '../shared/migrations';
import { link, type AuditRecord } from './chain';
import { AuditError, recordValues, UUID } from './pg-sink';

/** SQLSTATEs of migration 0301 (and the chain's) and what they mean to a caller. */
const REFUSALS: Readonly<Record<string, { code: AuditError['code']; message: string }>> = {
  BW104: { code: 'AUDIT_EVENT_INVALID', message: 'the database refused the system event' },
  BW105: { code: 'AUDIT_EVENT_INVALID', message: 'audit event: unknown organisation' },
  BW101: { code: 'AUDIT_WRITE_FAILED', message: 'the system event does not extend the chain head' },
};

function sqlState(e: unknown): string | undefined {
  const code = (e as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

function asAuditError(e: unknown): AuditError {
  if (e instanceof AuditError) return e;
  const known = REFUSALS[sqlState(e) ?? ''];
  if (known) return new AuditError(known.code, known.message, { cause: e });
  return new AuditError('AUDIT_WRITE_FAILED', 'the system audit event could not be recorded', { cause: e });
}

/** Refuses, before any query, what the database would refuse: a system event carries no person. */
function validateSystemEvent(event: AuditEvent): string {
  const orgId = typeof event.orgId === 'string' ? event.orgId.toLowerCase() : '';
  if (!UUID.test(orgId)) throw new AuditError('AUDIT_EVENT_INVALID', 'audit event: orgId must be a UUID');
  if (event.actorType !== 'system') {
    throw new AuditError('AUDIT_EVENT_INVALID', 'the system audit sink records only actorType system');
  }
  const personal = (['actorUserId', 'actorEmail', 'ip', 'userAgent', 'supportGrantId'] as const).filter(
    (k) => event[k] !== null && event[k] !== undefined,
  );
  if (personal.length > 0) {
    throw new AuditError('AUDIT_EVENT_INVALID', `a system event carries no ${personal.join(', ')}`);
  }
  return orgId;
}

/**
 * Appends one system event to its organisation's chain inside `tx` (any transaction of the
 * application role; no tenant context needed). The chain lock is held until `tx` ends.
 */
export async function appendSystemAuditEvent(tx: SqlClient, event: AuditEvent): Promise<AuditRecord> {
  const orgId = validateSystemEvent(event);
  let record: AuditRecord;
  try {
    const head = (await tx.query('SELECT seq, hash FROM app.system_audit_head($1)', [orgId])).rows[0];
    if (!head) throw new Error('app.system_audit_head returned no row');
    record = link({ seq: Number(head['seq']), hash: String(head['hash']) }, { ...event, orgId });
  } catch (e) {
    if (e instanceof TypeError) throw new AuditError('AUDIT_EVENT_INVALID', e.message, { cause: e });
    throw asAuditError(e);
  }
  try {
    // The function takes the organisation first: the same values, $2 and $1 swapped.
    await tx.query(
      'SELECT app.append_system_audit_event($2, $1, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)',
      recordValues(record),
    );
  } catch (e) {
    throw asAuditError(e);
  }
  return record;
}

export interface PgSystemAuditSinkProps {
  /** Connections as the application role (the same pool the function's stores use). */
  readonly pool: Pick<Pool, 'connect'>;
}

export class PgSystemAuditSink implements AuditSink {
  constructor(private readonly props: PgSystemAuditSinkProps) {}

  /**
   * With `tx`: appends in the caller's transaction, so the event commits or rolls back with the step
   * it describes. Without: in a transaction of its own, committed before this returns.
   */
  async record(event: AuditEvent, tx?: SqlClient): Promise<void> {
    if (tx) {
      await appendSystemAuditEvent(tx, event);
      return;
    }
    validateSystemEvent(event); // refuse before taking a connection
    try {
      await withTransaction(this.props.pool, (client) => appendSystemAuditEvent(client, event));
    } catch (e) {
      throw asAuditError(e);
    }
  }
}
