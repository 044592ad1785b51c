/**
 * Lambda entry point (NodejsFunction `entry`). Everything here runs once per cold start: the
 * environment is validated, the Telnyx key imported and the database pool created; requests then
 * go straight to the pure handler in handler.ts.
 */
import { Signer } from '@aws-sdk/rds-signer';
import { Pool } from 'pg';
import { z } from 'zod';
import { buildRuntime, parseWebhookEnv } from './config';
import { createWebhookHandler, type WebhookEventProcessor } from './handler';
import { EmfMetrics, JsonLogger } from './telemetry';

const databaseEnv = z.object({
  DB_HOST: z.string().min(1),
  DB_PORT: z.coerce.number().int().positive().default(5432),
  DB_NAME: z.string().min(1),
  DB_USER: z.string().min(1),
  AWS_REGION: z.string().min(1),
});

const logger = new JsonLogger();
const env = parseWebhookEnv(process.env);
const db = databaseEnv.parse(process.env);

// IAM authentication through RDS Proxy: short-lived tokens, no password anywhere.
const signer = new Signer({ hostname: db.DB_HOST, port: db.DB_PORT, username: db.DB_USER, region: db.AWS_REGION });
const pool = new Pool({
  host: db.DB_HOST,
  port: db.DB_PORT,
  database: db.DB_NAME,
  user: db.DB_USER,
  password: () => signer.getAuthToken(),
  ssl: { rejectUnauthorized: true },
  max: 2,
  idleTimeoutMillis: 60_000,
});

/**
 * Until the messaging and voice capabilities register their processors, the recorded effect of an
 * event is its dedup row (provider, event id, type, time): carriers are acknowledged exactly once.
 */
const recordOnly: WebhookEventProcessor = { process: async () => undefined };

// Per-organisation secrets need the tenant-keys SecretCipher, which lands with that capability:
//   new StoredSecretResolver({ store: new PgWebhookSecretReader(pool), cipher })
// Until it is passed here, FreJun/DIDLogic requests are refused with WEBHOOK_SECRET_MISSING (never accepted).
export const handler = createWebhookHandler({
  runtime: buildRuntime(env, null, logger),
  pool,
  processor: recordOnly,
  metrics: new EmfMetrics(),
  logger,
});
