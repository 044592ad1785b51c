/**
 * The keyless-tenant sweep: tenant creation invokes the provisioner asynchronously after COMMIT, and
 * an invocation can be lost (the API timed out after commit, Lambda refused it, retries exhausted).
 * On a schedule, the provisioner looks for live tenants that expect a managed key and hold none,
 * and provisions each (idempotent: the alias is the lock, so a late original invocation and the
 * sweep converge on one key).
 */
import { errorName } from '../shared/sdk';
import { ProvisionError, type TenantKeyProvisioner } from './provisioner';

export interface KeylessTenantSource {
  /** Live tenants expecting a managed key and holding none, created at least `minAgeSeconds` ago. */
  keyless(limit: number, minAgeSeconds: number): Promise<string[]>;
}

export interface SweepOptions {
  /** Tenants per run; bounded to stay well inside the KMS CreateKey quota. @default 10 */
  readonly limit?: number;
  /** Leaves the creation-time invocation its chance first. @default 300 */
  readonly minAgeSeconds?: number;
}

export interface SweepSummary {
  readonly type: 'keyless_sweep';
  readonly found: number;
  readonly provisioned: number;
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
  const limit = options.limit ?? 10;
  if (!Number.isInteger(limit) || limit < 1 || limit > 100) throw new RangeError('sweep limit must be 1-100');
  const orgs = await source.keyless(limit, options.minAgeSeconds ?? 300);
  let provisioned = 0;
  const failed: { orgId: string; error: string }[] = [];
  // One at a time: the provisioner's reserved concurrency and the KMS quota bound the rate anyway.
  for (const orgId of orgs) {
    try {
      await provisioner.provision(orgId);
      provisioned++;
    } catch (e) {
      failed.push({ orgId, error: e instanceof ProvisionError ? e.code : (errorName(e) ?? 'Error') });
    }
  }
  return { type: 'keyless_sweep', found: orgs.length, provisioned, failed };
}
