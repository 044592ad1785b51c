/**
 * Every route of the tenant API, in matching order: routes on the caller (no tenant entered) and
 * routes inside the caller's tenant never share a method and path, so the order only decides among
 * patterns of one module.
 */
import type { Route } from '../route';
import { API_KEY_ROUTES } from './api-keys';
import { FILE_ROUTES } from './files';
import { AUDIT_ROUTES } from './audit';
// Calls and recordings (own-calls scoping, migrations/0410).
import { CALL_ROUTES } from './calls';
import { LEAD_ROUTES } from './leads';
import { MEMBERSHIP_ROUTES } from './memberships';
import { ORGANISATION_ROUTES } from './organisations';
import { ROLE_ROUTES } from './roles';
import { SUPPORT_GRANT_ROUTES } from './support-grants';
import { TENANT_ROUTES } from './tenant';
import { TENANT_EXPORT_ROUTES } from './tenant-exports';
import { TENANT_KEY_ROUTES } from './tenant-key';
import { WEBHOOK_SECRET_ROUTES } from './webhook-secrets';
// The credentials vault (issue 16).
import { CREDENTIAL_ROUTES } from './credentials';

export const ROUTES: readonly Route[] = [
  ...LEAD_ROUTES,
  ...MEMBERSHIP_ROUTES,
  ...ROLE_ROUTES,
  ...API_KEY_ROUTES,
  ...AUDIT_ROUTES,
  ...WEBHOOK_SECRET_ROUTES,
  ...SUPPORT_GRANT_ROUTES,
  ...TENANT_ROUTES,
  ...TENANT_EXPORT_ROUTES,
  ...TENANT_KEY_ROUTES,
  ...ORGANISATION_ROUTES,
  // Calls and recordings (own-calls scoping, migrations/0410).
  ...CALL_ROUTES,
  // The credentials vault (issue 16).
  ...CREDENTIAL_ROUTES,
  // Tenant files (docs/tenant-files.md).
  ...FILE_ROUTES,
];
