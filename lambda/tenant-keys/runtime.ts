/**
 * Cold-start wiring shared by the tenant-keys functions: validated environment, AWS clients and the
 * database pool (IAM authentication through the RDS Proxy, TLS). Handlers stay thin adapters.
 */
import type { Pool } from 'pg';
import { createProxyPool } from '../shared/db';
import { z } from 'zod';

const DEPLOYMENT = /^[a-z][a-z0-9-]{1,30}[a-z0-9]$/;

export const baseEnvSchema = z.object({
  AWS_REGION: z.string().min(1),
  DEPLOYMENT: z.string().regex(DEPLOYMENT),
  ACCOUNT_ID: z.string().regex(/^\d{12}$/),
  DB_HOST: z.string().min(1),
  DB_PORT: z.coerce.number().int().positive().default(5432),
  DB_NAME: z.string().min(1),
  DB_USER: z.string().min(1),
});
export type BaseEnv = z.infer<typeof baseEnvSchema>;

export class ConfigurationError extends Error {
  constructor(problems: string[]) {
    // Names of the variables only, never their values.
    super(`invalid environment: ${problems.join('; ')}`);
    this.name = 'ConfigurationError';
  }
}

export function parseEnv<S extends z.ZodType>(schema: S, env: NodeJS.ProcessEnv): z.infer<S> {
  const r = schema.safeParse(env);
  if (!r.success) throw new ConfigurationError(r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`));
  return r.data;
}

/** The proxy pool every function uses (IAM token per connection, TLS, bounded waits). */
export function databasePool(env: BaseEnv): Pool {
  return createProxyPool({
    host: env.DB_HOST,
    port: env.DB_PORT,
    database: env.DB_NAME,
    user: env.DB_USER,
    region: env.AWS_REGION,
  });
}
