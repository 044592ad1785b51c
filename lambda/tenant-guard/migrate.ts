/**
 * Deploy-time migration custom resource: applies migrations/*.sql (bundled next to this file) as
 * the schema owner with lambda/shared/migrations.ts, then answers CloudFormation. Idempotent and
 * transactional per migration; a failure fails the deployment (and so rolls it back).
 */
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import type { CloudFormationCustomResourceEvent } from 'aws-lambda';
import * as path from 'node:path';
import { Client } from 'pg';
import { z } from 'zod';
import { applyMigrations, loadMigrations, type MigrationResult } from '../shared/migrations';

export const Env = z.object({
  DB_HOST: z.string().min(1),
  DB_PORT: z.coerce.number().int().min(1).max(65535).default(5432),
  DB_NAME: z.string().min(1),
  MIGRATOR_SECRET_ARN: z.string().startsWith('arn:'),
});

const DbSecret = z.object({ username: z.string().min(1), password: z.string().min(1) });

export interface MigrateDeps {
  readonly secrets: Pick<SecretsManagerClient, 'send'>;
  readonly connect: (config: {
    host: string;
    port: number;
    database: string;
    user: string;
    password: string;
  }) => Promise<{
    query: Client['query'];
    end: () => Promise<void>;
  }>;
  readonly respond: (url: string, body: string) => Promise<void>;
  readonly migrationsDir: string;
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
      const out = await deps.secrets.send(new GetSecretValueCommand({ SecretId: env.MIGRATOR_SECRET_ARN }));
      const creds = DbSecret.parse(JSON.parse(out.SecretString ?? '{}'));
      const client = await deps.connect({
        host: env.DB_HOST,
        port: env.DB_PORT,
        database: env.DB_NAME,
        user: creds.username,
        password: creds.password,
      });
      try {
        result = await applyMigrations(client as never, loadMigrations(deps.migrationsDir));
      } finally {
        await client.end();
      }
    }
  } catch (e) {
    status = 'FAILED';
    // Migration errors name the migration, never credentials.
    reason = e instanceof Error ? e.message.slice(0, 500) : 'migration failed';
  }
  await deps.respond(
    event.ResponseURL,
    JSON.stringify({
      Status: status,
      Reason: reason,
      PhysicalResourceId: 'bulwark-schema',
      StackId: event.StackId,
      RequestId: event.RequestId,
      LogicalResourceId: event.LogicalResourceId,
      Data: { Applied: (result?.applied ?? []).join(','), Skipped: String(result?.skipped.length ?? 0) },
    }),
  );
}

export const handler = async (event: CloudFormationCustomResourceEvent): Promise<void> => {
  await migrate(event, Env.parse(process.env), {
    secrets: new SecretsManagerClient({}),
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
  });
};
