/**
 * The Owner's full data exports (docs/tenant-keys.md): requested here, written by the lifecycle
 * processor; a ready export gives a pre-signed link of at most 15 minutes, each issuance audited.
 */
import { firstRow } from '../../shared/rows';
import { GetObjectCommand } from '@aws-sdk/client-s3';
import { getSignedUrl } from '../../shared/s3-presigner';
import * as z from 'zod/mini';
import { EXPORT_RETENTION_DAYS, MAX_URL_TTL_SECONDS } from '../../../contracts/tenant-keys';
import { GuardError, parseInput } from '../errors';
import { tenantRoute, type Route, type TenantKeysApiDeps } from '../route';
import { DAY_MS, iso, requireOwner, requireTenantKeys, uuid } from './common';

/** The download link lifetime the API will sign with; a RangeError at construction when out of range. */
export function exportUrlTtl(deps: TenantKeysApiDeps | undefined): number {
  const ttl = deps?.exportUrlTtlSeconds ?? MAX_URL_TTL_SECONDS;
  if (!Number.isInteger(ttl) || ttl < 1 || ttl > MAX_URL_TTL_SECONDS) {
    throw new RangeError(`export URL lifetime must be 1-${MAX_URL_TTL_SECONDS} seconds`);
  }
  return ttl;
}

export const TENANT_EXPORT_ROUTES: readonly Route[] = [
  tenantRoute('POST', '/tenant/exports', async (ctx) => {
    requireOwner(ctx.tenant, true);
    if (ctx.req.body !== undefined) parseInput(z.strictObject({}), ctx.req.body);
    const r = await ctx.tx.query('SELECT id, status, requested_at FROM app.request_tenant_export()');
    const row = firstRow(r.rows);
    await ctx.emit('tenant.export_requested', 'tenant_export', String(row['id']));
    return {
      status: 202,
      body: { export: { id: row['id'], status: row['status'], requestedAt: iso(row['requested_at']) } },
    };
  }),
  tenantRoute('GET', '/tenant/exports/{id}', async (ctx) => {
    requireOwner(ctx.tenant, false);
    const id = parseInput(uuid, ctx.req.params['id'], 'id').toLowerCase();
    const d = requireTenantKeys(ctx);
    const ttl = ctx.exportUrlTtlSeconds;
    const r = await ctx.tx.query(
      `SELECT id, status, object_key, row_count, requested_at, completed_at
         FROM tenant_exports WHERE id = $1 AND org_id = $2`,
      [id, ctx.tenant.orgId],
    );
    const row = r.rows[0];
    if (!row) throw new GuardError('EXPORT_NOT_FOUND');
    if (row['status'] === 'pending') throw new GuardError('EXPORT_NOT_READY');
    if (row['status'] === 'failed') throw new GuardError('EXPORT_FAILED');
    const key = String(row['object_key']);
    // Defence in depth: a link is only ever signed for this organisation's own prefix.
    if (!key.startsWith(`exports/${ctx.tenant.orgId}/`)) throw new GuardError('INTERNAL');
    const at = ctx.now();
    const completed = new Date(row['completed_at'] as string);
    if (at.getTime() - completed.getTime() >= EXPORT_RETENTION_DAYS * DAY_MS) {
      throw new GuardError('EXPORT_EXPIRED');
    }
    const url = await getSignedUrl(d.s3, new GetObjectCommand({ Bucket: d.exportBucket, Key: key }), {
      expiresIn: ttl,
      signingDate: at,
    });
    const expiresAt = new Date(at.getTime() + ttl * 1000).toISOString();
    // Who took the data out, from where and when: user, IP and time are in every event.
    await ctx.emit('tenant.export_downloaded', 'tenant_export', id, { ttlSeconds: ttl, expiresAt });
    return {
      status: 200,
      body: {
        export: {
          id,
          status: row['status'],
          rowCount: row['row_count'] === null ? null : Number(row['row_count']),
          requestedAt: iso(row['requested_at']),
          completedAt: completed.toISOString(),
        },
        url,
        expiresAt,
      },
    };
  }),
];
