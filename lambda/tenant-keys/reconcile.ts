/**
 * The keyless-tenant sweep: tenant creation invokes the provisioner asynchronously after COMMIT, and
 * an invocation can be lost (the API timed out after commit, Lambda refused it, retries exhausted).
 * On a schedule, the provisioner looks for live tenants that expect a managed key and hold none,
 * and provisions each (idempotent: the alias is the lock, so a late original invocation and the
 * sweep converge on one key).
 *
 * A run provisions page after page, one tenant at a time, for as long as the invocation has time,
 * so a backlog heals at the rate KMS allows (`CreateKey`: 5 requests/second per account and Region)
 * rather than a fixed handful per run. When KMS still throttles after the client's own retries, the
 * sweep backs off (exponential, full jitter) and retries that tenant, instead of failing it.
 */
import { errorName } from '../shared/sdk';
import { ProvisionError, type TenantKeyProvisioner } from './provisioner';

export interface KeylessTenantSource {
  /** Live tenants expecting a managed key and holding none, created at least `minAgeSeconds` ago. */
  keyless(limit: number, minAgeSeconds: number): Promise<string[]>;
}

export interface SweepOptions {
  /** Tenants read per page (app.keyless_tenants returns at most 100). @default 100 */
  readonly pageSize?: number;
  /** Leaves the creation-time invocation its chance first. @default 300 */
  readonly minAgeSeconds?: number;
  /** Milliseconds the invocation has left. @default - one page, no time limit */
  readonly remainingMs?: () => number;
  /** Stop starting tenants with less than this left (ms): one provisioning and its retries fit. @default 30000 */
  readonly reserveMs?: number;
  /** First backoff after a throttled tenant (ms); doubles per consecutive throttle. @default 1000 */
  readonly backoffBaseMs?: number;
  /** @default 20000 */
  readonly backoffMaxMs?: number;
  /** Backoffs for one tenant before it counts as failed (`ThrottlingException`). @default 6 */
  readonly maxBackoffs?: number;
  /** @default setTimeout */
  readonly sleep?: (ms: number) => Promise<void>;
  /** Uniform in [0, 1). @default Math.random */
  readonly random?: () => number;
}

export interface SweepSummary {
  readonly type: 'keyless_sweep';
  readonly found: number;
  readonly provisioned: number;
  /** Times KMS throttled a tenant after the client's retries, each followed by a backoff. */
  readonly throttled: number;
  /** Organisation ids with the error code or name only: never payloads. */
  readonly failed: readonly { readonly orgId: string; readonly error: string }[];
}

export class SweepFailed extends Error {
  constructor(readonly summary: SweepSummary) {
    super(`KEYLESS_SWEEP_FAILED: ${summary.failed.length} of ${summary.found} tenant(s) still keyless`);
    this.name = 'SweepFailed';
  }
}

const THROTTLED = new Set(['ThrottlingException', 'LimitExceededException']);

export async function sweepKeyless(
  provisioner: TenantKeyProvisioner,
  source: KeylessTenantSource,
  options: SweepOptions = {},
): Promise<SweepSummary> {
  const pageSize = options.pageSize ?? 100;
  if (!Number.isInteger(pageSize) || pageSize < 1 || pageSize > 100) throw new RangeError('sweep page must be 1-100');
  const minAge = options.minAgeSeconds ?? 300;
  const reserveMs = options.reserveMs ?? 30_000;
  const base = options.backoffBaseMs ?? 1000;
  const cap = options.backoffMaxMs ?? 20_000;
  const sleep = options.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  const random = options.random ?? Math.random;
  const maxBackoffs = options.maxBackoffs ?? 6;
  const timeLeft = (): boolean => options.remainingMs === undefined || options.remainingMs() > reserveMs;

  const seen = new Set<string>();
  let provisioned = 0;
  let throttled = 0;
  let consecutiveThrottles = 0;
  const failed: { orgId: string; error: string }[] = [];
  // Without a clock, one page (a caller that cannot tell how long it may run).
  let pages = 0;
  sweep: while (timeLeft() && (options.remainingMs !== undefined || pages === 0)) {
    pages++;
    // Oldest first; tenants that failed in this run come back in the page and are passed over.
    const page = (await source.keyless(pageSize, minAge)).filter((id) => !seen.has(id));
    if (page.length === 0) break;
    for (const orgId of page) {
      seen.add(orgId);
      for (let backoffs = 0; ; backoffs++) {
        if (!timeLeft()) break sweep;
        try {
          await provisioner.provision(orgId);
          provisioned++;
          consecutiveThrottles = 0;
        } catch (e) {
          const error = e instanceof ProvisionError ? e.code : (errorName(e) ?? 'Error');
          if (THROTTLED.has(error) && backoffs < maxBackoffs) {
            throttled++;
            const ceiling = Math.min(cap, base * 2 ** consecutiveThrottles++);
            await sleep(Math.floor(random() * ceiling));
            continue;
          }
          failed.push({ orgId, error });
        }
        break;
      }
    }
  }
  // A tenant taken but not finished when time ran out is left for the next run, not failed.
  return { type: 'keyless_sweep', found: seen.size, provisioned, throttled, failed };
}
