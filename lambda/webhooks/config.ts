/**
 * Cold-start configuration. The environment is validated once; a production function whose
 * verification is switched off refuses to start (the construct also refuses to synthesize it).
 */
import type { KeyObject } from 'node:crypto';
import * as z from 'zod/mini';
import { DEFAULT_MAX_BODY_BYTES, MAX_BODY_BYTES, MIN_BODY_BYTES } from '../../contracts/webhooks';
import { WebhookError, isWebhookError } from './errors';
import type { WebhookSecretResolver } from './secrets';
import { importTelnyxPublicKey } from './telnyx';
import type { Log } from '../shared/observability';
import { issueList } from '../shared/validation';

export const webhookEnvSchema = z
  .object({
    BULWARK_ENVIRONMENT: z.enum(['production', 'staging', 'development']),
    /** `disabled` is accepted only outside production, for local carrier simulators. */
    WEBHOOK_VERIFICATION: z._default(z.enum(['required', 'disabled']), 'required'),
    /** Raw 32-byte Ed25519 public key, base64, from the Telnyx portal. Public, so plain config. */
    TELNYX_PUBLIC_KEY: z.optional(z.string()),
    /** The key being replaced, still accepted while Telnyx switches over (a key rotation window). */
    TELNYX_PREVIOUS_PUBLIC_KEY: z.optional(z.string()),
    WEBHOOK_MAX_BODY_BYTES: z._default(
      z.coerce.number().check(z.int(), z.minimum(MIN_BODY_BYTES), z.maximum(MAX_BODY_BYTES)),
      DEFAULT_MAX_BODY_BYTES,
    ),
  })
  .check(
    z.superRefine((env, ctx) => {
      if (env.BULWARK_ENVIRONMENT === 'production' && env.WEBHOOK_VERIFICATION !== 'required') {
        ctx.addIssue({
          code: 'custom',
          path: ['WEBHOOK_VERIFICATION'],
          message: 'webhook verification cannot be disabled in production',
        });
      }
    }),
  );

export type WebhookEnv = z.output<typeof webhookEnvSchema>;

export function parseWebhookEnv(env: Readonly<Record<string, string | undefined>>): WebhookEnv {
  const r = webhookEnvSchema.safeParse(env);
  if (!r.success) {
    throw new Error(`webhook function configuration is invalid: ${issueList(r.error).join('; ')}`);
  }
  return r.data;
}

/** A key that is either usable or the reason it is not; the reason is returned on every request. */
export type KeySlot = { readonly keys: readonly KeyObject[] } | { readonly problem: WebhookError };

export interface WebhookRuntime {
  readonly environment: WebhookEnv['BULWARK_ENVIRONMENT'];
  readonly verification: WebhookEnv['WEBHOOK_VERIFICATION'];
  readonly maxBodyBytes: number;
  readonly telnyxKey: KeySlot;
  /** Per-organisation secrets; null when no store is wired, which refuses every FreJun/DIDLogic event. */
  readonly secrets: WebhookSecretResolver | null;
}

/** Builds the runtime once per cold start: imports the Telnyx key and says loudly what is missing. */
export function buildRuntime(env: WebhookEnv, secrets: WebhookSecretResolver | null, logger: Log): WebhookRuntime {
  if (env.BULWARK_ENVIRONMENT === 'production' && env.WEBHOOK_VERIFICATION !== 'required') {
    throw new Error('webhook verification cannot be disabled in production');
  }
  let telnyxKey: KeySlot;
  if (!env.TELNYX_PUBLIC_KEY) {
    telnyxKey = { problem: new WebhookError('WEBHOOK_SECRET_MISSING', 'TELNYX_PUBLIC_KEY is not configured') };
  } else {
    try {
      const keys = [importTelnyxPublicKey(env.TELNYX_PUBLIC_KEY)];
      // A malformed previous key is as loud as a malformed current one: never silently dropped.
      if (env.TELNYX_PREVIOUS_PUBLIC_KEY) keys.push(importTelnyxPublicKey(env.TELNYX_PREVIOUS_PUBLIC_KEY));
      telnyxKey = { keys };
    } catch (e) {
      if (!isWebhookError(e)) throw e;
      telnyxKey = { problem: e };
    }
  }
  if (env.WEBHOOK_VERIFICATION === 'disabled') {
    logger.warn('WEBHOOK VERIFICATION IS DISABLED: unsigned requests are accepted (non-production only)', {
      environment: env.BULWARK_ENVIRONMENT,
    });
  } else {
    if ('problem' in telnyxKey) {
      logger.error('Telnyx webhooks will be refused', { code: telnyxKey.problem.code });
    }
    if (!secrets) {
      logger.error('No per-organisation secret store: FreJun and DIDLogic webhooks will be refused', {
        code: 'WEBHOOK_SECRET_MISSING',
      });
    }
  }
  return {
    environment: env.BULWARK_ENVIRONMENT,
    verification: env.WEBHOOK_VERIFICATION,
    maxBodyBytes: env.WEBHOOK_MAX_BODY_BYTES,
    telnyxKey,
    secrets,
  };
}
