/**
 * Matches a request to a route. Called inside the API's error boundary: a path parameter that is
 * not valid percent-encoding (`/leads/%E0%A4%A`) is a VALIDATION_FAILED refusal naming the
 * parameter, like any other malformed input, never an exception out of the handler.
 */
import { isTenantRoutePrefix } from '../../contracts/tenant-api';
import { GuardError } from './errors';
import type { Route } from './route';

export interface Match {
  readonly route: Route;
  readonly params: Readonly<Record<string, string>>;
}

export type Router = (method: string, path: string) => Match | null;

interface Compiled {
  readonly route: Route;
  readonly pattern: RegExp;
  readonly keys: readonly string[];
}

function compile(route: Route): Compiled {
  // API Gateway forwards only the contract's prefixes: a route outside them could never be reached.
  const prefix = route.path.split('/')[1] ?? '';
  if (!isTenantRoutePrefix(prefix))
    throw new Error(`${route.method} ${route.path}: /${prefix} is not a tenant route prefix`);
  const keys: string[] = [];
  const pattern = new RegExp(
    `^${route.path.replace(/\{(\w+)\}/g, (_m, k: string) => {
      keys.push(k);
      return '([^/]+)';
    })}$`,
  );
  return { route, pattern, keys };
}

function decode(value: string, name: string): string {
  try {
    return decodeURIComponent(value);
  } catch {
    throw new GuardError('VALIDATION_FAILED', 'malformed percent-encoding', name);
  }
}

/** The first route (in `routes` order) whose method and path match; null when none does. */
export function createRouter(routes: readonly Route[]): Router {
  const compiled = routes.map(compile);
  return (method, path) => {
    for (const c of compiled) {
      if (c.route.method !== method) continue;
      const m = c.pattern.exec(path);
      if (!m) continue;
      return { route: c.route, params: Object.fromEntries(c.keys.map((k, i) => [k, decode(m[i + 1] ?? '', k)])) };
    }
    return null;
  };
}
