/**
 * The deploy-time migration custom resource against a real PostgreSQL: applies the repository's
 * migrations as the schema owner, is idempotent, and reports failures to CloudFormation.
 */
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import type { CloudFormationCustomResourceEvent } from 'aws-lambda';
import { mockClient } from 'aws-sdk-client-mock';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Client } from 'pg';
import { DEFAULT_MIGRATIONS_DIR } from '../../lambda/shared/migrations';
import { migrate } from '../../lambda/tenant-guard/migrate';
import { MIGRATOR_ROLE, startPostgres, type TestPostgres } from '../support/postgres';

describe('migration custom resource', () => {
  let pg: TestPostgres;
  const sm = mockClient(SecretsManagerClient);
  beforeAll(async () => {
    pg = await startPostgres({ migrate: false });
  });
  afterAll(async () => pg?.stop());

  const event = (type: 'Create' | 'Update' | 'Delete'): CloudFormationCustomResourceEvent =>
    ({
      RequestType: type,
      ResponseURL: 'https://cloudformation-custom-resource-response.example/put',
      StackId: 'arn:aws:cloudformation:eu-west-1:111111111111:stack/Guard/1',
      RequestId: 'r1',
      LogicalResourceId: 'Schema',
      ResourceType: 'Custom::BulwarkSchema',
      ServiceToken: 'arn:aws:lambda:eu-west-1:111111111111:function:x',
      ResourceProperties: { ServiceToken: 'x' },
    }) as unknown as CloudFormationCustomResourceEvent;

  async function run(type: 'Create' | 'Update' | 'Delete', dir = DEFAULT_MIGRATIONS_DIR) {
    const responses: Record<string, unknown>[] = [];
    await migrate(
      event(type),
      { DB_HOST: '127.0.0.1', DB_PORT: pg.port, DB_NAME: pg.database, MIGRATOR_SECRET_ARN: 'arn:aws:secretsmanager:x' },
      {
        secrets: new SecretsManagerClient({ region: 'eu-west-1' }),
        connect: async (c) => {
          const client = new Client(c);
          await client.connect();
          return client;
        },
        respond: async (_url, body) => {
          responses.push(JSON.parse(body) as Record<string, unknown>);
        },
        migrationsDir: dir,
      },
    );
    return responses;
  }

  it('applies every migration on create, nothing on a repeat, and reads the migrator secret', async () => {
    sm.on(GetSecretValueCommand, { SecretId: 'arn:aws:secretsmanager:x' }).resolves({
      SecretString: JSON.stringify({ username: MIGRATOR_ROLE, password: 'test-only-password' }),
    });
    const [first] = await run('Create');
    expect(first).toMatchObject({ Status: 'SUCCESS', PhysicalResourceId: 'bulwark-schema', RequestId: 'r1' });
    expect((first!['Data'] as { Applied: string }).Applied).toMatch(/^1,2,3/);
    const [again] = await run('Update');
    expect(again).toMatchObject({ Status: 'SUCCESS', Data: { Applied: '' } });
    const tables = (await pg.superuser("SELECT to_regclass('public.leads') AS t")) as { t: string }[];
    expect(tables[0]!.t).toBe('leads');
  });

  it('reports a failing migration as FAILED, naming it, and never touches the schema on delete', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bulwark-mig-'));
    for (const f of fs.readdirSync(DEFAULT_MIGRATIONS_DIR))
      fs.copyFileSync(path.join(DEFAULT_MIGRATIONS_DIR, f), path.join(dir, f));
    fs.writeFileSync(path.join(dir, '0099_broken.sql'), 'SELECT no_such_function();');
    const [failed] = await run('Update', dir);
    expect(failed).toMatchObject({ Status: 'FAILED', Reason: expect.stringMatching(/^migration 99_broken failed/) });
    expect(String(failed!['Reason'])).not.toContain('test-only-password');
    sm.reset();
    const [deleted] = await run('Delete');
    expect(deleted).toMatchObject({ Status: 'SUCCESS' });
    expect(sm.commandCalls(GetSecretValueCommand)).toHaveLength(0);
    fs.rmSync(dir, { recursive: true, force: true });
  });
});
