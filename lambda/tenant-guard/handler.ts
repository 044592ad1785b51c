/**
 * Lambda entry for the tenant API (API Gateway proxy integration). Environment is validated at
 * cold start; the database is reached through the RDS Proxy as `bulwark_app` with an IAM token per
 * connection (lambda/shared/db.ts); audit events go to the durable hash-chained `audit_log` (refusals
 * the database cannot attribute to the claimed organisation to the log, see RefusalLogSink). Bearer
 * tokens are verified by the REQUEST authorizer in front of every route (authorizer-handler.ts).
 * The tenant-keys provisioner and export bucket are named by PROVISIONER_FUNCTION and EXPORT_BUCKET
 * (both, or neither).
 */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { KMSClient } from '@aws-sdk/client-kms';
import type { LambdaClient } from '@aws-sdk/client-lambda';
import { S3Client } from '@aws-sdk/client-s3';
import type { APIGatewayProxyEvent, APIGatewayProxyResult, Context } from 'aws-lambda';
import type { Pool } from 'pg';
import * as z from 'zod/mini';
import { PgAuditSink } from '../audit/pg-sink';
import { createProxyPool, parseDatabaseEnv } from '../shared/db';
import { createObservability, observed, type Log } from '../shared/observability';
import { onFirstUse, sdkRetries } from '../shared/sdk';
import { createTracer } from '../shared/tracing';
import type { SqlClient } from '../shared/migrations';
import type { SecretCipher } from '../shared/secret-cipher';
import { DataKeyCache } from '../tenant-keys/data-key-cache';
import { EnvelopeCipher } from '../tenant-keys/envelope-cipher';
import { contextTenantKeyResolver } from '../tenant-keys/pg-stores';
import { TENANT_BUDGET_METRICS } from '../../contracts/rate-limits';
import { createApi } from './api';
import { RefusalLogSink } from './refusal-log-sink';
import { createTenantBudget, type TenantBudget } from './tenant-budget';
import type { FilesApiDeps, TenantKeysApiDeps } from './api';

export const Env = z
  .object({
    /** Name of the tenant-keys provisioner function. @default - tenant-keys routes unavailable */
    PROVISIONER_FUNCTION: z.optional(z.string().check(z.minLength(1), z.maxLength(140))),
    /** Name of the tenant-keys export bucket. @default - tenant-keys routes unavailable */
    EXPORT_BUCKET: z.optional(z.string().check(z.regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/))),
    /** The tenant file store's bucket. @default - the file routes answer FILES_UNAVAILABLE */
    FILES_BUCKET: z.optional(z.string().check(z.regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/))),
    /** The per-tenant budget's counter table (docs/rate-limits.md). @default - no per-tenant budget */
    TENANT_BUDGET_TABLE: z.optional(z.string().check(z.regex(/^[A-Za-z0-9_.-]{3,255}$/))),
    /** Requests per organisation per minute; set with TENANT_BUDGET_TABLE. */
    TENANT_BUDGET_PER_MINUTE: z.optional(z.coerce.number().check(z.int(), z.minimum(1), z.maximum(10_000_000))),
    /** How long a request waits for DynamoDB before it goes on uncounted. @default 100 */
    TENANT_BUDGET_TIMEOUT_MS: z.optional(z.coerce.number().check(z.int(), z.minimum(10), z.maximum(1000))),
    /**
     * The DynamoDB interface endpoint's URL (the data VPC has no other path to DynamoDB).
     * @default - the SDK's regional endpoint
     */
    TENANT_BUDGET_ENDPOINT: z.optional(z.url()),
  })
  .check(
    z.refine((e) => (e.PROVISIONER_FUNCTION === undefined) === (e.EXPORT_BUCKET === undefined), {
      message: 'PROVISIONER_FUNCTION and EXPORT_BUCKET are set together',
      path: ['PROVISIONER_FUNCTION'],
    }),
    z.refine((e) => (e.TENANT_BUDGET_TABLE === undefined) === (e.TENANT_BUDGET_PER_MINUTE === undefined), {
      message: 'TENANT_BUDGET_TABLE and TENANT_BUDGET_PER_MINUTE are set together',
      path: ['TENANT_BUDGET_TABLE'],
    }),
  );
export type Env = z.infer<typeof Env>;

export interface HandlerOptions {
  /** Seals per-organisation secrets (webhook secrets), per request transaction. @default - those routes answer 503 */
  readonly cipher?: (tx: SqlClient) => SecretCipher;
  /** Provisioner and export bucket. @default - the tenant-keys routes answer 503 */
  readonly tenantKeys?: TenantKeysApiDeps;
  /** The clock that token expiry is judged by. @default the system clock */
  readonly now?: () => Date;
  /** The tenant file store. @default - the file routes answer 503 FILES_UNAVAILABLE */
  readonly files?: FilesApiDeps;
  /** The per-organisation request budget. @default - none */
  readonly budget?: TenantBudget;
}

/**
 * Wires the API to its pool and log; the pool is injected so tests run it against a real
 * PostgreSQL, the log so they read what it wrote.
 */
export function buildHandler(
  pool: Pool,
  log: Log,
  options: HandlerOptions = {},
): (event: APIGatewayProxyEvent) => Promise<APIGatewayProxyResult> {
  // No token verifier: the function has no route to the identity provider's JWKS (the VPC has no
  // internet path), so it honours only the edge authorizer's verdicts and checks API keys itself.
  return createApi({
    db: pool,
    audit: new RefusalLogSink(new PgAuditSink({ pool }), log),
    logger: log,
    ...(options.cipher ? { cipher: options.cipher } : {}),
    ...(options.tenantKeys ? { tenantKeys: options.tenantKeys } : {}),
    ...(options.files ? { files: options.files } : {}),
    ...(options.now ? { now: options.now } : {}),
    ...(options.budget ? { budget: options.budget } : {}),
  });
}

const { logger, metrics } = createObservability({ service: 'tenant-api', namespace: TENANT_BUDGET_METRICS.namespace });
const tracer = createTracer();
let ready: ReturnType<typeof buildHandler> | undefined;

/** Correlation ids: API Gateway's request id and the organisation the authorizer verified. */
function correlate(event: APIGatewayProxyEvent) {
  const orgId = (event.requestContext?.authorizer as Record<string, unknown> | null | undefined)?.['orgId'];
  return { requestId: event.requestContext?.requestId, orgId: typeof orgId === 'string' ? orgId : undefined };
}

export const handler = observed(
  logger,
  async (event: APIGatewayProxyEvent, _context: Context): Promise<APIGatewayProxyResult> => {
    if (!ready) {
      const env = Env.parse(process.env);
      // Pipelined: a guarded read is two round trips to the proxy (docs/tenancy.md "Cost of the gate").
      const pool = createProxyPool(parseDatabaseEnv(process.env), { pipeline: true });
      // KMS and Lambda are built, and their packages loaded, on the first request that calls them:
      // most requests call neither (docs/ARCHITECTURE.md "Function bundles"). S3's package loads at
      // cold start anyway (the file routes import its commands).
      const kms = onFirstUse<KMSClient>(async () => {
        const { KMSClient: Client } = await import('@aws-sdk/client-kms');
        return tracer.captureAWSv3Client(new Client(sdkRetries()));
      });
      const cache = new DataKeyCache();
      const budget =
        env.TENANT_BUDGET_TABLE && env.TENANT_BUDGET_PER_MINUTE
          ? createTenantBudget({
              // One attempt and a short timeout: the budget fails open rather than hold the request.
              client: tracer.captureAWSv3Client(
                new DynamoDBClient({
                  maxAttempts: 1,
                  ...(env.TENANT_BUDGET_ENDPOINT ? { endpoint: env.TENANT_BUDGET_ENDPOINT } : {}),
                }),
              ),
              table: env.TENANT_BUDGET_TABLE,
              requestsPerWindow: env.TENANT_BUDGET_PER_MINUTE,
              ...(env.TENANT_BUDGET_TIMEOUT_MS ? { timeoutMillis: env.TENANT_BUDGET_TIMEOUT_MS } : {}),
              log: logger,
              metrics,
            })
          : undefined;
      ready = buildHandler(pool, logger, {
        ...(budget ? { budget } : {}),
        // Per-organisation secrets are sealed under the tenant's own KMS key (org_id context), read
        // in the request's transaction for the context's own organisation (migrations/0403).
        cipher: (tx) => new EnvelopeCipher({ kms, cache, keyFor: contextTenantKeyResolver(tx) }),
        ...(env.PROVISIONER_FUNCTION && env.EXPORT_BUCKET
          ? {
              tenantKeys: {
                lambda: onFirstUse<LambdaClient>(async () => {
                  const { LambdaClient: Client } = await import('@aws-sdk/client-lambda');
                  return tracer.captureAWSv3Client(new Client(sdkRetries()));
                }),
                provisionerFunction: env.PROVISIONER_FUNCTION,
                s3: tracer.captureAWSv3Client(new S3Client(sdkRetries())),
                exportBucket: env.EXPORT_BUCKET,
              },
            }
          : {}),
        ...(env.FILES_BUCKET
          ? {
              files: {
                bucket: env.FILES_BUCKET,
                // Signs and deletes as the files role's session the authorizer minted for the
                // caller's organisation (docs/tenant-files.md); this function's own role has no file access.
                s3For: (c) =>
                  new S3Client({
                    ...sdkRetries(),
                    credentials: {
                      accessKeyId: c.accessKeyId,
                      secretAccessKey: c.secretAccessKey,
                      sessionToken: c.sessionToken,
                      expiration: new Date(c.expiresAt * 1000),
                    },
                  }),
              },
            }
          : {}),
      });
    }
    return ready(event);
  },
  correlate,
);
