/**
 * Support grants. platform_support staff open one on the caller (no tenant entered: they are no
 * member; the database function checks the platform role and the 4-hour limit again); the
 * organisation's Owner in person lists and revokes them.
 */
import { firstRow } from '../../shared/rows';
import * as z from 'zod/mini';
import { GuardError, parseInput } from '../errors';
import { callerRoute, tenantRead, tenantRoute, type Route } from '../route';
import { requireOwner, uuid } from './common';

export const SUPPORT_GRANT_ROUTES: readonly Route[] = [
  callerRoute('POST', '/support-grants', async (ctx) => {
    if (ctx.caller.platformRole !== 'platform_support' || ctx.caller.apiKey) throw new GuardError('PERMISSION_DENIED');
    const b = parseInput(
      z.strictObject({
        orgId: uuid,
        reason: z.string().check(z.trim(), z.minLength(10), z.maxLength(1000)),
        durationMinutes: z.number().check(z.int(), z.minimum(1)),
        scope: z.optional(z.enum(['read', 'read_write'])),
      }),
      ctx.req.body,
    );
    if (b.durationMinutes > 240) throw new GuardError('SUPPORT_GRANT_TOO_LONG');
    const r = await ctx.tx.query(
      `SELECT (g).id, (g).org_id, (g).expires_at, (g).scope
         FROM (SELECT app.open_support_grant($1, $2, $3, make_interval(mins => $4), $5) AS g) s`,
      [ctx.caller.userId, b.orgId, b.reason, b.durationMinutes, b.scope ?? 'read'],
    );
    const grant = firstRow(r.rows);
    const grantId = String(grant['id']);
    // Entered under the new grant (the gate checks it is live), so the opening is recorded in its own chain.
    await ctx.enter(ctx.caller.userId, b.orgId, grantId);
    await ctx.emit('support_grant.opened', 'support_grant', grantId, {});
    return { status: 201, body: { grant } };
  }),
  tenantRead('/support-grants', async (ctx) => {
    // The Owner in person: never an API key (its role is its minter's), never under a grant.
    requireOwner(ctx.tenant, false);
    const r = await ctx.tx.query(
      `SELECT g.id, g.granted_to, u.email AS granted_to_email, g.reason, g.scope, g.opened_at, g.expires_at,
              g.revoked_at FROM support_grants g LEFT JOIN users u ON u.id = g.granted_to
        WHERE g.org_id = $1 ORDER BY g.opened_at DESC`,
      [ctx.tenant.orgId],
    );
    return { status: 200, body: { grants: r.rows } };
  }),
  tenantRoute('DELETE', '/support-grants/{id}', async (ctx) => {
    requireOwner(ctx.tenant, true);
    const id = parseInput(uuid, ctx.req.params['id'], 'id');
    const r = await ctx.tx.query(
      `UPDATE support_grants SET revoked_at = now(), revoked_by = $3
        WHERE id = $1 AND org_id = $2 AND revoked_at IS NULL RETURNING id`,
      [id, ctx.tenant.orgId, ctx.tenant.userId],
    );
    if (!r.rows[0]) throw new GuardError('NOT_FOUND');
    await ctx.emit('support_grant.revoked', 'support_grant', id);
    return { status: 200, body: { revoked: id } };
  }),
];
