/**
 * The quarantine checker function (docs/tenant-files.md "Quarantine"): a thin adapter. EventBridge
 * delivers S3 `Object Created` events of the file store; each names one object version, which
 * `FileChecker` checks.
 *
 * Ignored events (another bucket, a key that is not a file's, no row, an object deleted since) are
 * logged and answered, never retried. Anything else that fails (S3, the database) throws: Lambda
 * retries the asynchronous invocation, then dead-letters it, which alarms.
 */
import { S3Client } from '@aws-sdk/client-s3';
import type { Context } from 'aws-lambda';
import * as z from 'zod/mini';
import { createObservability, MetricUnit, observed, type Log, type MetricsRecorder } from '../shared/observability';
import { sdkRetries } from '../shared/sdk';
import { createTracer } from '../shared/tracing';
import { databasePool, parseEnv } from '../tenant-keys/runtime';
import { FileChecker, type FileCheckResult, type ObjectVersion } from './checker';
import { PgFileCheckStore } from './pg-file-checks';

const SERVICE = 'tenant-file-checker';
const { logger, metrics } = createObservability({ service: SERVICE, namespace: 'Bulwark/TenantFiles' });
const tracer = createTracer();

export const checkerEnvSchema = z.object({
  AWS_REGION: z.string().check(z.minLength(1)),
  FILES_BUCKET: z.string().check(z.regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/)),
});

/** S3's EventBridge event (`Object Created`); the bucket is versioned, so a version id is always there. */
const objectCreated = z.object({
  source: z.literal('aws.s3'),
  'detail-type': z.literal('Object Created'),
  detail: z.object({
    bucket: z.object({ name: z.string() }),
    object: z.object({ key: z.string(), 'version-id': z.string().check(z.minLength(1)) }),
  }),
});

/** The object version an event names, or undefined for any other event. */
export function objectVersionOf(event: unknown): ObjectVersion | undefined {
  const created = objectCreated.safeParse(event);
  if (created.success) {
    const d = created.data.detail;
    return { bucket: d.bucket.name, key: d.object.key, versionId: d.object['version-id'] };
  }
  return undefined;
}

const METRIC: Record<FileCheckResult['result'], string> = {
  released: 'FilesReleased',
  rejected: 'FilesRejected',
  unchanged: 'FileEventsRepeated',
  ignored: 'FileEventsIgnored',
};

/** The handler's logic with its checker, log and metrics injected. */
export function makeCheckerHandler(checker: Pick<FileChecker, 'check'>, log: Log, recorder: MetricsRecorder) {
  return async (event: unknown): Promise<FileCheckResult> => {
    const at = objectVersionOf(event);
    const result: FileCheckResult = at
      ? await checker.check(at)
      : { result: 'ignored', code: 'FILE_CHECK_EVENT_INVALID' };
    if (!at) log.warn('file event ignored', { code: 'FILE_CHECK_EVENT_INVALID' });
    recorder.addMetric(METRIC[result.result], MetricUnit.Count, 1);
    recorder.publishStoredMetrics();
    return result;
  };
}

let cached: ((event: unknown) => Promise<FileCheckResult>) | undefined;

export const handler = observed(logger, async (event: unknown, _context: Context): Promise<FileCheckResult> => {
  // Environment validated once per cold start; a misconfiguration fails loudly (and alarms).
  if (!cached) {
    const cfg = parseEnv(checkerEnvSchema, process.env);
    const s3 = tracer.captureAWSv3Client(new S3Client({ ...sdkRetries(), region: cfg.AWS_REGION }));
    const checker = new FileChecker(
      { s3, store: new PgFileCheckStore(databasePool(cfg)), log: logger },
      { bucket: cfg.FILES_BUCKET },
    );
    cached = makeCheckerHandler(checker, logger, metrics);
  }
  return cached(event);
});
