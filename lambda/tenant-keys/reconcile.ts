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
import { BoundedRun, type BoundedRunOptions } from './bounded-run';
import { ProvisionError, type TenantKeyProvisioner } from './provisioner';

export interface KeylessTenantSource {
  /** Live tenants expecting a managed key and holding none, created at least `minAgeSeconds` ago. */
  keyless(limit: number, minAgeSeconds: number): Promise<string[]>;
}

export interface SweepOptions extends BoundedRunOptions {
  /** Tenants read per page (app.keyless_tenants returns at most 100). @default 100 */
  readonly pageSize?: number;
  /** Leaves the creation-time invocation its chance first. @default 300 */
  readonly minAgeSeconds?: number;
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

export async function sweepKeyless(
  provisioner: TenantKeyProvisioner,
  source: KeylessTenantSource,
  options: SweepOptions = {},
): Promise<SweepSummary> {
  const pageSize = options.pageSize ?? 100;
  if (!Number.isInteger(pageSize) || pageSize < 1 || pageSize > 100) throw new RangeError('sweep page must be 1-100');
  const minAge = options.minAgeSeconds ?? 300;
  const run = new BoundedRun(options);
  const seen = new Set<string>();
  let provisioned = 0;
  const failed: { orgId: string; error: string }[] = [];
  sweep: while (run.nextPage()) {
    // Oldest first; tenants that failed in this run come back in the page and are passed over.
    const page = (await source.keyless(pageSize, minAge)).filter((id) => !seen.has(id));
    if (page.length === 0) break;
    for (const orgId of page) {
      seen.add(orgId);
      const r = await run.attempt(
        () => provisioner.provision(orgId),
        (e) => (e instanceof ProvisionError ? e.code : undefined),
      );
      if (r.kind === 'out_of_time') break sweep;
      if (r.kind === 'done') provisioned++;
      else failed.push({ orgId, error: r.error });
    }
  }
  // A tenant taken but not finished when time ran out is left for the next run, not failed.
  return { type: 'keyless_sweep', found: seen.size, provisioned, throttled: run.throttled, failed };
}
