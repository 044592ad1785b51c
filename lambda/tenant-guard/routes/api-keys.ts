/**
 * API keys (`settings:create/delete`): minted by people only, with a grid within the minter's
 * (also enforced by a database trigger); the secret is shown once and stored as SHA-256.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import * as z from 'zod/mini';
import { GuardError, parseInput } from '../errors';
import { hashSecret } from '../guard';
import { narrow } from '../permissions';
import { tenantRoute, type Route } from '../route';
import { need, permissionList, uuid } from './common';

export const API_KEY_ROUTES: readonly Route[] = [
  tenantRoute('POST', '/api-keys', async (ctx) => {
    need(ctx, 'settings', 'create');
    if (ctx.tenant.actorType !== 'user') throw new GuardError('PERMISSION_DENIED', 'only people mint keys');
    const b = parseInput(
      z.strictObject({
        name: z.string().check(z.minLength(1), z.maxLength(100)),
        permissions: permissionList.check(z.minLength(1)),
        expiresInDays: z.optional(z.number().check(z.int(), z.minimum(1), z.maximum(365))),
      }),
      ctx.req.body,
    );
    const grid = narrow(b.permissions, ctx.tenant.permissions);
    const id = randomUUID();
    const secret = randomBytes(32).toString('base64url');
    await ctx.tx.query(
      `INSERT INTO api_keys (id, org_id, created_by, name, secret_hash, permissions, expires_at)
       VALUES ($1, $2, $3, $4, $5, $6, now() + make_interval(days => $7))`,
      [id, ctx.tenant.orgId, ctx.tenant.userId, b.name, hashSecret(secret), grid, b.expiresInDays ?? 90],
    );
    await ctx.emit('api_key.minted', 'api_key', id, { permissions: grid });
    // The secret is returned once and never stored.
    return { status: 201, body: { id, key: `bwk_${id.replace(/-/g, '')}_${secret}`, permissions: grid } };
  }),
  tenantRoute('DELETE', '/api-keys/{id}', async (ctx) => {
    need(ctx, 'settings', 'delete');
    const id = parseInput(uuid, ctx.req.params['id'], 'id');
    const r = await ctx.tx.query(
      'UPDATE api_keys SET revoked_at = now() WHERE id = $1 AND org_id = $2 AND revoked_at IS NULL RETURNING id',
      [id, ctx.tenant.orgId],
    );
    if (!r.rows[0]) throw new GuardError('NOT_FOUND');
    await ctx.emit('api_key.revoked', 'api_key', id);
    return { status: 200, body: { revoked: id } };
  }),
];
