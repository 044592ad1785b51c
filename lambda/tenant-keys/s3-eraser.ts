/**
 * Deletes a tenant's objects: every version (and delete marker) under the tenant's prefix in each
 * configured bucket, so nothing of it survives in a versioned bucket. Idempotent.
 */
import { DeleteObjectsCommand, ListObjectVersionsCommand, type S3Client } from '@aws-sdk/client-s3';
import type { TenantObjectEraser } from './lifecycle-processor';
import { assertOrgId } from './key-policy';

export interface TenantPrefix {
  readonly bucket: string;
  /** Prefix for one organisation, e.g. `(org) => \`exports/${org}/\``. Must end with `/`. */
  readonly prefix: (orgId: string) => string;
}

export class S3TenantObjectEraser implements TenantObjectEraser {
  constructor(
    private readonly s3: S3Client,
    private readonly locations: readonly TenantPrefix[],
  ) {}

  async deleteObjects(orgId: string): Promise<number> {
    assertOrgId(orgId);
    let deleted = 0;
    for (const loc of this.locations) {
      const prefix = loc.prefix(orgId);
      // A prefix that does not end in the org id and a slash could match another tenant's objects.
      if (!prefix.endsWith(`${orgId}/`)) throw new Error(`tenant prefix must end with "<orgId>/", got ${prefix}`);
      let keyMarker: string | undefined;
      let versionMarker: string | undefined;
      for (;;) {
        const page = await this.s3.send(
          new ListObjectVersionsCommand({
            Bucket: loc.bucket,
            Prefix: prefix,
            KeyMarker: keyMarker,
            VersionIdMarker: versionMarker,
            MaxKeys: 1000,
          }),
        );
        const objects = [...(page.Versions ?? []), ...(page.DeleteMarkers ?? [])]
          .filter((v) => v.Key !== undefined)
          .map((v) => ({ Key: v.Key as string, VersionId: v.VersionId }));
        for (let i = 0; i < objects.length; i += 1000) {
          const batch = objects.slice(i, i + 1000);
          const r = await this.s3.send(
            new DeleteObjectsCommand({ Bucket: loc.bucket, Delete: { Objects: batch, Quiet: true } }),
          );
          if (r.Errors && r.Errors.length > 0) {
            throw new Error(`could not delete ${r.Errors.length} object(s) in ${loc.bucket}`);
          }
          deleted += batch.length;
        }
        if (!page.IsTruncated) break;
        keyMarker = page.NextKeyMarker;
        versionMarker = page.NextVersionIdMarker;
      }
    }
    return deleted;
  }
}
