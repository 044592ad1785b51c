/**
 * Lambda entry point (NodejsFunction `entry`). Everything here runs once per cold start: the
 * environment is validated, the Telnyx key imported and the database pool created; requests then
 * go straight to the pure handler in handler.ts.
 */
import type { KMSClient } from '@aws-sdk/client-kms';
import type { Context } from 'aws-lambda';
import { WEBHOOK_METRICS } from '../../contracts/webhooks';
import { createProxyPool, parseDatabaseEnv } from '../shared/db';
import { createObservability, observed } from '../shared/observability';
import { onFirstUse, sdkRetries } from '../shared/sdk';
import { createTracer } from '../shared/tracing';
import { EnvelopeCipher } from '../tenant-keys/envelope-cipher';
import { PgTenantKeyStore, pgTenantKeyResolver } from '../tenant-keys/pg-stores';
import { buildRuntime, parseWebhookEnv } from './config';
import { createWebhookHandler, type WebhookEventProcessor } from './handler';
import { PgWebhookSecretReader } from './pg-secret-store';
import type { ProxyEventLike } from './request';
import { StoredSecretResolver } from './secrets';

const { logger, metrics } = createObservability({ service: 'webhooks', namespace: WEBHOOK_METRICS.namespace });
const tracer = createTracer();
const env = parseWebhookEnv(process.env);
// IAM authentication through RDS Proxy: short-lived tokens, no password anywhere.
const pool = createProxyPool(parseDatabaseEnv(process.env));

/**
 * Until the messaging and voice capabilities register their processors, the recorded effect of an
 * event is its dedup row (provider, event id, type, time): carriers are acknowledged exactly once.
 */
const recordOnly: WebhookEventProcessor = { process: async () => undefined };

// FreJun/DIDLogic secrets are stored sealed under the organisation's own KMS key (tenant keys): the
// cipher opens them with that tenant's org_id context; an organisation without a key or a secret is
// refused with WEBHOOK_SECRET_MISSING / WEBHOOK_SECRET_UNREADABLE, never accepted. The KMS client (and
// its package) is built on the first request that opens a secret: Telnyx requests, verified with a
// public key, never do (docs/ARCHITECTURE.md "Function bundles").
const cipher = new EnvelopeCipher({
  kms: onFirstUse<KMSClient>(async () => {
    const { KMSClient: Client } = await import('@aws-sdk/client-kms');
    return tracer.captureAWSv3Client(new Client(sdkRetries()));
  }),
  keyFor: pgTenantKeyResolver(new PgTenantKeyStore(pool)),
});
const secrets = new StoredSecretResolver({ store: new PgWebhookSecretReader(pool), cipher });

const webhook = createWebhookHandler({
  runtime: buildRuntime(env, secrets, logger),
  pool,
  processor: recordOnly,
  metrics,
  logger,
});

export const handler = observed<ProxyEventLike, Awaited<ReturnType<typeof webhook>>>(
  logger,
  (event: ProxyEventLike, _context: Context) => webhook(event),
  (event) => ({ requestId: event.requestContext?.requestId }),
);
