/**
 * Streams a body of unknown length to S3 with bounded memory: one part (8 MiB by default) is held
 * at a time. A body that ends within its first part is one `PutObject`; a longer one is a multipart
 * upload (`CreateMultipartUpload`, sequential `UploadPart`s, `CompleteMultipartUpload`), aborted on
 * any failure so no part is left behind. The consumer awaits each part, so a producer writing into
 * the stream it reads is held back by the stream's backpressure, never buffered without bound.
 */
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  PutObjectCommand,
  UploadPartCommand,
  type S3Client,
} from '@aws-sdk/client-s3';

/** What every request of the upload carries: where, and how it is encrypted. */
export interface StreamUploadTarget {
  readonly Bucket: string;
  readonly Key: string;
  readonly ContentType: string;
  readonly ContentEncoding?: string;
  readonly ServerSideEncryption: 'aws:kms';
  readonly SSEKMSKeyId: string;
  readonly BucketKeyEnabled?: boolean;
}

/** S3's minimum part size (all parts but the last). */
export const MIN_PART_BYTES = 5 * 1024 * 1024;
export const DEFAULT_PART_BYTES = 8 * 1024 * 1024;

export async function streamUpload(
  s3: S3Client,
  target: StreamUploadTarget,
  body: AsyncIterable<Uint8Array>,
  partBytes = DEFAULT_PART_BYTES,
): Promise<{ bytes: number; parts: number }> {
  if (!Number.isInteger(partBytes) || partBytes < MIN_PART_BYTES) {
    throw new RangeError(`part size must be at least ${MIN_PART_BYTES} bytes`);
  }
  let part = Buffer.allocUnsafe(partBytes);
  let filled = 0;
  let total = 0;
  let uploadId: string | undefined;
  const etags: { PartNumber: number; ETag: string }[] = [];

  const flush = async (): Promise<void> => {
    if (uploadId === undefined) {
      const created = await s3.send(new CreateMultipartUploadCommand({ ...target }));
      if (!created.UploadId) throw new Error('CreateMultipartUpload returned no upload id');
      uploadId = created.UploadId;
    }
    const PartNumber = etags.length + 1;
    const r = await s3.send(
      new UploadPartCommand({
        Bucket: target.Bucket,
        Key: target.Key,
        UploadId: uploadId,
        PartNumber,
        Body: part.subarray(0, filled),
      }),
    );
    if (!r.ETag) throw new Error(`UploadPart ${PartNumber} returned no ETag`);
    etags.push({ PartNumber, ETag: r.ETag });
    // A fresh buffer: the SDK may still hold a reference to the one it was given.
    part = Buffer.allocUnsafe(partBytes);
    filled = 0;
  };

  try {
    for await (const chunk of body) {
      let offset = 0;
      while (offset < chunk.length) {
        const n = Math.min(chunk.length - offset, partBytes - filled);
        part.set(chunk.subarray(offset, offset + n), filled);
        filled += n;
        offset += n;
        total += n;
        if (filled === partBytes) await flush();
      }
    }
    if (uploadId === undefined) {
      // The whole body fit in one part: one request.
      await s3.send(new PutObjectCommand({ ...target, Body: part.subarray(0, filled) }));
      return { bytes: total, parts: 1 };
    }
    if (filled > 0) await flush();
    await s3.send(
      new CompleteMultipartUploadCommand({
        Bucket: target.Bucket,
        Key: target.Key,
        UploadId: uploadId,
        MultipartUpload: { Parts: etags },
      }),
    );
    return { bytes: total, parts: etags.length };
  } catch (e) {
    if (uploadId !== undefined) {
      await s3
        .send(new AbortMultipartUploadCommand({ Bucket: target.Bucket, Key: target.Key, UploadId: uploadId }))
        // The bucket's lifecycle rule aborts incomplete uploads after a day anyway; the first error wins.
        .catch(() => undefined);
    }
    throw e;
  }
}
