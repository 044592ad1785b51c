/**
 * What a caller over a per-credential rate limit receives from the edge (docs/rate-limits.md). The web
 * ACL answers it before the authorizer or any function runs.
 */
export const RATE_LIMITED_STATUS = 429;
export const RATE_LIMITED_BODY = { error: 'RATE_LIMITED' } as const;
