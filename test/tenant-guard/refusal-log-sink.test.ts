/**
 * RefusalLogSink: a refusal the database will not attribute to the claimed organisation is kept as
 * a log line (without email or user agent) instead of being lost; in-transaction events are never
 * diverted. Proved against a real PostgreSQL with the durable PgAuditSink.
 */
import { randomUUID } from 'node:crypto';
import { PgAuditSink } from '../../lambda/audit/pg-sink';
import type { AuditEvent, AuditSink } from '../../lambda/shared/audit';
import type { SqlClient } from '../../lambda/shared/migrations';
import { RefusalLogSink } from '../../lambda/tenant-guard/refusal-log-sink';
import { RecordingLog } from '../support/observability';
import { startPostgres, type TestPostgres } from '../support/postgres';
import { ticketFor } from './fixtures';
import { defined } from '../support/defined';

const refusal = (): AuditEvent => ({
  orgId: randomUUID(),
  actorType: 'user',
  actorUserId: randomUUID(),
  actorEmail: 'mallory@example.test',
  event: 'access.refused',
  entityType: null,
  entityId: null,
  ip: '203.0.113.9',
  userAgent: 'curl/8.0',
  supportGrantId: null,
  metadata: { code: 'MEMBERSHIP_REVOKED', method: 'GET', path: '/leads' },
  occurredAt: new Date('2026-11-22T10:00:00Z'),
});

describe('RefusalLogSink', () => {
  let pg: TestPostgres;
  beforeAll(async () => {
    pg = await startPostgres();
  });
  afterAll(async () => pg?.stop());

  it('logs a refusal the database refuses to chain, and still reports the failure', async () => {
    const lines: string[] = [];
    const log = new RecordingLog((l) => lines.push(l));
    const sink = new RefusalLogSink(new PgAuditSink({ pool: pg.pool() }), log);
    const event = refusal();
    await expect(
      sink.record(event, undefined, ticketFor(defined(event.actorUserId), event.orgId)),
    ).rejects.toMatchObject({ code: 'AUDIT_WRITE_FAILED' });
    expect(log.entries).toHaveLength(1);
    expect(log.entries[0]).toEqual({
      level: 'warn',
      message: 'audit event not recorded in audit_log',
      fields: {
        code: 'AUDIT_WRITE_FAILED',
        event: 'access.refused',
        orgId: event.orgId,
        actorType: 'user',
        actorUserId: event.actorUserId,
        supportGrantId: null,
        ip: '203.0.113.9',
        metadata: JSON.stringify({ code: 'MEMBERSHIP_REVOKED', method: 'GET', path: '/leads' }),
        occurredAt: '2026-11-22T10:00:00.000Z',
      },
    });
    expect(lines[0]).not.toContain('mallory');
    expect(lines[0]).not.toContain('curl');
    const stored = await pg.superuser('SELECT count(*)::int AS n FROM audit_log WHERE org_id = $1', [event.orgId]);
    expect(stored).toEqual([{ n: 0 }]);
  });

  it('passes recorded events and in-transaction failures through without logging', async () => {
    const lines: string[] = [];
    const calls: [AuditEvent, SqlClient | undefined][] = [];
    const ok: AuditSink = {
      record: async (e, tx) => {
        calls.push([e, tx]);
      },
    };
    await new RefusalLogSink(ok, new RecordingLog((l) => lines.push(l))).record(refusal());
    const tx: SqlClient = { query: async () => ({ rows: [] }) };
    const failing: AuditSink = {
      record: async () => {
        throw new Error('chain write failed');
      },
    };
    await expect(
      new RefusalLogSink(failing, new RecordingLog((l) => lines.push(l))).record(refusal(), tx),
    ).rejects.toThrow('chain write failed');
    expect(calls).toHaveLength(1);
    expect(lines).toEqual([]);
  });
});
