/**
 * The web ACL in front of the webhook routes, as the shipped catalogue deploys it: carriers post from
 * cloud hosting addresses (exempt from the anonymous IP list's HostingProviderIPList on the webhook
 * paths only) and at carrier rates (their own per-IP limit, which the general limit then skips). The
 * captured rules are evaluated for sample requests, so the test reads what WAF reads.
 */
import { posix } from 'node:path';
import { Stack } from 'aws-cdk-lib';
import { Capture, Match, Template } from 'aws-cdk-lib/assertions';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { CATALOGUE } from '../../lib/config';
import { EdgeWebAcl, HOSTING_PROVIDER_LABEL } from '../../lib/edge/web-acl';
import { EdgeStack } from '../../lib/stacks/edge-stack';
import { WEBHOOK_PATH_PREFIX } from '../../contracts/webhooks';
import { deployment, testApp } from '../support/cdk';

/* eslint-disable @typescript-eslint/no-explicit-any -- CloudFormation statements are untyped JSON */
type Statement = Record<string, any>;
interface Rule {
  Name: string;
  Priority: number;
  Action?: Record<string, unknown>;
  Statement: Statement;
}

/**
 * A request as WAF's statements see it: its URI path and the labels earlier rules added. Carriers
 * send no Authorization header; the per-credential rules (test/edge/credential-rate-limits.test.ts)
 * read only that header, so for these requests they match nothing.
 */
interface Request {
  readonly path: string;
  readonly labels: readonly string[];
  /** Body size in bytes. @default 0 */
  readonly bodyBytes?: number;
}

/** Bytes of a body WAF inspects (the web ACL's `DefaultSizeInspectionLimit`); set per web ACL below. */
let inspectedBytes = 16_384;

/** Evaluates the statement kinds these rules use (anything else fails the test). */
function matches(s: Statement, r: Request): boolean {
  const leaf = s.ByteMatchStatement ?? s.RegexMatchStatement ?? s.SizeConstraintStatement;
  if (leaf?.FieldToMatch?.SingleHeader?.Name === 'authorization') return false; // absent: nothing matches it
  if (s.ByteMatchStatement) {
    const b = s.ByteMatchStatement;
    expect(b.FieldToMatch).toEqual({ UriPath: {} });
    // NORMALIZE_PATH: repeated slashes, `.` and `..` segments resolved before the comparison.
    expect(b.TextTransformations).toEqual([{ Priority: 0, Type: 'NORMALIZE_PATH' }]);
    expect(b.PositionalConstraint).toBe('STARTS_WITH');
    return posix.normalize(r.path).startsWith(b.SearchString);
  }
  if (s.SizeConstraintStatement) {
    const c = s.SizeConstraintStatement;
    expect(c.FieldToMatch).toEqual({ Body: { OversizeHandling: 'MATCH' } });
    expect(c.ComparisonOperator).toBe('GT');
    const size = r.bodyBytes ?? 0;
    // A body beyond the inspection limit matches (OversizeHandling MATCH); otherwise its size is compared.
    return size > inspectedBytes || size > c.Size;
  }
  if (s.NotStatement) return !matches(s.NotStatement.Statement, r);
  if (s.OrStatement) return s.OrStatement.Statements.some((x: Statement) => matches(x, r));
  if (s.AndStatement) return s.AndStatement.Statements.every((x: Statement) => matches(x, r));
  if (s.LabelMatchStatement) {
    expect(s.LabelMatchStatement.Scope).toBe('LABEL');
    return r.labels.includes(s.LabelMatchStatement.Key);
  }
  throw new Error(`statement not modelled: ${Object.keys(s).join(', ')}`);
}

/** Which rate rule a request counts against (exactly one, or the test fails). */
function rateRuleFor(rules: Rule[], r: Request): Rule {
  const counting = rules.filter((rule) => {
    const rate = rule.Statement.RateBasedStatement;
    return rate && (!rate.ScopeDownStatement || matches(rate.ScopeDownStatement, r));
  });
  expect(counting).toHaveLength(1);
  return counting[0] as Rule;
}

/** Whether a rule that blocks on its own statement (not a managed group or rate rule) blocks `r`. */
function blockedBy(rules: Rule[], r: Request): string[] {
  return rules
    .filter((rule) => rule.Action?.['Block'] && !rule.Statement.RateBasedStatement)
    .filter((rule) => matches(rule.Statement, r))
    .map((rule) => rule.Name);
}

const HOSTED: Request['labels'] = [HOSTING_PROVIDER_LABEL];

describe.each(Object.keys(CATALOGUE))('the shipped %s web ACL', (name) => {
  const d = deployment(name);
  const stack = new EdgeStack(testApp(), 'Edge', { deployment: d, env: { account: d.account, region: d.region } });
  const template = Template.fromStack(stack);
  const captured = new Capture();
  template.hasResourceProperties('AWS::WAFv2::WebACL', { Scope: 'REGIONAL', Rules: captured });
  const rules = captured.asArray() as Rule[];
  const rule = (n: string) => rules.find((r) => r.Name === n) as Rule;
  const limits = { KB_16: 16_384, KB_32: 32_768, KB_48: 49_152, KB_64: 65_536 } as Record<string, number>;
  const acl = Object.values(template.findResources('AWS::WAFv2::WebACL'))[0] as { Properties: Statement };
  const inspected = limits[acl.Properties['AssociationConfig'].RequestBody.API_GATEWAY.DefaultSizeInspectionLimit];
  beforeEach(() => {
    inspectedBytes = inspected ?? 0;
  });

  it('ships the webhook exemption and the carrier rate limit in its configuration', () => {
    expect(d.edge.hostingProviderExemptPathPrefixes).toEqual([WEBHOOK_PATH_PREFIX]);
    expect(d.edge.webhookRateLimitPerFiveMinutes).toBe(30_000);
    expect(d.edge.webhookRateLimitPerFiveMinutes).toBeGreaterThan(d.edge.rateLimitPerFiveMinutes);
  });

  it('lets hosting-provider addresses reach the webhook paths only', () => {
    // The managed group only counts (labels) hosting-provider requests; a label rule right after it blocks.
    const anon = rule('AWSManagedRulesAnonymousIpList');
    expect(anon.Statement.ManagedRuleGroupStatement.RuleActionOverrides).toEqual([
      { Name: 'HostingProviderIPList', ActionToUse: { Count: {} } },
    ]);
    expect(rule('HostingProviderOutsideExemptPaths').Priority).toBe(anon.Priority + 1);
    for (const path of ['/webhooks/telnyx', '/webhooks/frejun', '/webhooks/didlogic']) {
      expect(blockedBy(rules, { path, labels: HOSTED })).toEqual([]);
    }
    for (const path of [
      '/tenants',
      '/webhook-secrets',
      '/webhooksx/telnyx',
      '/v1/webhooks/telnyx',
      '/webhooks/../tenants',
    ]) {
      expect(blockedBy(rules, { path, labels: HOSTED })).toEqual(['HostingProviderOutsideExemptPaths']);
      expect(blockedBy(rules, { path, labels: [] })).toEqual([]);
    }
  });

  it('holds webhook bodies to the webhook cap and every other body to the API’s, inspecting all of both', () => {
    const { maxRequestBodyBytes: api, webhookMaxRequestBodyBytes: webhooks } = d.edge;
    expect(webhooks).toBeGreaterThan(api);
    expect(inspected).toBeGreaterThanOrEqual(webhooks);
    const blocked = (path: string, bodyBytes: number) => blockedBy(rules, { path, labels: [], bodyBytes });
    expect(blocked('/webhooks/telnyx', webhooks)).toEqual([]);
    expect(blocked('/webhooks/telnyx', webhooks + 1)).toEqual(['BodySizeLimitWebhooks']);
    expect(blocked('/leads', api)).toEqual([]);
    expect(blocked('/leads', api + 1)).toEqual(['BodySizeLimit']);
    // A path that only looks like a webhook path keeps the API's cap.
    expect(blocked('/webhooks/../leads', api + 1)).toEqual(['BodySizeLimit']);
    expect(blocked('/webhooksx/telnyx', api + 1)).toEqual(['BodySizeLimit']);
  });

  it('counts webhook requests against their own per-IP limit, and everything else against the general one', () => {
    const webhook = rateRuleFor(rules, { path: '/webhooks/telnyx', labels: HOSTED });
    expect(webhook.Name).toBe('RateLimitWebhooksPerIp');
    expect(webhook.Action).toEqual({ Block: {} });
    expect(webhook.Statement.RateBasedStatement).toMatchObject({
      Limit: d.edge.webhookRateLimitPerFiveMinutes,
      AggregateKeyType: 'IP',
      EvaluationWindowSec: 300,
    });
    const general = rateRuleFor(rules, { path: '/tenants', labels: [] });
    expect(general.Name).toBe('RateLimitPerIp');
    expect(general.Statement.RateBasedStatement).toMatchObject({ Limit: d.edge.rateLimitPerFiveMinutes });
    expect(rateRuleFor(rules, { path: '/webhook-secrets', labels: [] }).Name).toBe('RateLimitPerIp');
    expect(rateRuleFor(rules, { path: '/webhooks/./../tenants', labels: [] }).Name).toBe('RateLimitPerIp');
    // Rate rules come before the managed groups, so a flood is cut before any other inspection.
    expect(general.Priority).toBeLessThan(rule('AWSManagedRulesAmazonIpReputationList').Priority);
    expect(webhook.Priority).toBeLessThan(rule('AWSManagedRulesAmazonIpReputationList').Priority);
  });

  it('keeps every other managed rule on the webhook paths', () => {
    template.hasResourceProperties('AWS::WAFv2::WebACL', {
      Rules: Match.arrayWith(
        [
          'AWSManagedRulesAmazonIpReputationList',
          'AWSManagedRulesCommonRuleSet',
          'AWSManagedRulesKnownBadInputsRuleSet',
        ].map((group) =>
          Match.objectLike({
            OverrideAction: { None: {} },
            Statement: { ManagedRuleGroupStatement: Match.objectLike({ Name: group }) },
          }),
        ),
      ),
    });
  });
});

describe('EdgeWebAcl path rate limits', () => {
  it('applies them next to the origin lock forwarded-IP backstop too', () => {
    const stack = new Stack(testApp(), 'Acl', { env: { account: '000000000000', region: 'eu-west-1' } });
    new EdgeWebAcl(stack, 'Acl', {
      scope: 'REGIONAL',
      originLock: {
        headerName: 'x-origin-verify',
        secret: new secretsmanager.Secret(stack, 'Secret'),
        rateLimitPerFiveMinutes: 5000,
      },
      pathRateLimits: [{ name: 'Webhooks', pathPrefixes: ['/webhooks/', '/hooks/'], rateLimitPerFiveMinutes: 40_000 }],
    });
    const captured = new Capture();
    Template.fromStack(stack).hasResourceProperties('AWS::WAFv2::WebACL', { Rules: captured });
    const rules = captured.asArray() as Rule[];
    const forwarded = {
      AggregateKeyType: 'FORWARDED_IP',
      ForwardedIPConfig: { HeaderName: 'X-Forwarded-For', FallbackBehavior: 'MATCH' },
    };
    for (const path of ['/webhooks/telnyx', '/hooks/x']) {
      const r = rateRuleFor(rules, { path, labels: [] });
      expect([r.Name, r.Statement.RateBasedStatement]).toEqual([
        'RateLimitWebhooksPerForwardedIp',
        expect.objectContaining({ ...forwarded, Limit: 40_000 }),
      ]);
    }
    const r = rateRuleFor(rules, { path: '/tenants', labels: [] });
    expect([r.Name, r.Statement.RateBasedStatement]).toEqual([
      'RateLimitPerForwardedIp',
      expect.objectContaining({ ...forwarded, Limit: 5000 }),
    ]);
  });

  it.each([
    [{ name: 'web hooks', pathPrefixes: ['/webhooks/'], rateLimitPerFiveMinutes: 1000 }, /letters-only name/],
    [{ name: 'Webhooks', pathPrefixes: [], rateLimitPerFiveMinutes: 1000 }, /at least one prefix/],
    [{ name: 'Webhooks', pathPrefixes: ['webhooks'], rateLimitPerFiveMinutes: 1000 }, /must be a URI path/],
    [{ name: 'Webhooks', pathPrefixes: ['/webhooks/'], rateLimitPerFiveMinutes: 99 }, /at least 100/],
  ])('refuses %j', (limit, error) => {
    const stack = new Stack(testApp(), 'Acl', { env: { account: '000000000000', region: 'eu-west-1' } });
    expect(
      () =>
        new EdgeWebAcl(stack, 'Acl', {
          scope: 'REGIONAL',
          protection: { rateLimitPerFiveMinutes: 2000, maxRequestBodyBytes: 16_384 },
          pathRateLimits: [limit],
        }),
    ).toThrow(error);
  });
});
