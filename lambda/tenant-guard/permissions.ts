/**
 * The permission grid: modules x actions, `module:action`. Mirrors app.modules()/app.actions() in
 * the database (a test keeps them equal). `require` is strict: an unknown module, action or role
 * is refused, never allowed by fallthrough.
 */
import { GuardError } from './errors';

export const MODULES = [
  'leads',
  'customers',
  'vehicles',
  'deals',
  'messages',
  'calls',
  'users',
  'settings',
  'audit',
  'billing',
] as const;
export const ACTIONS = ['view', 'create', 'edit', 'delete'] as const;
export const ROLES = ['owner', 'admin', 'member', 'viewer', 'custom', 'platform_support'] as const;

export type Module = (typeof MODULES)[number];
export type Action = (typeof ACTIONS)[number];
export type Role = (typeof ROLES)[number];
export type Permission = `${Module}:${Action}`;

export const ALL_PERMISSIONS: readonly Permission[] = MODULES.flatMap((m) => ACTIONS.map((a) => `${m}:${a}` as const));

export function isPermission(p: unknown): p is Permission {
  return typeof p === 'string' && (ALL_PERMISSIONS as readonly string[]).includes(p);
}

export interface Grid {
  readonly role: string;
  readonly permissions: readonly string[];
}

/** Throws PERMISSION_DENIED unless `grid` allows `module:action`. Strict: unknowns are refused. */
export function requirePermission(grid: Grid, module: string, action: string): void {
  if (!(MODULES as readonly string[]).includes(module)) throw new GuardError('PERMISSION_DENIED', 'unknown module');
  if (!(ACTIONS as readonly string[]).includes(action)) throw new GuardError('PERMISSION_DENIED', 'unknown action');
  if (!(ROLES as readonly string[]).includes(grid.role)) throw new GuardError('PERMISSION_DENIED', 'unknown role');
  if (!grid.permissions.includes(`${module}:${action}`)) throw new GuardError('PERMISSION_DENIED');
}

/** A grid (API key, custom role) that may only be a subset of the grantor's own grid. */
export function narrow(
  requested: readonly unknown[],
  granted: readonly string[],
  refusal: 'API_KEY_EXCEEDS_ROLE' | 'PERMISSION_DENIED' = 'API_KEY_EXCEEDS_ROLE',
): Permission[] {
  const out: Permission[] = [];
  for (const p of requested) {
    if (!isPermission(p) || !granted.includes(p)) throw new GuardError(refusal);
    if (!out.includes(p)) out.push(p);
  }
  return out;
}
