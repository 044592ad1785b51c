/**
 * The tenant-keys functions' audit trail against a real PostgreSQL 17: built from their environment
 * they write durable system events (not log lines), and a step commits only with its event.
 * The database pool of the functions' runtime is swapped for the test server's application-role pool;
 * everything else (stores, sink, processor, provisioner) is the production wiring.
 */
import {
  CreateAliasCommand,
  CreateKeyCommand,
  DescribeKeyCommand,
  EnableKeyRotationCommand,
  KMSClient,
  ListResourceTagsCommand,
} from '@aws-sdk/client-kms';
import { S3Client } from '@aws-sdk/client-s3';
import { mockClient } from 'aws-sdk-client-mock';
import type { Pool } from 'pg';
import { rowToRecord, AUDIT_COLUMNS } from '../../lambda/audit/pg-sink';
import { PgSystemAuditSink } from '../../lambda/audit/pg-system-sink';
import type { AuditEvent, AuditSink } from '../../lambda/shared/audit';
import type { SqlClient } from '../../lambda/shared/migrations';
import { lifecycleFromEnv } from '../../lambda/tenant-keys/lifecycle-handler';
import { RecordingLog } from '../support/observability';
import { tenantKeyTags } from '../../lambda/tenant-keys/key-policy';
import { LifecycleProcessor } from '../../lambda/tenant-keys/lifecycle-processor';
import {
  PgExportStore,
  PgLifecycleStore,
  PgTenantDataEraser,
  PgTenantKeyStore,
} from '../../lambda/tenant-keys/pg-stores';
import { provisionerFromEnv, makeProvisionerHandler } from '../../lambda/tenant-keys/provisioner-handler';
import { TenantKeyProvisioner } from '../../lambda/tenant-keys/provisioner';
import { MIGRATOR_ROLE, startPostgres, type TestPostgres } from '../support/postgres';
import { buildWorld, ticketFor, type World } from '../tenant-guard/fixtures';
import { defined } from '../support/defined';
import { DATABASE_ROLES } from '../../contracts/database';

let mockPool: Pool | undefined;
jest.mock('../../lambda/tenant-keys/runtime', () => ({
  ...jest.requireActual<typeof import('../../lambda/tenant-keys/runtime')>('../../lambda/tenant-keys/runtime'),
  databasePool: () => mockPool,
}));

const ACCOUNT = '111122223333';
const ENV = {
  AWS_REGION: 'eu-west-1',
  DEPLOYMENT: 'prod-eu',
  ACCOUNT_ID: ACCOUNT,
  DB_HOST: 'proxy.example',
  DB_PORT: '5432',
  DB_NAME: 'bulwark',
  DB_USER: 'bulwark_key_provisioner',
  EXPORT_BUCKET: 'bulwark-exports-test',
  EXPORT_KEY_ARN: `arn:aws:kms:eu-west-1:${ACCOUNT}:key/99999999-9999-4999-8999-999999999999`,
};
const keyArn = (n: number) => `arn:aws:kms:eu-west-1:${ACCOUNT}:key/${String(n).repeat(8)}-2222-4222-8222-222222222222`;

let pg: TestPostgres;
let pool: Pool;
let provisionerPool: Pool;
let w: World;
const kms = mockClient(KMSClient);
const s3 = mockClient(S3Client);

beforeAll(async () => {
  pg = await startPostgres();
  // Each function's own role (migrations/0401): the lifecycle processor and export worker, the provisioner.
  pool = pg.pool(DATABASE_ROLES.lifecycle);
  provisionerPool = pg.pool(DATABASE_ROLES.keyProvisioner);
  pool.on('error', () => undefined);
  mockPool = provisionerPool; // the handler run here is the provisioner's
  w = await buildWorld(pg);
});
afterAll(async () => pg?.stop());
beforeEach(() => {
  kms.reset();
  s3.reset();
});

function named(name: string): Error {
  return Object.assign(new Error(name), { name });
}

/** The organisation's durable chain (events and actor types), read as the owner role. */
async function durable(org: string): Promise<[string, string][]> {
  const c = await pg.client(MIGRATOR_ROLE);
  try {
    const rows = (await c.query(`SELECT ${AUDIT_COLUMNS} FROM audit_log WHERE org_id = $1 ORDER BY seq`, [org])).rows;
    return rows.map(rowToRecord).map((r) => [r.actorType, r.event]);
  } finally {
    await c.end();
  }
}

async function setState(org: string, sql: string): Promise<void> {
  await pg.superuser(`UPDATE organisations SET ${sql} WHERE id = $1`, [org]);
}

/** A sink that refuses the first event named `name`, then forwards everything. */
class FailOnce implements AuditSink {
  private failed = false;
  constructor(
    private readonly name: string,
    private readonly next: AuditSink,
  ) {}
  async record(event: AuditEvent, tx?: SqlClient): Promise<void> {
    if (!this.failed && event.event === this.name) {
      this.failed = true;
      throw new Error('audit unavailable');
    }
    await this.next.record(event, tx);
  }
}

describe('tenant-keys functions built from their environment', () => {
  it('the provisioner writes its event into the durable audit log, not a log line', async () => {
    kms.on(DescribeKeyCommand).rejects(named('NotFoundException'));
    kms.on(CreateKeyCommand).resolves({ KeyMetadata: { KeyId: 'k', Arn: keyArn(1), KeyState: 'Enabled' } });
    kms.on(CreateAliasCommand).resolves({});
    kms.on(EnableKeyRotationCommand).resolves({});
    const handler = makeProvisionerHandler(provisionerFromEnv(ENV));
    await expect(handler({ orgId: w.storeC })).resolves.toMatchObject({ ok: true, keyArn: keyArn(1), created: true });
    expect(await durable(w.storeC)).toEqual([['system', 'tenant_key.created']]);
  });

  it('the lifecycle function writes each step’s event into the durable audit log', async () => {
    await setState(
      w.storeC,
      `lifecycle_state = 'cancelled', cancelled_at = now() - interval '40 days', access_until = now() - interval '1 minute'`,
    );
    const log = jest.spyOn(console, 'log').mockImplementation(() => undefined);
    try {
      mockPool = pool; // the lifecycle function's own role
      await expect(
        lifecycleFromEnv({ ...ENV, DB_USER: DATABASE_ROLES.lifecycle }, new RecordingLog())(),
      ).resolves.toMatchObject({
        advanced: 1,
        lifecycleFailures: 0,
      });
    } finally {
      log.mockRestore();
    }
    expect(await durable(w.storeC)).toEqual([
      ['system', 'tenant_key.created'],
      ['system', 'tenant.grace_started'],
    ]);
  });
});

describe('a step commits only with its audit event', () => {
  it('key recording: a failed event leaves no key recorded; the retry records and audits it', async () => {
    kms.on(DescribeKeyCommand).resolves({
      KeyMetadata: { KeyId: 'k2', Arn: keyArn(2), KeyState: 'Enabled' },
    });
    kms.on(ListResourceTagsCommand).resolves({ Tags: tenantKeyTags('prod-eu', w.storeB) });
    kms.on(EnableKeyRotationCommand).resolves({});
    const sink = new FailOnce('tenant_key.adopted', new PgSystemAuditSink({ pool: provisionerPool }));
    const provisioner = new TenantKeyProvisioner(
      {
        kms: new KMSClient({ region: 'eu-west-1' }),
        store: new PgTenantKeyStore(provisionerPool),
        audit: sink,
        clock: () => new Date(),
      },
      { deployment: 'prod-eu', account: ACCOUNT, region: 'eu-west-1' },
    );
    await expect(provisioner.provision(w.storeB)).rejects.toThrow('audit unavailable');
    expect(await new PgTenantKeyStore(provisionerPool).get(w.storeB)).toBeNull();
    expect(await durable(w.storeB)).toEqual([]);
    await expect(provisioner.provision(w.storeB)).resolves.toMatchObject({ keyArn: keyArn(2) });
    expect(await new PgTenantKeyStore(provisionerPool).get(w.storeB)).toEqual({ keyArn: keyArn(2), source: 'managed' });
    expect(await durable(w.storeB)).toEqual([['system', 'tenant_key.adopted']]);
  });

  it('erasure: a failed event rolls the deletion back; the next run erases and audits the true count', async () => {
    // storeA has rows (its memberships at least) and a grace period that ended a minute ago.
    await setState(
      w.storeA,
      `lifecycle_state = 'grace', status = 'suspended', cancelled_at = now() - interval '60 days',
       access_until = now() - interval '31 days', grace_ends_at = now() - interval '1 minute'`,
    );
    const remaining = async () =>
      Number(defined((await pool.query('SELECT app.tenant_rows_remaining($1) AS n', [w.storeA])).rows[0])['n']);
    const rows = await remaining();
    expect(rows).toBeGreaterThan(0);

    const sink = new FailOnce('tenant.rows_deleted', new PgSystemAuditSink({ pool }));
    const processor = new LifecycleProcessor({
      deployment: 'prod-eu',
      store: new PgLifecycleStore(pool, sink),
      rows: new PgTenantDataEraser(pool),
      objects: { deleteObjects: async () => 0 },
      kms: new KMSClient({ region: 'eu-west-1' }),
      audit: sink,
      clock: () => new Date(),
    });
    expect(await processor.run()).toEqual({ advanced: [], failed: [{ orgId: w.storeA, error: 'Error' }] });
    expect(await remaining()).toBe(rows);
    expect(await durable(w.storeA)).toEqual([]);

    expect(await processor.run()).toEqual({ advanced: [{ orgId: w.storeA, to: 'shredded' }], failed: [] });
    expect(await remaining()).toBe(0);
    expect(await durable(w.storeA)).toEqual([
      ['system', 'tenant.rows_deleted'],
      ['system', 'tenant.objects_deleted'],
      ['system', 'tenant_key.none_to_delete'],
      ['system', 'tenant.shredded'],
    ]);
    const c = await pg.client(MIGRATOR_ROLE);
    try {
      const r = await c.query("SELECT metadata FROM audit_log WHERE org_id = $1 AND event = 'tenant.rows_deleted'", [
        w.storeA,
      ]);
      expect(r.rows).toEqual([{ metadata: { rows } }]);
    } finally {
      await c.end();
    }
  });

  it('export completion: a failed event leaves the export pending; the next attempt completes and audits it', async () => {
    const store = new PgExportStore(pool);
    const req = await new PgExportStore(pg.pool()).create(w.group, w.groupOwner, new Date(), ticketFor(w.groupOwner));
    const fail = async () => {
      throw new Error('audit unavailable');
    };
    await expect(store.complete(req.id, `exports/${w.group}/${req.id}.ndjson.gz`, 3, new Date(), fail)).rejects.toThrow(
      'audit unavailable',
    );
    expect((await store.pending(100)).map((p) => p.id)).toContain(req.id);

    const sink = new PgSystemAuditSink({ pool });
    const event = (name: string): AuditEvent => ({
      orgId: w.group,
      actorType: 'system',
      actorUserId: null,
      actorEmail: null,
      event: name,
      entityType: 'tenant_export',
      entityId: req.id,
      ip: null,
      userAgent: null,
      supportGrantId: null,
      metadata: { rows: 3 },
      occurredAt: new Date(),
    });
    const seen: boolean[] = [];
    const record = async (done: boolean, tx: SqlClient | undefined) => {
      seen.push(done);
      if (done) await sink.record(event('tenant.export_completed'), tx);
    };
    await store.complete(req.id, `exports/${w.group}/${req.id}.ndjson.gz`, 3, new Date(), record);
    // A second completion finds nothing pending and records nothing.
    await store.complete(req.id, `exports/${w.group}/${req.id}.ndjson.gz`, 3, new Date(), record);
    expect(seen).toEqual([true, false]);
    expect((await store.pending(100)).map((p) => p.id)).not.toContain(req.id);
    expect(await durable(w.group)).toEqual([['system', 'tenant.export_completed']]);
  });
});
