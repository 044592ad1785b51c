/**
 * Calls and their recordings (issue 16, migrations/0410): the values the database accepts and the
 * tenant API's call-specific error codes. Members and Viewers reach only the calls they handled
 * themselves; the database enforces it (docs/tenancy.md "Own-calls scoping").
 */
export const CALL_DIRECTIONS = ['inbound', 'outbound'] as const;
export type CallDirection = (typeof CALL_DIRECTIONS)[number];

export const CALL_STATUSES = ['ringing', 'in_progress', 'completed', 'missed', 'busy', 'failed'] as const;
export type CallStatus = (typeof CALL_STATUSES)[number];

export const RECORDING_CONTENT_TYPES = ['audio/mpeg', 'audio/wav', 'audio/ogg'] as const;

/** Page size of GET /calls: default and maximum. */
export const CALLS_PAGE = { default: 50, max: 200 } as const;

/**
 * Roles that read every agent's calls; every other role (Member, Viewer, custom roles) reads its
 * own. Mirrors app.role_reads_all_agents() (a test keeps them equal).
 */
export const ROLES_READING_ALL_AGENTS = ['owner', 'admin', 'platform_support', 'export'] as const;

/** Error codes of the call routes, with their HTTP status (merged into the tenant API's codes). */
export const CALL_ERROR_STATUS = {
  /** The call is visible but has no stored recording (yet): nothing to download. */
  RECORDING_MISSING: 404,
  /** An integration posted a carrier call id the organisation already recorded. */
  CALL_EXISTS: 409,
} as const;
