/**
 * Custom roles (`settings:*`). A role's grid is a subset of its creator's or editor's; nobody edits
 * or deletes a role holding more than they do; an assigned role is not deleted (CONFLICT).
 */
import { firstRow } from '../../shared/rows';
import * as z from 'zod/mini';
import { GuardError, parseInput } from '../errors';
import { narrow } from '../permissions';
import { tenantRead, tenantRoute, type Route, type RouteContext } from '../route';
import { need, permissionList, uuid } from './common';

/** A custom role's grid, locked for change; nobody edits or deletes a role holding more than they do. */
async function roleWithinReach(ctx: RouteContext<'tenant'>, id: string): Promise<string[]> {
  const r = await ctx.tx.query('SELECT permissions FROM custom_roles WHERE id = $1 AND org_id = $2 FOR UPDATE', [
    id,
    ctx.tenant.orgId,
  ]);
  const held = r.rows[0]?.['permissions'] as string[] | undefined;
  if (!held) throw new GuardError('NOT_FOUND');
  if (!held.every((p) => ctx.tenant.permissions.includes(p))) throw new GuardError('PERMISSION_DENIED');
  return held;
}

export const ROLE_ROUTES: readonly Route[] = [
  tenantRead('/roles', async (ctx) => {
    need(ctx, 'settings', 'view');
    const r = await ctx.tx.query(
      'SELECT id, name, permissions, oversight FROM custom_roles WHERE org_id = $1 ORDER BY name',
      [ctx.tenant.orgId],
    );
    return { status: 200, body: { roles: r.rows } };
  }),
  tenantRoute('POST', '/roles', async (ctx) => {
    need(ctx, 'settings', 'create');
    const b = parseInput(
      z.strictObject({
        name: z.string().check(z.minLength(1), z.maxLength(100)),
        permissions: permissionList,
        oversight: z.optional(z.boolean()),
      }),
      ctx.req.body,
    );
    // A custom role can only hold what its creator holds.
    const grid = narrow(b.permissions, ctx.tenant.permissions, 'PERMISSION_DENIED');
    const r = await ctx.tx.query(
      'INSERT INTO custom_roles (org_id, name, permissions, oversight) VALUES ($1, $2, $3, $4) RETURNING id, name, permissions, oversight',
      [ctx.tenant.orgId, b.name, grid, b.oversight ?? false],
    );
    await ctx.emit('role.created', 'custom_role', String(firstRow(r.rows)['id']), { permissions: grid });
    return { status: 201, body: { role: r.rows[0] } };
  }),
  tenantRoute('PATCH', '/roles/{id}', async (ctx) => {
    need(ctx, 'settings', 'edit');
    const id = parseInput(uuid, ctx.req.params['id'], 'id');
    const b = parseInput(
      z.strictObject({
        name: z.optional(z.string().check(z.minLength(1), z.maxLength(100))),
        permissions: z.optional(permissionList),
        oversight: z.optional(z.boolean()),
      }),
      ctx.req.body,
    );
    if (b.name === undefined && b.permissions === undefined && b.oversight === undefined) {
      throw new GuardError('VALIDATION_FAILED', 'empty update', 'body');
    }
    // Nor gives it more than they hold: members of the role gain at most what the editor has.
    const held = await roleWithinReach(ctx, id);
    const grid =
      b.permissions === undefined ? undefined : narrow(b.permissions, ctx.tenant.permissions, 'PERMISSION_DENIED');
    const r = await ctx.tx.query(
      `UPDATE custom_roles SET name = coalesce($3, name), permissions = coalesce($4, permissions),
              oversight = coalesce($5, oversight)
        WHERE id = $1 AND org_id = $2 RETURNING id, name, permissions, oversight`,
      [id, ctx.tenant.orgId, b.name ?? null, grid ?? null, b.oversight ?? null],
    );
    await ctx.emit('role.updated', 'custom_role', id, {
      fields: Object.keys(b),
      ...(grid ? { permissions: grid, previous: held } : {}),
    });
    return { status: 200, body: { role: r.rows[0] } };
  }),
  tenantRoute('DELETE', '/roles/{id}', async (ctx) => {
    need(ctx, 'settings', 'delete');
    const id = parseInput(uuid, ctx.req.params['id'], 'id');
    const held = await roleWithinReach(ctx, id);
    // A role still assigned (to a live or revoked membership) stays: reassign first, so no history points nowhere.
    const used = await ctx.tx.query(
      'SELECT count(*)::int AS n FROM memberships WHERE org_id = $1 AND custom_role_id = $2',
      [ctx.tenant.orgId, id],
    );
    if (Number(used.rows[0]?.['n'] ?? 0) > 0) throw new GuardError('CONFLICT', 'role is assigned');
    await ctx.tx.query("SELECT app.delete_tenant_rows('custom_roles', ARRAY[$1]::uuid[])", [id]);
    await ctx.emit('role.deleted', 'custom_role', id, { permissions: held });
    return { status: 200, body: { deleted: id } };
  }),
];
