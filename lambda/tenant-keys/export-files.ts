/**
 * Reads a tenant's released files for its export (docs/tenant-files.md, "Export"). The export
 * worker's own role has no access to the file store: for each export it assumes the export reader
 * role with the exported organisation as the `org_id` session tag (`filesCredentialMinter`, which
 * refuses anything but a lower-case UUID), and that session reaches `orgs/<org_id>/` only, released
 * objects only, decrypted through S3 under that organisation's key and context only.
 */
import { GetObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { FILES_ROOT } from '../../contracts/tenant-files';
import { sdkRetries } from '../shared/sdk';
import type { FilesCredentialMinter, FilesCredentials } from '../tenant-guard/files-credentials';
import type { FileContentSource } from './export';

export interface S3FileContentSourceOptions {
  readonly bucket: string;
  /** Mints export reader credentials for one organisation (subject: `export-<export id>`). */
  readonly mint: FilesCredentialMinter;
  /** An S3 client signing with `credentials`. */
  readonly clientFor: (credentials: FilesCredentials) => S3Client;
}

export class S3FileContentSource implements FileContentSource {
  private readonly clients = new WeakMap<FilesCredentials, S3Client>();

  constructor(private readonly options: S3FileContentSourceOptions) {}

  async open(orgId: string, exportId: string, objectKey: string): Promise<AsyncIterable<Uint8Array>> {
    // The row comes from the tenant's own snapshot and the database derives the key; checked again.
    if (!objectKey.startsWith(`${FILES_ROOT}${orgId}/`)) {
      throw new TypeError('object key outside the exported organisation');
    }
    // A minted credential is reused while 10 minutes of it are left, so a long export re-mints.
    const credentials = await this.options.mint(orgId, `export-${exportId}`);
    let s3 = this.clients.get(credentials);
    if (!s3) {
      s3 = this.options.clientFor(credentials);
      this.clients.set(credentials, s3);
    }
    const r = await s3.send(new GetObjectCommand({ Bucket: this.options.bucket, Key: objectKey }));
    const body = r.Body as AsyncIterable<Uint8Array> | undefined;
    if (!body || typeof (body as { [Symbol.asyncIterator]?: unknown })[Symbol.asyncIterator] !== 'function') {
      throw new Error('GetObject returned no readable body');
    }
    return body;
  }
}

/** An S3 client in `region` signing with one minted credential (never the function's own role). */
export function s3ClientFor(region: string, wrap: (c: S3Client) => S3Client = (c) => c) {
  return (credentials: FilesCredentials): S3Client =>
    wrap(
      new S3Client({
        ...sdkRetries(),
        region,
        credentials: {
          accessKeyId: credentials.accessKeyId,
          secretAccessKey: credentials.secretAccessKey,
          sessionToken: credentials.sessionToken,
          expiration: new Date(credentials.expiresAt * 1000),
        },
      }),
    );
}
