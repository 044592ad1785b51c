/** The shipper function's environment, validated once at cold start. */
import * as z from 'zod/mini';
import { issueList } from '../shared/validation';
import { parseDatabaseEnv, type DatabaseConnection } from '../shared/db';
import { retentionSchema, type ShipperConfig } from './shipper';

const envSchema = z.object({
  AUDIT_BUCKET: z.string().check(z.regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, 'must be an S3 bucket name')),
  AUDIT_KEY_ARN: z
    .string()
    .check(z.regex(/^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key\/[0-9a-f-]+$/, 'must be a KMS key ARN')),
  /** `deployment.auditRetentionMonths` as JSON. */
  AUDIT_RETENTION_MONTHS: z.pipe(
    z.pipe(
      z.string(),
      z.transform((s: string, ctx) => {
        try {
          return JSON.parse(s) as unknown;
        } catch {
          ctx.issues.push({ code: 'custom', message: 'must be JSON', input: s });
          return z.NEVER;
        }
      }),
    ),
    retentionSchema,
  ),
  AUDIT_BATCH_SIZE: z._default(z.coerce.number().check(z.int(), z.minimum(1), z.maximum(10_000)), 1000),
  /** The deployment's name: the dimension of the archive metrics. */
  DEPLOYMENT: z.string().check(z.regex(/^[a-z][a-z0-9-]{1,30}[a-z0-9]$/, 'must be a deployment name')),
});

export interface ShipperEnv {
  readonly shipper: ShipperConfig;
  readonly deployment: string;
  readonly database: DatabaseConnection;
}

/**
 * Throws one error naming every invalid variable (never echoing values). The connection of the
 * shipper's own database role (docs/audit.md "Shipper database role") is read by `parseDatabaseEnv`.
 */
export function loadShipperEnv(env: Readonly<Record<string, string | undefined>>): ShipperEnv {
  const r = envSchema.safeParse(env);
  const problems = r.success ? [] : issueList(r.error);
  let database: DatabaseConnection | undefined;
  try {
    database = parseDatabaseEnv(env);
  } catch (e) {
    problems.push(e instanceof Error ? e.message : 'DB_ENV_INVALID');
  }
  if (!r.success || !database) throw new Error(`SHIPPER_ENV_INVALID: ${problems.join('; ')}`);
  const e = r.data;
  return {
    shipper: {
      bucket: e.AUDIT_BUCKET,
      kmsKeyArn: e.AUDIT_KEY_ARN,
      retentionMonths: e.AUDIT_RETENTION_MONTHS,
      batchSize: e.AUDIT_BATCH_SIZE,
    },
    deployment: e.DEPLOYMENT,
    database,
  };
}
