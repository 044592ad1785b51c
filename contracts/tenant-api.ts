/**
 * The first path segment of every tenant API route. API Gateway gets one resource (and its proxy)
 * per prefix, built from this list, and the handler refuses to define a route outside it, so a
 * route cannot exist in the function without the gateway forwarding it, or the other way round.
 */
export const TENANT_ROUTE_PREFIXES = [
  'leads',
  'memberships',
  'roles',
  'api-keys',
  'support-grants',
  'audit',
  'webhook-secrets',
  // Lifecycle, exports and key of the caller's tenant; tenant creation (platform owners).
  'tenant',
  'organisations',
  // Calls and their recordings (own-calls scoping: Members and Viewers see their own).
  'calls',
  // The credentials vault (contracts/credentials.ts).
  'credentials',
  // Tenant files: presigned uploads and downloads, metadata (docs/tenant-files.md).
  'files',
] as const;
export type TenantRoutePrefix = (typeof TENANT_ROUTE_PREFIXES)[number];

export function isTenantRoutePrefix(segment: string): segment is TenantRoutePrefix {
  return (TENANT_ROUTE_PREFIXES as readonly string[]).includes(segment);
}
