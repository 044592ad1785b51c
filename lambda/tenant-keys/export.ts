/**
 * Tenant export: an Owner asks for a copy of the organisation's data (leads, customers, vehicles,
 * deals, calls and their recordings' metadata, the files it uploaded with their bytes, the audit
 * log and which credentials are set); a worker writes it, gzipped NDJSON, to the KMS-encrypted
 * export bucket; the Owner downloads it through a pre-signed URL that lives at most 15 minutes.
 *
 * Secrets are never exported: sealed columns and anything named like a credential are dropped, and
 * the credentials vault appears as `<kind>_set` metadata only.
 *
 * Files (docs/tenant-files.md, "Export"): every row is listed; the bytes of a released file follow
 * its row as `file_content` lines (base64, FILE_CHUNK_BYTES each), read with credentials scoped to
 * the exported organisation (`FileContentSource`) and checked against the row's SHA-256. The whole
 * export streams: one file chunk and one upload part in memory at a time, whatever the sizes.
 */
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { createGzip, gunzipSync, type Gzip } from 'node:zlib';
import { GetObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { getSignedUrl } from '../shared/s3-presigner';
import type { AuditEvent, AuditSink } from '../shared/audit';
import type { AndThen } from './and-then';
import { EXPORT_RETENTION_DAYS, MAX_URL_TTL_SECONDS } from '../../contracts/tenant-keys';
import { assertOrgId } from './key-policy';
import { streamUpload } from './s3-upload';

export const EXPORT_SECTIONS = [
  'leads',
  'customers',
  'vehicles',
  'deals',
  // Every agent's calls and their recordings' metadata (migrations/0410).
  'calls',
  'call_recordings',
  // Tenant files (migrations/0408): every row; the bytes of released ones follow their row.
  'files',
  'audit_log',
  // Which credentials are set, never a value (migrations/0409).
  'credentials',
] as const;
export type ExportSection = (typeof EXPORT_SECTIONS)[number];

export type ExportStatus = 'pending' | 'ready' | 'failed';

export interface ExportRequest {
  readonly id: string;
  readonly orgId: string;
  readonly requestedBy: string;
  readonly status: ExportStatus;
  readonly objectKey: string | null;
  readonly requestedAt: Date;
  readonly completedAt: Date | null;
}

export interface ExportStore {
  /** Records a request by `requestedBy` (the store re-checks, in the database, that they are the Owner). */
  create(orgId: string, requestedBy: string, at: Date, proof?: string): Promise<ExportRequest>;
  /** One export of `orgId`, as seen by `userId` (tenant-scoped: another organisation's is never found). */
  get(orgId: string, id: string, userId: string, proof?: string): Promise<ExportRequest | null>;
  /** Pending requests, oldest first. */
  pending(limit: number): Promise<ExportRequest[]>;
  /**
   * Completes a pending request (ready, or failed). `andThen` runs in the same transaction with
   * whether this call completed it (false: it was no longer pending), to record the audit event.
   */
  complete(id: string, objectKey: string, rows: number, at: Date, andThen: AndThen<boolean>): Promise<void>;
  fail(id: string, at: Date, andThen: AndThen<boolean>): Promise<void>;
}

export interface SectionReader {
  /** The rows of one section of the request's organisation, in pages. */
  rows(section: ExportSection): AsyncIterable<Readonly<Record<string, unknown>>>;
}

/**
 * Reads a tenant's data for one request: one consistent snapshot, entered as the requesting Owner
 * (so the export sees exactly what the Owner may see, and fails if they are no longer the Owner).
 */
export interface ExportSource {
  read<T>(req: ExportRequest, fn: (reader: SectionReader) => Promise<T>): Promise<T>;
}

/**
 * The bytes of the exported organisation's files. An implementation reads with credentials that
 * reach `orgId`'s files only (lambda/tenant-keys/export-files.ts: the export reader role, assumed
 * with the `org_id` session tag), so a wrong key in a row still cannot return another tenant's bytes.
 */
export interface FileContentSource {
  open(orgId: string, exportId: string, objectKey: string): Promise<AsyncIterable<Uint8Array>>;
}

/** Raw bytes per `file_content` line (1 MiB once base64-encoded). */
export const FILE_CHUNK_BYTES = 768 * 1024;

export const EXPORT_FORMAT = 'bulwark-export/2';

/** A file's bytes do not match its row (size or SHA-256): the export fails rather than ship them. */
export class ExportFileMismatch extends Error {
  constructor(readonly fileId: string) {
    super(`EXPORT_FILE_MISMATCH: file ${fileId} does not match its recorded size and SHA-256`);
    this.name = 'ExportFileMismatch';
  }
}

export interface ExportActor {
  readonly userId: string;
  readonly email: string | null;
  /** The caller's role in `orgId`, as established by the tenant guard. */
  readonly role: string;
  /** The caller's gate proof (ticket or API key secret), for the stores' own transactions. */
  readonly proof?: string;
  readonly ip?: string | null;
  readonly userAgent?: string | null;
}

export type ExportErrorCode = 'PERMISSION_DENIED' | 'EXPORT_NOT_FOUND' | 'EXPORT_NOT_READY' | 'EXPORT_EXPIRED';

export const EXPORT_ERROR_STATUS: Readonly<Record<ExportErrorCode, number>> = {
  PERMISSION_DENIED: 403,
  EXPORT_NOT_FOUND: 404,
  EXPORT_NOT_READY: 409,
  EXPORT_EXPIRED: 410,
};

export class ExportError extends Error {
  readonly status: number;
  constructor(readonly code: ExportErrorCode) {
    super(code);
    this.name = 'ExportError';
    this.status = EXPORT_ERROR_STATUS[code];
  }
}

const CREDENTIAL_FIELD = /(secret|password|passwd|token|_sealed|api_key_hash|key_hash)/i;

/** Drops sealed and credential-like fields from a row. */
export function redactRow(row: Readonly<Record<string, unknown>>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(row)) {
    if (CREDENTIAL_FIELD.test(k)) continue;
    out[k] = Buffer.isBuffer(v) ? v.toString('base64') : v;
  }
  return out;
}

/**
 * A vault row as exported: which credential is set, when and by whom. Built from named metadata
 * fields only, so nothing else a row might carry can reach the export.
 */
export function credentialExportRow(row: Readonly<Record<string, unknown>>): Record<string, unknown> {
  const kind = String(row['kind']);
  return {
    id: row['id'],
    org_id: row['org_id'],
    kind,
    scope: row['scope'],
    [`${kind}_set`]: true,
    set_at: row['set_at'],
    set_by: row['set_by'],
  };
}

export interface ExportServiceDeps {
  readonly s3: S3Client;
  readonly store: ExportStore;
  readonly source: ExportSource;
  readonly audit: AuditSink;
  readonly clock: () => Date;
  readonly bucket: string;
  /** KMS key of the export bucket (SSE-KMS on every object). */
  readonly bucketKeyArn: string;
  /** Link lifetime in seconds, at most 900. @default 900 */
  readonly urlTtlSeconds?: number;
  /** Where released files' bytes are read. @default - no file store: file rows only, no bytes */
  readonly files?: FileContentSource;
  /** Upload part size (bytes, at least 5 MiB). @default 8 MiB */
  readonly partBytes?: number;
}

export function exportObjectKey(orgId: string, id: string): string {
  return `exports/${orgId}/${id}.ndjson.gz`;
}

export class ExportService {
  private readonly ttl: number;

  constructor(private readonly deps: ExportServiceDeps) {
    this.ttl = deps.urlTtlSeconds ?? MAX_URL_TTL_SECONDS;
    if (!Number.isInteger(this.ttl) || this.ttl < 1 || this.ttl > MAX_URL_TTL_SECONDS) {
      throw new RangeError(`export URL lifetime must be 1-${MAX_URL_TTL_SECONDS} seconds`);
    }
  }

  private event(orgId: string, actor: ExportActor | null, name: string, id: string, meta = {}): AuditEvent {
    return {
      orgId,
      actorType: actor ? 'user' : 'system',
      actorUserId: actor?.userId ?? null,
      actorEmail: actor?.email ?? null,
      event: name,
      entityType: 'tenant_export',
      entityId: id,
      ip: actor?.ip ?? null,
      userAgent: actor?.userAgent ?? null,
      supportGrantId: null,
      metadata: meta,
      occurredAt: this.deps.clock(),
    };
  }

  private static requireOwner(actor: ExportActor): void {
    // Only the Owner may take all of the organisation's data out (support staff never can).
    if (actor.role !== 'owner') throw new ExportError('PERMISSION_DENIED');
  }

  async request(orgId: string, actor: ExportActor): Promise<ExportRequest> {
    assertOrgId(orgId);
    ExportService.requireOwner(actor);
    const req = await this.deps.store.create(orgId, actor.userId, this.deps.clock(), actor.proof);
    await this.deps.audit.record(this.event(orgId, actor, 'tenant.export_requested', req.id), undefined, actor.proof);
    return req;
  }

  /** Writes one pending export to S3, streaming (a multipart upload once it outgrows one part). */
  async process(req: ExportRequest): Promise<{ key: string; rows: number; files: number }> {
    const key = exportObjectKey(req.orgId, req.id);
    try {
      const gzip = createGzip();
      const uploaded = streamUpload(
        this.deps.s3,
        {
          Bucket: this.deps.bucket,
          Key: key,
          ContentType: 'application/x-ndjson',
          ContentEncoding: 'gzip',
          ServerSideEncryption: 'aws:kms',
          SSEKMSKeyId: this.deps.bucketKeyArn,
          BucketKeyEnabled: true,
        },
        gzip,
        this.deps.partBytes,
      );
      // An upload that fails stops the writer (which may be waiting for the stream to drain).
      const stopped = uploaded.then(
        () => undefined,
        (e: unknown) => {
          gzip.destroy(e as Error);
          return e;
        },
      );
      let counts: { rows: number; files: number };
      try {
        counts = await this.render(req, gzip);
        gzip.end();
      } catch (e) {
        gzip.destroy(e as Error);
        throw (await stopped) ?? e;
      }
      await uploaded;
      const { rows, files } = counts;
      await this.deps.store.complete(req.id, key, rows, this.deps.clock(), async (done, tx) => {
        if (done)
          await this.deps.audit.record(
            this.event(req.orgId, null, 'tenant.export_completed', req.id, { rows, files }),
            tx,
          );
      });
      return { key, rows, files };
    } catch (e) {
      // Marked failed with its event, or (if even that fails) left pending for the next run.
      await this.deps.store.fail(req.id, this.deps.clock(), async (done, tx) => {
        if (done) await this.deps.audit.record(this.event(req.orgId, null, 'tenant.export_failed', req.id), tx);
      });
      throw e;
    }
  }

  /** Processes up to `limit` pending exports; a failure does not stop the others. */
  async processPending(limit = 5): Promise<{ done: number; failed: number }> {
    let done = 0;
    let failed = 0;
    for (const req of await this.deps.store.pending(limit)) {
      try {
        await this.process(req);
        done++;
      } catch {
        failed++;
      }
    }
    return { done, failed };
  }

  private async render(req: ExportRequest, gzip: Gzip): Promise<{ rows: number; files: number }> {
    const write = async (line: unknown): Promise<void> => {
      if (gzip.destroyed) throw new Error('export stream closed');
      if (!gzip.write(JSON.stringify(line) + '\n')) await once(gzip, 'drain');
    };
    let rows = 0;
    let files = 0;
    await write({
      header: {
        format: EXPORT_FORMAT,
        orgId: req.orgId,
        exportId: req.id,
        generatedAt: this.deps.clock().toISOString(),
        sections: EXPORT_SECTIONS,
        fileChunkBytes: FILE_CHUNK_BYTES,
      },
    });
    await this.deps.source.read(req, async (reader) => {
      for (const section of EXPORT_SECTIONS) {
        for await (const row of reader.rows(section)) {
          rows++;
          if (section === 'credentials') {
            await write({ section, row: credentialExportRow(row) });
            continue;
          }
          if (section !== 'files') {
            await write({ section, row: redactRow(row) });
            continue;
          }
          // Quarantined and rejected files are listed, never included (nor readable: IAM wants the release tag).
          const include = row['status'] === 'clean' && this.deps.files !== undefined;
          const content = include ? 'included' : row['status'] === 'clean' ? 'not_exported' : 'not_released';
          await write({ section, row: { ...redactRow(row), content } });
          if (include) {
            await this.writeFile(req, row, write);
            files++;
          }
        }
      }
    });
    return { rows, files };
  }

  /** Streams one released file as `file_content` lines, checking its size and SHA-256 against the row. */
  private async writeFile(
    req: ExportRequest,
    row: Readonly<Record<string, unknown>>,
    write: (line: unknown) => Promise<void>,
  ): Promise<void> {
    const fileId = String(row['id']);
    const objectKey = String(row['object_key']);
    if (row['org_id'] !== req.orgId || !objectKey.startsWith(`orgs/${req.orgId}/`)) {
      throw new ExportFileMismatch(fileId);
    }
    const files = this.deps.files;
    if (!files) throw new Error('no file store');
    const body = await files.open(req.orgId, req.id, objectKey);
    const hash = createHash('sha256');
    const chunk = Buffer.allocUnsafe(FILE_CHUNK_BYTES);
    let filled = 0;
    let offset = 0;
    const emit = async () => {
      await write({
        section: 'file_content',
        row: { file_id: fileId, offset, data: chunk.subarray(0, filled).toString('base64') },
      });
      offset += filled;
      filled = 0;
    };
    for await (const piece of body) {
      hash.update(piece);
      let at = 0;
      while (at < piece.length) {
        const n = Math.min(piece.length - at, FILE_CHUNK_BYTES - filled);
        chunk.set(piece.subarray(at, at + n), filled);
        filled += n;
        at += n;
        if (filled === FILE_CHUNK_BYTES) await emit();
      }
    }
    if (filled > 0) await emit();
    const sha256 = hash.digest('base64');
    if (sha256 !== row['sha256'] || String(offset) !== String(row['size_bytes'])) throw new ExportFileMismatch(fileId);
    await write({ section: 'file_content', row: { file_id: fileId, size: offset, sha256, complete: true } });
  }

  /** A download link for a ready export, valid for at most 15 minutes. */
  async downloadUrl(orgId: string, id: string, actor: ExportActor): Promise<{ url: string; expiresAt: Date }> {
    assertOrgId(orgId);
    ExportService.requireOwner(actor);
    const req = await this.deps.store.get(orgId, id, actor.userId, actor.proof);
    if (!req || req.orgId !== orgId) throw new ExportError('EXPORT_NOT_FOUND');
    if (req.status !== 'ready' || !req.objectKey || !req.completedAt) throw new ExportError('EXPORT_NOT_READY');
    const now = this.deps.clock();
    if (now.getTime() - req.completedAt.getTime() >= EXPORT_RETENTION_DAYS * 86_400_000) {
      throw new ExportError('EXPORT_EXPIRED');
    }
    const url = await getSignedUrl(
      this.deps.s3,
      new GetObjectCommand({ Bucket: this.deps.bucket, Key: req.objectKey }),
      { expiresIn: this.ttl, signingDate: now },
    );
    await this.deps.audit.record(
      this.event(orgId, actor, 'tenant.export_downloaded', id, { ttlSeconds: this.ttl }),
      undefined,
      actor.proof,
    );
    return { url, expiresAt: new Date(now.getTime() + this.ttl * 1000) };
  }
}

/** For tests and tooling: gunzips and parses an export. */
export function readExport(body: Buffer): unknown[] {
  return gunzipSync(body)
    .toString('utf8')
    .split('\n')
    .filter((l) => l.length > 0)
    .map((l) => JSON.parse(l) as unknown);
}

/**
 * For tests and tooling: the files of a parsed export, reassembled from their `file_content` lines
 * (only files whose closing line says `complete`).
 */
export function exportedFiles(lines: readonly unknown[]): Map<string, Buffer> {
  const parts = new Map<string, Buffer[]>();
  const done = new Map<string, Buffer>();
  for (const l of lines as { section?: string; row?: Record<string, unknown> }[]) {
    if (l.section !== 'file_content' || !l.row) continue;
    const id = String(l.row['file_id']);
    if (l.row['complete'] === true) {
      done.set(id, Buffer.concat(parts.get(id) ?? []));
      continue;
    }
    const list = parts.get(id) ?? [];
    list.push(Buffer.from(String(l.row['data']), 'base64'));
    parts.set(id, list);
  }
  return done;
}
