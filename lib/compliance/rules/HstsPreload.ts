import type { CfnResource } from 'aws-cdk-lib';
import { NagRuleCompliance, type NagRuleResult } from 'cdk-nag';
import { HSTS_MAX_AGE_SECONDS, HSTS_VALUE } from '../../../contracts/security-headers';
import { asArray, rendered, ruleFromFile, type Json } from '../rule-helpers';

function headerValue(v: unknown): string | undefined {
  if (typeof v !== 'string') return undefined;
  // API Gateway header mappings quote static values: "'max-age=...'".
  return v.replace(/^'(.*)'$/, '$1');
}

/**
 * Wherever CloudFormation sets Strict-Transport-Security, it is exactly the preload value: CloudFront
 * response headers policies (max-age 63072000, includeSubDomains, preload, overriding the origin),
 * API Gateway gateway responses, and method integration response mappings.
 * @param node the CfnResource to check
 */
export default ruleFromFile(__filename, (node: CfnResource): NagRuleResult => {
  const type = node.cfnResourceType;
  if (type === 'AWS::CloudFront::ResponseHeadersPolicy') {
    const cfg = (rendered(node).properties['ResponseHeadersPolicyConfig'] ?? {}) as Json;
    const sts = ((cfg['SecurityHeadersConfig'] ?? {}) as Json)['StrictTransportSecurity'] as Json | undefined;
    const ok =
      sts !== undefined &&
      sts['AccessControlMaxAgeSec'] === HSTS_MAX_AGE_SECONDS &&
      sts['IncludeSubdomains'] === true &&
      sts['Preload'] === true &&
      sts['Override'] === true;
    return ok ? NagRuleCompliance.COMPLIANT : NagRuleCompliance.NON_COMPLIANT;
  }
  if (type === 'AWS::ApiGateway::GatewayResponse' || type === 'AWS::ApiGateway::Method') {
    const p = rendered(node).properties;
    const values: unknown[] = [];
    const collect = (params: unknown) => {
      for (const [k, v] of Object.entries((params ?? {}) as Json)) {
        if (/strict-transport-security$/i.test(k)) values.push(v);
      }
    };
    if (type === 'AWS::ApiGateway::GatewayResponse') collect(p['ResponseParameters']);
    else {
      for (const ir of asArray(((p['Integration'] ?? {}) as Json)['IntegrationResponses'])) {
        collect((ir as Json)['ResponseParameters']);
      }
    }
    if (values.length === 0) return NagRuleCompliance.NOT_APPLICABLE;
    return values.every((v) => headerValue(v) === HSTS_VALUE)
      ? NagRuleCompliance.COMPLIANT
      : NagRuleCompliance.NON_COMPLIANT;
  }
  return NagRuleCompliance.NOT_APPLICABLE;
});
