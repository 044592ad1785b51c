/**
 * Lambda entry for the tenant API (API Gateway proxy integration). Environment is validated at
 * cold start; the database password comes from Secrets Manager (client injected for tests); the
 * JWKS is fetched from the identity provider and cached by jose.
 */
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import type { APIGatewayProxyEvent, APIGatewayProxyResult } from 'aws-lambda';
import { createRemoteJWKSet } from 'jose';
import { Pool } from 'pg';
import { z } from 'zod';
import { createApi } from './api';
import { createVerifier } from './jwt';
import { LogAuditSink } from './log-audit-sink';

export const Env = z.object({
  DB_HOST: z.string().min(1),
  DB_PORT: z.coerce.number().int().min(1).max(65535).default(5432),
  DB_NAME: z.string().min(1),
  DB_SECRET_ARN: z.string().startsWith('arn:'),
  JWT_ISSUER: z.url(),
  JWT_AUDIENCE: z.string().min(1),
});
export type Env = z.infer<typeof Env>;

const DbSecret = z.object({ username: z.string().min(1), password: z.string().min(1) });

export async function buildHandler(
  env: Env,
  secrets: Pick<SecretsManagerClient, 'send'>,
): Promise<(event: APIGatewayProxyEvent) => Promise<APIGatewayProxyResult>> {
  const out = await secrets.send(new GetSecretValueCommand({ SecretId: env.DB_SECRET_ARN }));
  const creds = DbSecret.parse(JSON.parse(out.SecretString ?? '{}'));
  const pool = new Pool({
    host: env.DB_HOST,
    port: env.DB_PORT,
    database: env.DB_NAME,
    user: creds.username,
    password: creds.password,
    ssl: { rejectUnauthorized: true },
    max: 2,
    idleTimeoutMillis: 60_000,
  });
  return createApi({
    db: pool,
    verify: createVerifier({
      issuer: env.JWT_ISSUER,
      audience: env.JWT_AUDIENCE,
      keys: createRemoteJWKSet(new URL(`${env.JWT_ISSUER}/.well-known/jwks.json`)),
    }),
    audit: new LogAuditSink(),
  });
}

let ready: ReturnType<typeof buildHandler> | undefined;

export const handler = async (event: APIGatewayProxyEvent): Promise<APIGatewayProxyResult> => {
  ready ??= buildHandler(Env.parse(process.env), new SecretsManagerClient({}));
  return (await ready)(event);
};
