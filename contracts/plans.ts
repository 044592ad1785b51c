/**
 * Plans and the audit retention each promises. The deployment schema checks its retention against
 * these; the audit shipper enforces them per organisation.
 */

/**
 * Minimum audit retention per plan, in months. The deployment may keep audit longer, never shorter:
 * these are contractual promises (Pro 12 months, Business 24 months, Enterprise 7 years).
 */
export const PLAN_RETENTION_MINIMUM_MONTHS = { pro: 12, business: 24, enterprise: 84 } as const;
export type Plan = keyof typeof PLAN_RETENTION_MINIMUM_MONTHS;
export const PLANS = Object.keys(PLAN_RETENTION_MINIMUM_MONTHS) as Plan[];
