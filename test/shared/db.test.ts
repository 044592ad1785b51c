/**
 * The shared connection helper: every connection gets a fresh token from the signer as its
 * password (proved against a real PostgreSQL), TLS verification is on, and the environment is
 * validated without echoing values.
 */
import type { PoolConfig } from 'pg';
import { Pool } from 'pg';
import { createProxyPool, parseDatabaseEnv, type DatabaseConnection } from '../../lambda/shared/db';
import { APP_ROLE, startPostgres, type TestPostgres } from '../support/postgres';

const connection: DatabaseConnection = {
  host: 'proxy.example.internal',
  port: 5432,
  database: 'bulwark',
  user: 'bulwark_app',
  region: 'eu-west-1',
};

describe('createProxyPool', () => {
  it('passes a function password that asks the signer, verifies TLS, and holds no password string', async () => {
    let issued = 0;
    const signer = { getAuthToken: jest.fn(async (): Promise<string> => `token-${++issued}`) };
    let seen: PoolConfig | undefined;
    const pool = createProxyPool(connection, {
      signer,
      createPool: (c) => {
        seen = c;
        return new Pool(c);
      },
    });
    expect(seen).toMatchObject({
      host: connection.host,
      port: 5432,
      database: 'bulwark',
      user: 'bulwark_app',
      ssl: { rejectUnauthorized: true },
      max: 2,
    });
    const password = seen?.password;
    if (typeof password !== 'function') throw new Error('the pool was not given a password function');
    expect(signer.getAuthToken).not.toHaveBeenCalled();
    await expect(password()).resolves.toBe('token-1');
    await expect(password()).resolves.toBe('token-2');
    expect(JSON.stringify(seen)).not.toContain('token');
    await pool.end();
  });

  it('pipelines only when asked (the tenant API asks)', async () => {
    const seen: PoolConfig[] = [];
    const signer = { getAuthToken: async () => 'unused' };
    for (const options of [{}, { pipeline: true }]) {
      const pool = createProxyPool(connection, {
        ...options,
        signer,
        createPool: (c) => {
          seen.push(c);
          return new Pool(c);
        },
      });
      await pool.end();
    }
    expect(seen.map((c) => c.pipeline)).toEqual([undefined, true]);
  });

  describe('against PostgreSQL', () => {
    let pg: TestPostgres;
    beforeAll(async () => {
      pg = await startPostgres({ migrate: false });
    });
    afterAll(async () => pg?.stop());

    it('authenticates each new connection with a token from the signer', async () => {
      // The test server takes the role's password where the proxy takes the IAM token.
      const signer = { getAuthToken: jest.fn(async () => 'test-only-password') };
      const pool = createProxyPool(
        { ...connection, host: '127.0.0.1', port: pg.port, database: pg.database, user: APP_ROLE },
        // No connect timeout: on a busy machine a slow handshake must not pass for a refusal.
        { signer, ssl: false, connectionTimeoutMillis: 0 },
      );
      try {
        const [a, b] = await Promise.all([pool.connect(), pool.connect()]);
        const r = await a.query('SELECT current_user AS u');
        expect(r.rows[0]).toEqual({ u: APP_ROLE });
        a.release();
        b.release();
        expect(signer.getAuthToken).toHaveBeenCalledTimes(2);
      } finally {
        await pool.end();
      }
    });

    it('fails to connect when the signer returns a wrong token', async () => {
      const pool = createProxyPool(
        { ...connection, host: '127.0.0.1', port: pg.port, database: pg.database, user: APP_ROLE },
        { signer: { getAuthToken: async () => 'not-the-token' }, ssl: false, connectionTimeoutMillis: 0 },
      );
      try {
        await expect(pool.query('SELECT 1')).rejects.toThrow(/password authentication failed/);
      } finally {
        await pool.end();
      }
    });
  });
});

describe('parseDatabaseEnv', () => {
  it('reads the connection', () => {
    expect(
      parseDatabaseEnv({
        DB_HOST: 'h',
        DB_PORT: '6432',
        DB_NAME: 'bulwark',
        DB_USER: 'bulwark_app',
        AWS_REGION: 'eu-west-1',
      }),
    ).toEqual({ host: 'h', port: 6432, database: 'bulwark', user: 'bulwark_app', region: 'eu-west-1' });
  });

  it('requires the port: a missing one is a wiring error, never silently the engine default', () => {
    expect(() =>
      parseDatabaseEnv({ DB_HOST: 'h', DB_NAME: 'bulwark', DB_USER: 'bulwark_app', AWS_REGION: 'eu-west-1' }),
    ).toThrow(/^DB_ENV_INVALID: DB_PORT/);
  });

  it('names every invalid variable and never echoes a value', () => {
    const run = () =>
      parseDatabaseEnv({
        DB_HOST: '',
        DB_PORT: '99999',
        DB_NAME: 'bulwark',
        DB_USER: 'Robert"; DROP',
        AWS_REGION: 'x',
      });
    expect(run).toThrow(/^DB_ENV_INVALID: .*DB_HOST.*DB_PORT.*DB_USER/);
    expect(run).toThrow(expect.objectContaining({ message: expect.not.stringContaining('DROP') }));
  });
});
