/**
 * Provisioner function: invoked (asynchronously) when a tenant is created, or to adopt an
 * enterprise tenant's own key. Event: `{ "orgId": "<uuid>", "externalKeyArn"?: "arn:aws:kms:..." }`.
 * Known refusals are returned with a stable code and status; anything else fails the invocation
 * (retried, then dead-lettered and alarmed).
 */
import { KMSClient } from '@aws-sdk/client-kms';
import { z } from 'zod';
import { PgSystemAuditSink } from '../audit/pg-system-sink';
import type { AuditSink } from '../shared/audit';
import { PgTenantKeyStore } from './pg-stores';
import { ProvisionError, TenantKeyProvisioner, type ProvisionErrorCode, type TenantKeyStore } from './provisioner';
import { baseEnvSchema, databasePool, parseEnv } from './runtime';

export const PROVISION_ERROR_STATUS: Readonly<Record<ProvisionErrorCode, number>> = {
  INVALID_REQUEST: 400,
  TENANT_SHREDDED: 410,
  KEY_PENDING_DELETION: 409,
  KEY_CONFLICT: 409,
  KEY_NOT_USABLE: 422,
  BYOK_WRONG_REGION_OR_ACCOUNT: 422,
  BYOK_POLICY_UNREADABLE: 422,
  BYOK_POLICY_REJECTED: 422,
};

const eventSchema = z.strictObject({
  orgId: z.uuid(),
  externalKeyArn: z.string().min(1).optional(),
});

export type ProvisionResponse =
  | { readonly ok: true; readonly keyArn: string; readonly source: string; readonly created: boolean }
  | { readonly ok: false; readonly code: ProvisionErrorCode; readonly status: number; readonly problems?: string[] };

export function makeProvisionerHandler(provisioner: TenantKeyProvisioner) {
  return async (event: unknown): Promise<ProvisionResponse> => {
    const parsed = eventSchema.safeParse(event);
    if (!parsed.success) return { ok: false, code: 'INVALID_REQUEST', status: 400 };
    const { orgId, externalKeyArn } = parsed.data;
    try {
      const r = externalKeyArn
        ? await provisioner.adoptExternalKey(orgId, externalKeyArn)
        : await provisioner.provision(orgId);
      return { ok: true, keyArn: r.keyArn, source: r.source, created: r.created };
    } catch (e) {
      if (e instanceof ProvisionError) {
        return {
          ok: false,
          code: e.code,
          status: PROVISION_ERROR_STATUS[e.code],
          ...(e.findings.length > 0 ? { problems: e.findings.map((f) => f.problem) } : {}),
        };
      }
      throw e;
    }
  };
}

export function provisionerFromEnv(
  env: NodeJS.ProcessEnv,
  overrides: { kms?: KMSClient; store?: TenantKeyStore; audit?: AuditSink } = {},
): TenantKeyProvisioner {
  const cfg = parseEnv(baseEnvSchema, env);
  // One pool: the key is recorded and its system audit event appended in the same transaction.
  const pool = databasePool(cfg);
  return new TenantKeyProvisioner(
    {
      kms: overrides.kms ?? new KMSClient({ region: cfg.AWS_REGION }),
      store: overrides.store ?? new PgTenantKeyStore(pool),
      audit: overrides.audit ?? new PgSystemAuditSink({ pool }),
      clock: () => new Date(),
    },
    { deployment: cfg.DEPLOYMENT, account: cfg.ACCOUNT_ID, region: cfg.AWS_REGION },
  );
}

let cached: ((event: unknown) => Promise<ProvisionResponse>) | undefined;

export const handler = async (event: unknown): Promise<ProvisionResponse> => {
  // Environment validated once per cold start; a misconfiguration fails loudly (and alarms).
  cached ??= makeProvisionerHandler(provisionerFromEnv(process.env));
  return cached(event);
};
