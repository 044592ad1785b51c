/**
 * The quarantine checker (docs/tenant-files.md "Quarantine"): for one uploaded object version it
 * observes what S3 holds (HeadObject: size, SSE-KMS key, SHA-256; a ranged GetObject of the first
 * bytes: the content type they identify), hands the
 * observation to the database, which compares it with the row's declaration and the organisation's
 * tenant key and moves the row out of quarantine (migrations/0413 `app.record_file_check`), then
 * marks that exact version `bulwark-scan=clean` (readable by the files role) or `=rejected`
 * (expired by the bucket's lifecycle).
 *
 * Pure logic: the S3 client, the store and the log are injected. Transient failures (S3, the
 * database) are thrown, so the invocation is retried and finally dead-lettered; an event that can
 * never succeed (a key that names no file, an object deleted since) is logged and ignored.
 */
import { GetObjectCommand, HeadObjectCommand, PutObjectTaggingCommand, type S3Client } from '@aws-sdk/client-s3';
import {
  FILE_MAGIC_BYTES,
  FILE_SCAN_CLEAN,
  FILE_SCAN_REJECTED,
  FILE_SCAN_TAG,
  type FileContentType,
  type FileRejectReason,
} from '../../contracts/tenant-files';
import type { Log } from '../shared/observability';
import { errorName } from '../shared/sdk';
import { detectContentType } from './magic';

/** The object version an event is about. */
export interface ObjectVersion {
  readonly bucket: string;
  readonly key: string;
  readonly versionId: string;
}

/**
 * What the checker found that the database cannot see for itself: S3 refused it the bytes. (The
 * database also takes a malware scanner's `threats_found` / `not_scanned`, the plug-in point of
 * docs/tenant-files.md "Malware scanning"; this checker has no scanner to report.)
 */
export type FileCheckProblem = 'unreadable';

/** What S3 holds for one version, as `app.record_file_check` takes it. */
export interface FileObservation {
  readonly objectKey: string;
  readonly size: number | null;
  /** Base64 of the full object's SHA-256 (HeadObject with checksum mode). */
  readonly sha256: string | null;
  /** The type the first bytes identify; null for none of the accepted ones. */
  readonly contentType: FileContentType | null;
  /** The KMS key S3 encrypted the version under; null when it is not SSE-KMS. */
  readonly kmsKeyArn: string | null;
  readonly problem: FileCheckProblem | null;
}

/** The database's decision (`app.record_file_check`). */
export interface FileCheckOutcome {
  readonly fileId: string;
  readonly orgId: string;
  /** The row's status after the call (a decided row never changes). */
  readonly status: 'clean' | 'rejected';
  /** What this version alone deserves. */
  readonly verdict: 'clean' | 'rejected';
  readonly reason: FileRejectReason | null;
  /** False for a row decided before (a duplicate event, or a new version of a decided file). */
  readonly changed: boolean;
}

export interface FileCheckStore {
  /** Undefined when the key names no file. */
  record(observation: FileObservation): Promise<FileCheckOutcome | undefined>;
}

/** Why an event was ignored (logged, never retried). */
export type FileCheckIgnored =
  | 'FILE_CHECK_EVENT_INVALID'
  | 'FILE_CHECK_OTHER_BUCKET'
  | 'FILE_CHECK_NOT_A_FILE_KEY'
  | 'FILE_CHECK_OBJECT_GONE'
  | 'FILE_CHECK_NO_ROW';

export type FileCheckResult =
  | {
      readonly result: 'released' | 'rejected' | 'unchanged';
      readonly fileId: string;
      readonly orgId: string;
      /** The mark written on the version. */
      readonly mark: typeof FILE_SCAN_CLEAN | typeof FILE_SCAN_REJECTED;
      readonly reason: FileRejectReason | null;
    }
  | { readonly result: 'ignored'; readonly code: FileCheckIgnored };

export interface FileCheckerDeps {
  readonly s3: Pick<S3Client, 'send'>;
  readonly store: FileCheckStore;
  readonly log: Pick<Log, 'info' | 'warn'>;
}

export interface FileCheckerOptions {
  /** The file store's bucket: events of any other are ignored. */
  readonly bucket: string;
}

const UUID = '[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}';
/** The only keys the file routes create (contracts/tenant-files.ts fileObjectKey). */
export const FILE_KEY = new RegExp(`^orgs/${UUID}/files/${UUID}$`);

/** S3's answers for a version that no longer exists. */
const GONE = new Set(['NotFound', 'NoSuchKey', 'NoSuchVersion']);
/** S3's answer when the checker may not decrypt (a key that is not its organisation's tenant key). */
const REFUSED = new Set(['AccessDenied', 'Forbidden']);

export class FileChecker {
  constructor(
    private readonly deps: FileCheckerDeps,
    private readonly options: FileCheckerOptions,
  ) {}

  async check(v: ObjectVersion): Promise<FileCheckResult> {
    const { s3, store, log } = this.deps;
    const ignore = (code: FileCheckIgnored): FileCheckResult => {
      log.warn('file event ignored', { code, key: FILE_KEY.test(v.key) ? v.key : undefined });
      return { result: 'ignored', code };
    };
    if (v.bucket !== this.options.bucket) return ignore('FILE_CHECK_OTHER_BUCKET');
    if (!FILE_KEY.test(v.key)) return ignore('FILE_CHECK_NOT_A_FILE_KEY');
    const at = { Bucket: v.bucket, Key: v.key, VersionId: v.versionId };

    // Metadata only (no decryption): the key, the size.
    let head;
    try {
      head = await s3.send(new HeadObjectCommand(at));
    } catch (e) {
      if (GONE.has(errorName(e) ?? '')) return ignore('FILE_CHECK_OBJECT_GONE');
      throw e;
    }
    const kmsKeyArn = head.ServerSideEncryption === 'aws:kms' ? (head.SSEKMSKeyId ?? null) : null;
    const size = head.ContentLength ?? null;

    let problem: FileCheckProblem | null = null;
    let sha256: string | null = null;
    let contentType: FileContentType | null = null;
    // Only an object under some KMS key is worth decrypting; the database decides whether it is
    // the organisation's (a refusal below is 'unreadable', rejected there as 'wrong_key').
    if (kmsKeyArn !== null) {
      try {
        // The full object's checksum needs kms:Decrypt (S3 keeps it encrypted).
        const sum = await s3.send(new HeadObjectCommand({ ...at, ChecksumMode: 'ENABLED' }));
        sha256 = sum.ChecksumSHA256 ?? null;
        if (size !== null && size > 0) {
          const first = await s3.send(new GetObjectCommand({ ...at, Range: `bytes=0-${FILE_MAGIC_BYTES - 1}` }));
          const bytes = (await first.Body?.transformToByteArray()) ?? new Uint8Array();
          contentType = detectContentType(bytes.subarray(0, FILE_MAGIC_BYTES)) ?? null;
        }
      } catch (e) {
        const name = errorName(e) ?? '';
        if (GONE.has(name)) return ignore('FILE_CHECK_OBJECT_GONE');
        if (!REFUSED.has(name)) throw e;
        problem = 'unreadable';
      }
    }

    const outcome = await store.record({ objectKey: v.key, size, sha256, contentType, kmsKeyArn, problem });
    if (!outcome) return ignore('FILE_CHECK_NO_ROW');

    // This exact version is released only if the row is clean and the version is the one that
    // passed: a version put over a released file is checked on its own event, and never inherits.
    const mark = outcome.status === 'clean' && outcome.verdict === 'clean' ? FILE_SCAN_CLEAN : FILE_SCAN_REJECTED;
    await s3.send(new PutObjectTaggingCommand({ ...at, Tagging: { TagSet: [{ Key: FILE_SCAN_TAG, Value: mark }] } }));
    const result = !outcome.changed ? 'unchanged' : outcome.status === 'clean' ? 'released' : 'rejected';
    if (!outcome.changed && outcome.status === 'clean' && mark !== FILE_SCAN_CLEAN) {
      log.warn('a new version of a released file failed its check', {
        code: 'FILE_CHECK_VERSION_REJECTED',
        fileId: outcome.fileId,
        reason: outcome.reason,
      });
    }
    log.info('file checked', {
      result,
      fileId: outcome.fileId,
      orgId: outcome.orgId,
      mark,
      reason: outcome.reason,
    });
    return { result, fileId: outcome.fileId, orgId: outcome.orgId, mark, reason: outcome.reason };
  }
}
