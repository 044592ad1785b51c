/**
 * The quarantine checker against a real PostgreSQL 17, connected as its own non-owner role
 * (`bulwark_file_checker`), with S3 simulated by aws-sdk-client-mock: the database decides from
 * what the checker observed (migrations/0413 `app.record_file_check`), appends the decision to the
 * organisation's audit chain, and moves a row only out of quarantine, once.
 */
import { createHash, randomUUID } from 'node:crypto';
import {
  GetObjectCommand,
  HeadObjectCommand,
  PutObjectTaggingCommand,
  S3Client,
  type GetObjectCommandOutput,
} from '@aws-sdk/client-s3';
import { mockClient } from 'aws-sdk-client-mock';
import type { Pool } from 'pg';
import { DATABASE_ROLES, FUNCTION_ROLES } from '../../contracts/database';
import { fileObjectKey } from '../../contracts/tenant-files';
import { AUDIT_COLUMNS, rowToRecord } from '../../lambda/audit/pg-sink';
import { encodeCsv } from '../../lambda/audit/formats';
import { verifyFiles } from '../../lambda/audit/verify';
import { FileChecker } from '../../lambda/tenant-files/checker';
import { PgFileCheckStore } from '../../lambda/tenant-files/pg-file-checks';
import { RecordingLog } from '../support/observability';
import { startPostgres, type TestPostgres } from '../support/postgres';
import { defined } from '../support/defined';
import { asTenant, buildWorld, type World } from '../tenant-guard/fixtures';

const BUCKET = 'bulwark-prod-eu-files-test';
const keyArn = (org: string) => `arn:aws:kms:eu-west-1:111122223333:key/${org}`;
const AWS_S3_KEY = 'arn:aws:kms:eu-west-1:111122223333:key/0a0a0a0a-5353-4353-8353-000000000053';
const PDF = Buffer.concat([Buffer.from('%PDF-1.7\n'), Buffer.alloc(2039, 0x20)]);
const sha = (b: Buffer) => createHash('sha256').update(b).digest('base64');

let pg: TestPostgres;
let w: World;
let checkerPool: Pool;
const s3 = mockClient(S3Client);
const log = new RecordingLog();
let checker: FileChecker;

beforeAll(async () => {
  pg = await startPostgres();
  w = await buildWorld(pg);
  checkerPool = pg.pool(DATABASE_ROLES.fileChecker);
  checkerPool.on('error', () => undefined);
  for (const org of [w.storeA, w.storeB]) {
    await pg.superuser("UPDATE organisations SET kms_key_arn = $2, kms_key_source = 'managed' WHERE id = $1", [
      org,
      keyArn(org),
    ]);
  }
  checker = new FileChecker(
    { s3: s3 as unknown as S3Client, store: new PgFileCheckStore(checkerPool), log },
    { bucket: BUCKET },
  );
});
afterAll(async () => {
  s3.restore();
  await pg?.stop();
});
beforeEach(() => s3.reset());

/** A declared upload of `org` (as the API inserts it), quarantined. */
async function declare(org: string, bytes: Buffer = PDF, contentType = 'application/pdf'): Promise<string> {
  const id = randomUUID();
  await pg.superuser(
    `INSERT INTO tenant_files (id, org_id, name, content_type, size_bytes, sha256) VALUES ($1, $2, 'f.pdf', $3, $4, $5)`,
    [id, org, contentType, bytes.length, sha(bytes)],
  );
  return id;
}

/** S3 holds `bytes` at the key, SSE-KMS under `kms` (or not SSE-KMS at all). */
function stored(bytes: Buffer, kms: string | null, checksum = sha(bytes)): void {
  const enc = kms
    ? { ServerSideEncryption: 'aws:kms' as const, SSEKMSKeyId: kms }
    : { ServerSideEncryption: 'AES256' as const };
  s3.on(HeadObjectCommand).resolves({ ContentLength: bytes.length, ...enc });
  s3.on(HeadObjectCommand, { ChecksumMode: 'ENABLED' }).resolves({
    ContentLength: bytes.length,
    ChecksumSHA256: checksum,
    ...enc,
  });
  s3.on(GetObjectCommand).callsFake((input: { Range?: string }) => {
    const m = /^bytes=0-(\d+)$/.exec(input.Range ?? '');
    if (!m) throw new Error('the checker must read a range, never the whole object');
    const part = bytes.subarray(0, Number(m[1]) + 1);
    return {
      Body: { transformToByteArray: () => Promise.resolve(new Uint8Array(part)) },
    } as unknown as GetObjectCommandOutput;
  });
  s3.on(PutObjectTaggingCommand).resolves({});
}

async function check(org: string, file: string) {
  return checker.check({ bucket: BUCKET, key: fileObjectKey(org, file), versionId: 'v1' });
}

async function row(file: string) {
  return defined(
    (await pg.superuser('SELECT status, reject_reason, checked_at FROM tenant_files WHERE id = $1', [file]))[0],
  ) as { status: string; reject_reason: string | null; checked_at: Date | null };
}

const marks = () => s3.commandCalls(PutObjectTaggingCommand).map((c) => c.args[0].input.Tagging?.TagSet);

async function auditOf(org: string) {
  const c = await pg.client();
  try {
    return await asTenant(c, org === w.storeA ? w.ownerA : w.ownerB, org, async () =>
      (await c.query(`SELECT ${AUDIT_COLUMNS} FROM audit_log WHERE org_id = $1 ORDER BY seq`, [org])).rows.map(
        rowToRecord,
      ),
    );
  } finally {
    await c.end();
  }
}

describe('the checker as bulwark_file_checker', () => {
  it('releases a file whose bytes match its declaration, once, with an audit event in its own chain', async () => {
    const file = await declare(w.storeA);
    stored(PDF, keyArn(w.storeA));
    expect(await check(w.storeA, file)).toEqual({
      result: 'released',
      fileId: file,
      orgId: w.storeA,
      mark: 'clean',
      reason: null,
    });
    expect(await row(file)).toMatchObject({ status: 'clean', reject_reason: null });
    expect((await row(file)).checked_at).not.toBeNull();
    expect(marks()).toEqual([[{ Key: 'bulwark-scan', Value: 'clean' }]]);
    const chain = await auditOf(w.storeA);
    const last = defined(chain.at(-1));
    expect(last).toMatchObject({ event: 'file.released', actorType: 'system', entityType: 'file', entityId: file });
    expect(verifyFiles([{ name: 'a.csv', bytes: Buffer.from(encodeCsv(chain)) }]).problems).toEqual([]);
    expect((await auditOf(w.storeB)).some((r) => r.entityId === file)).toBe(false);
  });

  it('is idempotent: a duplicate event changes nothing, writes no event, and marks the version again', async () => {
    const file = await declare(w.storeA);
    stored(PDF, keyArn(w.storeA));
    await check(w.storeA, file);
    const events = (await auditOf(w.storeA)).length;
    const again = await check(w.storeA, file);
    expect(again).toMatchObject({ result: 'unchanged', mark: 'clean' });
    expect((await auditOf(w.storeA)).length).toBe(events);
    expect(marks()).toHaveLength(2);
  });

  it('decides once when two deliveries of the same event race', async () => {
    const file = await declare(w.storeA);
    const store = new PgFileCheckStore(checkerPool);
    const before = (await auditOf(w.storeA)).length;
    const seen = {
      objectKey: fileObjectKey(w.storeA, file),
      size: PDF.length,
      sha256: sha(PDF),
      contentType: 'application/pdf' as const,
      kmsKeyArn: keyArn(w.storeA),
      problem: null,
    };
    const both = await Promise.all([store.record(seen), store.record(seen)]);
    expect(both.map((o) => o?.changed).sort()).toEqual([false, true]);
    expect(both.every((o) => o?.status === 'clean')).toBe(true);
    expect((await auditOf(w.storeA)).length).toBe(before + 1);
  });

  it('rejects a size mismatch, and never moves a decided row back', async () => {
    const file = await declare(w.storeA);
    const longer = Buffer.concat([PDF, Buffer.from('x')]);
    stored(longer, keyArn(w.storeA), sha(PDF));
    expect(await check(w.storeA, file)).toMatchObject({
      result: 'rejected',
      mark: 'rejected',
      reason: 'size_mismatch',
    });
    expect(await row(file)).toMatchObject({ status: 'rejected', reject_reason: 'size_mismatch' });
    expect(defined((await auditOf(w.storeA)).at(-1))).toMatchObject({
      event: 'file.rejected',
      metadata: { reason: 'size_mismatch' },
    });
    // The right bytes arriving later do not release a rejected file.
    s3.reset();
    stored(PDF, keyArn(w.storeA));
    expect(await check(w.storeA, file)).toMatchObject({ result: 'unchanged', mark: 'rejected' });
    expect((await row(file)).status).toBe('rejected');
  });

  it('rejects bytes whose magic number is not the declared type (a PNG declared as a PDF)', async () => {
    const png = Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), Buffer.alloc(100)]);
    const file = await declare(w.storeA, png, 'application/pdf');
    stored(png, keyArn(w.storeA));
    expect(await check(w.storeA, file)).toMatchObject({ result: 'rejected', reason: 'type_mismatch' });
    const right = await declare(w.storeA, png, 'image/png');
    stored(png, keyArn(w.storeA));
    expect(await check(w.storeA, right)).toMatchObject({ result: 'released' });
  });

  it('rejects a checksum other than the declared one', async () => {
    const file = await declare(w.storeA);
    stored(PDF, keyArn(w.storeA), sha(Buffer.from('other bytes')));
    expect(await check(w.storeA, file)).toMatchObject({ result: 'rejected', reason: 'checksum_mismatch' });
  });

  it("rejects an object under the aws/s3 key, another organisation's key, or not SSE-KMS at all, without reading it", async () => {
    for (const kms of [AWS_S3_KEY, keyArn(w.storeB), null]) {
      s3.reset();
      const file = await declare(w.storeA);
      stored(PDF, kms);
      // S3 refuses the checker the bytes of a version under a key its policy does not admit.
      if (kms)
        s3.on(HeadObjectCommand, { ChecksumMode: 'ENABLED' }).rejects(
          Object.assign(new Error('denied'), { name: 'AccessDenied' }),
        );
      expect(await check(w.storeA, file)).toMatchObject({ result: 'rejected', mark: 'rejected', reason: 'wrong_key' });
      expect(s3.commandCalls(GetObjectCommand)).toHaveLength(0);
    }
  });

  it('keeps a file quarantined and fails (to be retried) when its own key is refused: a fault, not the tenant', async () => {
    const file = await declare(w.storeA);
    stored(PDF, keyArn(w.storeA));
    s3.on(GetObjectCommand).rejects(Object.assign(new Error('denied'), { name: 'AccessDenied' }));
    await expect(check(w.storeA, file)).rejects.toMatchObject({
      message: expect.stringMatching(/FILE_CHECK_UNREADABLE/),
    });
    expect((await row(file)).status).toBe('quarantined');
    expect(marks()).toEqual([]);
  });

  it('logs and ignores an event for a key with no row (no crash loop)', async () => {
    stored(PDF, keyArn(w.storeA));
    expect(await check(w.storeA, randomUUID())).toEqual({ result: 'ignored', code: 'FILE_CHECK_NO_ROW' });
    // A file of B named under A's prefix is no file of A's.
    const fileB = await declare(w.storeB);
    expect(await check(w.storeA, fileB)).toEqual({ result: 'ignored', code: 'FILE_CHECK_NO_ROW' });
    expect((await row(fileB)).status).toBe('quarantined');
    expect(marks()).toEqual([]);
  });

  it('cannot be called by the API role (or any other function role)', async () => {
    const file = await declare(w.storeA);
    for (const role of FUNCTION_ROLES.filter((r) => r !== DATABASE_ROLES.fileChecker)) {
      const c = await pg.client(role);
      try {
        await expect(
          c.query('SELECT * FROM app.record_file_check($1, 1, NULL, NULL, NULL, NULL)', [
            fileObjectKey(w.storeA, file),
          ]),
        ).rejects.toMatchObject({ code: '42501' });
      } finally {
        await c.end();
      }
    }
    expect((await row(file)).status).toBe('quarantined');
  });

  it('can read no tenant table, write none, and call no other function', async () => {
    const c = await pg.client(DATABASE_ROLES.fileChecker);
    try {
      for (const sql of [
        'SELECT * FROM tenant_files',
        'SELECT * FROM organisations',
        'SELECT * FROM audit_log',
        'SELECT * FROM vehicles',
        "UPDATE tenant_files SET status = 'clean'",
        'SELECT * FROM app.system_audit_head(gen_random_uuid())',
        'SELECT * FROM app.tenant_status(gen_random_uuid())',
        "SELECT app.delete_tenant_rows('tenant_files', ARRAY[gen_random_uuid()])",
      ]) {
        await expect(c.query(sql)).rejects.toMatchObject({ code: '42501' });
      }
      // Generated from the catalog: the one function it may execute, no table it may touch.
      const rights = await c.query<{ f: string }>(
        `SELECT p.oid::regprocedure::text AS f FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
          WHERE n.nspname IN ('public', 'app', 'app_private') AND has_function_privilege(p.oid, 'EXECUTE')
            AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = p.oid AND d.deptype = 'e')`,
      );
      expect(rights.rows.map((r) => r.f).filter((f) => f.startsWith('app.record_file_check'))).toHaveLength(1);
      const definers = rights.rows.map((r) => r.f).filter((f) => !f.startsWith('public.'));
      expect(definers).toEqual(['app.record_file_check(text,bigint,text,text,text,text)']);
      const tables = await c.query(
        `SELECT c.oid::regclass::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE n.nspname IN ('public', 'app', 'app_private') AND c.relkind IN ('r', 'p', 'v', 'm')
            AND (has_table_privilege(c.oid, 'SELECT') OR has_table_privilege(c.oid, 'INSERT')
                 OR has_table_privilege(c.oid, 'UPDATE') OR has_table_privilege(c.oid, 'DELETE'))`,
      );
      expect(tables.rows).toEqual([]);
    } finally {
      await c.end();
    }
  });

  it('refuses a problem it does not know, and names no row for a key that is not a file key', async () => {
    const c = await pg.client(DATABASE_ROLES.fileChecker);
    try {
      await expect(
        c.query("SELECT * FROM app.record_file_check('orgs/x', 1, NULL, NULL, NULL, 'fine')"),
      ).rejects.toMatchObject({ code: 'BW420' });
      const file = await declare(w.storeA);
      for (const key of [`${fileObjectKey(w.storeA, file)}/..`, `orgs/${w.storeA}/files/%`, 'orgs/']) {
        expect(
          (await c.query('SELECT * FROM app.record_file_check($1, 1, NULL, NULL, NULL, NULL)', [key])).rows,
        ).toEqual([]);
      }
    } finally {
      await c.end();
    }
  });
});
