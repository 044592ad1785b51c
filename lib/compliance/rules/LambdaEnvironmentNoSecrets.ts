import type { CfnResource } from 'aws-cdk-lib';
import { NagRuleCompliance, type NagRuleResult } from 'cdk-nag';
import { rendered, ruleFromFile, type Json } from '../rule-helpers';

/** Names of variables that would hold a credential. */
const CREDENTIAL_NAME = /SECRET|PASSWORD|PASSWD|TOKEN|API_?KEY|PRIVATE_?KEY|CREDENTIAL/i;

/**
 * No Lambda function carries a credential in its environment: a variable named like one (secret,
 * password, token, API key, private key, credential) must be a Secrets Manager reference, `*_ARN`,
 * which the function reads (and caches) with its own IAM grant. Environment variables are readable
 * by anyone with `lambda:GetFunctionConfiguration` and copied into every deployment artefact;
 * platform-level carrier keys in particular live in Secrets Manager, one secret per provider.
 * @param node the CfnResource to check
 */
export default ruleFromFile(__filename, (node: CfnResource): NagRuleResult => {
  if (node.cfnResourceType !== 'AWS::Lambda::Function') return NagRuleCompliance.NOT_APPLICABLE;
  const vars = ((rendered(node).properties['Environment'] ?? {}) as Json)['Variables'] ?? {};
  const bad = Object.keys(vars as Json).filter((name) => CREDENTIAL_NAME.test(name) && !name.endsWith('_ARN'));
  return bad.length === 0 ? NagRuleCompliance.COMPLIANT : NagRuleCompliance.NON_COMPLIANT;
});
