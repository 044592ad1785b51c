/**
 * Tenant export with files (docs/tenant-files.md, "Export"): call shapes with aws-sdk-client-mock.
 * Released files are read with export reader credentials minted for the exported organisation
 * (STS AssumeRole with the org_id session tag), streamed into the export as `file_content` lines,
 * checked against the row's SHA-256; quarantined and rejected files are listed, never read. The
 * export itself streams to S3 (one part in memory), SSE-KMS under the export key.
 */
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  GetObjectCommand,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { AssumeRoleCommand, STSClient } from '@aws-sdk/client-sts';
import { mockClient } from 'aws-sdk-client-mock';
import type { AuditEvent } from '../../lambda/shared/audit';
import { filesCredentialMinter, stsAssumeRole } from '../../lambda/tenant-guard/files-credentials';
import {
  ExportService,
  FILE_CHUNK_BYTES,
  exportedFiles,
  readExport,
  type ExportRequest,
  type ExportSection,
  type ExportStore,
} from '../../lambda/tenant-keys/export';
import { S3FileContentSource, s3ClientFor } from '../../lambda/tenant-keys/export-files';
import { MIN_PART_BYTES, streamUpload } from '../../lambda/tenant-keys/s3-upload';
import { ORG_A, ORG_B } from './fake-kms';

const NOW = new Date('2026-12-02T12:00:00Z');
const FILES_BUCKET = 'bulwark-files-test';
const EXPORT_BUCKET = 'bulwark-exports-test';
const EXPORT_KEY = 'arn:aws:kms:eu-west-1:111122223333:key/99999999-9999-4999-8999-999999999999';
const READER_ROLE = 'arn:aws:iam::111122223333:role/FilesExportReader';
const REQ: ExportRequest = {
  id: 'a0000000-0000-4000-8000-00000000000e',
  orgId: ORG_A,
  requestedBy: 'b0000000-0000-4000-8000-00000000000b',
  status: 'pending',
  objectKey: null,
  requestedAt: NOW,
  completedAt: null,
};

const s3 = mockClient(S3Client);
const sts = mockClient(STSClient);
const exportS3 = new S3Client({
  region: 'eu-west-1',
  credentials: { accessKeyId: 'AKIDLIFECYCLE', secretAccessKey: 'x' },
});

const sha = (b: Buffer) => createHash('sha256').update(b).digest('base64');
const fileId = (n: number) => `f0000000-0000-4000-8000-00000000000${n}`;

interface FileRow {
  readonly id: string;
  readonly org_id: string;
  readonly object_key: string;
  readonly name: string;
  readonly size_bytes: string;
  readonly sha256: string;
  readonly status: 'clean' | 'quarantined' | 'rejected';
}
function fileRow(n: number, bytes: Buffer, status: FileRow['status'] = 'clean', org = ORG_A): FileRow {
  return {
    id: fileId(n),
    org_id: org,
    object_key: `orgs/${org}/files/${fileId(n)}`,
    name: `photo-${n}.jpg`,
    size_bytes: String(bytes.length),
    sha256: sha(bytes),
    status,
  };
}

/** A Readable of `bytes` in 64 KiB pieces, counting what has been read from it. */
function streamOf(bytes: Buffer, read: { n: number } = { n: 0 }): Readable {
  return Readable.from(
    (function* () {
      for (let at = 0; at < bytes.length; at += 65_536) {
        const piece = bytes.subarray(at, at + 65_536);
        read.n += piece.length;
        yield piece;
      }
    })(),
  );
}

function exportService(rows: readonly FileRow[], withFiles = true, partBytes?: number) {
  const events: AuditEvent[] = [];
  const completed: { rows: number }[] = [];
  const store = {
    complete: async (_id: string, _key: string, n: number, _at: Date, andThen: (d: boolean, tx: never) => unknown) => {
      completed.push({ rows: n });
      await andThen(true, undefined as never);
    },
    fail: async (_id: string, _at: Date, andThen: (d: boolean, tx: never) => unknown) => {
      await andThen(true, undefined as never);
    },
  } as unknown as ExportStore;
  const files = withFiles
    ? new S3FileContentSource({
        bucket: FILES_BUCKET,
        mint: filesCredentialMinter(
          stsAssumeRole(
            new STSClient({ region: 'eu-west-1', credentials: { accessKeyId: 'x', secretAccessKey: 'y' } }),
          ),
          READER_ROLE,
          () => NOW.getTime() / 1000,
        ),
        clientFor: s3ClientFor('eu-west-1'),
      })
    : undefined;
  const service = new ExportService({
    s3: exportS3,
    store,
    source: {
      read: async (_r, fn) =>
        fn({
          rows: async function* (section: ExportSection) {
            if (section === 'files') yield* rows as unknown as Record<string, unknown>[];
          },
        }),
    },
    audit: { record: async (e) => void events.push(e) },
    clock: () => NOW,
    bucket: EXPORT_BUCKET,
    bucketKeyArn: EXPORT_KEY,
    files,
    partBytes,
  });
  return { service, events, completed };
}

/** The export's bytes, whether it went up as one PutObject or as parts. */
function uploadedExport(): Buffer {
  const put = s3.commandCalls(PutObjectCommand).find((c) => c.args[0].input.Bucket === EXPORT_BUCKET);
  if (put) return Buffer.from(put.args[0].input.Body as Buffer);
  return Buffer.concat(
    s3
      .commandCalls(UploadPartCommand)
      .sort((a, b) => a.args[0].input.PartNumber! - b.args[0].input.PartNumber!)
      .map((c) => Buffer.from(c.args[0].input.Body as Buffer)),
  );
}

beforeEach(() => {
  s3.reset();
  sts.reset();
  sts.on(AssumeRoleCommand).callsFake((input: { Tags: { Value: string }[] }) => ({
    Credentials: {
      AccessKeyId: `ASIA${input.Tags[0]!.Value.slice(0, 8)}`,
      SecretAccessKey: 's',
      SessionToken: 't',
      Expiration: new Date(NOW.getTime() + 900_000),
    },
  }));
  s3.on(PutObjectCommand).resolves({});
  s3.on(CreateMultipartUploadCommand).resolves({ UploadId: 'up-1' });
  s3.on(UploadPartCommand).callsFake((input: { PartNumber: number }) => ({ ETag: `"etag-${input.PartNumber}"` }));
  s3.on(CompleteMultipartUploadCommand).resolves({});
  s3.on(AbortMultipartUploadCommand).resolves({});
});

describe('tenant export with files', () => {
  it("carries the organisation's released files, read under an org_id-tagged session, checksums matching the rows", async () => {
    const one = randomBytes(1_000_000);
    const two = randomBytes(20_000);
    const rows = [fileRow(1, one), fileRow(2, two)];
    const bodies = new Map([
      [rows[0]!.object_key, one],
      [rows[1]!.object_key, two],
    ]);
    s3.on(GetObjectCommand).callsFake((input: { Key: string }) => ({ Body: streamOf(bodies.get(input.Key)!) }));
    const { service, events } = exportService(rows);

    expect(await service.process(REQ)).toEqual({ key: `exports/${ORG_A}/${REQ.id}.ndjson.gz`, rows: 2, files: 2 });

    // One export reader session, tagged with the exported organisation only.
    expect(sts.commandCalls(AssumeRoleCommand).map((c) => c.args[0].input)).toEqual([
      {
        RoleArn: READER_ROLE,
        RoleSessionName: `files-export-${REQ.id}`,
        DurationSeconds: 900,
        Tags: [{ Key: 'org_id', Value: ORG_A }],
      },
    ]);
    const gets = s3.commandCalls(GetObjectCommand);
    expect(gets.map((c) => c.args[0].input)).toEqual(rows.map((r) => ({ Bucket: FILES_BUCKET, Key: r.object_key })));
    // Signed with the session's credentials, never the function's own.
    for (const c of gets) {
      const creds = await (c.thisValue as S3Client).config.credentials();
      expect(creds.accessKeyId).toBe(`ASIA${ORG_A.slice(0, 8)}`);
    }
    // The export: SSE-KMS under the export key, as one PutObject (it fits one part).
    const put = s3.commandCalls(PutObjectCommand)[0]!.args[0].input;
    expect(put).toMatchObject({
      Bucket: EXPORT_BUCKET,
      Key: `exports/${ORG_A}/${REQ.id}.ndjson.gz`,
      ContentType: 'application/x-ndjson',
      ContentEncoding: 'gzip',
      ServerSideEncryption: 'aws:kms',
      SSEKMSKeyId: EXPORT_KEY,
      BucketKeyEnabled: true,
    });
    const lines = readExport(uploadedExport());
    expect(lines[0]).toMatchObject({ header: { format: 'bulwark-export/2', orgId: ORG_A } });
    const files = exportedFiles(lines);
    expect([...files.keys()]).toEqual([fileId(1), fileId(2)]);
    for (const r of rows) expect(sha(files.get(r.id)!)).toBe(r.sha256);
    expect(files.get(fileId(1))!.equals(one)).toBe(true);
    // A file's content follows its row, in lines of at most FILE_CHUNK_BYTES.
    const contentLines = (lines as { section?: string; row?: { data?: string } }[]).filter(
      (l) => l.section === 'file_content' && l.row?.data !== undefined,
    );
    expect(contentLines).toHaveLength(Math.ceil(one.length / FILE_CHUNK_BYTES) + 1);
    expect(events.map((e) => [e.event, e.metadata])).toEqual([['tenant.export_completed', { rows: 2, files: 2 }]]);
  });

  it('lists quarantined and rejected files without reading them', async () => {
    const clean = randomBytes(300);
    const rows = [
      fileRow(1, randomBytes(10), 'quarantined'),
      fileRow(2, clean),
      fileRow(3, randomBytes(10), 'rejected'),
    ];
    s3.on(GetObjectCommand).callsFake(() => ({ Body: streamOf(clean) }));
    const { service } = exportService(rows);
    expect(await service.process(REQ)).toMatchObject({ rows: 3, files: 1 });
    expect(s3.commandCalls(GetObjectCommand).map((c) => c.args[0].input.Key)).toEqual([rows[1]!.object_key]);
    const lines = readExport(uploadedExport()) as { section?: string; row?: Record<string, unknown> }[];
    expect(lines.filter((l) => l.section === 'files').map((l) => [l.row?.['id'], l.row?.['content']])).toEqual([
      [fileId(1), 'not_released'],
      [fileId(2), 'included'],
      [fileId(3), 'not_released'],
    ]);
    expect([...exportedFiles(lines).keys()]).toEqual([fileId(2)]);
  });

  it('without a file store wired, lists released files as not exported and reads nothing', async () => {
    const { service } = exportService([fileRow(1, randomBytes(10))], false);
    expect(await service.process(REQ)).toMatchObject({ rows: 1, files: 0 });
    expect(s3.commandCalls(GetObjectCommand)).toHaveLength(0);
    expect(sts.commandCalls(AssumeRoleCommand)).toHaveLength(0);
    const lines = readExport(uploadedExport()) as { section?: string; row?: Record<string, unknown> }[];
    expect(lines.find((l) => l.section === 'files')?.row?.['content']).toBe('not_exported');
  });

  it('fails the export when bytes do not match the row (size or SHA-256), and writes no export', async () => {
    const bytes = randomBytes(1000);
    const tampered = Buffer.from(bytes);
    tampered[10] = (tampered[10]! + 1) % 256;
    s3.on(GetObjectCommand).callsFake(() => ({ Body: streamOf(tampered) }));
    const { service, events } = exportService([fileRow(1, bytes)]);
    await expect(service.process(REQ)).rejects.toThrow('EXPORT_FILE_MISMATCH');
    expect(s3.commandCalls(PutObjectCommand)).toHaveLength(0);
    expect(events.map((e) => e.event)).toEqual(['tenant.export_failed']);
  });

  it("never reads a row naming another organisation's object, nor mints a session for it", async () => {
    const row = { ...fileRow(1, randomBytes(10)), object_key: `orgs/${ORG_B}/files/${fileId(1)}` };
    const { service } = exportService([row]);
    await expect(service.process(REQ)).rejects.toThrow('EXPORT_FILE_MISMATCH');
    expect(s3.commandCalls(GetObjectCommand)).toHaveLength(0);
    expect(sts.commandCalls(AssumeRoleCommand)).toHaveLength(0);
    const source = new S3FileContentSource({
      bucket: FILES_BUCKET,
      mint: async () => {
        throw new Error('never minted');
      },
      clientFor: s3ClientFor('eu-west-1'),
    });
    await expect(source.open(ORG_A, REQ.id, `orgs/${ORG_B}/files/x`)).rejects.toThrow('outside the exported');
  });

  it('streams a 25 MiB file as a multipart upload, holding about one part ahead of what was uploaded', async () => {
    const big = randomBytes(25 * 1024 * 1024);
    const read = { n: 0 };
    s3.on(GetObjectCommand).callsFake(() => ({ Body: streamOf(big, read) }));
    let uploaded = 0;
    let maxAhead = 0;
    s3.on(UploadPartCommand).callsFake((input: { PartNumber: number; Body: Buffer }) => {
      uploaded += input.Body.length;
      maxAhead = Math.max(maxAhead, read.n - uploaded);
      return { ETag: `"etag-${input.PartNumber}"` };
    });
    const { service } = exportService([fileRow(1, big)], true, MIN_PART_BYTES);
    expect(await service.process(REQ)).toMatchObject({ files: 1 });

    expect(s3.commandCalls(PutObjectCommand)).toHaveLength(0);
    expect(s3.commandCalls(CreateMultipartUploadCommand)[0]!.args[0].input).toEqual({
      Bucket: EXPORT_BUCKET,
      Key: `exports/${ORG_A}/${REQ.id}.ndjson.gz`,
      ContentType: 'application/x-ndjson',
      ContentEncoding: 'gzip',
      ServerSideEncryption: 'aws:kms',
      SSEKMSKeyId: EXPORT_KEY,
      BucketKeyEnabled: true,
    });
    const parts = s3.commandCalls(UploadPartCommand).map((c) => c.args[0].input);
    expect(parts.length).toBeGreaterThanOrEqual(5);
    expect(parts.every((p) => p.UploadId === 'up-1' && (p.Body as Buffer).length <= MIN_PART_BYTES)).toBe(true);
    expect(s3.commandCalls(CompleteMultipartUploadCommand)[0]!.args[0].input.MultipartUpload?.Parts).toEqual(
      parts.map((p) => ({ PartNumber: p.PartNumber, ETag: `"etag-${p.PartNumber}"` })),
    );
    // Backpressure: the file is read at most about one part (plus a chunk and stream buffers) ahead.
    expect(maxAhead).toBeLessThan(2 * MIN_PART_BYTES);
    const files = exportedFiles(readExport(uploadedExport()));
    expect(files.get(fileId(1))!.equals(big)).toBe(true);
  });

  it('aborts the multipart upload when a part fails, and fails the export', async () => {
    const big = randomBytes(12 * 1024 * 1024);
    s3.on(GetObjectCommand).callsFake(() => ({ Body: streamOf(big) }));
    s3.on(UploadPartCommand).rejects(Object.assign(new Error('slow down'), { name: 'SlowDown' }));
    const { service, events } = exportService([fileRow(1, big)], true, MIN_PART_BYTES);
    await expect(service.process(REQ)).rejects.toThrow('slow down');
    expect(s3.commandCalls(AbortMultipartUploadCommand).map((c) => c.args[0].input)).toEqual([
      { Bucket: EXPORT_BUCKET, Key: `exports/${ORG_A}/${REQ.id}.ndjson.gz`, UploadId: 'up-1' },
    ]);
    expect(s3.commandCalls(CompleteMultipartUploadCommand)).toHaveLength(0);
    expect(events.map((e) => e.event)).toEqual(['tenant.export_failed']);
  });
});

describe('streamUpload', () => {
  it('refuses parts smaller than S3 accepts', async () => {
    await expect(
      streamUpload(
        exportS3,
        { Bucket: 'b', Key: 'k', ContentType: 't', ServerSideEncryption: 'aws:kms', SSEKMSKeyId: 'k' },
        streamOf(Buffer.alloc(1)),
        1024,
      ),
    ).rejects.toThrow(RangeError);
  });
});
