/**
 * Deploy-time migration custom resource. Connects to the database INSTANCE (not the proxy, which
 * admits IAM tokens only) with TLS and certificate verification:
 *   1. as the RDS master user: bootstrap the login roles with the passwords from their secrets
 *      (lambda/tenant-guard/bootstrap.ts);
 *   2. as the migrator: apply migrations/*.sql (bundled next to this file) with
 *      lambda/shared/migrations.ts, then the grants that name migrated objects, then install the
 *      gate key (from its secret) that tickets are verified with;
 * then answers CloudFormation. Idempotent and transactional per migration; a failure fails the
 * deployment (and so rolls it back). Secrets are never logged or put in the response.
 */
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import type { CloudFormationCustomResourceEvent, Context } from 'aws-lambda';
import * as path from 'node:path';
import { Client } from 'pg';
import * as z from 'zod/mini';
// English issue messages in `Env.parse`'s error.
import '../shared/validation';
import { loadMigrations } from '../../contracts/migrations';
import { applyMigrations, type MigrationResult, type SqlClient } from '../shared/migrations';
import { createObservability, observed, type Log } from '../shared/observability';
import { sdkRetries } from '../shared/sdk';
import { createTracer } from '../shared/tracing';
import {
  bootstrapRoles,
  grantAfterMigrations,
  installGateKey,
  type RoleCredentials,
  type RoleSecrets,
} from './bootstrap';
import { parseGateKeySecret } from './ticket';

export const Env = z.object({
  DB_HOST: z.string().check(z.minLength(1)),
  // The instance's port (not the engine default: the data tier moves it); required.
  DB_PORT: z.coerce.number().check(z.int(), z.minimum(1), z.maximum(65535)),
  DB_NAME: z.string().check(z.minLength(1)),
  MASTER_SECRET_ARN: z.string().check(z.startsWith('arn:')),
  MIGRATOR_SECRET_ARN: z.string().check(z.startsWith('arn:')),
  APP_SECRET_ARN: z.string().check(z.startsWith('arn:')),
  AUDIT_SHIPPER_SECRET_ARN: z.string().check(z.startsWith('arn:')),
  WEBHOOKS_SECRET_ARN: z.string().check(z.startsWith('arn:')),
  KEY_PROVISIONER_SECRET_ARN: z.string().check(z.startsWith('arn:')),
  LIFECYCLE_SECRET_ARN: z.string().check(z.startsWith('arn:')),
  FILE_CHECKER_SECRET_ARN: z.string().check(z.startsWith('arn:')),
  /** The gate key the authorizer signs tickets with; installed into app_private.gate_keys. */
  GATE_KEY_SECRET_ARN: z.string().check(z.startsWith('arn:')),
});

const DbSecret = z.object({ username: z.string().check(z.minLength(1)), password: z.string().check(z.minLength(1)) });

export interface MigrateDeps {
  readonly secrets: Pick<SecretsManagerClient, 'send'>;
  readonly connect: (config: {
    host: string;
    port: number;
    database: string;
    user: string;
    password: string;
  }) => Promise<{
    query: SqlClient['query'];
    end: () => Promise<void>;
  }>;
  readonly respond: (url: string, body: string) => Promise<void>;
  readonly migrationsDir: string;
  /** Outcome only: versions, counts and the failure reason (which never names a credential). */
  readonly log: Log;
}

export async function migrate(
  event: CloudFormationCustomResourceEvent,
  env: z.infer<typeof Env>,
  deps: MigrateDeps,
): Promise<void> {
  let status: 'SUCCESS' | 'FAILED' = 'SUCCESS';
  let reason = 'ok';
  let result: MigrationResult | undefined;
  try {
    // Deleting the resource never drops data: the schema outlives the stack.
    if (event.RequestType !== 'Delete') {
      const read = async (arn: string, what: string): Promise<RoleCredentials> => {
        const out = await deps.secrets.send(new GetSecretValueCommand({ SecretId: arn }));
        const parsed = DbSecret.safeParse(JSON.parse(out.SecretString ?? '{}'));
        // The zod issues would name the fields only, but say nothing about the value at all.
        if (!parsed.success) throw new Error(`SECRET_INVALID: the ${what} secret has no username/password`);
        return parsed.data;
      };
      const master = await read(env.MASTER_SECRET_ARN, 'master');
      const roles: RoleSecrets = {
        migrator: await read(env.MIGRATOR_SECRET_ARN, 'migrator'),
        app: await read(env.APP_SECRET_ARN, 'app'),
        auditShipper: await read(env.AUDIT_SHIPPER_SECRET_ARN, 'audit shipper'),
        webhooks: await read(env.WEBHOOKS_SECRET_ARN, 'webhooks'),
        keyProvisioner: await read(env.KEY_PROVISIONER_SECRET_ARN, 'key provisioner'),
        lifecycle: await read(env.LIFECYCLE_SECRET_ARN, 'lifecycle'),
        fileChecker: await read(env.FILE_CHECKER_SECRET_ARN, 'file checker'),
      };
      const gate = await deps.secrets.send(new GetSecretValueCommand({ SecretId: env.GATE_KEY_SECRET_ARN }));
      const gateKey = parseGateKeySecret(gate.SecretString);
      const as = (creds: RoleCredentials) =>
        deps.connect({
          host: env.DB_HOST,
          port: env.DB_PORT,
          database: env.DB_NAME,
          user: creds.username,
          password: creds.password,
        });
      const admin = await as(master);
      try {
        await bootstrapRoles(admin, env.DB_NAME, roles);
      } finally {
        await admin.end();
      }
      const client = await as(roles.migrator);
      try {
        result = await applyMigrations(client, loadMigrations(deps.migrationsDir));
        await grantAfterMigrations(client);
        await installGateKey(client, gateKey);
      } finally {
        await client.end();
      }
    }
  } catch (e) {
    status = 'FAILED';
    // Migration errors name the migration, never credentials.
    reason = e instanceof Error ? e.message.slice(0, 500) : 'migration failed';
  }
  const applied = (result?.applied ?? []).join(',');
  const skipped = result?.skipped.length ?? 0;
  if (status === 'SUCCESS') deps.log.info('schema migrated', { requestType: event.RequestType, applied, skipped });
  else deps.log.error('schema migration failed', { requestType: event.RequestType, reason });
  await deps.respond(
    event.ResponseURL,
    JSON.stringify({
      Status: status,
      Reason: reason,
      PhysicalResourceId: 'bulwark-schema',
      StackId: event.StackId,
      RequestId: event.RequestId,
      LogicalResourceId: event.LogicalResourceId,
      Data: { Applied: applied, Skipped: String(skipped) },
    }),
  );
}

const { logger } = createObservability({ service: 'schema-migration' });
const tracer = createTracer();

export const handler = observed(
  logger,
  async (event: CloudFormationCustomResourceEvent, _context: Context): Promise<void> => {
    await migrate(event, Env.parse(process.env), {
      secrets: tracer.captureAWSv3Client(new SecretsManagerClient(sdkRetries())),
      connect: async (c) => {
        const client = new Client({ ...c, ssl: { rejectUnauthorized: true }, connectionTimeoutMillis: 10_000 });
        await client.connect();
        return client;
      },
      respond: async (url, body) => {
        const r = await fetch(url, { method: 'PUT', body, headers: { 'content-type': '' } });
        if (!r.ok) throw new Error(`CloudFormation response failed: ${r.status}`);
      },
      migrationsDir: path.join(__dirname, 'migrations'),
      log: logger,
    });
  },
  // CloudFormation's request id; the event's ResponseURL is a presigned URL and is never logged.
  (event) => ({ requestId: event.RequestId, requestType: event.RequestType }),
);
