/**
 * Cold-start wiring shared by the tenant-keys functions: validated environment, AWS clients and the
 * database pool (IAM authentication through the RDS Proxy, TLS). Handlers stay thin adapters.
 */
import type { Pool } from 'pg';
import { createProxyPool, parseDatabaseEnv, type DatabaseConnection } from '../shared/db';
import * as z from 'zod/mini';
import { issueList } from '../shared/validation';

const DEPLOYMENT = /^[a-z][a-z0-9-]{1,30}[a-z0-9]$/;

export const baseEnvSchema = z.object({
  AWS_REGION: z.string().check(z.minLength(1)),
  DEPLOYMENT: z.string().check(z.regex(DEPLOYMENT)),
  ACCOUNT_ID: z.string().check(z.regex(/^\d{12}$/)),
});
/** The parsed environment: the function's own variables and its database connection. */
export type BaseEnv = z.infer<typeof baseEnvSchema> & { readonly database: DatabaseConnection };

export class ConfigurationError extends Error {
  constructor(problems: string[]) {
    // Names of the variables only, never their values.
    super(`invalid environment: ${problems.join('; ')}`);
    this.name = 'ConfigurationError';
  }
}

/** Parses `schema` and the database connection (`parseDatabaseEnv`, DB_*); one error names every problem. */
export function parseEnv<S extends z.ZodMiniType>(
  schema: S,
  env: NodeJS.ProcessEnv,
): z.infer<S> & { readonly database: DatabaseConnection } {
  const r = schema.safeParse(env);
  const problems = r.success ? [] : issueList(r.error);
  let database: DatabaseConnection | undefined;
  try {
    database = parseDatabaseEnv(env);
  } catch (e) {
    problems.push(e instanceof Error ? e.message : 'DB_ENV_INVALID');
  }
  if (!r.success || !database) throw new ConfigurationError(problems);
  return Object.assign({}, r.data as object, { database }) as z.infer<S> & { readonly database: DatabaseConnection };
}

/** The proxy pool every function uses (IAM token per connection, TLS, bounded waits). */
export function databasePool(env: { readonly database: DatabaseConnection }): Pool {
  return createProxyPool(env.database);
}
