/**
 * Lambda entry point (NodejsFunction `entry`). Everything here runs once per cold start: the
 * environment is validated, the Telnyx key imported and the database pool created; requests then
 * go straight to the pure handler in handler.ts.
 */
import { createProxyPool, parseDatabaseEnv } from '../shared/db';
import { buildRuntime, parseWebhookEnv } from './config';
import { createWebhookHandler, type WebhookEventProcessor } from './handler';
import { EmfMetrics, JsonLogger } from './telemetry';

const logger = new JsonLogger();
const env = parseWebhookEnv(process.env);
// IAM authentication through RDS Proxy: short-lived tokens, no password anywhere.
const pool = createProxyPool(parseDatabaseEnv(process.env));

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
