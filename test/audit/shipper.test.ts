import { HeadObjectCommand, PutObjectCommand, S3Client, S3ServiceException } from '@aws-sdk/client-s3';
import { mockClient } from 'aws-sdk-client-mock';
import { buildChain } from '../../lambda/audit/chain';
import { addMonths, retentionSchema, shipAuditLog } from '../../lambda/audit/shipper';
import { loadShipperEnv } from '../../lambda/audit/shipper-env';
import { verifyFiles } from '../../lambda/audit/verify';
import type { Plan } from '../../contracts/plans';
import { sampleEvents } from './fixtures';
import { MemorySource } from './memory-source';
import { publishArchiveMetrics } from '../../lambda/audit/shipper-metrics';
import { RecordingMetrics } from '../support/observability';
import { defined } from '../support/defined';

const s3 = mockClient(S3Client);
const NOW = new Date('2026-11-22T17:00:00.000Z');
const RUN = { worker: 'test-run', now: () => NOW };
const KEY_ARN = 'arn:aws:kms:eu-west-1:000000000000:key/11111111-2222-4333-8444-555555555555';
const RETENTION = { pro: 12, business: 24, enterprise: 84 };
const ORGS: Record<Plan, string> = {
  pro: 'aaaaaaaa-0000-4000-8000-000000000001',
  business: 'bbbbbbbb-0000-4000-8000-000000000002',
  enterprise: 'cccccccc-0000-4000-8000-000000000003',
};

function world(count = 25): MemorySource {
  return new MemorySource(
    new Map(
      (Object.keys(ORGS) as Plan[]).map((plan, i) => [
        ORGS[plan],
        { plan, records: buildChain(sampleEvents(ORGS[plan], count, i + 7)) },
      ]),
    ),
  );
}

function puts() {
  return s3.commandCalls(PutObjectCommand).map((c) => c.args[0].input);
}

beforeEach(() => {
  s3.reset();
  s3.on(PutObjectCommand).resolves({});
});

describe('audit shipper', () => {
  const config = { bucket: 'audit-archive', kmsKeyArn: KEY_ARN, retentionMonths: RETENTION, batchSize: 10 };

  it('writes ordered, conditional, KMS-encrypted batches with COMPLIANCE retention from each plan', async () => {
    const source = world();
    const result = await shipAuditLog(new S3Client({}), source, config, RUN);
    expect(result).toEqual({
      batches: 9,
      records: 75,
      organisations: 3,
      failed: [],
      owed: { organisations: 0, oldestAgeSeconds: 0 },
    });

    const calls = puts();
    expect(calls.map((c) => c.Key)).toEqual(
      (Object.keys(ORGS) as Plan[]).flatMap((p) =>
        ['0000000000000001', '0000000000000011', '0000000000000021'].map((s) => `orgs/${ORGS[p]}/${s}.jsonl`),
      ),
    );
    for (const plan of Object.keys(ORGS) as Plan[]) {
      for (const call of calls.filter((c) => c.Key?.includes(ORGS[plan]))) {
        expect(call).toMatchObject({
          Bucket: 'audit-archive',
          IfNoneMatch: '*',
          ObjectLockMode: 'COMPLIANCE',
          ObjectLockRetainUntilDate: addMonths(NOW, RETENTION[plan]),
          ServerSideEncryption: 'aws:kms',
          SSEKMSKeyId: KEY_ARN,
          BucketKeyEnabled: true,
          ChecksumSHA256: expect.stringMatching(/^[A-Za-z0-9+/]{43}=$/),
          Metadata: expect.objectContaining({ 'org-id': ORGS[plan], plan }),
        });
      }
    }
    expect(puts()[0]?.ObjectLockRetainUntilDate).toEqual(new Date('2027-11-22T17:00:00.000Z'));
    expect(puts()[3]?.ObjectLockRetainUntilDate).toEqual(new Date('2028-11-22T17:00:00.000Z'));
    expect(puts()[6]?.ObjectLockRetainUntilDate).toEqual(new Date('2033-11-22T17:00:00.000Z'));

    const second = defined(calls[1]);
    const first = defined(calls[0]);
    expect(second.Metadata).toEqual({
      'org-id': ORGS.pro,
      plan: 'pro',
      'first-seq': '11',
      'last-seq': '20',
      count: '10',
      'prev-hash': first.Metadata?.['last-hash'],
      'last-hash': defined(defined(source.chains.get(ORGS.pro)).records[19]).hash,
    });

    // The archive verifies on its own.
    const files = calls.map((c) => ({ name: defined(c.Key), bytes: Buffer.from(c.Body as string) }));
    const report = verifyFiles(files);
    expect(report.problems).toEqual([]);
    expect(report.chains).toHaveLength(3);
    expect(source.shipped.get(ORGS.enterprise)?.seq).toBe(25);

    // Nothing new: nothing written.
    s3.resetHistory();
    expect(await shipAuditLog(new S3Client({}), source, config, RUN)).toEqual({
      batches: 0,
      records: 0,
      organisations: 0,
      failed: [],
      owed: { organisations: 0, oldestAgeSeconds: 0 },
    });
    expect(puts()).toEqual([]);
  });

  it('never archives a broken chain, and reports the organisation', async () => {
    const source = world();
    const records = defined(source.chains.get(ORGS.business)).records;
    records[14] = { ...defined(records[14]), actorEmail: 'rewritten@example.com' };
    const result = await shipAuditLog(new S3Client({}), source, config, RUN);
    expect(result.failed).toEqual([{ orgId: ORGS.business, code: 'CHAIN_BROKEN' }]);
    expect(
      puts()
        .filter((c) => c.Key?.includes(ORGS.business))
        .map((c) => c.Key),
    ).toEqual([`orgs/${ORGS.business}/0000000000000001.jsonl`]);
    expect(source.shipped.get(ORGS.business)?.seq).toBe(10);
  });

  it('resumes after a crash between the write and the progress record, and refuses a conflicting object', async () => {
    const source = world(10);
    const records = defined(source.chains.get(ORGS.pro)).records;
    const exists = new S3ServiceException({
      name: 'PreconditionFailed',
      $fault: 'client',
      $metadata: { httpStatusCode: 412 },
    });
    s3.on(PutObjectCommand, { Key: `orgs/${ORGS.pro}/0000000000000001.jsonl` }).rejects(exists);
    s3.on(HeadObjectCommand).resolves({ Metadata: { 'last-seq': '10', 'last-hash': defined(records[9]).hash } });
    let result = await shipAuditLog(new S3Client({}), source, config, RUN);
    expect(result.failed).toEqual([]);
    expect(source.shipped.get(ORGS.pro)).toEqual({ seq: 10, hash: defined(records[9]).hash });

    source.shipped.clear();
    s3.on(HeadObjectCommand).resolves({ Metadata: { 'last-seq': '10', 'last-hash': 'f'.repeat(64) } });
    result = await shipAuditLog(new S3Client({}), source, config, RUN);
    expect(result.failed).toEqual([{ orgId: ORGS.pro, code: 'ARCHIVE_CONFLICT' }]);
  });

  it('serves the longest-waiting organisations first, each for a bounded share of a run', async () => {
    // Twelve organisations, the later ids waiting longest; a run's budget is five batches.
    const ids = Array.from({ length: 12 }, (_, i) => `dddddddd-0000-4000-8000-${String(i).padStart(12, '0')}`);
    const chains = new Map(
      ids.map((id, i) => [
        id,
        {
          plan: 'pro' as Plan,
          records: buildChain(sampleEvents(id, 30, i)),
          recordedAt: Array<number>(30).fill(1000 - i),
        },
      ]),
    );
    let clock = 2000;
    const source = new MemorySource(chains, () => clock);
    const small = { ...config, maxBatches: 5, maxBatchesPerOrganisation: 2, claimSize: 4 };
    const first = await shipAuditLog(new S3Client({}), source, small, { worker: 'run-1', now: () => NOW });
    expect(first).toMatchObject({ batches: 5, organisations: 3, failed: [] });
    // Longest-waiting first (ids 11, 10, 9), two batches each at most, the budget ending mid-chain.
    expect([...source.shipped].map(([org, h]) => [ids.indexOf(org), h.seq])).toEqual([
      [11, 20],
      [10, 20],
      [9, 10],
    ]);
    // The age of the oldest unshipped record (id 11's third batch, recorded at 989 ms), by the database's clock.
    expect(first.owed).toEqual({ organisations: 12, oldestAgeSeconds: 1 });
    // Leases end with the run: the next run is free to take what this one left.
    let runs = 1;
    while (source.shipped.size < ids.length || [...source.shipped.values()].some((h) => h.seq < 30)) {
      clock += 1000;
      await shipAuditLog(new S3Client({}), source, small, { worker: `run-${++runs}`, now: () => NOW });
      expect(runs).toBeLessThanOrEqual(8);
    }
    // 12 organisations x 3 batches = 36 batches at 5 a run: 8 runs, none starved.
    expect(runs).toBe(8);
  });

  it('stops starting batches when the invocation is about to run out of time', async () => {
    const source = world();
    let left = 120_000;
    s3.on(PutObjectCommand).callsFake(() => {
      left -= 25_000;
      return {};
    });
    const result = await shipAuditLog(new S3Client({}), source, config, { ...RUN, remainingMs: () => left });
    // 120 s left, 25 s a batch, 60 s kept in reserve: batches start at 120, 95 and 70 s left,
    // which ship the first organisation's 25 records; the other two stay owed.
    expect(result.batches).toBe(3);
    expect(result.owed.organisations).toBe(2);
    expect([...source.shipped.values()].map((h) => h.seq)).toEqual([25]);
  });

  it('publishes the oldest unshipped age and the organisations owed under the deployment', () => {
    const metrics = new RecordingMetrics();
    publishArchiveMetrics(metrics, 'prod-eu', {
      batches: 1,
      records: 3,
      organisations: 1,
      failed: [],
      owed: { organisations: 4, oldestAgeSeconds: 930 },
    });
    expect(metrics.published).toEqual([
      {
        dimensions: { Deployment: 'prod-eu' },
        values: { ArchiveOldestUnshippedSeconds: 930, ArchiveOwedOrganisations: 4 },
        units: { ArchiveOldestUnshippedSeconds: 'Seconds', ArchiveOwedOrganisations: 'Count' },
        timestamp: undefined,
      },
    ]);
  });

  it('validates retention at cold start against the plan minimums', () => {
    expect(retentionSchema.parse(RETENTION)).toEqual(RETENTION);
    const bad = retentionSchema.safeParse({ pro: 12, business: 12, enterprise: 84 });
    expect(bad.success).toBe(false);
    expect(bad.error?.issues[0]).toMatchObject({
      path: ['business'],
      message: expect.stringContaining('minimum of 24'),
    });
  });
});

describe('shipper environment', () => {
  const valid = {
    AUDIT_BUCKET: 'bulwark-audit-archive-1',
    AUDIT_KEY_ARN: KEY_ARN,
    AUDIT_RETENTION_MONTHS: JSON.stringify(RETENTION),
    DB_HOST: 'db.internal',
    DB_PORT: '5432',
    DB_NAME: 'bulwark',
    DB_USER: 'bulwark_audit_shipper',
    AWS_REGION: 'eu-west-1',
    DEPLOYMENT: 'prod-eu',
  };

  it('accepts a complete environment with defaults', () => {
    expect(loadShipperEnv(valid)).toEqual({
      shipper: { bucket: valid.AUDIT_BUCKET, kmsKeyArn: KEY_ARN, retentionMonths: RETENTION, batchSize: 1000 },
      deployment: 'prod-eu',
      database: {
        host: 'db.internal',
        port: 5432,
        database: 'bulwark',
        user: 'bulwark_audit_shipper',
        region: 'eu-west-1',
      },
    });
  });

  it('reads the connection with the one database parser, and names its variables among the others', () => {
    expect(() => loadShipperEnv({ ...valid, AUDIT_BUCKET: undefined, DB_PORT: undefined })).toThrow(
      /SHIPPER_ENV_INVALID: AUDIT_BUCKET: .*DB_ENV_INVALID: DB_PORT/,
    );
  });

  it('names every invalid variable and refuses retention below a plan minimum', () => {
    expect(() =>
      loadShipperEnv({
        ...valid,
        AUDIT_BUCKET: undefined,
        AUDIT_RETENTION_MONTHS: '{"pro":6,"business":24,"enterprise":84}',
      }),
    ).toThrow(
      /SHIPPER_ENV_INVALID: AUDIT_BUCKET: .*AUDIT_RETENTION_MONTHS\.pro: 6 months is below the pro minimum of 12/,
    );
    expect(() => loadShipperEnv({ ...valid, AUDIT_RETENTION_MONTHS: 'nope' })).toThrow(
      /AUDIT_RETENTION_MONTHS: must be JSON/,
    );
  });
});
