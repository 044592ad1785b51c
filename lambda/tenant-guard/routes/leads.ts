/** Leads: CRUD and bulk delete in the caller's organisation (`leads:*`). */
import { firstRow } from '../../shared/rows';
import * as z from 'zod/mini';
import { GuardError, parseInput } from '../errors';
import { tenantRead, tenantRoute, type Route } from '../route';
import { need, uuid } from './common';

const MAX_BULK = 500;
const LEAD_COLUMNS = 'id, org_id, name, email, phone, source, status, notes, created_at, updated_at';
const leadBody = z.strictObject({
  name: z.string().check(z.minLength(1), z.maxLength(200)),
  email: z.optional(z.email().check(z.maxLength(320))),
  phone: z.optional(z.string().check(z.maxLength(32))),
  source: z.optional(z.enum(['manual', 'web', 'phone', 'email', 'walk_in', 'partner'])),
  status: z.optional(z.enum(['new', 'contacted', 'qualified', 'won', 'lost'])),
  notes: z.optional(z.string().check(z.maxLength(10000))),
});

export const LEAD_ROUTES: readonly Route[] = [
  tenantRead('/leads', async (ctx) => {
    need(ctx, 'leads', 'view');
    const r = await ctx.tx.query(
      `SELECT ${LEAD_COLUMNS} FROM leads WHERE org_id = $1 ORDER BY created_at DESC, id LIMIT 100`,
      [ctx.tenant.orgId],
    );
    return { status: 200, body: { leads: r.rows } };
  }),
  tenantRoute('POST', '/leads', async (ctx) => {
    need(ctx, 'leads', 'create');
    const b = parseInput(leadBody, ctx.req.body);
    const r = await ctx.tx.query(
      `INSERT INTO leads (org_id, name, email, phone, source, status, notes)
       VALUES ($1, $2, $3, $4, coalesce($5, 'manual'), coalesce($6, 'new'), $7) RETURNING ${LEAD_COLUMNS}`,
      [ctx.tenant.orgId, b.name, b.email ?? null, b.phone ?? null, b.source ?? null, b.status ?? null, b.notes ?? null],
    );
    const lead = firstRow(r.rows);
    await ctx.emit('lead.created', 'lead', String(lead['id']));
    return { status: 201, body: { lead } };
  }),
  tenantRead('/leads/{id}', async (ctx) => {
    need(ctx, 'leads', 'view');
    const id = parseInput(uuid, ctx.req.params['id'], 'id');
    // Oversight contexts may read member stores' leads by id (RLS decides what is readable).
    const r = await ctx.tx.query(`SELECT ${LEAD_COLUMNS} FROM leads WHERE id = $1`, [id]);
    if (!r.rows[0]) throw new GuardError('NOT_FOUND');
    return { status: 200, body: { lead: r.rows[0] } };
  }),
  tenantRoute('PATCH', '/leads/{id}', async (ctx) => {
    need(ctx, 'leads', 'edit');
    const id = parseInput(uuid, ctx.req.params['id'], 'id');
    const b = parseInput(z.partial(leadBody), ctx.req.body);
    const fields = Object.entries(b).filter(([, v]) => v !== undefined);
    if (fields.length === 0) throw new GuardError('VALIDATION_FAILED', 'empty update', 'body');
    const sets = fields.map(([k], i) => `${k} = $${i + 3}`).join(', ');
    const r = await ctx.tx.query(`UPDATE leads SET ${sets} WHERE id = $1 AND org_id = $2 RETURNING ${LEAD_COLUMNS}`, [
      id,
      ctx.tenant.orgId,
      ...fields.map(([, v]) => v),
    ]);
    if (!r.rows[0]) throw new GuardError('NOT_FOUND');
    await ctx.emit('lead.updated', 'lead', id, { fields: fields.map(([k]) => k) });
    return { status: 200, body: { lead: r.rows[0] } };
  }),
  tenantRoute('DELETE', '/leads/{id}', async (ctx) => {
    need(ctx, 'leads', 'delete');
    const id = parseInput(uuid, ctx.req.params['id'], 'id');
    // Deletes go through the database's delete function (no role holds DELETE: migrations/0403).
    const r = await ctx.tx.query("SELECT id FROM app.delete_tenant_rows('leads', ARRAY[$1]::uuid[]) AS id", [id]);
    if (!r.rows[0]) throw new GuardError('NOT_FOUND');
    await ctx.emit('lead.deleted', 'lead', id);
    return { status: 200, body: { deleted: id } };
  }),
  tenantRoute('POST', '/leads/bulk-delete', async (ctx) => {
    need(ctx, 'leads', 'delete');
    const { ids } = parseInput(
      z.strictObject({ ids: z.array(uuid).check(z.minLength(1), z.maxLength(MAX_BULK)) }),
      ctx.req.body,
    );
    const unique = [...new Set(ids.map((i) => i.toLowerCase()))];
    // Scope first: only ids of the caller's own organisation are ever acted on.
    const scoped = await ctx.tx.query('SELECT id FROM leads WHERE org_id = $1 AND id = ANY ($2::uuid[])', [
      ctx.tenant.orgId,
      unique,
    ]);
    const inScope = scoped.rows.map((r) => String(r['id']));
    const del = await ctx.tx.query("SELECT id FROM app.delete_tenant_rows('leads', $1::uuid[]) AS id", [inScope]);
    const dropped = unique.length - inScope.length;
    await ctx.emit('lead.bulk_deleted', 'lead', null, { requested: unique.length, deleted: del.rows.length, dropped });
    return { status: 200, body: { deleted: del.rows.map((r) => r['id']), dropped } };
  }),
];
