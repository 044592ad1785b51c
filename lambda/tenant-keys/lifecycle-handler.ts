/**
 * Lifecycle function, run on a schedule: advances due tenants (grace, then shredding) and writes
 * pending exports. Any failure fails the invocation, which the failure alarm reports; the work is
 * idempotent, so the next run completes it.
 */
import { KMSClient } from '@aws-sdk/client-kms';
import { S3Client } from '@aws-sdk/client-s3';
import { STSClient } from '@aws-sdk/client-sts';
import type { Context } from 'aws-lambda';
import * as z from 'zod/mini';
import { PgSystemAuditSink } from '../audit/pg-system-sink';
import type { AuditSink } from '../shared/audit';
import { createObservability, observed, type Log } from '../shared/observability';
import { sdkRetries } from '../shared/sdk';
import { createTracer } from '../shared/tracing';
import { filesCredentialMinter, stsAssumeRole } from '../tenant-guard/files-credentials';
import { ExportService } from './export';
import { S3FileContentSource, s3ClientFor } from './export-files';
import { LifecycleProcessor } from './lifecycle-processor';
import { PgExportSource, PgExportStore, PgLifecycleStore, PgTenantDataEraser } from './pg-stores';
import { S3TenantObjectEraser } from './s3-eraser';
import { FILES_ROOT } from '../../contracts/tenant-files';
import { baseEnvSchema, databasePool, parseEnv } from './runtime';

const { logger } = createObservability({ service: 'tenant-key-lifecycle' });
const tracer = createTracer();

const envSchema = z.extend(baseEnvSchema, {
  EXPORT_BUCKET: z.string().check(z.minLength(3)),
  EXPORT_KEY_ARN: z.string().check(z.startsWith('arn:')),
  /** The tenant file store; a shredded tenant's files are erased with its exports. @default - none */
  FILES_BUCKET: z.optional(z.string().check(z.minLength(3))),
  /**
   * The export reader role: assumed with the exported organisation's `org_id` session tag to read
   * its released files (docs/tenant-files.md, "Export"). @default - exports list files without bytes
   */
  FILES_READER_ROLE_ARN: z.optional(z.string().check(z.startsWith('arn:'))),
  KEY_PENDING_WINDOW_DAYS: z._default(z.coerce.number().check(z.int(), z.minimum(7), z.maximum(30)), 7),
  BATCH_SIZE: z._default(z.coerce.number().check(z.int(), z.minimum(1), z.maximum(100)), 25),
});

export interface LifecycleSummary {
  readonly advanced: number;
  readonly lifecycleFailures: number;
  readonly exported: number;
  readonly exportFailures: number;
}

export class LifecycleRunFailed extends Error {
  constructor(readonly summary: LifecycleSummary) {
    super(`LIFECYCLE_RUN_FAILED: ${summary.lifecycleFailures} lifecycle, ${summary.exportFailures} export failure(s)`);
    this.name = 'LifecycleRunFailed';
  }
}

export function makeLifecycleHandler(processor: LifecycleProcessor, exports: ExportService, log: Log) {
  return async (): Promise<LifecycleSummary> => {
    const lifecycle = await processor.run();
    const ex = await exports.processPending();
    const summary: LifecycleSummary = {
      advanced: lifecycle.advanced.length,
      lifecycleFailures: lifecycle.failed.length,
      exported: ex.done,
      exportFailures: ex.failed,
    };
    // Counts and error names only: no tenant data in logs.
    const failed = summary.lifecycleFailures > 0 || summary.exportFailures > 0;
    log[failed ? 'error' : 'info']('lifecycle run', {
      ...summary,
      errors: lifecycle.failed.map((f) => f.error).join(','),
    });
    if (failed) throw new LifecycleRunFailed(summary);
    return summary;
  };
}

export function lifecycleFromEnv(env: NodeJS.ProcessEnv, log: Log, overrides: { audit?: AuditSink } = {}) {
  const cfg = parseEnv(envSchema, env);
  const pool = databasePool(cfg);
  // Durable, hash-chained system events (migration 0301), on the stores' pool so that a step and
  // its event can share a transaction.
  const audit = overrides.audit ?? new PgSystemAuditSink({ pool });
  const s3 = tracer.captureAWSv3Client(new S3Client({ ...sdkRetries(), region: cfg.AWS_REGION }));
  const clock = () => new Date();
  const processor = new LifecycleProcessor({
    deployment: cfg.DEPLOYMENT,
    store: new PgLifecycleStore(pool, audit),
    rows: new PgTenantDataEraser(pool),
    objects: new S3TenantObjectEraser(s3, [
      { bucket: cfg.EXPORT_BUCKET, prefix: (org) => `exports/${org}/` },
      // Every version of every file (docs/tenant-files.md); the key's deletion covers any other copy.
      ...(cfg.FILES_BUCKET ? [{ bucket: cfg.FILES_BUCKET, prefix: (org: string) => `${FILES_ROOT}${org}/` }] : []),
    ]),
    kms: tracer.captureAWSv3Client(new KMSClient({ ...sdkRetries(), region: cfg.AWS_REGION })),
    audit,
    clock,
    keyPendingWindowDays: cfg.KEY_PENDING_WINDOW_DAYS,
    batchSize: cfg.BATCH_SIZE,
  });
  const files =
    cfg.FILES_BUCKET && cfg.FILES_READER_ROLE_ARN
      ? new S3FileContentSource({
          bucket: cfg.FILES_BUCKET,
          mint: filesCredentialMinter(
            stsAssumeRole(tracer.captureAWSv3Client(new STSClient({ ...sdkRetries(), region: cfg.AWS_REGION }))),
            cfg.FILES_READER_ROLE_ARN,
          ),
          clientFor: s3ClientFor(cfg.AWS_REGION, (c) => tracer.captureAWSv3Client(c)),
        })
      : undefined;
  const exports = new ExportService({
    s3,
    files,
    store: new PgExportStore(pool),
    source: new PgExportSource(pool),
    audit,
    clock,
    bucket: cfg.EXPORT_BUCKET,
    bucketKeyArn: cfg.EXPORT_KEY_ARN,
  });
  return makeLifecycleHandler(processor, exports, log);
}

let cached: (() => Promise<LifecycleSummary>) | undefined;

export const handler = observed(logger, async (_event: unknown, _context: Context): Promise<LifecycleSummary> => {
  cached ??= lifecycleFromEnv(process.env, logger);
  return cached();
});
