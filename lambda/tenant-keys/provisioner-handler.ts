/**
 * Provisioner function: invoked (asynchronously) when a tenant is created, or to adopt an
 * enterprise tenant's own key. Event: `{ "orgId": "<uuid>", "externalKeyArn"?: "arn:aws:kms:..." }`.
 * Known refusals are returned with a stable code and status; anything else fails the invocation
 * (retried, then dead-lettered and alarmed).
 *
 * On a schedule it is invoked with `{ "sweep": true }` and provisions live tenants left keyless
 * (reconcile.ts); a sweep that leaves any tenant keyless fails the invocation, which alarms.
 */
import { KMSClient } from '@aws-sdk/client-kms';
import type { Context } from 'aws-lambda';
import type { Pool } from 'pg';
import * as z from 'zod/mini';
import { PgSystemAuditSink } from '../audit/pg-system-sink';
import type { AuditSink } from '../shared/audit';
import { createObservability, observed, type Log } from '../shared/observability';
import { sdkRetries } from '../shared/sdk';
import { createTracer } from '../shared/tracing';
import { KEY_POLICY_REFRESH_LOG } from '../../contracts/tenant-keys';
import { PgKeyPolicyVersions, PgTenantKeyStore } from './pg-stores';
import {
  KeyPolicyRefreshFailed,
  refreshKeyPolicies,
  type KeyPolicyVersions,
  type PolicyRefreshSummary,
} from './policy-refresh';
import { ProvisionError, TenantKeyProvisioner, type ProvisionErrorCode, type TenantKeyStore } from './provisioner';
import { PROVISION_ERROR_STATUS } from './provision-status';
import { SweepFailed, sweepKeyless, type KeylessTenantSource, type SweepOptions, type SweepSummary } from './reconcile';
import { baseEnvSchema, databasePool, parseEnv, type BaseEnv } from './runtime';

const { logger } = createObservability({ service: 'tenant-key-provisioner' });
const tracer = createTracer();

const eventSchema = z.strictObject({
  orgId: z.uuid(),
  externalKeyArn: z.optional(z.string().check(z.minLength(1))),
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

export interface ProvisionerOverrides {
  readonly kms?: KMSClient;
  readonly store?: TenantKeyStore;
  readonly audit?: AuditSink;
  /** @default a pool of its own, built from the environment */
  readonly pool?: Pool;
}

export function provisionerFromEnv(env: NodeJS.ProcessEnv, overrides: ProvisionerOverrides = {}): TenantKeyProvisioner {
  return provisionerFrom(parseEnv(baseEnvSchema, env), overrides);
}

function kmsClient(cfg: BaseEnv): KMSClient {
  return tracer.captureAWSv3Client(new KMSClient({ ...sdkRetries(), region: cfg.AWS_REGION }));
}

function provisionerFrom(cfg: BaseEnv, overrides: ProvisionerOverrides): TenantKeyProvisioner {
  // One pool: the key is recorded and its system audit event appended in the same transaction.
  const pool = overrides.pool ?? databasePool(cfg);
  return new TenantKeyProvisioner(
    {
      kms: overrides.kms ?? kmsClient(cfg),
      store: overrides.store ?? new PgTenantKeyStore(pool),
      audit: overrides.audit ?? new PgSystemAuditSink({ pool }),
      clock: () => new Date(),
    },
    { deployment: cfg.DEPLOYMENT, account: cfg.ACCOUNT_ID, region: cfg.AWS_REGION },
  );
}

const sweepSchema = z.strictObject({ sweep: z.literal(true) });

/** Brings tenant key policies up to date for the time given (policy-refresh.ts). */
export type PolicyRefresher = (remainingMs?: () => number) => Promise<PolicyRefreshSummary>;

export function policyRefresher(
  kms: KMSClient,
  versions: KeyPolicyVersions,
  cfg: { readonly DEPLOYMENT: string; readonly ACCOUNT_ID: string },
): PolicyRefresher {
  return (remainingMs) =>
    refreshKeyPolicies(
      kms,
      versions,
      { deployment: cfg.DEPLOYMENT, account: cfg.ACCOUNT_ID },
      remainingMs ? { remainingMs } : {},
    );
}

export type ScheduledSummary = SweepSummary & { readonly policyRefresh?: PolicyRefreshSummary };

/**
 * The scheduled run: provisions keyless tenants, then (with the time left) refreshes key policies;
 * fails (and so alarms) if any tenant stays keyless or any managed key is left behind.
 */
export function makeSweepHandler(
  provisioner: TenantKeyProvisioner,
  source: KeylessTenantSource,
  log: Log,
  options: Omit<SweepOptions, 'remainingMs'> = {},
  refresh?: PolicyRefresher,
) {
  /** `remainingMs`: the invocation's time left (the Lambda context); without it, one page. */
  return async (remainingMs?: () => number): Promise<ScheduledSummary> => {
    const summary = await sweepKeyless(provisioner, source, { ...options, ...(remainingMs ? { remainingMs } : {}) });
    // Counts, ids and codes only.
    log[summary.failed.length > 0 ? 'error' : 'info']('keyless sweep', {
      found: summary.found,
      provisioned: summary.provisioned,
      throttled: summary.throttled,
      failed: summary.failed.length,
      failures: summary.failed.map((f) => `${f.orgId}=${f.error}`).join(','),
    });
    const refreshed = refresh ? await refresh(remainingMs) : undefined;
    if (refreshed) {
      // The metric filter reads behindManaged / behindByok from this line (lib/tenant-keys).
      log[refreshed.failed.length > 0 ? 'error' : 'info'](KEY_POLICY_REFRESH_LOG, {
        version: refreshed.version,
        checked: refreshed.checked,
        reput: refreshed.reput,
        current: refreshed.current,
        throttled: refreshed.throttled,
        behindManaged: refreshed.behind.managed,
        behindByok: refreshed.behind.byok,
        failed: refreshed.failed.length,
        failures: refreshed.failed.map((f) => `${f.orgId}=${f.error}`).join(','),
        byok: refreshed.byokBehind.map((b) => `${b.orgId}=${b.problems.join('+')}`).join(','),
      });
    }
    if (summary.failed.length > 0) throw new SweepFailed(summary);
    if (refreshed && refreshed.failed.length > 0) throw new KeyPolicyRefreshFailed(refreshed);
    return refreshed ? { ...summary, policyRefresh: refreshed } : summary;
  };
}

/** Routes an event to the scheduled run (`{ "sweep": true }`) or to one tenant's provisioning. */
export function makeHandler(
  provisioner: TenantKeyProvisioner,
  source: KeylessTenantSource,
  log: Log,
  refresh?: PolicyRefresher,
) {
  const one = makeProvisionerHandler(provisioner);
  const sweep = makeSweepHandler(provisioner, source, log, {}, refresh);
  return (event: unknown, remainingMs?: () => number): Promise<ProvisionResponse | ScheduledSummary> =>
    sweepSchema.safeParse(event).success ? sweep(remainingMs) : one(event);
}

let cached: ((event: unknown, remainingMs?: () => number) => Promise<ProvisionResponse | ScheduledSummary>) | undefined;

export const handler = observed(
  logger,
  async (event: unknown, context: Context): Promise<ProvisionResponse | ScheduledSummary> => {
    // Environment validated once per cold start; a misconfiguration fails loudly (and alarms).
    if (!cached) {
      const cfg = parseEnv(baseEnvSchema, process.env);
      // One pool for the provisioner's store, its audit sink, the sweep's and the refresh's queries.
      const pool = databasePool(cfg);
      const kms = kmsClient(cfg);
      cached = makeHandler(
        provisionerFrom(cfg, { pool, kms }),
        new PgTenantKeyStore(pool),
        logger,
        policyRefresher(kms, new PgKeyPolicyVersions(pool), cfg),
      );
    }
    return cached(event, () => context.getRemainingTimeInMillis());
  },
  // The organisation of a one-tenant request; a sweep names none.
  (event) => {
    const orgId = typeof event === 'object' && event !== null ? (event as { orgId?: unknown }).orgId : undefined;
    return { orgId: typeof orgId === 'string' ? orgId : undefined };
  },
);
