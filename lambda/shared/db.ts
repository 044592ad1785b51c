/**
 * The one way functions connect to PostgreSQL: a `pg.Pool` through the RDS Proxy, TLS with
 * certificate verification, and a fresh IAM authentication token for every new connection (tokens
 * live 15 minutes; the proxy refuses passwords). No password exists anywhere in the function.
 */
import { Pool, type PoolClient, type PoolConfig } from 'pg';
import * as z from 'zod/mini';
import { credentialsFromEnv, rdsAuthToken } from './rds-auth-token';
import { issueList } from './validation';

/** Where and as whom a function connects. */
export interface DatabaseConnection {
  /** The RDS Proxy endpoint. */
  readonly host: string;
  readonly port: number;
  readonly database: string;
  /** The function's own database user (`proxy.grantConnect(fn, user)`). */
  readonly user: string;
  /** Region the token is signed for. */
  readonly region: string;
}

const envSchema = z.object({
  DB_HOST: z.string().check(z.minLength(1)),
  // Required: the construct sets the proxy's port; a missing one is a wiring error, not 5432.
  DB_PORT: z.coerce.number().check(z.int(), z.minimum(1), z.maximum(65_535)),
  DB_NAME: z.string().check(z.minLength(1)),
  DB_USER: z.string().check(z.regex(/^[a-z_][a-z0-9_]{0,62}$/, 'must be a PostgreSQL role name')),
  AWS_REGION: z.string().check(z.minLength(1)),
});

/** Reads `DB_HOST`, `DB_PORT`, `DB_NAME`, `DB_USER` and `AWS_REGION`; one error names every bad variable, never a value. */
export function parseDatabaseEnv(env: Readonly<Record<string, string | undefined>>): DatabaseConnection {
  const r = envSchema.safeParse(env);
  if (!r.success) {
    throw new Error(`DB_ENV_INVALID: ${issueList(r.error).join('; ')}`);
  }
  return {
    host: r.data.DB_HOST,
    port: r.data.DB_PORT,
    database: r.data.DB_NAME,
    user: r.data.DB_USER,
    region: r.data.AWS_REGION,
  };
}

/** Issues the IAM authentication token a new connection presents (rds-auth-token.ts). */
export interface AuthTokenSigner {
  getAuthToken(): Promise<string>;
}

export interface ProxyPoolOptions {
  /**
   * @default a token for the connection's host, port, user and region, signed with the role
   * credentials Lambda puts in the function's environment
   */
  readonly signer?: AuthTokenSigner;
  /** @default 2 (a Lambda environment serves one request at a time) */
  readonly max?: number;
  /** @default 60 seconds */
  readonly idleTimeoutMillis?: number;
  /** @default 10 seconds */
  readonly connectionTimeoutMillis?: number;
  /**
   * TLS options. Proxy certificates chain to Amazon's public CAs, which Node.js trusts.
   * @default { rejectUnauthorized: true }
   */
  readonly ssl?: PoolConfig['ssl'];
  /** @default `new Pool(config)` */
  readonly createPool?: (config: PoolConfig) => Pool;
  /**
   * Pipelining (pg's `pipeline` mode): statements sent without awaiting the previous one share a
   * round trip, each with its own Sync, so an error aborts the transaction for those behind it
   * instead of skipping them. The tenant API pipelines BEGIN with the gate's statement, and a
   * read's statement with COMMIT (docs/tenancy.md "Cost of the gate"). Not for cursors or
   * `rows`-limited queries, which pg refuses in this mode.
   * @default false
   */
  readonly pipeline?: boolean;
}

export function createProxyPool(connection: DatabaseConnection, options: ProxyPoolOptions = {}): Pool {
  const signer =
    options.signer ??
    ({
      getAuthToken: async () =>
        rdsAuthToken({
          hostname: connection.host,
          port: connection.port,
          username: connection.user,
          region: connection.region,
          credentials: credentialsFromEnv(process.env),
          now: new Date(),
        }),
    } satisfies AuthTokenSigner);
  const config: PoolConfig = {
    host: connection.host,
    port: connection.port,
    database: connection.database,
    user: connection.user,
    // pg calls this for every new connection, so each one gets a current token.
    password: () => signer.getAuthToken(),
    ssl: options.ssl ?? { rejectUnauthorized: true },
    max: options.max ?? 2,
    idleTimeoutMillis: options.idleTimeoutMillis ?? 60_000,
    connectionTimeoutMillis: options.connectionTimeoutMillis ?? 10_000,
    ...(options.pipeline ? { pipeline: true } : {}),
  };
  return (options.createPool ?? ((c) => new Pool(c)))(config);
}

/**
 * Runs `fn` in one transaction on a pooled connection: COMMIT when it resolves; ROLLBACK (best
 * effort) and rethrow when anything fails; the connection always goes back to the pool.
 */
export async function withTransaction<T>(
  pool: Pick<Pool, 'connect'>,
  fn: (client: PoolClient) => Promise<T>,
  isolation?: 'REPEATABLE READ' | 'SERIALIZABLE',
): Promise<T> {
  const client = await pool.connect();
  try {
    await client.query(isolation ? `BEGIN ISOLATION LEVEL ${isolation}` : 'BEGIN');
    const out = await fn(client);
    await client.query('COMMIT');
    return out;
  } catch (e) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw e;
  } finally {
    client.release();
  }
}
