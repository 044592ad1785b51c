/**
 * The quarantine checker's logic and the shapes of its S3 calls (aws-sdk-client-mock), with a
 * recording store: what it reads (a range of the first bytes of one pinned version, never the whole
 * object), what it writes (the scan mark on that version), what it ignores and what it retries.
 * The database's decisions are tested against PostgreSQL in checker.pg.test.ts.
 */
import {
  GetObjectCommand,
  GetObjectTaggingCommand,
  HeadObjectCommand,
  PutObjectTaggingCommand,
  S3Client,
  type GetObjectCommandOutput,
} from '@aws-sdk/client-s3';
import { mockClient } from 'aws-sdk-client-mock';
import { FILE_MAGIC_BYTES } from '../../contracts/tenant-files';
import {
  FileChecker,
  type FileCheckOutcome,
  type FileCheckStore,
  type FileObservation,
} from '../../lambda/tenant-files/checker';
import { makeCheckerHandler, objectVersionOf } from '../../lambda/tenant-files/checker-handler';
import { detectContentType, MAGIC_LENGTH } from '../../lambda/tenant-files/magic';
import { RecordingLog, RecordingMetrics } from '../support/observability';

const BUCKET = 'bulwark-prod-eu-files-test';
const ORG = '0b0b0b0b-1111-4111-8111-00000000000b';
const FILE = '0f0f0f0f-0000-4000-8000-00000000000f';
const KEY = `orgs/${ORG}/files/${FILE}`;
const KMS = `arn:aws:kms:eu-west-1:111122223333:key/${ORG}`;
const JPEG = Buffer.concat([Buffer.from([0xff, 0xd8, 0xff, 0xe0]), Buffer.alloc(60)]);
const at = { bucket: BUCKET, key: KEY, versionId: 'v-42' };

const s3 = mockClient(S3Client);
let recorded: FileObservation[];
let answer: FileCheckOutcome | undefined;
const store: FileCheckStore = {
  record: (o) => {
    recorded.push(o);
    return Promise.resolve(answer);
  },
};
const clean: FileCheckOutcome = {
  fileId: FILE,
  orgId: ORG,
  status: 'clean',
  verdict: 'clean',
  reason: null,
  changed: true,
};
let log: RecordingLog;
const checker = () => new FileChecker({ s3: s3 as unknown as S3Client, store, log }, { bucket: BUCKET });

function holds(bytes: Buffer): void {
  s3.on(HeadObjectCommand).resolves({ ContentLength: bytes.length, ServerSideEncryption: 'aws:kms', SSEKMSKeyId: KMS });
  s3.on(HeadObjectCommand, { ChecksumMode: 'ENABLED' }).resolves({
    ContentLength: bytes.length,
    ServerSideEncryption: 'aws:kms',
    SSEKMSKeyId: KMS,
    ChecksumSHA256: 'c2hh',
  });
  s3.on(GetObjectCommand).callsFake((input: { Range?: string }) => {
    const end = Number(/^bytes=0-(\d+)$/.exec(input.Range ?? '')?.[1] ?? bytes.length - 1);
    return {
      Body: { transformToByteArray: () => Promise.resolve(new Uint8Array(bytes.subarray(0, end + 1))) },
    } as unknown as GetObjectCommandOutput;
  });
  s3.on(PutObjectTaggingCommand).resolves({});
}

beforeEach(() => {
  s3.reset();
  recorded = [];
  answer = clean;
  log = new RecordingLog();
});
afterAll(() => s3.restore());

describe('magic numbers', () => {
  it.each([
    ['image/jpeg', [0xff, 0xd8, 0xff, 0xdb]],
    ['image/png', [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0]],
    ['image/webp', [...Buffer.from('RIFF'), 1, 2, 3, 4, ...Buffer.from('WEBPVP8 ')]],
    ['application/pdf', [...Buffer.from('%PDF-1.4')]],
  ])('identifies %s', (type, bytes) => {
    expect(detectContentType(Uint8Array.from(bytes))).toBe(type);
  });

  it('identifies nothing else, nor a truncated signature', () => {
    for (const bytes of [
      [0xff, 0xd8],
      [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a],
      [...Buffer.from('RIFF'), 1, 2, 3, 4, ...Buffer.from('WAVE')],
      [...Buffer.from('%PDF')],
      [...Buffer.from('<html>')],
      [],
    ]) {
      expect(detectContentType(Uint8Array.from(bytes))).toBeUndefined();
    }
    expect(MAGIC_LENGTH).toBeLessThanOrEqual(FILE_MAGIC_BYTES);
  });
});

describe('the checker', () => {
  it('reads the first bytes of the pinned version only, then marks that version clean', async () => {
    holds(JPEG);
    expect(await checker().check(at)).toEqual({
      result: 'released',
      fileId: FILE,
      orgId: ORG,
      mark: 'clean',
      reason: null,
    });
    const heads = s3.commandCalls(HeadObjectCommand).map((c) => c.args[0].input);
    expect(heads).toEqual([
      { Bucket: BUCKET, Key: KEY, VersionId: 'v-42' },
      { Bucket: BUCKET, Key: KEY, VersionId: 'v-42', ChecksumMode: 'ENABLED' },
    ]);
    const gets = s3.commandCalls(GetObjectCommand).map((c) => c.args[0].input);
    expect(gets).toEqual([{ Bucket: BUCKET, Key: KEY, VersionId: 'v-42', Range: `bytes=0-${FILE_MAGIC_BYTES - 1}` }]);
    expect(recorded).toEqual([
      { objectKey: KEY, size: JPEG.length, sha256: 'c2hh', contentType: 'image/jpeg', kmsKeyArn: KMS, problem: null },
    ]);
    expect(s3.commandCalls(PutObjectTaggingCommand).map((c) => c.args[0].input)).toEqual([
      { Bucket: BUCKET, Key: KEY, VersionId: 'v-42', Tagging: { TagSet: [{ Key: 'bulwark-scan', Value: 'clean' }] } },
    ]);
    expect(s3.commandCalls(GetObjectTaggingCommand)).toHaveLength(0);
  });

  it('marks a rejected version rejected (the lifecycle expires it)', async () => {
    holds(JPEG);
    answer = { ...clean, status: 'rejected', verdict: 'rejected', reason: 'type_mismatch' };
    expect(await checker().check(at)).toMatchObject({ result: 'rejected', mark: 'rejected', reason: 'type_mismatch' });
    expect(s3.commandCalls(PutObjectTaggingCommand)[0]?.args[0].input.Tagging).toEqual({
      TagSet: [{ Key: 'bulwark-scan', Value: 'rejected' }],
    });
  });

  it('never lets a new version inherit the release of a file: it is marked by its own verdict', async () => {
    holds(JPEG);
    answer = { ...clean, verdict: 'rejected', reason: 'checksum_mismatch', changed: false };
    expect(await checker().check(at)).toMatchObject({ result: 'unchanged', mark: 'rejected' });
    expect(log.entries.map((e) => e.fields['code'])).toContain('FILE_CHECK_VERSION_REJECTED');
  });

  it('does not decrypt an object that is not SSE-KMS; the database rejects it as wrong_key', async () => {
    s3.on(HeadObjectCommand).resolves({ ContentLength: 64, ServerSideEncryption: 'AES256' });
    s3.on(PutObjectTaggingCommand).resolves({});
    answer = { ...clean, status: 'rejected', verdict: 'rejected', reason: 'wrong_key' };
    await checker().check(at);
    expect(s3.commandCalls(HeadObjectCommand)).toHaveLength(1);
    expect(s3.commandCalls(GetObjectCommand)).toHaveLength(0);
    expect(recorded[0]).toMatchObject({ kmsKeyArn: null, sha256: null, contentType: null, problem: null });
  });

  it('ignores, without touching S3, events of another bucket or keys that are not a file key', async () => {
    for (const v of [
      { ...at, bucket: 'another-bucket' },
      { ...at, key: `orgs/${ORG}/files/${FILE}.exe` },
      { ...at, key: `exports/${ORG}/export.zip` },
      { ...at, key: `orgs/${ORG}/files/../${FILE}` },
    ]) {
      expect((await checker().check(v)).result).toBe('ignored');
    }
    expect(s3.calls()).toHaveLength(0);
    expect(recorded).toEqual([]);
  });

  it('ignores an object deleted since the event', async () => {
    s3.on(HeadObjectCommand).rejects(Object.assign(new Error('gone'), { name: 'NotFound' }));
    expect(await checker().check(at)).toEqual({ result: 'ignored', code: 'FILE_CHECK_OBJECT_GONE' });
  });

  it('throws transient failures, to be retried (then dead-lettered): nothing is marked before the database decided', async () => {
    s3.on(HeadObjectCommand).rejects(Object.assign(new Error('slow down'), { name: 'SlowDown' }));
    await expect(checker().check(at)).rejects.toMatchObject({ name: 'SlowDown' });
    holds(JPEG);
    s3.on(GetObjectCommand).rejects(Object.assign(new Error('reset'), { name: 'InternalError' }));
    await expect(checker().check(at)).rejects.toMatchObject({ name: 'InternalError' });
    holds(JPEG);
    s3.on(PutObjectTaggingCommand).rejects(Object.assign(new Error('reset'), { name: 'InternalError' }));
    await expect(checker().check(at)).rejects.toMatchObject({ name: 'InternalError' });
    expect(recorded).toHaveLength(1); // the retry records again and finds the row decided
  });
});

describe('the handler', () => {
  const created = {
    version: '0',
    source: 'aws.s3',
    'detail-type': 'Object Created',
    detail: {
      version: '0',
      bucket: { name: BUCKET },
      object: { key: KEY, size: 64, etag: 'e', 'version-id': 'v-42', sequencer: '1' },
      reason: 'PutObject',
    },
  };

  it("reads the object version from S3's Object Created events, and from nothing else", () => {
    expect(objectVersionOf(created)).toEqual(at);
    expect(
      objectVersionOf({
        source: 'aws.guardduty',
        'detail-type': 'GuardDuty Malware Protection Object Scan Result',
        detail: { s3ObjectDetails: { bucketName: BUCKET, objectKey: KEY, versionId: 'v-42' } },
      }),
    ).toBeUndefined();
    expect(objectVersionOf({ ...created, 'detail-type': 'Object Deleted' })).toBeUndefined();
    expect(objectVersionOf({ ...created, detail: { ...created.detail, object: { key: KEY } } })).toBeUndefined();
  });

  it('checks the version, counts the result, and ignores (never retries) an event it cannot read', async () => {
    const metrics = new RecordingMetrics();
    const checked: unknown[] = [];
    const handle = makeCheckerHandler(
      {
        check: (v) => {
          checked.push(v);
          return Promise.resolve({ result: 'released', fileId: FILE, orgId: ORG, mark: 'clean', reason: null });
        },
      },
      log,
      metrics,
    );
    expect(await handle(created)).toMatchObject({ result: 'released' });
    expect(await handle({ hello: 'world' })).toEqual({ result: 'ignored', code: 'FILE_CHECK_EVENT_INVALID' });
    expect(checked).toEqual([at]);
    expect(metrics.published.map((p) => p.values)).toEqual([{ FilesReleased: 1 }, { FileEventsIgnored: 1 }]);
  });
});
