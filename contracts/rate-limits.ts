/**
 * What a caller over a per-credential rate limit receives from the edge (docs/rate-limits.md). The web
 * ACL answers it before the authorizer or any function runs.
 */
export const RATE_LIMITED_STATUS = 429;
export const RATE_LIMITED_BODY = { error: 'RATE_LIMITED' } as const;

/**
 * What the tenant API answers when the caller's organisation has spent its budget for the current
 * window (lambda/tenant-guard/tenant-budget.ts): `429 {"error":"TENANT_RATE_LIMITED"}` with a
 * `Retry-After` header in seconds (docs/rate-limits.md "Per tenant").
 */
export const TENANT_RATE_LIMITED_CODE = 'TENANT_RATE_LIMITED' as const;

/** The per-organisation budget's window, in seconds: a fixed window, one counter item per organisation per window. */
export const TENANT_BUDGET_WINDOW_SECONDS = 60;

/**
 * The counter table's item (lib/tenant-guard/tenant-budget.ts makes the table, the tenant API updates
 * it): partition key `<org_id>#<window start, Unix seconds>`, the count, and the TTL attribute.
 */
export const TENANT_BUDGET_ITEM = { partitionKey: 'pk', count: 'n', expiresAt: 'expiresAt' } as const;

/** The metrics the tenant API emits for the budget (namespace Bulwark, no dimensions). */
export const TENANT_BUDGET_METRICS = {
  namespace: 'Bulwark',
  /** A request refused because its organisation's budget for the window was spent. */
  refused: 'TenantBudgetRefused',
  /** DynamoDB failed, throttled or timed out: the request went on uncounted (fails open). */
  unavailable: 'TenantBudgetUnavailable',
} as const;
