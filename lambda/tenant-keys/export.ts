/**
 * Tenant export: an Owner asks for a copy of the organisation's data (leads, customers, vehicles,
 * deals, calls and their recordings' metadata, the audit log and which credentials are set); a
 * worker writes it, gzipped NDJSON, to the KMS-encrypted export bucket; the Owner downloads it
 * through a pre-signed URL that lives at most 15 minutes.
 *
 * Secrets are never exported: sealed columns and anything named like a credential are dropped, and
 * the credentials vault appears as `<kind>_set` metadata only.
 */
import { createGzip, gunzipSync } from 'node:zlib';
import { PassThrough } from 'node:stream';
import { GetObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { getSignedUrl } from '../shared/s3-presigner';
import type { AuditEvent, AuditSink } from '../shared/audit';
import type { AndThen } from './and-then';
import { EXPORT_RETENTION_DAYS, MAX_URL_TTL_SECONDS } from '../../contracts/tenant-keys';
import { assertOrgId } from './key-policy';

export const EXPORT_SECTIONS = [
  'leads',
  'customers',
  'vehicles',
  'deals',
  // Every agent's calls and their recordings' metadata (migrations/0410).
  'calls',
  'call_recordings',
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

  /** Writes one pending export to S3. */
  async process(req: ExportRequest): Promise<{ key: string; rows: number }> {
    const key = exportObjectKey(req.orgId, req.id);
    try {
      const { body, rows } = await this.render(req);
      await this.deps.s3.send(
        new PutObjectCommand({
          Bucket: this.deps.bucket,
          Key: key,
          Body: body,
          ContentType: 'application/x-ndjson',
          ContentEncoding: 'gzip',
          ServerSideEncryption: 'aws:kms',
          SSEKMSKeyId: this.deps.bucketKeyArn,
          BucketKeyEnabled: true,
        }),
      );
      await this.deps.store.complete(req.id, key, rows, this.deps.clock(), async (done, tx) => {
        if (done)
          await this.deps.audit.record(this.event(req.orgId, null, 'tenant.export_completed', req.id, { rows }), tx);
      });
      return { key, rows };
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

  private async render(req: ExportRequest): Promise<{ body: Buffer; rows: number }> {
    const gzip = createGzip();
    const chunks: Buffer[] = [];
    const sink = new PassThrough();
    sink.on('data', (c: Buffer) => chunks.push(c));
    const finished = new Promise<void>((resolve, reject) => {
      sink.on('end', resolve);
      gzip.on('error', reject);
    });
    gzip.pipe(sink);
    let rows = 0;
    const header = {
      format: 'bulwark-export/1',
      orgId: req.orgId,
      exportId: req.id,
      generatedAt: this.deps.clock().toISOString(),
      sections: EXPORT_SECTIONS,
    };
    gzip.write(JSON.stringify({ header }) + '\n');
    try {
      await this.deps.source.read(req, async (reader) => {
        for (const section of EXPORT_SECTIONS) {
          for await (const row of reader.rows(section)) {
            const out = section === 'credentials' ? credentialExportRow(row) : redactRow(row);
            if (!gzip.write(JSON.stringify({ section, row: out }) + '\n')) {
              await new Promise((r) => gzip.once('drain', r));
            }
            rows++;
          }
        }
      });
    } finally {
      gzip.end();
    }
    await finished;
    return { body: Buffer.concat(chunks), rows };
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
