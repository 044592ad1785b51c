import type { CfnResource } from 'aws-cdk-lib';
import { NagRuleCompliance, type NagRuleResult } from 'cdk-nag';
import { ruleFromFile, rendered, tagValue, type Json, type ResourceRule } from '../rule-helpers';

/** Tag that marks a bucket as holding audit records; such a bucket must be Object Locked. */
export const AUDIT_BUCKET_TAG = 'bulwark:data-class';
export const AUDIT_BUCKET_TAG_VALUE = 'audit';

/**
 * S3 buckets that enable Object Lock, or are tagged as audit storage, use COMPLIANCE mode with a
 * default retention of at least `minimumDays`. GOVERNANCE mode can be lifted by a privileged user,
 * so it does not meet the audit promise.
 * @param minimumDays the shortest retention any plan promises
 * @returns the rule, for the CfnResource to check
 */
export default function ObjectLockCompliance(minimumDays: number): ResourceRule {
  return ruleFromFile(__filename, (node: CfnResource): NagRuleResult => {
    if (node.cfnResourceType !== 'AWS::S3::Bucket') return NagRuleCompliance.NOT_APPLICABLE;
    const p = rendered(node).properties;
    const isAudit = tagValue(p, AUDIT_BUCKET_TAG) === AUDIT_BUCKET_TAG_VALUE;
    if (p['ObjectLockEnabled'] !== true) {
      return isAudit ? NagRuleCompliance.NON_COMPLIANT : NagRuleCompliance.NOT_APPLICABLE;
    }
    const cfg = (p['ObjectLockConfiguration'] ?? {}) as Json;
    const retention = ((cfg['Rule'] as Json | undefined)?.['DefaultRetention'] ?? {}) as Json;
    if (cfg['ObjectLockEnabled'] !== 'Enabled' || retention['Mode'] !== 'COMPLIANCE') {
      return NagRuleCompliance.NON_COMPLIANT;
    }
    const days =
      typeof retention['Days'] === 'number'
        ? retention['Days']
        : typeof retention['Years'] === 'number'
          ? retention['Years'] * 365
          : 0;
    return days >= minimumDays ? NagRuleCompliance.COMPLIANT : NagRuleCompliance.NON_COMPLIANT;
  });
}
