/**
 * Tenant files (docs/tenant-files.md): metadata rows in `tenant_files` (RLS, the `vehicles` grid),
 * bytes in the file store under `orgs/<org_id>/files/<id>`, each object SSE-KMS under its tenant's
 * own key. Upload and download are presigned URLs signed with the files role's credentials that
 * the authorizer minted for the token's organisation: the API function's own role reaches no file.
 *
 * An upload's URL fixes the content type, the exact length, the SHA-256 and the encryption (key and
 * org_id context) in its signature; it lands quarantined, and is downloadable only after the
 * checker released it (row status `clean`; IAM independently requires the object's release tag).
 */
import { DeleteObjectCommand, GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { getSignedUrl } from '../../shared/s3-presigner';
import * as z from 'zod/mini';
import { UUID } from '../../../contracts/ids';
import { FILES_KEY_POLICY_VERSION } from '../../../contracts/tenant-keys';
import {
  FILE_CONTENT_TYPES,
  FILES_MODULE,
  FILES_ROOT,
  MAX_FILE_BYTES,
  MAX_FILE_URL_SECONDS,
  MIN_FILE_URL_SECONDS,
} from '../../../contracts/tenant-files';
import { firstRow } from '../../shared/rows';
import type { FilesCredentials } from '../files-credentials';
import { GuardError, parseInput } from '../errors';
import { tenantRoute, type FilesApiDeps, type Route, type RouteContext } from '../route';
import { iso, need } from './common';

const Upload = z.strictObject({
  // A display name only: the object key is derived from the organisation and the row id.
  name: z.string().check(
    z.minLength(1),
    z.maxLength(255),
    // No control characters, no path separators (it ends up in a Content-Disposition header).
    z.refine((s) => ![...s].some((c) => c.charCodeAt(0) < 0x20 || c.charCodeAt(0) === 0x7f || c === '/' || c === '\\')),
  ),
  contentType: z.enum(FILE_CONTENT_TYPES),
  size: z.int().check(z.minimum(1), z.maximum(MAX_FILE_BYTES)),
  /** Base64 SHA-256 of the bytes; S3 refuses an upload whose bytes do not match. */
  sha256: z.string().check(z.regex(/^[A-Za-z0-9+/]{43}=$/)),
  vehicleId: z.optional(z.string().check(z.regex(UUID))),
});

const ListQuery = z.object({
  limit: z.optional(z.string().check(z.regex(/^(100|[1-9][0-9]?)$/))),
  vehicleId: z.optional(z.string().check(z.regex(UUID))),
});

const fileId = (ctx: RouteContext<'tenant'>): string =>
  parseInput(z.string().check(z.regex(UUID)), ctx.req.params['id'], 'id').toLowerCase();

/**
 * The file store and the caller's credentials for the entered organisation, with how long a URL
 * signed with them may live (never beyond the credentials, never more than 15 minutes).
 */
function filesAccess(ctx: RouteContext<'tenant'>): { files: FilesApiDeps; creds: FilesCredentials; ttl: number } {
  const files = ctx.files;
  if (!files) throw new GuardError('FILES_UNAVAILABLE');
  if (ctx.caller.apiKey) throw new GuardError('FILES_USER_TOKEN_REQUIRED');
  // The credentials are scoped to the token's organisation: another one (X-Bulwark-Org, a support
  // grant) would fail at IAM; say so instead.
  if (ctx.tenant.orgId !== ctx.caller.orgId) throw new GuardError('FILES_ORG_MISMATCH');
  const creds = ctx.filesCredentials;
  if (!creds) throw new GuardError('FILES_CREDENTIALS_MISSING');
  const left = Math.floor(creds.expiresAt - ctx.now().getTime() / 1000);
  const ttl = Math.min(MAX_FILE_URL_SECONDS, left);
  if (ttl < MIN_FILE_URL_SECONDS) throw new GuardError('FILES_CREDENTIALS_EXPIRED');
  return { files, creds, ttl };
}

/** Defence in depth: a URL is only ever signed for an object under the entered organisation's prefix. */
function ownKey(ctx: RouteContext<'tenant'>, key: unknown): string {
  const k = String(key);
  if (!k.startsWith(`${FILES_ROOT}${ctx.tenant.orgId}/`)) throw new GuardError('INTERNAL');
  return k;
}

const fileOf = (row: Record<string, unknown>) => ({
  id: row['id'],
  name: row['name'],
  contentType: row['content_type'],
  size: Number(row['size_bytes']),
  status: row['status'],
  vehicleId: row['vehicle_id'] ?? null,
  createdAt: iso(row['created_at']),
  checkedAt: iso(row['checked_at']),
});

const COLUMNS = 'id, object_key, name, content_type, size_bytes, status, vehicle_id, created_at, checked_at';

export const FILE_ROUTES: readonly Route[] = [
  tenantRoute('POST', '/files', async (ctx) => {
    need(ctx, FILES_MODULE, 'create');
    const body = parseInput(Upload, ctx.req.body, 'body');
    const { files, creds, ttl } = filesAccess(ctx);
    // The tenant's own key, read under the (writable) context: the upload is encrypted under it. A
    // bring-your-own key serves files once the provisioner has found the files statement in its
    // policy (recorded at FILES_KEY_POLICY_VERSION, migrations/0414); KMS checks the policy anyway.
    const key = (await ctx.tx.query('SELECT key_arn, key_source, policy_version FROM app.context_tenant_files_key()'))
      .rows[0];
    if (!key || key['key_arn'] === null) throw new GuardError('TENANT_KEY_MISSING');
    if (key['key_source'] !== 'managed' && Number(key['policy_version'] ?? 0) < FILES_KEY_POLICY_VERSION) {
      throw new GuardError('FILES_KEY_UNSUPPORTED');
    }
    let row: Record<string, unknown>;
    try {
      const r = await ctx.tx.query(
        `INSERT INTO tenant_files (org_id, name, content_type, size_bytes, sha256, vehicle_id)
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING ${COLUMNS}`,
        [ctx.tenant.orgId, body.name, body.contentType, body.size, body.sha256, body.vehicleId ?? null],
      );
      row = firstRow(r.rows);
    } catch (e) {
      // The vehicle is not one of this organisation's (the composite foreign key).
      if ((e as { code?: unknown }).code === '23503') {
        throw new GuardError('VALIDATION_FAILED', 'vehicleId', 'vehicleId');
      }
      throw e;
    }
    const at = ctx.now();
    const command = new PutObjectCommand({
      Bucket: files.bucket,
      Key: ownKey(ctx, row['object_key']),
      ContentType: body.contentType,
      ContentLength: body.size,
      ChecksumSHA256: body.sha256,
      ServerSideEncryption: 'aws:kms',
      SSEKMSKeyId: String(key['key_arn']),
      SSEKMSEncryptionContext: Buffer.from(JSON.stringify({ org_id: ctx.tenant.orgId })).toString('base64'),
    });
    // Every one of these is signed as a header (never hoisted into the query), so the client must
    // send exactly these values: the type, the length, the checksum, the key and its context.
    const headers: Record<string, string> = {
      'content-type': body.contentType,
      'content-length': String(body.size),
      'x-amz-checksum-sha256': body.sha256,
      'x-amz-sdk-checksum-algorithm': 'SHA256',
      'x-amz-server-side-encryption': 'aws:kms',
      'x-amz-server-side-encryption-aws-kms-key-id': String(key['key_arn']),
      'x-amz-server-side-encryption-context': String(command.input.SSEKMSEncryptionContext),
    };
    const url = await getSignedUrl(files.s3For(creds), command, {
      expiresIn: ttl,
      signingDate: at,
      signableHeaders: new Set(Object.keys(headers)),
      unhoistableHeaders: new Set(Object.keys(headers).filter((h) => h.startsWith('x-amz-'))),
    });
    const expiresAt = new Date(at.getTime() + ttl * 1000).toISOString();
    await ctx.emit('file.upload_issued', 'tenant_file', String(row['id']), {
      contentType: body.contentType,
      size: body.size,
      ttlSeconds: ttl,
    });
    return { status: 201, body: { file: fileOf(row), upload: { method: 'PUT', url, headers, expiresAt } } };
  }),

  tenantRoute('GET', '/files', async (ctx) => {
    need(ctx, FILES_MODULE, 'view');
    const q = parseInput(ListQuery, ctx.req.query, 'query');
    // RLS (and the vehicles:view grid) scope this to the entered organisation.
    const r = await ctx.tx.query(
      `SELECT ${COLUMNS} FROM tenant_files WHERE ($1::uuid IS NULL OR vehicle_id = $1)
        ORDER BY created_at DESC, id LIMIT $2`,
      [q.vehicleId ?? null, Number(q.limit ?? 50)],
    );
    return { status: 200, body: { files: r.rows.map((row) => fileOf(row as Record<string, unknown>)) } };
  }),

  tenantRoute('GET', '/files/{id}', async (ctx) => {
    need(ctx, FILES_MODULE, 'view');
    const id = fileId(ctx);
    const row = (await ctx.tx.query(`SELECT ${COLUMNS} FROM tenant_files WHERE id = $1`, [id])).rows[0] as
      Record<string, unknown> | undefined;
    if (!row) throw new GuardError('FILE_NOT_FOUND');
    if (row['status'] === 'quarantined') throw new GuardError('FILE_QUARANTINED');
    if (row['status'] === 'rejected') throw new GuardError('FILE_REJECTED');
    const { files, creds, ttl } = filesAccess(ctx);
    const at = ctx.now();
    const name = String(row['name']).replace(/["\\]/g, '_');
    const url = await getSignedUrl(
      files.s3For(creds),
      new GetObjectCommand({
        Bucket: files.bucket,
        Key: ownKey(ctx, row['object_key']),
        // Served as the declared (and checked) type, always as a download, never rendered inline.
        ResponseContentType: String(row['content_type']),
        ResponseContentDisposition: `attachment; filename="${name}"; filename*=UTF-8''${encodeURIComponent(String(row['name']))}`,
      }),
      { expiresIn: ttl, signingDate: at },
    );
    const expiresAt = new Date(at.getTime() + ttl * 1000).toISOString();
    await ctx.emit('file.download_issued', 'tenant_file', id, { ttlSeconds: ttl, expiresAt });
    return { status: 200, body: { file: fileOf(row), url, expiresAt } };
  }),

  tenantRoute('DELETE', '/files/{id}', async (ctx) => {
    need(ctx, FILES_MODULE, 'delete');
    const id = fileId(ctx);
    const { files, creds } = filesAccess(ctx);
    const row = (await ctx.tx.query('SELECT object_key FROM tenant_files WHERE id = $1', [id])).rows[0] as
      Record<string, unknown> | undefined;
    if (!row) throw new GuardError('FILE_NOT_FOUND');
    const deleted = await ctx.tx.query("SELECT d FROM app.delete_tenant_rows('tenant_files', ARRAY[$1]::uuid[]) d", [
      id,
    ]);
    if (deleted.rows.length === 0) throw new GuardError('FILE_NOT_FOUND');
    // Before COMMIT: if S3 refuses, the row stays. The current version becomes a delete marker; the
    // bytes stay recoverable as a noncurrent version for 30 days (docs/tenant-files.md).
    await files
      .s3For(creds)
      .send(new DeleteObjectCommand({ Bucket: files.bucket, Key: ownKey(ctx, row['object_key']) }));
    await ctx.emit('file.deleted', 'tenant_file', id);
    return { status: 200, body: { deleted: id } };
  }),
];
