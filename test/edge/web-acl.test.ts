import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { EdgeWebAcl, HOSTING_PROVIDER_LABEL, MANAGED_RULE_GROUPS, inspectionLimitFor } from '../../lib/edge/web-acl';
import { bareStack } from './helpers';

interface Rule {
  Name: string;
  Priority: number;
  Action?: Record<string, unknown>;
  OverrideAction?: Record<string, unknown>;
  Statement: Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
}

function entryAcl(
  maxRequestBodyBytes = 16_384,
  rateLimitPerFiveMinutes = 2000,
  scope: 'REGIONAL' | 'CLOUDFRONT' = 'REGIONAL',
  hostingProviderExemptPathPrefixes?: string[],
) {
  const stack = bareStack(scope === 'CLOUDFRONT' ? 'us-east-1' : 'eu-west-1');
  new EdgeWebAcl(stack, 'Acl', {
    scope,
    protection: { rateLimitPerFiveMinutes, maxRequestBodyBytes, hostingProviderExemptPathPrefixes },
  });
  const template = Template.fromStack(stack);
  const acl = Object.values(template.findResources('AWS::WAFv2::WebACL'))[0] as { Properties: Record<string, any> }; // eslint-disable-line @typescript-eslint/no-explicit-any
  return { template, props: acl.Properties, rules: acl.Properties.Rules as Rule[] };
}

describe('EdgeWebAcl: entry protection', () => {
  it('runs the five AWS managed rule groups with their own actions (no count-only override)', () => {
    const { rules } = entryAcl();
    const managed = rules.filter((r) => r.Statement.ManagedRuleGroupStatement);
    expect(managed.map((r) => r.Statement.ManagedRuleGroupStatement.Name)).toEqual([...MANAGED_RULE_GROUPS]);
    for (const r of managed) {
      expect(r.Statement.ManagedRuleGroupStatement.VendorName).toBe('AWS');
      expect(r.OverrideAction).toEqual({ None: {} });
    }
    expect(MANAGED_RULE_GROUPS).toEqual(
      expect.arrayContaining([
        'AWSManagedRulesCommonRuleSet',
        'AWSManagedRulesKnownBadInputsRuleSet',
        'AWSManagedRulesSQLiRuleSet',
        'AWSManagedRulesAmazonIpReputationList',
        'AWSManagedRulesAnonymousIpList',
      ]),
    );
  });

  it('only relaxes the common rule set 8 KiB body rule, which BodySizeLimit replaces', () => {
    const { rules } = entryAcl();
    const overrides = rules.flatMap((r) => r.Statement.ManagedRuleGroupStatement?.RuleActionOverrides ?? []);
    expect(overrides).toEqual([{ Name: 'SizeRestrictions_BODY', ActionToUse: { Count: {} } }]);
  });

  it('blocks per client IP above the configured five-minute rate', () => {
    const { rules } = entryAcl(16_384, 1234);
    const rate = rules.find((r) => r.Name === 'RateLimitPerIp');
    expect(rate?.Action).toEqual({ Block: {} });
    expect(rate?.Statement).toEqual({
      RateBasedStatement: { Limit: 1234, AggregateKeyType: 'IP', EvaluationWindowSec: 300 },
    });
  });

  it('blocks bodies larger than the API accepts, including bodies beyond the inspection limit', () => {
    const { rules, props } = entryAcl(40_000);
    const size = rules.find((r) => r.Name === 'BodySizeLimit');
    expect(size?.Action).toEqual({ Block: {} });
    expect(size?.Statement.SizeConstraintStatement).toEqual({
      FieldToMatch: { Body: { OversizeHandling: 'MATCH' } },
      ComparisonOperator: 'GT',
      Size: 40_000,
      TextTransformations: [{ Priority: 0, Type: 'NONE' }],
    });
    // 40 000 bytes needs the 48 KiB inspection tier so every accepted body is fully inspected.
    expect(props.AssociationConfig).toEqual({ RequestBody: { API_GATEWAY: { DefaultSizeInspectionLimit: 'KB_48' } } });
  });

  it('sizes the CloudFront inspection limit for CloudFront-scope web ACLs', () => {
    const { props } = entryAcl(16_384, 2000, 'CLOUDFRONT');
    expect(props.Scope).toBe('CLOUDFRONT');
    expect(props.AssociationConfig).toEqual({ RequestBody: { CLOUDFRONT: { DefaultSizeInspectionLimit: 'KB_16' } } });
  });

  it('picks the smallest inspection tier that covers the body limit', () => {
    expect(inspectionLimitFor(1)).toBe('KB_16');
    expect(inspectionLimitFor(16_384)).toBe('KB_16');
    expect(inspectionLimitFor(16_385)).toBe('KB_32');
    expect(inspectionLimitFor(65_536)).toBe('KB_64');
    expect(() => inspectionLimitFor(65_537)).toThrow(/64 KiB/);
  });

  it('holds the webhook paths to their own body cap, every other path to the API’s, and inspects up to the larger', () => {
    const stack = bareStack('eu-west-1');
    new EdgeWebAcl(stack, 'Acl', {
      scope: 'REGIONAL',
      protection: {
        rateLimitPerFiveMinutes: 2000,
        maxRequestBodyBytes: 16_384,
        pathBodyLimits: [{ name: 'Webhooks', pathPrefixes: ['/webhooks/'], maxRequestBodyBytes: 40_000 }],
      },
    });
    const acl = Object.values(Template.fromStack(stack).findResources('AWS::WAFv2::WebACL'))[0] as {
      Properties: Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
    };
    const rules = acl.Properties.Rules as Rule[];
    const larger = (size: number) => ({
      SizeConstraintStatement: {
        FieldToMatch: { Body: { OversizeHandling: 'MATCH' } },
        ComparisonOperator: 'GT',
        Size: size,
        TextTransformations: [{ Priority: 0, Type: 'NONE' }],
      },
    });
    const webhookPaths = {
      ByteMatchStatement: {
        FieldToMatch: { UriPath: {} },
        PositionalConstraint: 'STARTS_WITH',
        SearchString: '/webhooks/',
        TextTransformations: [{ Priority: 0, Type: 'NORMALIZE_PATH' }],
      },
    };
    const general = rules.find((r) => r.Name === 'BodySizeLimit');
    expect(general?.Action).toEqual({ Block: {} });
    expect(general?.Statement).toEqual({
      AndStatement: { Statements: [larger(16_384), { NotStatement: { Statement: webhookPaths } }] },
    });
    const webhooks = rules.find((r) => r.Name === 'BodySizeLimitWebhooks');
    expect(webhooks?.Action).toEqual({ Block: {} });
    expect(webhooks?.Statement).toEqual({ AndStatement: { Statements: [larger(40_000), webhookPaths] } });
    expect(acl.Properties.AssociationConfig).toEqual({
      RequestBody: { API_GATEWAY: { DefaultSizeInspectionLimit: 'KB_48' } },
    });
  });

  it.each([
    [{ name: 'Web hooks', pathPrefixes: ['/webhooks/'], maxRequestBodyBytes: 20_000 }, /letters-only name/],
    [{ name: 'Webhooks', pathPrefixes: [], maxRequestBodyBytes: 20_000 }, /at least one prefix/],
    [{ name: 'Webhooks', pathPrefixes: ['webhooks'], maxRequestBodyBytes: 20_000 }, /must be a URI path/],
    [{ name: 'Webhooks', pathPrefixes: ['/webhooks/'], maxRequestBodyBytes: 70_000 }, /64 KiB/],
  ])('refuses the path body limit %j', (limit, message) => {
    const stack = bareStack('eu-west-1');
    expect(
      () =>
        new EdgeWebAcl(stack, 'Acl', {
          scope: 'REGIONAL',
          protection: { rateLimitPerFiveMinutes: 2000, maxRequestBodyBytes: 16_384, pathBodyLimits: [limit] },
        }),
    ).toThrow(message);
  });

  it('gives every rule a unique priority and metrics', () => {
    const { rules } = entryAcl();
    expect(new Set(rules.map((r) => r.Priority)).size).toBe(rules.length);
    expect(new Set(rules.map((r) => r.Name)).size).toBe(rules.length);
  });
});

describe('EdgeWebAcl: hosting-provider exemption for webhook paths', () => {
  it('counts HostingProviderIPList and blocks its label everywhere except the exempt prefix', () => {
    const { rules } = entryAcl(16_384, 2000, 'REGIONAL', ['/webhooks/']);
    const anon = rules.find((r) => r.Name === 'AWSManagedRulesAnonymousIpList');
    expect(anon?.Statement.ManagedRuleGroupStatement.RuleActionOverrides).toEqual([
      { Name: 'HostingProviderIPList', ActionToUse: { Count: {} } },
    ]);
    const block = rules.find((r) => r.Name === 'HostingProviderOutsideExemptPaths');
    expect(block?.Priority).toBe((anon?.Priority ?? -1) + 1);
    expect(block?.Action).toEqual({ Block: {} });
    expect(block?.Statement).toEqual({
      AndStatement: {
        Statements: [
          { LabelMatchStatement: { Scope: 'LABEL', Key: HOSTING_PROVIDER_LABEL } },
          {
            NotStatement: {
              Statement: {
                ByteMatchStatement: {
                  FieldToMatch: { UriPath: {} },
                  PositionalConstraint: 'STARTS_WITH',
                  SearchString: '/webhooks/',
                  TextTransformations: [{ Priority: 0, Type: 'NORMALIZE_PATH' }],
                },
              },
            },
          },
        ],
      },
    });
    expect(HOSTING_PROVIDER_LABEL).toBe('awswaf:managed:aws:anonymous-ip-list:HostingProviderIPList');
  });

  it('ORs several prefixes', () => {
    const { rules } = entryAcl(16_384, 2000, 'REGIONAL', ['/webhooks/sms/', '/webhooks/email/']);
    const block = rules.find((r) => r.Name === 'HostingProviderOutsideExemptPaths');
    const or = block?.Statement.AndStatement.Statements[1].NotStatement.Statement.OrStatement.Statements;
    expect(or.map((st: any) => st.ByteMatchStatement.SearchString)).toEqual(['/webhooks/sms/', '/webhooks/email/']); // eslint-disable-line @typescript-eslint/no-explicit-any
  });

  it('leaves the anonymous IP list untouched without exempt prefixes', () => {
    const { rules } = entryAcl();
    expect(rules.find((r) => r.Name === 'HostingProviderOutsideExemptPaths')).toBeUndefined();
    const anon = rules.find((r) => r.Name === 'AWSManagedRulesAnonymousIpList');
    expect(anon?.Statement.ManagedRuleGroupStatement.RuleActionOverrides).toBeUndefined();
  });

  it('refuses a prefix that is not a URI path', () => {
    expect(() => entryAcl(16_384, 2000, 'REGIONAL', ['webhooks'])).toThrow(/must be a URI path/);
  });
});

describe('EdgeWebAcl: logging', () => {
  it('logs to a KMS-encrypted, retained log group named for WAF, with authorization and cookie redacted', () => {
    const { template } = entryAcl();
    template.hasResourceProperties('AWS::Logs::LogGroup', {
      LogGroupName: Match.stringLikeRegexp('^aws-waf-logs-'),
      KmsKeyId: Match.anyValue(),
      RetentionInDays: 365,
    });
    template.hasResource('AWS::Logs::LogGroup', { DeletionPolicy: 'Retain' });
    template.hasResourceProperties('AWS::WAFv2::LoggingConfiguration', {
      ResourceArn: { 'Fn::GetAtt': [Match.stringLikeRegexp('^Acl'), 'Arn'] },
      RedactedFields: [{ SingleHeader: { Name: 'authorization' } }, { SingleHeader: { Name: 'cookie' } }],
    });
  });

  it('points WAF at the log group ARN without the trailing :* that WAF rejects', () => {
    const { template } = entryAcl();
    const config = Object.values(template.findResources('AWS::WAFv2::LoggingConfiguration'))[0] as {
      Properties: { LogDestinationConfigs: unknown[] };
    };
    const arn = JSON.stringify(config.Properties.LogDestinationConfigs[0]);
    expect(arn).toContain(':log-group:');
    expect(arn).not.toContain(':*');
  });

  it('keeps the log key usable only by CloudWatch Logs of this account and region', () => {
    const { template } = entryAcl();
    template.hasResourceProperties('AWS::KMS::Key', {
      EnableKeyRotation: true,
      KeyPolicy: {
        Statement: Match.arrayWith([
          Match.objectLike({
            Principal: { Service: 'logs.eu-west-1.amazonaws.com' },
            Condition: {
              ArnLike: {
                'kms:EncryptionContext:aws:logs:arn': 'arn:aws:logs:eu-west-1:000000000000:log-group:*',
              },
            },
          }),
        ]),
      },
    });
  });
});

describe('EdgeWebAcl: origin lock', () => {
  function lockedAcl() {
    const stack = bareStack();
    const secret = new secretsmanager.Secret(stack, 'Secret');
    new EdgeWebAcl(stack, 'Acl', {
      scope: 'REGIONAL',
      originLock: { headerName: 'x-origin-verify', secret, rateLimitPerFiveMinutes: 5000 },
    });
    return Template.fromStack(stack);
  }

  it('blocks every request whose header does not exactly equal the secret, before any other rule', () => {
    const template = lockedAcl();
    template.hasResourceProperties('AWS::WAFv2::WebACL', {
      Scope: 'REGIONAL',
      DefaultAction: { Allow: {} },
      Rules: [
        {
          Name: 'OriginLock',
          Priority: 0,
          Action: { Block: {} },
          Statement: {
            NotStatement: {
              Statement: {
                ByteMatchStatement: {
                  FieldToMatch: { SingleHeader: { Name: 'x-origin-verify' } },
                  PositionalConstraint: 'EXACTLY',
                  // A deploy-time dynamic reference: the secret value is never in the template.
                  SearchString: {
                    'Fn::Join': [
                      '',
                      ['{{resolve:secretsmanager:', { Ref: Match.stringLikeRegexp('^Secret') }, ':SecretString:::}}'],
                    ],
                  },
                  TextTransformations: [{ Priority: 0, Type: 'NONE' }],
                },
              },
            },
          },
        },
        {
          // Backstop per forwarded client address; the CloudFront web ACL holds the authoritative per-IP limit.
          Name: 'RateLimitPerForwardedIp',
          Priority: 1,
          Action: { Block: {} },
          Statement: {
            RateBasedStatement: {
              Limit: 5000,
              AggregateKeyType: 'FORWARDED_IP',
              ForwardedIPConfig: { HeaderName: 'X-Forwarded-For', FallbackBehavior: 'MATCH' },
              EvaluationWindowSec: 300,
            },
          },
          VisibilityConfig: Match.anyValue(),
        },
      ],
    });
  });

  it('redacts the origin secret header from WAF logs as well', () => {
    lockedAcl().hasResourceProperties('AWS::WAFv2::LoggingConfiguration', {
      RedactedFields: [
        { SingleHeader: { Name: 'authorization' } },
        { SingleHeader: { Name: 'cookie' } },
        { SingleHeader: { Name: 'x-origin-verify' } },
      ],
    });
  });
});

describe('EdgeWebAcl: misuse', () => {
  it('refuses a CLOUDFRONT-scope web ACL outside us-east-1', () => {
    const stack = bareStack('eu-west-1');
    expect(
      () =>
        new EdgeWebAcl(stack, 'Acl', {
          scope: 'CLOUDFRONT',
          protection: { rateLimitPerFiveMinutes: 100, maxRequestBodyBytes: 1 },
        }),
    ).toThrow(/us-east-1/);
  });

  it('refuses a web ACL with no rules at all', () => {
    expect(() => new EdgeWebAcl(bareStack(), 'Acl', { scope: 'REGIONAL' })).toThrow(/protection rules, an origin lock/);
  });
});
