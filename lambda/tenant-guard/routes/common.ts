/** Checks and schemas the route modules share. */
import * as z from 'zod/mini';
import { GuardError } from '../errors';
import type { TenantContext } from '../guard';
import { UUID } from '../../../contracts/ids';
import { ALL_PERMISSIONS, requirePermission, type Action, type Module } from '../permissions';
import type { RouteContext, TenantKeysApiDeps } from '../route';

export const uuid = z.string().check(z.regex(UUID));

/** The caller's grid in the entered tenant allows `module:action`. */
export function need(ctx: RouteContext<'tenant'>, module: Module, action: Action): void {
  requirePermission(ctx.tenant, module, action);
}

/** The Owner, acting as themself (not an API key, not support staff), in a writable context. */
export function requireOwner(t: TenantContext, write: boolean): void {
  if (t.actorType !== 'user' || t.supportGrantId !== null || t.role !== 'owner' || (write && !t.writable)) {
    throw new GuardError('PERMISSION_DENIED', 'owner only');
  }
}

/** People only, never under a support grant (caller routes enter no tenant, so the header is refused). */
export function requirePerson(ctx: RouteContext<'caller'>): void {
  if (ctx.caller.apiKey || ctx.supportGrant) throw new GuardError('PERMISSION_DENIED', 'people only');
}

/** The provisioner and export bucket, or TENANT_KEYS_UNAVAILABLE. */
export function requireTenantKeys(ctx: RouteContext): TenantKeysApiDeps {
  if (!ctx.tenantKeys) throw new GuardError('TENANT_KEYS_UNAVAILABLE');
  return ctx.tenantKeys;
}

export const iso = (v: unknown): string | null =>
  v === null || v === undefined ? null : new Date(v as string).toISOString();

export const DAY_MS = 86_400_000;

/** A grid in a request body (custom roles, API keys); `narrow` checks its members. */
export const permissionList = z.array(z.string()).check(z.maxLength(ALL_PERMISSIONS.length));
