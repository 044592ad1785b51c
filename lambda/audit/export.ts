/**
 * CSV export of one organisation's audit trail, for roles holding the `audit:view` permission.
 * The export is itself audited (`audit.exported`, with the filters and the row count) in the same
 * transaction that read the rows: no export leaves without its record.
 */
import type { Pool } from 'pg';
import * as z from 'zod/mini';
import { ACTOR_TYPES } from '../shared/audit';
import { csvHeader, csvRow } from './formats';
import type { SqlClient } from '../shared/migrations';
import { AUDIT_COLUMNS, appendAuditEvent, rowToRecord } from './pg-sink';
import { withTransaction } from '../shared/db';

export const AUDIT_PERMISSION = 'audit:view';
/** Above this, narrow the filters: an export is built in memory. */
export const DEFAULT_MAX_ROWS = 200_000;
const PAGE = 5_000;

export const exportRequestSchema = z.strictObject({
  orgId: z.uuid(),
  userId: z.uuid(),
  /**
   * The caller's gate proof (ticket or API key secret): exportAuditCsv's own transaction admits
   * `userId` only with it. @default none (inside a caller's transaction, which already holds one)
   */
  proof: z.optional(z.string().check(z.minLength(1), z.maxLength(4096))),
  supportGrantId: z._default(z.nullable(z.uuid()), null),
  from: z.optional(z.coerce.date()),
  to: z.optional(z.coerce.date()),
  actorUserId: z.optional(z.string().check(z.minLength(1), z.maxLength(200))),
  actorType: z.optional(z.enum(ACTOR_TYPES)),
  events: z.optional(
    z.array(z.string().check(z.regex(/^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$/))).check(z.minLength(1), z.maxLength(50)),
  ),
  ip: z._default(z.nullable(z.string().check(z.maxLength(64))), null),
  userAgent: z._default(z.nullable(z.string().check(z.maxLength(1024))), null),
});
export type ExportRequest = z.input<typeof exportRequestSchema>;

export class ExportError extends Error {
  /** @param field the query parameter at fault, when one is */
  constructor(
    readonly code: 'EXPORT_INVALID' | 'PERMISSION_DENIED' | 'EXPORT_TOO_LARGE',
    readonly status: 400 | 403 | 413,
    message: string,
    readonly field?: string,
  ) {
    super(message);
    this.name = 'ExportError';
  }
}

export interface AuditExport {
  readonly csv: string;
  readonly rows: number;
  /** A filtered export verifies row by row only: `npm run audit:verify -- <file> --filtered`. */
  readonly filtered: boolean;
}

/** The query parameter each request field comes from (`GET /audit/export`). */
const QUERY_NAMES: Readonly<Record<string, string>> = {
  actorUserId: 'actor',
  actorType: 'actor_type',
  events: 'event',
};

/** Validates an export request; throws EXPORT_INVALID naming the first problem and its parameter. */
export function parseExportRequest(input: ExportRequest): ParsedExportRequest {
  const parsed = exportRequestSchema.safeParse(input);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const key = String(issue?.path[0] ?? '');
    throw new ExportError('EXPORT_INVALID', 400, issue?.message ?? 'invalid', QUERY_NAMES[key] ?? key);
  }
  const req = parsed.data;
  if (req.from && req.to && req.from >= req.to)
    throw new ExportError('EXPORT_INVALID', 400, '`from` must precede `to`', 'from');
  return req;
}

export type ParsedExportRequest = z.output<typeof exportRequestSchema>;

/**
 * Opens its own transaction, enters the tenant through the database gate, checks `audit:view`
 * there, and exports (for callers that hold no transaction, such as jobs and tests).
 */
export async function exportAuditCsv(
  pool: Pick<Pool, 'connect'>,
  input: ExportRequest,
  options: ExportOptions = {},
): Promise<AuditExport> {
  const req = parseExportRequest(input);
  return withTransaction(pool, async (client) => {
    await client.query('SELECT app.authenticate($1)', [req.proof ?? null]);
    const ctx = await client.query<{ permissions: string[] }>(
      'SELECT permissions FROM app.set_tenant_context($1, $2, $3)',
      [req.userId, req.orgId, req.supportGrantId],
    );
    if (!ctx.rows[0]?.permissions.includes(AUDIT_PERMISSION)) {
      throw new ExportError('PERMISSION_DENIED', 403, `exporting the audit log needs ${AUDIT_PERMISSION}`);
    }
    return writeAuditCsv(client, req, options);
  });
}

export interface ExportOptions {
  /** @default DEFAULT_MAX_ROWS */
  readonly maxRows?: number;
  readonly now?: () => Date;
}

/**
 * Writes the export inside `tx`, which must already hold the organisation's tenant context (and the
 * caller must have checked `audit:view`): row-level security keeps the rows to that organisation,
 * and the `audit.exported` event commits or rolls back with the export.
 */
export async function writeAuditCsv(
  tx: SqlClient,
  req: ParsedExportRequest,
  options: ExportOptions = {},
): Promise<AuditExport> {
  const maxRows = options.maxRows ?? DEFAULT_MAX_ROWS;
  const where = ['org_id = $1'];
  const params: unknown[] = [req.orgId];
  const add = (sql: string, value: unknown): void => {
    params.push(value);
    where.push(sql.replace('?', `$${params.length}`));
  };
  if (req.from) add('occurred_at >= ?', req.from);
  if (req.to) add('occurred_at < ?', req.to);
  if (req.actorUserId) add('actor_user_id = ?', req.actorUserId);
  if (req.actorType) add('actor_type = ?', req.actorType);
  if (req.events) add('event = ANY (?)', req.events);
  const filtered = where.length > 1;

  const parts = [csvHeader()];
  let rows = 0;
  let after = 0;
  for (;;) {
    const page = await tx.query(
      `SELECT ${AUDIT_COLUMNS} FROM audit_log WHERE ${where.join(' AND ')} AND seq > $${params.length + 1}
       ORDER BY seq LIMIT ${PAGE}`,
      [...params, after],
    );
    for (const row of page.rows) {
      const r = rowToRecord(row);
      parts.push(csvRow(r));
      after = r.seq;
    }
    rows += page.rows.length;
    if (rows > maxRows) {
      throw new ExportError('EXPORT_TOO_LARGE', 413, `more than ${maxRows} rows: narrow the time range`);
    }
    if (page.rows.length < PAGE) break;
  }
  await appendAuditEvent(tx, {
    orgId: req.orgId,
    actorType: req.supportGrantId ? 'support_grant' : 'user',
    actorUserId: req.userId,
    actorEmail: null,
    event: 'audit.exported',
    entityType: 'audit_log',
    entityId: null,
    ip: req.ip,
    userAgent: req.userAgent,
    supportGrantId: req.supportGrantId,
    metadata: {
      rows,
      filters: {
        from: req.from?.toISOString() ?? null,
        to: req.to?.toISOString() ?? null,
        actorUserId: req.actorUserId ?? null,
        actorType: req.actorType ?? null,
        events: req.events ?? null,
      },
    },
    occurredAt: (options.now ?? (() => new Date()))(),
  });
  return { csv: parts.join(''), rows, filtered };
}
