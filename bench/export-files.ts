/**
 * Tenant export with files (docs/tenant-files.md, "Export"): the real `ExportService` streams
 * released files (random bytes: incompressible, like JPEG or PDF) into the gzipped NDJSON export and
 * through `streamUpload` to a fake S3 that drops each part, and prints the export size
 * against the files' size, the throughput, and the heap and RSS the run grew by, which is what
 * "one part and one chunk in memory" has to hold to.
 *
 *   node --expose-gc --max-old-space-size=64 node_modules/.bin/tsx bench/export-files.ts [--files 8] [--mib 25]
 *
 * With the heap capped at 64 MiB an export of 8 x 25 MiB completes: memory does not grow with it.
 */
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import {
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  GetObjectCommand,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { ExportService, type ExportRequest, type ExportSection, type ExportStore } from '../lambda/tenant-keys/export';

const arg = (name: string, fallback: string): string => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? (process.argv[i + 1] ?? fallback) : fallback;
};
const FILES = Number(arg('files', '8'));
const MIB = Number(arg('mib', '25'));
const ORG = '0b6f3a52-8a43-4d55-9e57-5d1a1c6f0a01';

async function main(): Promise<void> {
  // One file's bytes, served for every file (the row's checksum matches): memory the bench itself holds.
  const bytes = randomBytes(MIB * 1024 * 1024);
  const sha256 = createHash('sha256').update(bytes).digest('base64');
  let uploaded = 0;
  let parts = 0;
  // A bare fake S3 (aws-sdk-client-mock would keep every part in its call history): parts are
  // counted and dropped, as S3 would take them away.
  const client = {
    send: async (command: { input: Record<string, unknown> }) => {
      if (command instanceof GetObjectCommand) {
        return {
          Body: Readable.from(
            (function* () {
              for (let at = 0; at < bytes.length; at += 65_536) yield bytes.subarray(at, at + 65_536);
            })(),
          ),
        };
      }
      if (command instanceof CreateMultipartUploadCommand) return { UploadId: 'u' };
      if (command instanceof UploadPartCommand || command instanceof PutObjectCommand) {
        uploaded += (command.input['Body'] as Buffer).length;
        parts++;
        return { ETag: `"${parts}"` };
      }
      if (command instanceof CompleteMultipartUploadCommand) return {};
      throw new Error('unexpected command');
    },
  } as unknown as S3Client;
  const rows = Array.from({ length: FILES }, (_, n) => ({
    id: `f0000000-0000-4000-8000-${String(n).padStart(12, '0')}`,
    org_id: ORG,
    object_key: `orgs/${ORG}/files/${n}`,
    size_bytes: String(bytes.length),
    sha256,
    status: 'clean',
  }));
  const service = new ExportService({
    s3: client,
    store: { complete: async () => undefined, fail: async () => undefined } as unknown as ExportStore,
    source: {
      read: async (_r, fn) =>
        fn({
          rows: async function* (section: ExportSection) {
            if (section === 'files') yield* rows;
          },
        }),
    },
    audit: { record: async () => undefined },
    clock: () => new Date(),
    bucket: 'exports',
    bucketKeyArn: 'arn:aws:kms:eu-west-1:111122223333:key/k',
    files: {
      open: async (_org, _id, key) =>
        (await client.send(new GetObjectCommand({ Bucket: 'f', Key: key }))).Body as never,
    },
  });
  const req: ExportRequest = {
    id: 'a0000000-0000-4000-8000-00000000000e',
    orgId: ORG,
    requestedBy: ORG,
    status: 'pending',
    objectKey: null,
    requestedAt: new Date(),
    completedAt: null,
  };
  global.gc?.();
  const before = process.memoryUsage();
  let peakHeap = 0;
  let peakRss = 0;
  const sampler = setInterval(() => {
    const m = process.memoryUsage();
    peakHeap = Math.max(peakHeap, m.heapUsed + m.arrayBuffers);
    peakRss = Math.max(peakRss, m.rss);
  }, 5);
  const t0 = process.hrtime.bigint();
  await service.process(req);
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  clearInterval(sampler);
  const total = FILES * bytes.length;
  const mib = (n: number) => (n / 1024 / 1024).toFixed(1);
  console.log(`files: ${FILES} x ${MIB} MiB (random bytes, incompressible) = ${mib(total)} MiB`);
  console.log(
    `export: ${mib(uploaded)} MiB in ${parts} part(s), ${((uploaded / total) * 100).toFixed(1)}% of the files`,
  );
  console.log(`time: ${seconds.toFixed(2)} s, ${(total / 1024 / 1024 / seconds).toFixed(1)} MiB/s of files`);
  console.log(
    `memory grown beyond the bench's own ${MIB} MiB file: heap+buffers peak +${mib(peakHeap - before.heapUsed - before.arrayBuffers)} MiB, rss peak +${mib(peakRss - before.rss)} MiB`,
  );
}

void main();
