import { HeadObjectCommand, PutObjectCommand, S3Client, S3ServiceException } from '@aws-sdk/client-s3';
import { mockClient } from 'aws-sdk-client-mock';
import { buildChain, EMPTY_HEAD, type AuditRecord, type ChainHead } from '../../lambda/audit/chain';
import { addMonths, retentionSchema, shipAuditLog, type ShipperSource } from '../../lambda/audit/shipper';
import { loadShipperEnv } from '../../lambda/audit/shipper-env';
import { verifyFiles } from '../../lambda/audit/verify';
import type { Plan } from '../../contracts/plans';
import { sampleEvents } from './fixtures';
import { defined } from '../support/defined';

const s3 = mockClient(S3Client);
const NOW = new Date('2026-11-22T17:00:00.000Z');
const KEY_ARN = 'arn:aws:kms:eu-west-1:000000000000:key/11111111-2222-4333-8444-555555555555';
const RETENTION = { pro: 12, business: 24, enterprise: 84 };
const ORGS: Record<Plan, string> = {
  pro: 'aaaaaaaa-0000-4000-8000-000000000001',
  business: 'bbbbbbbb-0000-4000-8000-000000000002',
  enterprise: 'cccccccc-0000-4000-8000-000000000003',
};

class MemorySource implements ShipperSource {
  readonly shipped = new Map<string, ChainHead>();
  constructor(readonly chains: Map<string, { plan: Plan; records: AuditRecord[] }>) {}
  async pending() {
    return [...this.chains].map(([orgId, c]) => ({
      orgId,
      plan: c.plan,
      shipped: this.shipped.get(orgId) ?? EMPTY_HEAD,
    }));
  }
  async read(orgId: string, after: number, limit: number) {
    return (this.chains.get(orgId)?.records ?? []).filter((r) => r.seq > after).slice(0, limit);
  }
  async markShipped(orgId: string, head: ChainHead) {
    this.shipped.set(orgId, head);
  }
}

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
    const result = await shipAuditLog(new S3Client({}), source, config, () => NOW);
    expect(result).toEqual({ batches: 9, records: 75, failed: [] });

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
    expect(await shipAuditLog(new S3Client({}), source, config, () => NOW)).toEqual({
      batches: 0,
      records: 0,
      failed: [],
    });
    expect(puts()).toEqual([]);
  });

  it('never archives a broken chain, and reports the organisation', async () => {
    const source = world();
    const records = defined(source.chains.get(ORGS.business)).records;
    records[14] = { ...defined(records[14]), actorEmail: 'rewritten@example.com' };
    const result = await shipAuditLog(new S3Client({}), source, config, () => NOW);
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
    let result = await shipAuditLog(new S3Client({}), source, config, () => NOW);
    expect(result.failed).toEqual([]);
    expect(source.shipped.get(ORGS.pro)).toEqual({ seq: 10, hash: defined(records[9]).hash });

    source.shipped.clear();
    s3.on(HeadObjectCommand).resolves({ Metadata: { 'last-seq': '10', 'last-hash': 'f'.repeat(64) } });
    result = await shipAuditLog(new S3Client({}), source, config, () => NOW);
    expect(result.failed).toEqual([{ orgId: ORGS.pro, code: 'ARCHIVE_CONFLICT' }]);
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
  };

  it('accepts a complete environment with defaults', () => {
    expect(loadShipperEnv(valid)).toEqual({
      shipper: { bucket: valid.AUDIT_BUCKET, kmsKeyArn: KEY_ARN, retentionMonths: RETENTION, batchSize: 1000 },
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
