/**
 * Scheduled Lambda: ships new audit records into the Object Lock archive. A thin adapter: the
 * logic is `shipAuditLog` (lambda/audit/shipper.ts), the database access `PgShipperSource`.
 * Several invocations may run at once (one per schedule): each leases its own organisations
 * under its request id.
 */
import { S3Client } from '@aws-sdk/client-s3';
import type { Context } from 'aws-lambda';
import { ARCHIVE_METRICS } from '../../contracts/audit-archive';
import { createProxyPool } from '../shared/db';
import { createObservability, observed } from '../shared/observability';
import { sdkRetries } from '../shared/sdk';
import { createTracer } from '../shared/tracing';
import { PgShipperSource } from './pg-shipper-source';
import { shipAuditLog, type ShipResult } from './shipper';
import { loadShipperEnv } from './shipper-env';
import { publishArchiveMetrics } from './shipper-metrics';

const { logger, metrics } = createObservability({ service: 'audit-shipper', namespace: ARCHIVE_METRICS.namespace });
const tracer = createTracer();
// Cold start: a misconfigured function fails here, before touching anything.
const env = loadShipperEnv(process.env);
const s3 = tracer.captureAWSv3Client(new S3Client(sdkRetries()));
// Connects through the RDS Proxy as the shipper's own role, with an IAM token per connection.
const pool = createProxyPool(env.database);
const source = new PgShipperSource(pool);

export const handler = observed(logger, async (_event: unknown, context: Context): Promise<ShipResult> => {
  const result = await shipAuditLog(s3, source, env.shipper, {
    worker: context.awsRequestId,
    remainingMs: () => context.getRemainingTimeInMillis(),
  });
  publishArchiveMetrics(metrics, env.deployment, result);
  // Counts, organisation ids and codes only (the ids are not secret).
  logger[result.failed.length > 0 ? 'error' : 'info']('audit shipment', {
    batches: result.batches,
    records: result.records,
    organisations: result.organisations,
    owedOrganisations: result.owed.organisations,
    oldestUnshippedSeconds: result.owed.oldestAgeSeconds,
    failed: result.failed.map((f) => `${f.orgId}=${f.code}`).join(','),
  });
  if (result.failed.length > 0) {
    // Fail the invocation so the Errors alarm fires.
    throw new Error(`SHIPPER_CHAIN_FAILURE: ${result.failed.map((f) => `${f.orgId}=${f.code}`).join(', ')}`);
  }
  return result;
});
