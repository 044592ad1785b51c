/**
 * Calls and their recordings (`calls:*`). Which calls a caller reaches is decided by PostgreSQL
 * (migrations/0410): Owners, Admins, support grants and the export see all of the organisation's,
 * Members and Viewers only those they handled. The routes therefore never filter by agent
 * themselves; another agent's call is simply not there (404, exactly as a call that never existed).
 *
 * Calls are created with POST /calls: by a telephony integration's API key (an Admin's key records
 * any agent's call, a Member's key its own) or by an agent logging a call. The webhook ingress
 * does not create calls yet: Telnyx events arrive on the platform-wide account with no verified
 * organisation, and no carrier maps its numbers or users to our agents (docs/tenancy.md).
 */
import * as z from 'zod/mini';
import { CALL_DIRECTIONS, CALL_STATUSES, CALLS_PAGE, ROLES_READING_ALL_AGENTS } from '../../../contracts/calls';
import { UUID } from '../../../contracts/ids';
import { firstRow } from '../../shared/rows';
import { GuardError } from '../errors';
import { tenantRoute, type Route } from '../route';
import { need } from './common';

const CALL_COLUMNS =
  'id, org_id, agent_user_id, lead_id, customer_id, direction, from_number, to_number, status, started_at, ended_at, duration_seconds, carrier_call_id';
const RECORDING_COLUMNS = 'id, call_id, file_id, content_type, duration_seconds, created_at';

const id = z.string().check(z.regex(UUID));
const phone = z.string().check(z.minLength(1), z.maxLength(32));
const instant = z.iso.datetime({ offset: true });
const callBody = z.strictObject({
  direction: z.enum(CALL_DIRECTIONS),
  from_number: phone,
  to_number: phone,
  started_at: instant,
  ended_at: z.optional(instant),
  duration_seconds: z.optional(z.int().check(z.minimum(0), z.maximum(86_400))),
  status: z.optional(z.enum(CALL_STATUSES)),
  /** The agent who handled it; defaults to the caller. Only Owners and Admins name someone else. */
  agent_user_id: z.optional(id),
  lead_id: z.optional(id),
  customer_id: z.optional(id),
  carrier_call_id: z.optional(z.string().check(z.minLength(1), z.maxLength(200))),
});
const listQuery = z.object({
  limit: z.optional(z.string().check(z.regex(/^[1-9]\d{0,3}$/))),
  cursor: z.optional(z.string().check(z.maxLength(200))),
});

/** Validates with a zod/mini schema; a refusal is VALIDATION_FAILED naming the fields at fault. */
function parse<T>(schema: z.ZodMiniType<T>, value: unknown, name: string): T {
  const r = z.safeParse(schema, value);
  if (r.success) return r.data;
  const fields = [
    ...new Set(
      r.error.issues.flatMap((i) =>
        i.code === 'unrecognized_keys'
          ? i.keys.map((k) => [...i.path.map(String), k].join('.'))
          : [i.path.map(String).join('.') || name],
      ),
    ),
  ].join(',');
  throw new GuardError('VALIDATION_FAILED', fields, fields);
}

/** Keyset cursor over (started_at DESC, id DESC): opaque to clients, validated on the way back. */
function encodeCursor(row: Record<string, unknown>): string {
  const at = new Date(row['started_at'] as string).toISOString();
  return Buffer.from(`${at}|${String(row['id'])}`, 'utf8').toString('base64url');
}

function decodeCursor(cursor: string): { at: string; id: string } {
  const [at, rowId, ...rest] = Buffer.from(cursor, 'base64url').toString('utf8').split('|');
  if (rest.length > 0 || !at || !rowId || !UUID.test(rowId) || Number.isNaN(Date.parse(at))) {
    throw new GuardError('VALIDATION_FAILED', 'cursor', 'cursor');
  }
  return { at, id: rowId };
}

export const CALL_ROUTES: readonly Route[] = [
  tenantRoute('GET', '/calls', async (ctx) => {
    need(ctx, 'calls', 'view');
    const q = parse(listQuery, ctx.req.query, 'query');
    const limit = Math.min(q.limit ? Number(q.limit) : CALLS_PAGE.default, CALLS_PAGE.max);
    const after = q.cursor ? decodeCursor(q.cursor) : null;
    // Row-level security keeps this to the organisation and, for Members and Viewers, to their own
    // calls. The agent filter below only lets the planner use the (org, agent, started) index for
    // them; it never widens anything (without it the database returns exactly the same rows).
    const own = (ROLES_READING_ALL_AGENTS as readonly string[]).includes(ctx.tenant.role) ? null : ctx.tenant.userId;
    const r = await ctx.tx.query(
      `SELECT ${CALL_COLUMNS} FROM calls
        WHERE org_id = $1 AND ($2::timestamptz IS NULL OR (started_at, id) < ($2::timestamptz, $3::uuid))
          AND ($5::uuid IS NULL OR agent_user_id = $5::uuid)
        ORDER BY started_at DESC, id DESC LIMIT $4`,
      [ctx.tenant.orgId, after?.at ?? null, after?.id ?? null, limit + 1, own],
    );
    const page = r.rows.slice(0, limit);
    const last = page[page.length - 1];
    return {
      status: 200,
      body: { calls: page, next_cursor: r.rows.length > limit && last ? encodeCursor(last) : null },
    };
  }),
  tenantRoute('POST', '/calls', async (ctx) => {
    need(ctx, 'calls', 'create');
    const b = parse(callBody, ctx.req.body, 'body');
    // The database refuses (42501, PERMISSION_DENIED) a Member naming another agent.
    const r = await ctx.tx.query(
      `INSERT INTO calls (org_id, agent_user_id, lead_id, customer_id, direction, from_number, to_number, status,
                          started_at, ended_at, duration_seconds, carrier_call_id)
       VALUES ($1, $2, $3, $4, $5, $6, $7, coalesce($8, 'completed'), $9, $10, coalesce($11, 0), $12)
       ON CONFLICT (org_id, carrier_call_id) DO NOTHING
       RETURNING ${CALL_COLUMNS}`,
      [
        ctx.tenant.orgId,
        b.agent_user_id ?? ctx.tenant.userId,
        b.lead_id ?? null,
        b.customer_id ?? null,
        b.direction,
        b.from_number,
        b.to_number,
        b.status ?? null,
        b.started_at,
        b.ended_at ?? null,
        b.duration_seconds ?? null,
        b.carrier_call_id ?? null,
      ],
    );
    if (!r.rows[0]) throw new GuardError('CALL_EXISTS', 'carrier_call_id', 'carrier_call_id');
    const call = firstRow(r.rows);
    await ctx.emit('call.created', 'call', String(call['id']), {
      agent_user_id: call['agent_user_id'],
      direction: call['direction'],
    });
    return { status: 201, body: { call } };
  }),
  tenantRoute('GET', '/calls/{id}', async (ctx) => {
    need(ctx, 'calls', 'view');
    const callId = parse(id, ctx.req.params['id'], 'id');
    const r = await ctx.tx.query(`SELECT ${CALL_COLUMNS} FROM calls WHERE id = $1`, [callId]);
    if (!r.rows[0]) throw new GuardError('NOT_FOUND');
    return { status: 200, body: { call: r.rows[0] } };
  }),
  tenantRoute('GET', '/calls/{id}/recording', async (ctx) => {
    need(ctx, 'calls', 'view');
    const callId = parse(id, ctx.req.params['id'], 'id');
    // The call first: another agent's call is NOT_FOUND, never RECORDING_MISSING (no oracle).
    const call = await ctx.tx.query('SELECT id FROM calls WHERE id = $1', [callId]);
    if (!call.rows[0]) throw new GuardError('NOT_FOUND');
    const r = await ctx.tx.query(
      `SELECT ${RECORDING_COLUMNS} FROM call_recordings
        WHERE org_id = $1 AND call_id = $2 AND file_id IS NOT NULL ORDER BY created_at DESC, id DESC LIMIT 1`,
      [ctx.tenant.orgId, callId],
    );
    if (!r.rows[0]) throw new GuardError('RECORDING_MISSING');
    const recording = firstRow(r.rows);
    // Metadata only: the download itself is the file store's (GET /files/{file_id}).
    await ctx.emit('call.recording_viewed', 'call', callId, { recording_id: recording['id'] });
    return { status: 200, body: { recording } };
  }),
];
