/**
 * Stable HTTP statuses of the provisioner's refusals. Its own module so that the tenant API, which
 * maps the provisioner's answers to HTTP, imports it without bundling the provisioner itself.
 */
import type { ProvisionErrorCode } from './provisioner';

export const PROVISION_ERROR_STATUS: Readonly<Record<ProvisionErrorCode, number>> = {
  INVALID_REQUEST: 400,
  TENANT_SHREDDED: 410,
  KEY_PENDING_DELETION: 409,
  KEY_CONFLICT: 409,
  KEY_NOT_USABLE: 422,
  BYOK_WRONG_REGION_OR_ACCOUNT: 422,
  BYOK_POLICY_UNREADABLE: 422,
  BYOK_POLICY_REJECTED: 422,
  KEY_TAGS_MISMATCH: 422,
};
