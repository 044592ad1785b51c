import type { CfnResource } from 'aws-cdk-lib';
import { NagRuleCompliance, type NagRuleResult } from 'cdk-nag';
import { asArray, rendered, ruleFromFile, type Json } from '../rule-helpers';

/**
 * WAFv2 web ACLs have at least one rate-based rule, so no single client can flood the API.
 * @param node the CfnResource to check
 */
export default ruleFromFile(__filename, (node: CfnResource): NagRuleResult => {
  if (node.cfnResourceType !== 'AWS::WAFv2::WebACL') return NagRuleCompliance.NOT_APPLICABLE;
  const rules = asArray(rendered(node).properties['Rules']) as Json[];
  const hasRate = rules.some((r) => ((r['Statement'] ?? {}) as Json)['RateBasedStatement'] !== undefined);
  return hasRate ? NagRuleCompliance.COMPLIANT : NagRuleCompliance.NON_COMPLIANT;
});
