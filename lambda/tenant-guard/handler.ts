/**
 * Lambda entry for the tenant API (API Gateway proxy integration). Environment is validated at
 * cold start; the database is reached through the RDS Proxy as `bulwark_app` with an IAM token per
 * connection (lambda/shared/db.ts); audit events go to the durable hash-chained `audit_log` (refusals
 * the database cannot attribute to the claimed organisation to the log, see RefusalLogSink); the
 * JWKS is fetched from the identity provider and cached by jose. The tenant-keys provisioner and
 * export bucket are named by PROVISIONER_FUNCTION and EXPORT_BUCKET (both, or neither).
 */
import { LambdaClient } from '@aws-sdk/client-lambda';
import { S3Client } from '@aws-sdk/client-s3';
import type { APIGatewayProxyEvent, APIGatewayProxyResult } from 'aws-lambda';
import { createRemoteJWKSet } from 'jose';
import type { Pool } from 'pg';
import { z } from 'zod';
import { PgAuditSink } from '../audit/pg-sink';
import { createProxyPool, parseDatabaseEnv } from '../shared/db';
import { createApi } from './api';
import { createVerifier } from './jwt';
import { RefusalLogSink } from './refusal-log-sink';

export const Env = z
  .object({
    JWT_ISSUER: z.url(),
    JWT_AUDIENCE: z.string().min(1),
    /** Name of the tenant-keys provisioner function. @default - tenant-keys routes unavailable */
    PROVISIONER_FUNCTION: z.string().min(1).max(140).optional(),
    /** Name of the tenant-keys export bucket. @default - tenant-keys routes unavailable */
    EXPORT_BUCKET: z
      .string()
      .regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/)
      .optional(),
  })
  .refine((e) => (e.PROVISIONER_FUNCTION === undefined) === (e.EXPORT_BUCKET === undefined), {
    message: 'PROVISIONER_FUNCTION and EXPORT_BUCKET are set together',
    path: ['PROVISIONER_FUNCTION'],
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
    ...(env.PROVISIONER_FUNCTION && env.EXPORT_BUCKET
      ? {
          tenantKeys: {
            lambda: new LambdaClient({}),
            provisionerFunction: env.PROVISIONER_FUNCTION,
            s3: new S3Client({}),
            exportBucket: env.EXPORT_BUCKET,
          },
        }
      : {}),
  });
}

let ready: ReturnType<typeof buildHandler> | undefined;

export const handler = async (event: APIGatewayProxyEvent): Promise<APIGatewayProxyResult> => {
  ready ??= buildHandler(Env.parse(process.env), createProxyPool(parseDatabaseEnv(process.env)));
  return ready(event);
};
