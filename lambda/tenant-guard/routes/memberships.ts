/**
 * Memberships (`users:*`). Nobody assigns a role wider than their own, and only an Owner makes,
 * changes or revokes an Owner. A role changes only through PATCH: POST grants a membership to a
 * person who has none (or reinstates a revoked one, under PATCH's rules) and refuses an active
 * member with MEMBERSHIP_EXISTS.
 */
import { firstRow } from '../../shared/rows';
import * as z from 'zod/mini';
import { GuardError, parseInput } from '../errors';
import { tenantRead, tenantRoute, type Route, type RouteContext } from '../route';
import { need, uuid } from './common';

const BUILTIN_ROLES = ['owner', 'admin', 'member', 'viewer'] as const;
const roleAssignment = z.union([
  z.strictObject({ role: z.enum(BUILTIN_ROLES) }),
  z.strictObject({ role: z.literal('custom'), customRoleId: uuid }),
]);
type RoleAssignment = z.infer<typeof roleAssignment>;

/** The grid of a role assignment in this organisation (built-in or custom). */
async function gridOf(ctx: RouteContext<'tenant'>, a: RoleAssignment): Promise<string[]> {
  const r =
    a.role === 'custom'
      ? await ctx.tx.query('SELECT permissions FROM custom_roles WHERE id = $1 AND org_id = $2', [
          a.customRoleId,
          ctx.tenant.orgId,
        ])
      : await ctx.tx.query('SELECT app.builtin_role_permissions($1) AS permissions', [a.role]);
  const grid = r.rows[0]?.['permissions'] as string[] | undefined;
  if (!grid) throw new GuardError('NOT_FOUND', 'role');
  return grid;
}

/** Nobody hands out more than they hold; only an Owner makes Owners. */
async function assertAssignable(ctx: RouteContext<'tenant'>, a: RoleAssignment): Promise<void> {
  if (a.role === 'owner' && ctx.tenant.role !== 'owner') throw new GuardError('PERMISSION_DENIED');
  const grid = await gridOf(ctx, a);
  if (!grid.every((p) => ctx.tenant.permissions.includes(p))) throw new GuardError('PERMISSION_DENIED');
}

/** Only an Owner changes or revokes an Owner's membership (a revoked one included). */
function assertReachable(ctx: RouteContext<'tenant'>, currentRole: unknown): void {
  if (currentRole === 'owner' && ctx.tenant.role !== 'owner') throw new GuardError('PERMISSION_DENIED');
}

/** The membership `id` of this organisation. */
async function membership(ctx: RouteContext<'tenant'>, id: string): Promise<Record<string, unknown>> {
  const r = await ctx.tx.query('SELECT role FROM memberships WHERE id = $1 AND org_id = $2', [id, ctx.tenant.orgId]);
  if (!r.rows[0]) throw new GuardError('NOT_FOUND');
  return r.rows[0];
}

export const MEMBERSHIP_ROUTES: readonly Route[] = [
  tenantRead('/memberships', async (ctx) => {
    need(ctx, 'users', 'view');
    const r = await ctx.tx.query(
      `SELECT m.id, m.user_id, u.email, m.role, m.custom_role_id, m.status, m.created_at
         FROM memberships m JOIN users u ON u.id = m.user_id WHERE m.org_id = $1 ORDER BY m.created_at`,
      [ctx.tenant.orgId],
    );
    return { status: 200, body: { memberships: r.rows } };
  }),
  tenantRoute('POST', '/memberships', async (ctx) => {
    need(ctx, 'users', 'create');
    const b = parseInput(
      z.intersection(
        z.object({
          subject: z.string().check(z.minLength(1), z.maxLength(255)),
          email: z.email().check(z.maxLength(320)),
        }),
        z.union([
          z.object({ role: z.enum(BUILTIN_ROLES) }),
          z.object({ role: z.literal('custom'), customRoleId: uuid }),
        ]),
      ),
      ctx.req.body,
    );
    const assignment: RoleAssignment =
      b.role === 'custom' ? { role: b.role, customRoleId: b.customRoleId } : { role: b.role };
    await assertAssignable(ctx, assignment);
    const user = await ctx.tx.query('SELECT id FROM app.resolve_user($1, $2)', [b.subject, b.email]);
    const userId = firstRow(user.rows)['id'];
    const customRoleId = b.role === 'custom' ? b.customRoleId : null;
    const existing = (
      await ctx.tx.query('SELECT role, status FROM memberships WHERE org_id = $1 AND user_id = $2 FOR UPDATE', [
        ctx.tenant.orgId,
        userId,
      ])
    ).rows[0];
    let r;
    if (existing) {
      // An active member's role changes through PATCH (and its audit event), never by a second grant.
      if (existing['status'] === 'active') throw new GuardError('MEMBERSHIP_EXISTS');
      assertReachable(ctx, existing['role']);
      r = await ctx.tx.query(
        `UPDATE memberships SET role = $3, custom_role_id = $4, status = 'active', revoked_at = NULL
          WHERE org_id = $1 AND user_id = $2 RETURNING id, user_id, role, custom_role_id, status`,
        [ctx.tenant.orgId, userId, b.role, customRoleId],
      );
    } else {
      // A concurrent grant for the same person fails the unique key: CONFLICT, nothing changed.
      r = await ctx.tx.query(
        `INSERT INTO memberships (org_id, user_id, role, custom_role_id) VALUES ($1, $2, $3, $4)
         RETURNING id, user_id, role, custom_role_id, status`,
        [ctx.tenant.orgId, userId, b.role, customRoleId],
      );
    }
    await ctx.emit('membership.granted', 'membership', String(firstRow(r.rows)['id']), { role: b.role });
    return { status: 201, body: { membership: r.rows[0] } };
  }),
  tenantRoute('PATCH', '/memberships/{id}', async (ctx) => {
    need(ctx, 'users', 'edit');
    const id = parseInput(uuid, ctx.req.params['id'], 'id');
    const a = parseInput(roleAssignment, ctx.req.body);
    await assertAssignable(ctx, a);
    assertReachable(ctx, (await membership(ctx, id))['role']);
    const r = await ctx.tx.query(
      'UPDATE memberships SET role = $3, custom_role_id = $4 WHERE id = $1 AND org_id = $2 RETURNING id, role, custom_role_id',
      [id, ctx.tenant.orgId, a.role, a.role === 'custom' ? a.customRoleId : null],
    );
    await ctx.emit('membership.role_changed', 'membership', id, { role: a.role });
    return { status: 200, body: { membership: r.rows[0] } };
  }),
  tenantRoute('DELETE', '/memberships/{id}', async (ctx) => {
    need(ctx, 'users', 'delete');
    const id = parseInput(uuid, ctx.req.params['id'], 'id');
    assertReachable(ctx, (await membership(ctx, id))['role']);
    await ctx.tx.query(
      "UPDATE memberships SET status = 'revoked', revoked_at = now() WHERE id = $1 AND org_id = $2 AND status = 'active'",
      [id, ctx.tenant.orgId],
    );
    await ctx.emit('membership.revoked', 'membership', id);
    return { status: 200, body: { revoked: id } };
  }),
];
