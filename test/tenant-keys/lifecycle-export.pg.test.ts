/**
 * Lifecycle, key recording and export against a real PostgreSQL 17 with every migration applied,
 * connected as the application role (not owner, not superuser, no BYPASSRLS). The superuser is used
 * only for setup: creating users, and moving deadlines into the past to stand in for elapsed time.
 */
import {
  CreateAliasCommand,
  CreateKeyCommand,
  DescribeKeyCommand,
  EnableKeyRotationCommand,
  KMSClient,
  ListResourceTagsCommand,
  ScheduleKeyDeletionCommand,
} from '@aws-sdk/client-kms';
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import {
  DeleteObjectsCommand,
  GetObjectCommand,
  ListObjectVersionsCommand,
  PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import { mockClient } from 'aws-sdk-client-mock';
import type { Pool } from 'pg';
import type { AuditRecord } from '../../lambda/audit/chain';
import { encodeCsv } from '../../lambda/audit/formats';
import { AUDIT_COLUMNS, rowToRecord } from '../../lambda/audit/pg-sink';
import { PgSystemAuditSink } from '../../lambda/audit/pg-system-sink';
import { verifyFiles } from '../../lambda/audit/verify';
import type { AuditEvent, AuditSink } from '../../lambda/shared/audit';
import type { SqlClient } from '../../lambda/shared/migrations';
import { ExportService, exportedFiles, readExport, type ExportStore } from '../../lambda/tenant-keys/export';
import { S3FileContentSource } from '../../lambda/tenant-keys/export-files';
import { tenantKeyTags } from '../../lambda/tenant-keys/key-policy';
import { LifecycleProcessor } from '../../lambda/tenant-keys/lifecycle-processor';
import {
  PgExportSource,
  PgExportStore,
  PgLifecycleCommands,
  PgLifecycleStore,
  PgTenantDataEraser,
  PgTenantKeyStore,
  pgTenantKeyResolver,
} from '../../lambda/tenant-keys/pg-stores';
import { TenantKeyProvisioner } from '../../lambda/tenant-keys/provisioner';
import { S3TenantObjectEraser } from '../../lambda/tenant-keys/s3-eraser';
import { MIGRATOR_ROLE, startPostgres, type TestPostgres } from '../support/postgres';
import { authenticateAs, buildWorld, createUser, ticketFor, type World } from '../tenant-guard/fixtures';
import { DATABASE_ROLES } from '../../contracts/database';

const ACCOUNT = '111122223333';
const keyArn = (n: number) => `arn:aws:kms:eu-west-1:${ACCOUNT}:key/${String(n).repeat(8)}-1111-4111-8111-111111111111`;
const EXPORT_BUCKET = 'bulwark-exports-test';
const EXPORT_KEY = `arn:aws:kms:eu-west-1:${ACCOUNT}:key/99999999-9999-4999-8999-999999999999`;

/**
 * Records every event for assertions and forwards system events to the durable sink the functions
 * use (PgSystemAuditSink, in the step's transaction when there is one). Users' events (cancel,
 * restore, export request) are the API's to record and stay in memory here.
 */
class RecordingAudit implements AuditSink {
  readonly events: { event: AuditEvent; inTx: boolean }[] = [];
  durable: AuditSink | undefined;
  async record(event: AuditEvent, tx?: SqlClient) {
    this.events.push({ event, inTx: tx !== undefined });
    if (event.actorType === 'system') await this.durable?.record(event, tx);
  }
  names(orgId: string): string[] {
    return this.events.filter((e) => e.event.orgId === orgId).map((e) => e.event.event);
  }
}

function named(name: string): Error {
  return Object.assign(new Error(name), { name });
}

let pg: TestPostgres;
let pool: Pool;
let provisionerPool: Pool;
let lifecyclePool: Pool;

/** Requests and downloads as the API (with the caller's proof); the queue as the export worker. */
function splitStore(api: PgExportStore, worker: PgExportStore): ExportStore {
  return {
    create: (...a) => api.create(...a),
    get: (...a) => api.get(...a),
    pending: (...a) => worker.pending(...a),
    complete: (...a) => worker.complete(...a),
    fail: (...a) => worker.fail(...a),
  };
}
let w: World;
let memberA: string;

/** Commits `statements` inside a tenant context, as the application role. */
async function asTenantCommit(user: string, org: string, statements: [string, unknown[]][]): Promise<void> {
  const c = await pool.connect();
  try {
    await c.query('BEGIN');
    await authenticateAs(c, user, org);
    await c.query('SELECT * FROM app.set_tenant_context($1, $2)', [user, org]);
    for (const [sql, params] of statements) await c.query(sql, params);
    await c.query('COMMIT');
  } catch (e) {
    await c.query('ROLLBACK');
    throw e;
  } finally {
    c.release();
  }
}

async function countAs(user: string, org: string, table: string): Promise<number> {
  const c = await pool.connect();
  try {
    await c.query('BEGIN');
    await authenticateAs(c, user, org);
    await c.query('SELECT * FROM app.set_tenant_context($1, $2)', [user, org]);
    const r = await c.query(`SELECT count(*)::int AS n FROM ${table} WHERE org_id = $1`, [org]);
    return (r.rows[0] as { n: number }).n;
  } finally {
    await c.query('ROLLBACK');
    c.release();
  }
}

async function seed(user: string, org: string, tag: string, vin: string): Promise<void> {
  await asTenantCommit(user, org, [
    [
      `WITH c AS (INSERT INTO customers (org_id, name, email) VALUES ($1, $2, $3) RETURNING id),
            v AS (INSERT INTO vehicles (org_id, vin, make, model, year) VALUES ($1, $4, 'Volvo', 'XC40', 2024) RETURNING id),
            l AS (INSERT INTO leads (org_id, customer_id, vehicle_id, name) SELECT $1, c.id, v.id, $2 FROM c, v RETURNING id, customer_id, vehicle_id)
       INSERT INTO deals (org_id, customer_id, lead_id, vehicle_id, amount_cents) SELECT $1, customer_id, id, vehicle_id, 4200000 FROM l`,
      [org, `${tag} customer`, `${tag}@example.test`, vin],
    ],
    [
      `INSERT INTO messages (org_id, channel, direction, body) VALUES ($1, 'sms', 'inbound', $2)`,
      [org, `hello from ${tag}`],
    ],
  ]);
}

beforeAll(async () => {
  pg = await startPostgres();
  pool = pg.pool();
  // The provisioner and the lifecycle processor connect as their own roles (migrations/0401).
  provisionerPool = pg.pool(DATABASE_ROLES.keyProvisioner);
  lifecyclePool = pg.pool(DATABASE_ROLES.lifecycle);
  w = await buildWorld(pg);
  memberA = await createUser(pg);
  await pg.superuser(`INSERT INTO memberships (org_id, user_id, role) VALUES ($1, $2, 'member')`, [w.storeA, memberA]);
  await seed(w.ownerA, w.storeA, 'alpha', '1HGCM82633A004352');
  await seed(w.ownerB, w.storeB, 'bravo', '2HGCM82633A004353');
});
afterAll(async () => pg?.stop());

/**
 * An organisation's durable audit chain, read as the owner role (what the archive shipper reads:
 * a tenant in grace or shredded has no context to read through), and whether it verifies.
 */
async function durableChain(org: string): Promise<{ records: AuditRecord[]; problems: unknown[] }> {
  const c = await pg.client(MIGRATOR_ROLE);
  try {
    const records = (
      await c.query(`SELECT ${AUDIT_COLUMNS} FROM audit_log WHERE org_id = $1 ORDER BY seq`, [org])
    ).rows.map(rowToRecord);
    const report = verifyFiles([{ name: `${org}.csv`, bytes: Buffer.from(encodeCsv(records)) }]);
    return { records, problems: [...report.problems] };
  } finally {
    await c.end();
  }
}

describe('tenant key on the tenant row', () => {
  it('the provisioner records the ARN once; a retry or a different key never replaces it', async () => {
    const client = new KMSClient({ region: 'eu-west-1' });
    const kms = mockClient(client);
    kms.on(DescribeKeyCommand).rejects(named('NotFoundException'));
    kms.on(CreateKeyCommand).resolves({ KeyMetadata: { KeyId: 'k1', Arn: keyArn(1), KeyState: 'Enabled' } });
    kms.on(CreateAliasCommand).resolves({});
    kms.on(EnableKeyRotationCommand).resolves({});
    const store = new PgTenantKeyStore(provisionerPool);
    const audit = new RecordingAudit();
    audit.durable = new PgSystemAuditSink({ pool: provisionerPool });
    const provisioner = new TenantKeyProvisioner(
      { kms: client, store, audit, clock: () => new Date() },
      { deployment: 'prod-eu', account: ACCOUNT, region: 'eu-west-1' },
    );
    expect(await provisioner.provision(w.storeA)).toEqual({ keyArn: keyArn(1), source: 'managed', created: true });
    expect(await store.get(w.storeA)).toEqual({ keyArn: keyArn(1), source: 'managed' });
    // Retried: found on the row, no KMS call.
    const calls = kms.calls().length;
    expect((await provisioner.provision(w.storeA)).created).toBe(false);
    expect(kms.calls()).toHaveLength(calls);
    // Another key can never be recorded over it.
    expect(await store.record(w.storeA, { keyArn: keyArn(2), source: 'byok' })).toEqual({
      keyArn: keyArn(1),
      source: 'managed',
    });
    await store.record(w.storeB, { keyArn: keyArn(3), source: 'managed' });
    // The key's creation is in the tenant's durable, hash-chained audit log.
    const durable = await durableChain(w.storeA);
    expect(durable.records.map((r) => [r.seq, r.actorType, r.event, r.entityId])).toEqual([
      [1, 'system', 'tenant_key.created', keyArn(1)],
    ]);
    expect(durable.problems).toEqual([]);
  });

  it('the application role cannot write the tenant row directly', async () => {
    await expect(pool.query('UPDATE organisations SET kms_key_arn = NULL WHERE id = $1', [w.storeA])).rejects.toThrow(
      /permission denied/,
    );
  });
});

describe('lifecycle against PostgreSQL', () => {
  const audit = new RecordingAudit();
  const now = () => new Date();
  let commands: PgLifecycleCommands;
  let store: PgLifecycleStore;
  const s3Client = new S3Client({ region: 'eu-west-1', credentials: { accessKeyId: 'x', secretAccessKey: 'y' } });
  const s3 = mockClient(s3Client);
  const kmsClient = new KMSClient({ region: 'eu-west-1' });
  const kms = mockClient(kmsClient);
  let processor: LifecycleProcessor;

  beforeAll(() => {
    audit.durable = new PgSystemAuditSink({ pool: lifecyclePool });
    commands = new PgLifecycleCommands(pool, audit, now);
    store = new PgLifecycleStore(lifecyclePool, audit);
    processor = new LifecycleProcessor({
      deployment: 'prod-eu',
      store,
      rows: new PgTenantDataEraser(lifecyclePool),
      objects: new S3TenantObjectEraser(s3Client, [{ bucket: EXPORT_BUCKET, prefix: (o) => `exports/${o}/` }]),
      kms: kmsClient,
      audit,
      clock: now,
    });
    s3.on(ListObjectVersionsCommand).resolves({
      Versions: [{ Key: `exports/${w.storeA}/x.ndjson.gz`, VersionId: 'v1' }],
      IsTruncated: false,
    });
    s3.on(DeleteObjectsCommand).resolves({});
    kms.on(ScheduleKeyDeletionCommand).resolves({ KeyState: 'PendingDeletion' });
    // keyArn(1) is storeA's key (recorded above); its tags say so.
    kms.on(ListResourceTagsCommand).callsFake((input: { KeyId: string }) => ({
      Tags: input.KeyId === keyArn(1) ? tenantKeyTags('prod-eu', w.storeA) : [],
    }));
  });

  const owner = (userId = w.ownerA) => ({
    type: 'user' as const,
    userId,
    email: 'owner-a@example.test',
    proof: ticketFor(userId),
  });
  /** One committed statement as `user`, proven to the database. */
  const asUser = async (user: string, sql: string, params: unknown[]) => {
    const c = await pool.connect();
    try {
      await c.query('BEGIN');
      await authenticateAs(c, user);
      const r = await c.query(sql, params);
      await c.query('COMMIT');
      return r;
    } catch (e) {
      await c.query('ROLLBACK');
      throw e;
    } finally {
      c.release();
    }
  };
  const backdate = (sql: string) => pg.superuser(sql, [w.storeA]);

  it('only the Owner can cancel, and the database refuses a cancellation outside a context', async () => {
    const end = new Date(Date.now() + 3_600_000);
    await expect(commands.cancel(w.storeA, owner(memberA), end)).rejects.toThrow('PERMISSION_DENIED');
    await expect(commands.cancel(w.storeA, owner(w.ownerB), end)).rejects.toThrow('MEMBERSHIP_REVOKED');
    await expect(pool.query('SELECT * FROM app.cancel_tenant(now() + interval $$1 day$$)')).rejects.toThrow(
      'TENANT_CONTEXT_MISSING',
    );
    expect((await store.load(w.storeA))?.state).toBe('active');
  });

  it('cancelled: access continues until the end of the billing period; nothing happens early', async () => {
    const end = new Date(Date.now() + 3_600_000);
    const t = await commands.cancel(w.storeA, owner(), end);
    expect(t).toMatchObject({ state: 'cancelled', accessUntil: end });
    expect(await store.load(w.storeA)).toMatchObject({ state: 'cancelled', accessUntil: end });
    expect(await countAs(w.ownerA, w.storeA, 'leads')).toBe(1);
    expect(await processor.run()).toEqual({ advanced: [], failed: [] });
    // The database refuses early steps even if the application asked for them.
    await expect(
      lifecyclePool.query(`SELECT app.advance_tenant_lifecycle($1, 'cancelled', 'grace')`, [w.storeA]),
    ).rejects.toThrow('LIFECYCLE_NOT_DUE');
    await expect(lifecyclePool.query('SELECT app.erase_tenant_rows($1)', [w.storeA])).rejects.toThrow(
      'LIFECYCLE_NOT_DUE',
    );
    expect(audit.names(w.storeA)).toEqual(['tenant.cancelled']);
    expect(audit.events.every((e) => e.inTx)).toBe(true);
  });

  it('grace: access is suspended, nothing is deleted, and the Owner can restore', async () => {
    await backdate(`UPDATE organisations SET access_until = now() - interval '1 minute' WHERE id = $1`);
    expect(await processor.run()).toEqual({ advanced: [{ orgId: w.storeA, to: 'grace' }], failed: [] });
    expect((await store.load(w.storeA))?.state).toBe('grace');
    await expect(countAs(w.ownerA, w.storeA, 'leads')).rejects.toThrow('ORGANISATION_INACTIVE');
    // Not yet erasable: the grace period has 30 days to run.
    await expect(lifecyclePool.query('SELECT app.erase_tenant_rows($1)', [w.storeA])).rejects.toThrow(
      'LIFECYCLE_NOT_DUE',
    );
    await expect(commands.restore(w.storeA, owner(w.ownerB))).rejects.toThrow('PERMISSION_DENIED');

    const restored = await commands.restore(w.storeA, owner());
    expect(restored.state).toBe('active');
    expect(await store.load(w.storeA)).toMatchObject({ state: 'active', accessUntil: null, graceEndsAt: null });
    expect(await countAs(w.ownerA, w.storeA, 'leads')).toBe(1);
    expect(audit.names(w.storeA)).toEqual(['tenant.cancelled', 'tenant.grace_started', 'tenant.restored']);
  });

  it('shredded: rows and objects deleted, key scheduled for deletion, other tenants untouched, final', async () => {
    const before = {
      leads: await countAs(w.ownerB, w.storeB, 'leads'),
      deals: await countAs(w.ownerB, w.storeB, 'deals'),
    };
    await commands.cancel(w.storeA, owner(), new Date(Date.now() + 1000));
    await backdate(
      `UPDATE organisations SET cancelled_at = now() - interval '45 days', access_until = now() - interval '31 days' WHERE id = $1`,
    );
    expect(await processor.run()).toEqual({
      advanced: [
        { orgId: w.storeA, to: 'grace' },
        { orgId: w.storeA, to: 'shredded' },
      ],
      failed: [],
    });
    const status = (await lifecyclePool.query('SELECT * FROM app.tenant_status($1)', [w.storeA])).rows[0];
    expect(status).toMatchObject({ lifecycle_state: 'shredded', key_arn: keyArn(1) });
    expect((await lifecyclePool.query('SELECT app.tenant_rows_remaining($1)::int AS n', [w.storeA])).rows[0]).toEqual({
      n: 0,
    });
    expect(kms.commandCalls(ScheduleKeyDeletionCommand).map((c) => c.args[0].input)).toEqual([
      { KeyId: keyArn(1), PendingWindowInDays: 7 },
    ]);
    expect(s3.commandCalls(DeleteObjectsCommand)[0]?.args[0].input).toEqual({
      Bucket: EXPORT_BUCKET,
      Delete: { Objects: [{ Key: `exports/${w.storeA}/x.ndjson.gz`, VersionId: 'v1' }], Quiet: true },
    });
    expect(audit.names(w.storeA).slice(-6)).toEqual([
      'tenant.cancelled',
      'tenant.grace_started',
      'tenant.rows_deleted',
      'tenant.objects_deleted',
      'tenant_key.deletion_scheduled',
      'tenant.shredded',
    ]);
    const rowsDeleted = audit.events.find((e) => e.event.event === 'tenant.rows_deleted');
    expect(rowsDeleted?.event.metadata['rows']).toBeGreaterThanOrEqual(6);
    // Every system step is in the tenant's durable chain, which survives the shred and verifies.
    const durable = await durableChain(w.storeA);
    expect(durable.records.map((r) => r.event)).toEqual([
      'tenant_key.created',
      'tenant.grace_started',
      'tenant.grace_started',
      'tenant.rows_deleted',
      'tenant.objects_deleted',
      'tenant_key.deletion_scheduled',
      'tenant.shredded',
    ]);
    expect(durable.records.every((r) => r.actorType === 'system' && r.actorUserId === null)).toBe(true);
    expect(durable.records.find((r) => r.event === 'tenant.rows_deleted')?.metadata).toEqual(
      rowsDeleted?.event.metadata,
    );
    expect(durable.problems).toEqual([]);

    // The neighbour keeps everything.
    expect({
      leads: await countAs(w.ownerB, w.storeB, 'leads'),
      deals: await countAs(w.ownerB, w.storeB, 'deals'),
    }).toEqual(before);
    // Final: no restore, no new key, no way back in.
    await expect(commands.restore(w.storeA, owner())).rejects.toThrow();
    // Its memberships are gone with its rows; even a platform owner cannot bring it back.
    await expect(asUser(w.ownerA, 'SELECT * FROM app.restore_tenant($1, $2)', [w.ownerA, w.storeA])).rejects.toThrow(
      'PERMISSION_DENIED',
    );
    await expect(
      asUser(w.platformOwner, 'SELECT * FROM app.restore_tenant($1, $2)', [w.platformOwner, w.storeA]),
    ).rejects.toThrow('TENANT_SHREDDED');
    await expect(
      new PgTenantKeyStore(provisionerPool).record(w.storeA, { keyArn: keyArn(4), source: 'managed' }),
    ).rejects.toThrow('TENANT_SHREDDED');
    await expect(countAs(w.ownerA, w.storeA, 'leads')).rejects.toThrow('ORGANISATION_INACTIVE');
    expect(await processor.run()).toEqual({ advanced: [], failed: [] });
    // Provisioning and envelope encryption refuse the shredded tenant before any KMS call.
    const keys = new PgTenantKeyStore(provisionerPool);
    await expect(keys.get(w.storeA)).rejects.toMatchObject({ code: 'TENANT_SHREDDED' });
    await expect(pgTenantKeyResolver(keys)(w.storeA)).rejects.toMatchObject({ code: 'TENANT_SHREDDED' });
    expect(await pgTenantKeyResolver(keys)(w.storeB)).toBe(keyArn(3));
  });

  /** Tenant tables (from the catalog) missing either lifecycle erasure policy. */
  async function erasureGaps(): Promise<{ tables: number; gaps: string[] }> {
    const r = await pool.query<{ table: string; policies: string[] | null }>(
      `SELECT c.relname AS table,
              array_agg(p.policyname::text ORDER BY p.policyname) FILTER (WHERE p.policyname LIKE 'lifecycle_erase%') AS policies
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'org_id' AND NOT a.attisdropped
         LEFT JOIN pg_policies p ON p.schemaname = n.nspname AND p.tablename = c.relname
        WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND c.relname <> 'audit_log'
        GROUP BY c.relname ORDER BY c.relname`,
    );
    const ok = (p: string[] | null) =>
      JSON.stringify(p) === JSON.stringify(['lifecycle_erase', 'lifecycle_erase_read']);
    return { tables: r.rows.length, gaps: r.rows.filter((x) => !ok(x.policies)).map((x) => x.table) };
  }

  it('every tenant table can be erased: each carries the lifecycle erasure policies (from the catalog)', async () => {
    const { tables, gaps } = await erasureGaps();
    expect(tables).toBeGreaterThanOrEqual(10);
    expect(gaps).toEqual([]);
  });

  it('the catalog check bites: a new tenant table without app.allow_tenant_erasure is reported', async () => {
    const migrator = await pg.client('bulwark_migrator');
    try {
      await migrator.query('CREATE TABLE erasure_probe (id uuid PRIMARY KEY, org_id uuid NOT NULL)');
      expect((await erasureGaps()).gaps).toEqual(['erasure_probe']);
      await migrator.query(`SELECT app.allow_tenant_erasure('erasure_probe')`);
      expect((await erasureGaps()).gaps).toEqual([]);
    } finally {
      await migrator.query('DROP TABLE IF EXISTS erasure_probe');
      await migrator.end();
    }
  });
});

describe('export against PostgreSQL', () => {
  const s3Client = new S3Client({
    region: 'eu-west-1',
    credentials: { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'secret' },
  });
  const s3 = mockClient(s3Client);
  const audit = new RecordingAudit();
  const NOW = new Date();
  let service: ExportService;

  beforeAll(() => {
    audit.durable = new PgSystemAuditSink({ pool: lifecyclePool });
    s3.on(PutObjectCommand).resolves({});
    service = new ExportService({
      s3: s3Client,
      store: splitStore(new PgExportStore(pool), new PgExportStore(lifecyclePool)),
      source: new PgExportSource(lifecyclePool, 2),
      audit,
      clock: () => NOW,
      bucket: EXPORT_BUCKET,
      bucketKeyArn: EXPORT_KEY,
    });
  });

  const ownerB = () => ({ userId: w.ownerB, email: 'b@example.test', role: 'owner', proof: ticketFor(w.ownerB) });

  it('only an Owner can request one: refused by the service and, independently, by the database', async () => {
    await expect(service.request(w.storeB, { userId: w.ownerB, email: null, role: 'admin' })).rejects.toMatchObject({
      code: 'PERMISSION_DENIED',
      status: 403,
    });
    await seed(w.ownerC, w.storeC, 'charlie', '3HGCM82633A004354');
    const member = await createUser(pg);
    await pg.superuser(`INSERT INTO memberships (org_id, user_id, role) VALUES ($1, $2, 'admin')`, [w.storeC, member]);
    // Even if the application believed an admin was the Owner, the database says no.
    await expect(new PgExportStore(pool).create(w.storeC, member, NOW, ticketFor(member))).rejects.toThrow(
      'PERMISSION_DENIED',
    );
  });

  it('writes the tenant’s leads, customers, vehicles and deals (only its own) to SSE-KMS S3, then a 15-minute link', async () => {
    const req = await service.request(w.storeB, ownerB());
    expect(req.status).toBe('pending');
    await expect(service.downloadUrl(w.storeB, req.id, ownerB())).rejects.toMatchObject({ code: 'EXPORT_NOT_READY' });

    expect(await service.processPending()).toEqual({ done: 1, failed: 0 });
    const put = s3.commandCalls(PutObjectCommand)[0]?.args[0].input;
    expect(put).toMatchObject({
      Bucket: EXPORT_BUCKET,
      Key: `exports/${w.storeB}/${req.id}.ndjson.gz`,
      ServerSideEncryption: 'aws:kms',
      SSEKMSKeyId: EXPORT_KEY,
    });
    const lines = readExport(put?.Body as Buffer) as {
      header?: { orgId: string };
      section?: string;
      row?: Record<string, unknown>;
    }[];
    expect(lines[0]?.header?.orgId).toBe(w.storeB);
    const rows = lines.slice(1);
    const bySection = (s: string) => rows.filter((l) => l.section === s).map((l) => l.row ?? {});
    expect(bySection('customers').map((r) => r['name'])).toEqual(['bravo customer']);
    expect(bySection('leads').map((r) => r['name'])).toEqual(['bravo customer']);
    expect(bySection('vehicles').map((r) => r['vin'])).toEqual(['2HGCM82633A004353']);
    expect(bySection('deals').map((r) => r['amount_cents'])).toEqual(['4200000']);
    expect(rows.every((l) => l.row?.['org_id'] === w.storeB)).toBe(true);
    expect(JSON.stringify(lines)).not.toContain('alpha');

    const { url, expiresAt } = await service.downloadUrl(w.storeB, req.id, ownerB());
    const u = new URL(url);
    expect(u.pathname).toContain(`exports/${w.storeB}/${req.id}.ndjson.gz`);
    expect(u.searchParams.get('X-Amz-Expires')).toBe('900');
    expect(expiresAt.getTime() - NOW.getTime()).toBe(900_000);
    expect(audit.names(w.storeB)).toEqual([
      'tenant.export_requested',
      'tenant.export_completed',
      'tenant.export_downloaded',
    ]);
    // The worker's completion is durable, in the same transaction that marked the export ready.
    const durable = await durableChain(w.storeB);
    expect(durable.records.filter((r) => r.entityId === req.id).map((r) => [r.actorType, r.event, r.metadata])).toEqual(
      [['system', 'tenant.export_completed', { rows: expect.any(Number), files: 0 }]],
    );
    expect(durable.problems).toEqual([]);
  });

  it('another tenant’s Owner can never reach the export', async () => {
    const req = await service.request(w.storeB, ownerB());
    await expect(
      service.downloadUrl(w.storeC, req.id, {
        userId: w.ownerC,
        email: null,
        role: 'owner',
        proof: ticketFor(w.ownerC),
      }),
    ).rejects.toMatchObject({ code: 'EXPORT_NOT_FOUND' });
    await expect(
      service.downloadUrl(w.storeB, req.id, {
        userId: w.ownerC,
        email: null,
        role: 'owner',
        proof: ticketFor(w.ownerC),
      }),
    ).rejects.toThrow('MEMBERSHIP_REVOKED');
  });
  it('carries the bytes of the organisation’s released files, checksums matching the rows; never another’s', async () => {
    const sha = (b: Buffer) => createHash('sha256').update(b).digest('base64');
    const file = async (org: string, bytes: Buffer, status: string) =>
      (
        (await pg.superuser(
          `INSERT INTO tenant_files (org_id, name, content_type, size_bytes, sha256, status)
           VALUES ($1, 'photo.jpg', 'image/jpeg', $2, $3, $4) RETURNING id, object_key`,
          [org, bytes.length, sha(bytes), status],
        )) as { id: string; object_key: string }[]
      )[0]!;
    const bytesB = randomBytes(900_000);
    const cleanB = await file(w.storeB, bytesB, 'clean');
    const quarantinedB = await file(w.storeB, randomBytes(10), 'quarantined');
    const bytesA = randomBytes(1000);
    const cleanA = await file(w.storeA, bytesA, 'clean');
    const objects = new Map([
      [cleanB.object_key, bytesB],
      [cleanA.object_key, bytesA],
    ]);
    // The export reader's client: its own instance, signing with the minted session's credentials.
    const readerClient = new S3Client({ region: 'eu-west-1' });
    const reader = mockClient(readerClient);
    reader.on(GetObjectCommand).callsFake((i: { Key: string }) => ({ Body: Readable.from([objects.get(i.Key)!]) }));
    const minted: string[] = [];
    const withFiles = new ExportService({
      s3: s3Client,
      store: splitStore(new PgExportStore(pool), new PgExportStore(lifecyclePool)),
      source: new PgExportSource(lifecyclePool, 2),
      audit,
      clock: () => NOW,
      bucket: EXPORT_BUCKET,
      bucketKeyArn: EXPORT_KEY,
      files: new S3FileContentSource({
        bucket: 'bulwark-files-test',
        mint: async (orgId) => {
          minted.push(orgId);
          return {
            accessKeyId: 'ASIA',
            secretAccessKey: 's',
            sessionToken: 't',
            expiresAt: NOW.getTime() / 1000 + 900,
          };
        },
        clientFor: () => readerClient,
      }),
    });
    s3.resetHistory();
    const req = await withFiles.request(w.storeB, ownerB());
    expect(await withFiles.process(req)).toMatchObject({ files: 1 });

    expect(minted).toEqual([w.storeB]);
    expect(reader.commandCalls(GetObjectCommand).map((c) => c.args[0].input.Key)).toEqual([cleanB.object_key]);
    const put = s3.commandCalls(PutObjectCommand).find((c) => c.args[0].input.Key?.includes(req.id))!.args[0].input;
    const lines = readExport(put.Body as Buffer) as { section?: string; row?: Record<string, unknown> }[];
    const rows = lines.filter((l) => l.section === 'files').map((l) => l.row!);
    expect(rows.map((r) => [r['id'], r['status'], r['content']])).toEqual([
      [cleanB.id, 'clean', 'included'],
      [quarantinedB.id, 'quarantined', 'not_released'],
    ]);
    const files = exportedFiles(lines);
    expect([...files.keys()]).toEqual([cleanB.id]);
    expect(sha(files.get(cleanB.id)!)).toBe(rows[0]!['sha256']);
    expect(files.get(cleanB.id)!.equals(bytesB)).toBe(true);
    // Organisation A's file is in neither the rows nor the bytes.
    expect(JSON.stringify(lines)).not.toContain(cleanA.id);
    expect(JSON.stringify(lines)).not.toContain(w.storeA);
  });
});
