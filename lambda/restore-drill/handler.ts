/**
 * Lambda adapter for the restore drill. The Step Functions state machine calls it once per step
 * with `{ step, state, error }`; all logic lives in ./drill.ts.
 */
import { RDSClient } from '@aws-sdk/client-rds';
import type { Context } from 'aws-lambda';
import { DRILL_METRICS } from '../../contracts/restore-drill';
import { createObservability, observed } from '../shared/observability';
import { sdkRetries } from '../shared/sdk';
import { createTracer } from '../shared/tracing';
import * as z from 'zod/mini';
import {
  abortDrill,
  checkDrill,
  DrillError,
  powertoolsReporter,
  finishDrill,
  startDrill,
  type DrillConfig,
  type DrillDeps,
} from './drill';

const identifier = z.string().check(z.regex(/^[a-zA-Z][a-zA-Z0-9-]{0,62}$/));

export const envSchema = z
  .object({
    DEPLOYMENT: z.string().check(z.minLength(1)),
    SOURCE_INSTANCE_ID: identifier,
    TARGET_PREFIX: z.string().check(z.regex(/^[a-z][a-z0-9-]{0,40}[a-z0-9]$/)),
    SUBNET_GROUP_NAME: z.string().check(z.minLength(1)),
    SECURITY_GROUP_ID: z.string().check(z.regex(/^sg-[0-9a-f]+$/)),
    PARAMETER_GROUP_NAME: z.string().check(z.minLength(1)),
    RTO_SECONDS: z.coerce.number().check(z.int(), z.positive()),
    TIMEOUT_SECONDS: z.coerce.number().check(z.int(), z.positive()),
    /** What the drill restores from. @default point-in-time */
    RESTORE_FROM: z._default(z.enum(['point-in-time', 'backup-copy']), 'point-in-time'),
    /** The backup region's copy key; required for (and only for) `backup-copy`. */
    COPY_KEY_ARN: z.optional(z.string().check(z.regex(/^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key\/[0-9a-f-]+$/))),
  })
  .check(
    z.refine((e) => e.TIMEOUT_SECONDS >= e.RTO_SECONDS, { message: 'TIMEOUT_SECONDS must be at least RTO_SECONDS' }),
    z.refine((e) => (e.RESTORE_FROM === 'backup-copy') === (e.COPY_KEY_ARN !== undefined), {
      message: 'COPY_KEY_ARN is required for RESTORE_FROM=backup-copy, and only for it',
    }),
  );

export function configFromEnv(env: NodeJS.ProcessEnv): DrillConfig {
  const parsed = envSchema.safeParse(env);
  if (!parsed.success) {
    // Names only: never echo values.
    const fields = parsed.error.issues.map((i) => i.path.join('.') || i.message).join(', ');
    throw new Error(`restore-drill: invalid environment (${fields})`);
  }
  const e = parsed.data;
  return {
    deployment: e.DEPLOYMENT,
    sourceInstanceId: e.SOURCE_INSTANCE_ID,
    targetPrefix: e.TARGET_PREFIX,
    subnetGroupName: e.SUBNET_GROUP_NAME,
    securityGroupId: e.SECURITY_GROUP_ID,
    parameterGroupName: e.PARAMETER_GROUP_NAME,
    restoreFrom:
      e.RESTORE_FROM === 'backup-copy' && e.COPY_KEY_ARN
        ? { kind: 'backup-copy', copyKeyArn: e.COPY_KEY_ARN }
        : { kind: 'point-in-time' },
    rtoSeconds: e.RTO_SECONDS,
    timeoutSeconds: e.TIMEOUT_SECONDS,
  };
}

const stateSchema = z.object({
  targetInstanceId: z.string(),
  startedAt: z.string(),
  restoreTime: z.string(),
  recoveryPoint: z.optional(z.string()),
});

export const eventSchema = z.discriminatedUnion('step', [
  z.object({ step: z.literal('start') }),
  z.object({ step: z.literal('check'), state: stateSchema }),
  z.object({ step: z.literal('finish'), state: stateSchema }),
  z.object({
    step: z.literal('abort'),
    /** Before Start succeeded there is no instance; Step Functions passes an empty object. */
    state: z.pipe(
      z.transform((v: unknown) => (v && typeof v === 'object' && 'targetInstanceId' in v ? v : null)),
      z.nullable(stateSchema),
    ),
    /** Step Functions' Catch output: `Error` is the failed step's error name, i.e. our code. */
    error: z.nullish(z.object({ Error: z.optional(z.string()) })),
  }),
]);
export type DrillEvent = z.input<typeof eventSchema>;

/** Rethrown so that Step Functions sees the error code as the error name (and can Catch on it). */
class StepFailure extends Error {
  constructor(code: string, message: string) {
    super(message);
    this.name = code;
  }
}

export function createHandler(deps: DrillDeps) {
  return async (raw: unknown): Promise<unknown> => {
    const parsed = eventSchema.safeParse(raw);
    if (!parsed.success) throw new StepFailure('INVALID_STATE', 'restore-drill: malformed step input');
    const event = parsed.data;
    try {
      switch (event.step) {
        case 'start':
          return await startDrill(deps);
        case 'check':
          return await checkDrill(deps, event.state);
        case 'finish':
          return await finishDrill(deps, event.state);
        case 'abort':
          return await abortDrill(deps, event.state ?? null, { code: event.error?.Error ?? null });
      }
    } catch (e) {
      if (e instanceof DrillError) throw new StepFailure(e.code, e.message);
      // AWS SDK and other errors: keep the name (e.g. ThrottlingException) so Retry can match it.
      throw e;
    }
  };
}

const { logger, metrics } = createObservability({ service: 'restore-drill', namespace: DRILL_METRICS.namespace });
const tracer = createTracer();
let cached: ((raw: unknown) => Promise<unknown>) | undefined;

export const handler = observed(
  logger,
  async (raw: unknown, _context: Context): Promise<unknown> => {
    cached ??= createHandler({
      rds: tracer.captureAWSv3Client(new RDSClient(sdkRetries())),
      clock: { now: () => new Date() },
      reporter: powertoolsReporter(metrics, logger),
      config: configFromEnv(process.env),
    });
    return cached(raw);
  },
  // The step only: the state carries instance ids, which the audit lines name where they matter.
  (raw) => ({ step: typeof raw === 'object' && raw !== null ? String((raw as { step?: unknown }).step) : undefined }),
);
