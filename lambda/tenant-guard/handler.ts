/**
 * Lambda entry for the tenant API (API Gateway proxy integration). Environment is validated at
 * cold start; the database is reached through the RDS Proxy as `bulwark_app` with an IAM token per
 * connection (lambda/shared/db.ts); audit events go to the durable hash-chained `audit_log` (refusals
 * the database cannot attribute to the claimed organisation to the log, see RefusalLogSink). Bearer
 * tokens are verified by the REQUEST authorizer in front of every route (authorizer-handler.ts).
 */
import { KMSClient } from '@aws-sdk/client-kms';
import type { APIGatewayProxyEvent, APIGatewayProxyResult } from 'aws-lambda';
import type { Pool } from 'pg';
import { PgAuditSink } from '../audit/pg-sink';
import { createProxyPool, parseDatabaseEnv } from '../shared/db';
import type { SecretCipher } from '../shared/secret-cipher';
import { EnvelopeCipher } from '../tenant-keys/envelope-cipher';
import { PgTenantKeyStore, pgTenantKeyResolver } from '../tenant-keys/pg-stores';
import { createApi } from './api';
import { RefusalLogSink } from './refusal-log-sink';

/** Wires the API to its pool; the pool is injected so tests run it against a real PostgreSQL. */
export function buildHandler(
  pool: Pool,
  cipher?: SecretCipher,
): (event: APIGatewayProxyEvent) => Promise<APIGatewayProxyResult> {
  // No token verifier: the function has no route to the identity provider's JWKS (the VPC has no
  // internet path), so it honours only the edge authorizer's verdicts and checks API keys itself.
  return createApi({ db: pool, audit: new RefusalLogSink(new PgAuditSink({ pool })), cipher });
}

let ready: ReturnType<typeof buildHandler> | undefined;

export const handler = async (event: APIGatewayProxyEvent): Promise<APIGatewayProxyResult> => {
  if (!ready) {
    const pool = createProxyPool(parseDatabaseEnv(process.env));
    // Per-organisation secrets are sealed under the tenant's own KMS key (org_id context).
    const cipher = new EnvelopeCipher({
      kms: new KMSClient({}),
      keyFor: pgTenantKeyResolver(new PgTenantKeyStore(pool)),
    });
    ready = buildHandler(pool, cipher);
  }
  return ready(event);
};
