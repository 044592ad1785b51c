/**
 * The provisioner's refusals and their stable HTTP statuses. Their own module so that the tenant API,
 * which maps the provisioner's answers to HTTP, and the database stores import them without
 * bundling the provisioner itself (nor loading the KMS client at cold start).
 */
import type { ByokFinding } from './key-policy';

export type ProvisionErrorCode =
  | 'INVALID_REQUEST'
  | 'TENANT_SHREDDED'
  | 'KEY_PENDING_DELETION'
  | 'KEY_NOT_USABLE'
  | 'BYOK_WRONG_REGION_OR_ACCOUNT'
  | 'BYOK_POLICY_UNREADABLE'
  | 'BYOK_POLICY_REJECTED'
  | 'KEY_TAGS_MISMATCH'
  | 'KEY_CONFLICT';

export class ProvisionError extends Error {
  constructor(
    readonly code: ProvisionErrorCode,
    message: string,
    readonly findings: readonly ByokFinding[] = [],
  ) {
    super(message);
    this.name = 'ProvisionError';
  }
}

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
