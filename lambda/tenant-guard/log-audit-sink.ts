/**
 * Interim AuditSink: one structured JSON line per event to the function's log group (which is
 * KMS-encrypted and retained). The audit capability replaces it with the durable hash-chained
 * sink; handlers only depend on `AuditSink`, so nothing else changes.
 */
import type { AuditEvent, AuditSink } from '../shared/audit';

export class LogAuditSink implements AuditSink {
  constructor(private readonly write: (line: string) => void = (l) => process.stdout.write(`${l}\n`)) {}

  async record(event: AuditEvent): Promise<void> {
    this.write(JSON.stringify({ audit: true, ...event, occurredAt: event.occurredAt.toISOString() }));
  }
}
