/**
 * Keeps security events the database cannot take. Events outside a caller's transaction (the
 * `access.refused` record of a refused request) enter the tenant as the acting user; when the
 * database refuses that (the caller is not, or no longer, a member of the organisation they
 * claimed), the chain cannot hold the event, so it is written to the function's encrypted,
 * retained log instead of being lost, and the error still propagates. In-transaction events are
 * never diverted: they commit or roll back with the action.
 */
import { AuditError } from '../audit/pg-sink';
import type { AuditEvent, AuditSink } from '../shared/audit';
import type { SqlClient } from '../shared/migrations';
import type { Log } from '../shared/observability';

export class RefusalLogSink implements AuditSink {
  constructor(
    private readonly durable: AuditSink,
    private readonly log: Log,
  ) {}

  async record(event: AuditEvent, tx?: SqlClient, proof?: string): Promise<void> {
    if (tx) return this.durable.record(event, tx);
    try {
      await this.durable.record(event, undefined, proof);
    } catch (e) {
      // Identifiers and the event's own metadata only: no email, user agent or request body.
      this.log.warn('audit event not recorded in audit_log', {
        code: e instanceof AuditError ? e.code : 'AUDIT_WRITE_FAILED',
        event: event.event,
        orgId: event.orgId,
        actorType: event.actorType,
        actorUserId: event.actorUserId,
        supportGrantId: event.supportGrantId,
        ip: event.ip,
        metadata: JSON.stringify(event.metadata),
        occurredAt: event.occurredAt.toISOString(),
      });
      throw e;
    }
  }
}
