/**
 * An AuditSink that writes each event as one structured JSON line to the function's log group
 * (KMS-encrypted, retained for a year). It is what these functions use until the durable audit
 * capability (PostgreSQL `audit_log` with its hash chain) is wired in their runtime; the events
 * never carry secrets, so they are safe in logs.
 */
import type { AuditEvent, AuditSink } from '../shared/audit';

export class LogAuditSink implements AuditSink {
  constructor(private readonly write: (line: string) => void = (l) => process.stdout.write(`${l}\n`)) {}

  async record(event: AuditEvent): Promise<void> {
    this.write(JSON.stringify({ type: 'audit', ...event, occurredAt: event.occurredAt.toISOString() }));
  }
}
