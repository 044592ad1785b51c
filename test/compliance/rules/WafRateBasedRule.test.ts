import * as wafv2 from 'aws-cdk-lib/aws-wafv2';
import { findingsOf, fixtureStack } from './support';

const RULE = 'Bulwark-WafRateBasedRule';
const base = {
  defaultAction: { allow: {} },
  scope: 'REGIONAL',
  visibilityConfig: { cloudWatchMetricsEnabled: true, metricName: 'm', sampledRequestsEnabled: true },
};
const visibility = { cloudWatchMetricsEnabled: true, metricName: 'r', sampledRequestsEnabled: true };

describe(RULE, () => {
  it('flags a web ACL without a rate-based rule', () => {
    const s = fixtureStack();
    new wafv2.CfnWebACL(s, 'NoRate', {
      ...base,
      rules: [
        {
          name: 'common',
          priority: 0,
          overrideAction: { none: {} },
          statement: { managedRuleGroupStatement: { vendorName: 'AWS', name: 'AWSManagedRulesCommonRuleSet' } },
          visibilityConfig: visibility,
        },
      ],
    });
    expect(findingsOf(s, RULE)).toEqual(['S/NoRate']);
  });

  it('accepts a web ACL with a per-IP rate-based rule', () => {
    const s = fixtureStack();
    new wafv2.CfnWebACL(s, 'Rate', {
      ...base,
      rules: [
        {
          name: 'rate',
          priority: 0,
          action: { block: {} },
          statement: { rateBasedStatement: { limit: 2000, aggregateKeyType: 'IP' } },
          visibilityConfig: visibility,
        },
      ],
    });
    expect(findingsOf(s, RULE)).toEqual([]);
  });
});
