/**
 * Lambda entry for the tenant API (API Gateway proxy integration). Environment is validated at
 * cold start; the database is reached through the RDS Proxy as `bulwark_app` with an IAM token per
 * connection (lambda/shared/db.ts); audit events go to the durable hash-chained `audit_log` (refusals
 * the database cannot attribute to the claimed organisation to the log, see RefusalLogSink); the
 * JWKS is fetched from the identity provider and cached by jose.
 */
import type { APIGatewayProxyEvent, APIGatewayProxyResult } from 'aws-lambda';
import { createRemoteJWKSet } from 'jose';
import type { Pool } from 'pg';
import { z } from 'zod';
import { PgAuditSink } from '../audit/pg-sink';
import { createProxyPool, parseDatabaseEnv } from '../shared/db';
import { createApi } from './api';
import { createVerifier } from './jwt';
import { RefusalLogSink } from './refusal-log-sink';

export const Env = z.object({
  JWT_ISSUER: z.url(),
  JWT_AUDIENCE: z.string().min(1),
});
export type Env = z.infer<typeof Env>;

/** Wires the API to its pool; the pool is injected so tests run it against a real PostgreSQL. */
export function buildHandler(env: Env, pool: Pool): (event: APIGatewayProxyEvent) => Promise<APIGatewayProxyResult> {
  return createApi({
    db: pool,
    verify: createVerifier({
      issuer: env.JWT_ISSUER,
      audience: env.JWT_AUDIENCE,
      keys: createRemoteJWKSet(new URL(`${env.JWT_ISSUER}/.well-known/jwks.json`)),
    }),
    audit: new RefusalLogSink(new PgAuditSink({ pool })),
  });
}

let ready: ReturnType<typeof buildHandler> | undefined;

export const handler = async (event: APIGatewayProxyEvent): Promise<APIGatewayProxyResult> => {
  ready ??= buildHandler(Env.parse(process.env), createProxyPool(parseDatabaseEnv(process.env)));
  return ready(event);
};
