/**
 * The tenant's lifecycle (docs/tenant-keys.md "HTTP routes"). Reading and restoring a tenant are
 * caller routes: they must work in its grace period, when the organisation is suspended and no
 * tenant context can be entered. The database functions of migrations/0300 re-check every rule
 * (Owner only, never under a support grant, state transitions).
 */
import { firstRow } from '../../shared/rows';
import * as z from 'zod/mini';
import { GRACE_PERIOD_DAYS } from '../../tenant-keys/lifecycle';
import { GuardError, parseInput } from '../errors';
import { callerRoute, tenantRoute, type Route } from '../route';
import { DAY_MS, iso, requireOwner, requirePerson } from './common';

/** The longest billing period a cancellation may name (an annual plan, with slack). */
export const MAX_BILLING_PERIOD_DAYS = 400;

export const TENANT_ROUTES: readonly Route[] = [
  callerRoute('GET', '/tenant', async (ctx) => {
    requirePerson(ctx);
    // Any active member, in every lifecycle state; the ARN only to the Owner (database decides).
    const r = await ctx.tx.query('SELECT * FROM app.tenant_overview($1, $2)', [ctx.caller.userId, ctx.orgId]);
    const t = r.rows[0];
    if (!t) throw new GuardError('TENANT_NOT_FOUND');
    return {
      status: 200,
      body: {
        tenant: {
          orgId: t['org_id'],
          name: t['name'],
          plan: t['plan'],
          status: t['status'],
          role: t['role'],
          lifecycleState: t['lifecycle_state'],
          cancelledAt: iso(t['cancelled_at']),
          accessUntil: iso(t['access_until']),
          graceEndsAt: iso(t['grace_ends_at']),
          key: {
            expected: t['key_expected'],
            source: t['key_source'],
            set: t['key_set'] === true,
            ...(t['role'] === 'owner' ? { arn: t['key_arn'] } : {}),
          },
        },
      },
    };
  }),
  callerRoute('POST', '/tenant/restore', async (ctx) => {
    requirePerson(ctx);
    if (ctx.req.body !== undefined) parseInput(z.strictObject({}), ctx.req.body);
    // The database checks the live Owner (or a platform owner) and the state and deadline.
    const r = await ctx.tx.query('SELECT org_id, previous_state FROM app.restore_tenant($1, $2)', [
      ctx.caller.userId,
      ctx.orgId,
    ]);
    const from = String(firstRow(r.rows)['previous_state']);
    // Active again, so the Owner can enter it (a platform owner, not a member, cannot: Owners only).
    await ctx.enter(ctx.caller.userId, ctx.orgId);
    await ctx.emit('tenant.restored', 'organisation', ctx.orgId, { from });
    return { status: 200, body: { tenant: { orgId: ctx.orgId, lifecycleState: 'active', restoredFrom: from } } };
  }),
  tenantRoute('POST', '/tenant/cancel', async (ctx) => {
    requireOwner(ctx.tenant, true);
    const b = parseInput(z.strictObject({ accessUntil: z.iso.datetime({ offset: true }) }), ctx.req.body);
    const until = new Date(b.accessUntil);
    const at = ctx.now();
    // The end of the paid billing period: not past, and not beyond the longest period sold.
    if (until.getTime() < at.getTime() || until.getTime() > at.getTime() + MAX_BILLING_PERIOD_DAYS * DAY_MS) {
      throw new GuardError('INVALID_BILLING_PERIOD');
    }
    const r = await ctx.tx.query(
      'SELECT org_id, lifecycle_state, cancelled_at, access_until FROM app.cancel_tenant($1)',
      [until],
    );
    const row = firstRow(r.rows);
    await ctx.emit('tenant.cancelled', 'organisation', ctx.tenant.orgId, { accessUntil: iso(row['access_until']) });
    const accessUntil = new Date(row['access_until'] as string);
    return {
      status: 200,
      body: {
        tenant: {
          orgId: ctx.tenant.orgId,
          lifecycleState: row['lifecycle_state'],
          cancelledAt: iso(row['cancelled_at']),
          accessUntil: accessUntil.toISOString(),
          // Where the grace period will end if nobody restores the tenant.
          graceEndsAt: new Date(accessUntil.getTime() + GRACE_PERIOD_DAYS * DAY_MS).toISOString(),
        },
      },
    };
  }),
];
