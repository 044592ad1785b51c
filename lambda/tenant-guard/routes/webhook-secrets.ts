/**
 * Per-organisation carrier webhook secrets (docs/webhooks.md), write-only: answers carry
 * `secret_set` and never the secret; the secret is sealed under the tenant's own key before it
 * reaches the database, and every change is audited in the request's transaction.
 */
import * as z from 'zod/mini';
import { GuardError, parseInput } from '../errors';
import { ProvisionError } from '../../tenant-keys/provision-status';
import { PgWebhookSecretStore } from '../../webhooks/pg-secret-store';
import { HMAC_PROVIDERS, type HmacProvider } from '../../../contracts/webhooks';
import { MAX_SECRET_BYTES, MIN_SECRET_BYTES, WebhookSecretService } from '../../webhooks/secrets';
import { tenantRoute, type Json, type Route, type RouteContext } from '../route';
import { need } from './common';

function hmacProvider(value: string | undefined): HmacProvider {
  const found = HMAC_PROVIDERS.find((p) => p === value);
  if (!found) throw new GuardError('NOT_FOUND', 'provider');
  return found;
}

/** The secret service on this request's transaction; its audit events go through `ctx.emit`. */
function webhookSecrets(ctx: RouteContext<'tenant'>): WebhookSecretService {
  const cipher = ctx.cipher;
  return new WebhookSecretService({
    store: new PgWebhookSecretStore(ctx.tx),
    cipher: cipher ?? {
      seal: () => Promise.reject(new GuardError('KEY_UNAVAILABLE', 'no cipher configured')),
      open: () => Promise.reject(new GuardError('KEY_UNAVAILABLE', 'no cipher configured')),
    },
    // Actor, IP, user agent and support grant come from the request, as for every other event.
    audit: { record: (e) => ctx.emit(e.event, e.entityType, e.entityId, e.metadata as Json) },
    clock: () => ctx.now().getTime(),
  });
}

/** Sealing needs the tenant's key: a tenant without one yet, or KMS failing, gets an explicit code. */
export async function sealing<T>(run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (e) {
    if (e instanceof GuardError) throw e;
    if (e instanceof ProvisionError) throw new GuardError('TENANT_KEY_MISSING', e.code);
    // PostgreSQL errors (a five-character SQLSTATE) are mapped by toGuardError like everywhere else.
    const code = typeof e === 'object' && e !== null && 'code' in e ? (e as { code: unknown }).code : undefined;
    if (typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code)) throw e;
    throw new GuardError('KEY_UNAVAILABLE');
  }
}

export const WEBHOOK_SECRET_ROUTES: readonly Route[] = [
  tenantRoute('GET', '/webhook-secrets', async (ctx) => {
    need(ctx, 'settings', 'view');
    const service = webhookSecrets(ctx);
    return {
      status: 200,
      body: { secrets: await Promise.all(HMAC_PROVIDERS.map((p) => service.status(ctx.tenant.orgId, p))) },
    };
  }),
  tenantRoute('PUT', '/webhook-secrets/{provider}', async (ctx) => {
    need(ctx, 'settings', 'edit');
    const provider = hmacProvider(ctx.req.params['provider']);
    const { secret } = parseInput(z.strictObject({ secret: z.string() }), ctx.req.body);
    const bytes = Buffer.from(secret, 'utf8');
    if (bytes.length < MIN_SECRET_BYTES || bytes.length > MAX_SECRET_BYTES) {
      throw new GuardError('VALIDATION_FAILED', `secret: ${MIN_SECRET_BYTES}-${MAX_SECRET_BYTES} bytes`, 'secret');
    }
    const status = await sealing(() =>
      webhookSecrets(ctx).setSecret(ctx.tenant.orgId, provider, bytes, {
        userId: ctx.tenant.userId,
        email: ctx.tenant.email,
      }),
    );
    return { status: 200, body: { secret: status } };
  }),
  tenantRoute('DELETE', '/webhook-secrets/{provider}/previous', async (ctx) => {
    need(ctx, 'settings', 'edit');
    const provider = hmacProvider(ctx.req.params['provider']);
    const status = await webhookSecrets(ctx).endRotation(ctx.tenant.orgId, provider, {
      userId: ctx.tenant.userId,
      email: ctx.tenant.email,
    });
    return { status: 200, body: { secret: status } };
  }),
];
