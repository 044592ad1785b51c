import { ArnFormat, Names, RemovalPolicy, Stack } from 'aws-cdk-lib';
import type * as kms from 'aws-cdk-lib/aws-kms';
import * as logs from 'aws-cdk-lib/aws-logs';
import type * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import * as wafv2 from 'aws-cdk-lib/aws-wafv2';
import { Construct } from 'constructs';
import { allowOutsideResidency } from '../residency/guard';
import { LogKey } from '../observability/keys';
import { RATE_LIMITED_BODY, RATE_LIMITED_STATUS } from '../../contracts/rate-limits';

/** Where the web ACL is used: in front of CloudFront (us-east-1 only) or a regional resource. */
export type WebAclScope = 'CLOUDFRONT' | 'REGIONAL';

/** The AWS managed rule groups every entry web ACL runs, in evaluation order. */
export const MANAGED_RULE_GROUPS = [
  'AWSManagedRulesAmazonIpReputationList',
  'AWSManagedRulesAnonymousIpList',
  'AWSManagedRulesCommonRuleSet',
  'AWSManagedRulesKnownBadInputsRuleSet',
  'AWSManagedRulesSQLiRuleSet',
] as const;

/** Headers never written to WAF logs: credentials, sessions, and the origin-lock secret. */
export const ALWAYS_REDACTED_HEADERS = ['authorization', 'cookie'] as const;

/** The common rule set's own 8 KiB body cap; replaced by `BodySizeLimit` so the limit is the API's. */
const COMMON_RULE_SET_BODY_RULE = 'SizeRestrictions_BODY';

/** Body inspection limits AWS WAF offers for CloudFront and API Gateway, in bytes. */
const INSPECTION_LIMITS = [
  ['KB_16', 16_384],
  ['KB_32', 32_768],
  ['KB_48', 49_152],
  ['KB_64', 65_536],
] as const;

/** The smallest WAF body inspection limit that covers `bytes`. */
export function inspectionLimitFor(bytes: number): string {
  const found = INSPECTION_LIMITS.find(([, size]) => bytes <= size);
  if (!found) throw new Error(`a ${bytes}-byte body limit exceeds what AWS WAF can inspect (64 KiB)`);
  return found[0];
}

/** Blocks abuse at the entry point: managed rules, a per-IP rate limit and a body-size cap. */
export interface EntryProtection {
  /** Requests per client IP per five minutes before the IP is blocked. */
  readonly rateLimitPerFiveMinutes: number;
  /** Largest body the API accepts; larger bodies are blocked and smaller ones fully inspected. */
  readonly maxRequestBodyBytes: number;
  /**
   * Other body caps under some path prefixes (carrier webhooks carry larger events than people's
   * requests); requests there are held to their own cap only.
   * @default - none: one cap for every path
   */
  readonly pathBodyLimits?: readonly PathBodyLimit[];
  /**
   * URI path prefixes (e.g. `/webhooks/`) that callers on cloud hosting IPs may reach: webhook senders
   * run there, and the anonymous IP list's HostingProviderIPList would block them. Everything else from
   * hosting ranges stays blocked, and every other rule still applies to these paths.
   * @default - none: hosting provider IPs are blocked everywhere
   */
  readonly hostingProviderExemptPathPrefixes?: readonly string[];
  /**
   * Per-credential rate limits: each bearer token and each API key (the Authorization header,
   * case-folded) gets its own budget, whatever addresses it comes from, answered with
   * `429 {"error":"RATE_LIMITED"}`. An Authorization header in any other spelling than
   * `<scheme> <credential>` is blocked, so a credential cannot be respelled into fresh budgets.
   * Rate-limited paths (`EdgeWebAclProps.pathRateLimits`, the webhooks) are outside these rules.
   * @default - none: per-IP limits only
   */
  readonly credentialRateLimits?: CredentialRateLimits;
}

/** Requests per five minutes per credential (docs/rate-limits.md). */
export interface CredentialRateLimits {
  /** Per bearer token (`Authorization: Bearer <jwt>`): one person's session. */
  readonly bearerTokenPerFiveMinutes: number;
  /** Per tenant API key (`Authorization: ApiKey bwk_...`). */
  readonly apiKeyPerFiveMinutes: number;
}

/**
 * The one spelling of an Authorization header the per-credential rules accept, after LOWERCASE: the
 * scheme, one space, a token68 value without padding (JWTs and `bwk_` keys). The tenant guard's
 * parser (lambda/tenant-guard/guard.ts) is looser (any whitespace, any case); without this, every
 * respelling of one credential would be a new rate-limit bucket.
 */
export const CANONICAL_AUTHORIZATION = '^(bearer|apikey) [a-z0-9._~+/-]+$';

/** Name of the custom response body the per-credential rules answer with. */
const RATE_LIMITED_BODY_KEY = 'RateLimited';

/** Label the anonymous IP list adds to requests from cloud hosting ranges. */
export const HOSTING_PROVIDER_LABEL = 'awswaf:managed:aws:anonymous-ip-list:HostingProviderIPList';

/** Blocks every request that does not carry the edge's secret header. */
export interface OriginLock {
  /** Header the edge adds; lower case. */
  readonly headerName: string;
  /** Secret whose value the header must carry exactly. */
  readonly secret: secretsmanager.ISecret;
  /**
   * Backstop rate limit per client at the origin, keyed on the client address CloudFront forwards in
   * X-Forwarded-For. The authoritative per-IP limit is the CloudFront web ACL's (it sees the real
   * viewer address); this one only bounds what a single forwarded address can send.
   */
  readonly rateLimitPerFiveMinutes: number;
}

/**
 * Its own per-client rate limit for requests under some path prefixes: machine senders (carrier
 * webhooks) post far more per address than people do, from few addresses. Requests there count only
 * against this limit, and every other request only against the general one.
 */
export interface PathRateLimit {
  /** Names the rule `RateLimit<name>PerIp` (or `...PerForwardedIp` behind an origin lock); letters only. */
  readonly name: string;
  /** URI path prefixes, e.g. `/webhooks/`. */
  readonly pathPrefixes: readonly string[];
  /** Requests per client address per five minutes under these prefixes. */
  readonly rateLimitPerFiveMinutes: number;
}

/** A body cap for requests under some path prefixes; at most 64 KiB, what AWS WAF can inspect. */
export interface PathBodyLimit {
  /** Names the rule `BodySizeLimit<name>`; letters only. */
  readonly name: string;
  /** URI path prefixes, e.g. `/webhooks/`. */
  readonly pathPrefixes: readonly string[];
  /** Largest body accepted under these prefixes, in bytes. */
  readonly maxRequestBodyBytes: number;
}

export interface EdgeWebAclProps {
  /** CLOUDFRONT (the stack must be in us-east-1) or REGIONAL. */
  readonly scope: WebAclScope;
  /**
   * Separate rate limits for path prefixes, applied next to each per-client rate rule this web ACL has
   * (the entry protection's and the origin lock's).
   * @default - none: one limit for every path
   */
  readonly pathRateLimits?: readonly PathRateLimit[];
  /** Managed rules, rate limit and body cap. @default - none (an origin-lock-only web ACL) */
  readonly protection?: EntryProtection;
  /** Origin lock rule, evaluated first. @default - none */
  readonly originLock?: OriginLock;
  /** How long WAF logs are kept. @default logs.RetentionDays.ONE_YEAR */
  readonly logRetention?: logs.RetentionDays;
  /** Key for the log group. @default - a new key in this stack's region */
  readonly logKey?: kms.IKey;
}

const URI_PATH_PREFIX = /^\/[A-Za-z0-9._~\-/]+$/;

/**
 * Matches a request whose URI path starts with any of `prefixes`, after NORMALIZE_PATH: a path such
 * as `/webhooks/../tenants` must not pass as a webhook path (exempt, or under the carriers' limit).
 */
function onPaths(prefixes: readonly string[]): wafv2.CfnWebACL.StatementProperty {
  const matches = prefixes.map((prefix): wafv2.CfnWebACL.StatementProperty => ({
    byteMatchStatement: {
      fieldToMatch: { uriPath: {} },
      positionalConstraint: 'STARTS_WITH',
      searchString: prefix,
      textTransformations: [{ priority: 0, type: 'NORMALIZE_PATH' }],
    },
  }));
  const [only] = matches;
  return matches.length === 1 && only ? only : { orStatement: { statements: matches } };
}

const AUTHORIZATION: wafv2.CfnWebACL.FieldToMatchProperty = { singleHeader: { Name: 'authorization' } };
const LOWERCASE: wafv2.CfnWebACL.TextTransformationProperty[] = [{ priority: 0, type: 'LOWERCASE' }];

/**
 * The per-credential rules, first refusing any Authorization header not spelled canonically, then one
 * rate rule per scheme keyed on the case-folded header. A request without the header is in neither
 * (WAF leaves requests missing an aggregate key out): the per-IP rule and the authorizer deal with it.
 */
function credentialRules(
  limits: CredentialRateLimits,
  outsidePaths: readonly string[],
  firstPriority: number,
  visibility: (metricName: string) => wafv2.CfnWebACL.VisibilityConfigProperty,
): wafv2.CfnWebACL.RuleProperty[] {
  const exempt: wafv2.CfnWebACL.StatementProperty[] =
    outsidePaths.length > 0 ? [{ notStatement: { statement: onPaths(outsidePaths) } }] : [];
  const rateLimited: wafv2.CfnWebACL.RuleActionProperty = {
    block: { customResponse: { responseCode: RATE_LIMITED_STATUS, customResponseBodyKey: RATE_LIMITED_BODY_KEY } },
  };
  const perScheme = (name: string, scheme: string, limit: number): wafv2.CfnWebACL.RuleProperty => ({
    name,
    priority: 0,
    action: rateLimited,
    visibilityConfig: visibility(name),
    statement: {
      rateBasedStatement: {
        limit,
        evaluationWindowSec: 300,
        aggregateKeyType: 'CUSTOM_KEYS',
        customKeys: [{ header: { name: 'authorization', textTransformations: LOWERCASE } }],
        scopeDownStatement: and([
          {
            byteMatchStatement: {
              fieldToMatch: AUTHORIZATION,
              positionalConstraint: 'STARTS_WITH',
              searchString: `${scheme} `,
              textTransformations: LOWERCASE,
            },
          },
          ...exempt,
        ]),
      },
    },
  });
  const rules: wafv2.CfnWebACL.RuleProperty[] = [
    {
      name: 'AuthorizationNotCanonical',
      priority: 0,
      action: { block: {} },
      visibilityConfig: visibility('AuthorizationNotCanonical'),
      statement: and([
        // Present and not empty (a missing header has no size to exceed 0).
        {
          sizeConstraintStatement: {
            fieldToMatch: AUTHORIZATION,
            comparisonOperator: 'GT',
            size: 0,
            textTransformations: [{ priority: 0, type: 'NONE' }],
          },
        },
        {
          notStatement: {
            statement: {
              regexMatchStatement: {
                fieldToMatch: AUTHORIZATION,
                regexString: CANONICAL_AUTHORIZATION,
                textTransformations: LOWERCASE,
              },
            },
          },
        },
        ...exempt,
      ]),
    },
    perScheme('RateLimitPerBearerToken', 'bearer', limits.bearerTokenPerFiveMinutes),
    perScheme('RateLimitPerApiKey', 'apikey', limits.apiKeyPerFiveMinutes),
  ];
  return rules.map((rule, i) => ({ ...rule, priority: firstPriority + i }));
}

function and(statements: wafv2.CfnWebACL.StatementProperty[]): wafv2.CfnWebACL.StatementProperty {
  const [only] = statements;
  return statements.length === 1 && only ? only : { andStatement: { statements } };
}

/**
 * A WAFv2 web ACL with logging to a KMS-encrypted CloudWatch log group in the web ACL's own region,
 * with the Authorization and Cookie headers (and the origin-lock header) redacted from every record.
 */
export class EdgeWebAcl extends Construct {
  public readonly webAcl: wafv2.CfnWebACL;
  public readonly logGroup: logs.LogGroup;
  public readonly loggingConfiguration: wafv2.CfnLoggingConfiguration;

  constructor(scope: Construct, id: string, props: EdgeWebAclProps) {
    super(scope, id);
    if (!props.protection && !props.originLock) {
      throw new Error(`${this.node.path}: a web ACL needs protection rules, an origin lock, or both`);
    }
    if (props.scope === 'CLOUDFRONT' && Stack.of(this).region !== 'us-east-1') {
      // Unresolved (environment-agnostic) regions are refused too: CLOUDFRONT scope only exists in us-east-1.
      throw new Error(`${this.node.path}: CLOUDFRONT-scope web ACLs must be created in us-east-1`);
    }

    /** A rule scoped to path prefixes names itself in letters (its rule and metric names) and paths. */
    const checkPaths = (what: string, prefixes: readonly string[], name?: string): void => {
      if (name !== undefined && (!/^[A-Za-z]+$/.test(name) || prefixes.length === 0)) {
        throw new Error(`${this.node.path}: a path ${what} needs a letters-only name and at least one prefix`);
      }
      for (const prefix of prefixes) {
        if (!URI_PATH_PREFIX.test(prefix)) {
          throw new Error(`${this.node.path}: ${what} path prefix ${JSON.stringify(prefix)} must be a URI path`);
        }
      }
    };
    const pathLimits = props.pathRateLimits ?? [];
    for (const limit of pathLimits) {
      checkPaths('rate limit', limit.pathPrefixes, limit.name);
      if (!Number.isInteger(limit.rateLimitPerFiveMinutes) || limit.rateLimitPerFiveMinutes < 100) {
        throw new Error(`${this.node.path}: path rate limit ${limit.name} must be an integer of at least 100`);
      }
    }
    const limitedPaths = pathLimits.flatMap((l) => l.pathPrefixes);

    const rules: wafv2.CfnWebACL.RuleProperty[] = [];
    const visibility = (metricName: string): wafv2.CfnWebACL.VisibilityConfigProperty => ({
      cloudWatchMetricsEnabled: true,
      sampledRequestsEnabled: true,
      metricName,
    });
    /**
     * The general per-client rate rule (outside every rate-limited path) and one rule per path limit,
     * each keyed the same way (`key` holds the aggregate key settings).
     */
    const rateRules = (
      suffix: 'PerIp' | 'PerForwardedIp',
      limit: number,
      key: Omit<wafv2.CfnWebACL.RateBasedStatementProperty, 'limit'>,
    ) => {
      rules.push({
        name: `RateLimit${suffix}`,
        priority: rules.length,
        action: { block: {} },
        visibilityConfig: visibility(`RateLimit${suffix}`),
        statement: {
          rateBasedStatement: {
            limit,
            ...key,
            ...(limitedPaths.length > 0
              ? { scopeDownStatement: { notStatement: { statement: onPaths(limitedPaths) } } }
              : {}),
          },
        },
      });
      for (const path of pathLimits) {
        rules.push({
          name: `RateLimit${path.name}${suffix}`,
          priority: rules.length,
          action: { block: {} },
          visibilityConfig: visibility(`RateLimit${path.name}${suffix}`),
          statement: {
            rateBasedStatement: {
              limit: path.rateLimitPerFiveMinutes,
              ...key,
              scopeDownStatement: onPaths(path.pathPrefixes),
            },
          },
        });
      }
    };

    if (props.originLock) {
      const lock = props.originLock;
      rules.push({
        name: 'OriginLock',
        priority: rules.length,
        action: { block: {} },
        visibilityConfig: visibility('OriginLock'),
        statement: {
          notStatement: {
            statement: {
              byteMatchStatement: {
                // SingleHeader is untyped in the L1; CloudFormation wants `Name`.
                fieldToMatch: { singleHeader: { Name: lock.headerName } },
                positionalConstraint: 'EXACTLY',
                // Resolved by CloudFormation at deploy time; the value never appears in the template.
                searchString: lock.secret.secretValue.unsafeUnwrap(),
                textTransformations: [{ priority: 0, type: 'NONE' }],
              },
            },
          },
        },
      });
      rateRules('PerForwardedIp', lock.rateLimitPerFiveMinutes, {
        aggregateKeyType: 'FORWARDED_IP',
        forwardedIpConfig: { headerName: 'X-Forwarded-For', fallbackBehavior: 'MATCH' },
        evaluationWindowSec: 300,
      });
    }

    let associationConfig: wafv2.CfnWebACL.AssociationConfigProperty | undefined;
    let customResponseBodies: Record<string, wafv2.CfnWebACL.CustomResponseBodyProperty> | undefined;
    if (props.protection) {
      const { rateLimitPerFiveMinutes, maxRequestBodyBytes } = props.protection;
      rateRules('PerIp', rateLimitPerFiveMinutes, { aggregateKeyType: 'IP', evaluationWindowSec: 300 });
      const credentials = props.protection.credentialRateLimits;
      if (credentials) {
        for (const [name, limit] of Object.entries(credentials)) {
          if (!Number.isInteger(limit) || limit < 100) {
            throw new Error(`${this.node.path}: credential rate limit ${name} must be an integer of at least 100`);
          }
        }
        rules.push(...credentialRules(credentials, limitedPaths, rules.length, visibility));
        customResponseBodies = {
          [RATE_LIMITED_BODY_KEY]: { contentType: 'APPLICATION_JSON', content: JSON.stringify(RATE_LIMITED_BODY) },
        };
      }
      const bodyLimits = props.protection.pathBodyLimits ?? [];
      for (const limit of bodyLimits) checkPaths('body limit', limit.pathPrefixes, limit.name);
      const largerThan = (size: number): wafv2.CfnWebACL.StatementProperty => ({
        sizeConstraintStatement: {
          // MATCH: a body beyond the inspection limit is blocked rather than waved through uninspected.
          fieldToMatch: { body: { oversizeHandling: 'MATCH' } },
          comparisonOperator: 'GT',
          size,
          textTransformations: [{ priority: 0, type: 'NONE' }],
        },
      });
      const bodyLimitedPaths = bodyLimits.flatMap((l) => l.pathPrefixes);
      rules.push({
        name: 'BodySizeLimit',
        priority: rules.length,
        action: { block: {} },
        visibilityConfig: visibility('BodySizeLimit'),
        statement:
          bodyLimitedPaths.length === 0
            ? largerThan(maxRequestBodyBytes)
            : {
                andStatement: {
                  statements: [
                    largerThan(maxRequestBodyBytes),
                    { notStatement: { statement: onPaths(bodyLimitedPaths) } },
                  ],
                },
              },
      });
      for (const limit of bodyLimits) {
        rules.push({
          name: `BodySizeLimit${limit.name}`,
          priority: rules.length,
          action: { block: {} },
          visibilityConfig: visibility(`BodySizeLimit${limit.name}`),
          statement: {
            andStatement: { statements: [largerThan(limit.maxRequestBodyBytes), onPaths(limit.pathPrefixes)] },
          },
        });
      }
      const largestBody = Math.max(maxRequestBodyBytes, ...bodyLimits.map((l) => l.maxRequestBodyBytes));
      const exemptPrefixes = props.protection.hostingProviderExemptPathPrefixes ?? [];
      checkPaths('exemption', exemptPrefixes);
      const overrides: Record<string, string> = {
        AWSManagedRulesCommonRuleSet: COMMON_RULE_SET_BODY_RULE,
        ...(exemptPrefixes.length > 0 ? { AWSManagedRulesAnonymousIpList: 'HostingProviderIPList' } : {}),
      };
      for (const group of MANAGED_RULE_GROUPS) {
        const counted = overrides[group];
        rules.push({
          name: group,
          priority: rules.length,
          overrideAction: { none: {} },
          visibilityConfig: visibility(group),
          statement: {
            managedRuleGroupStatement: {
              vendorName: 'AWS',
              name: group,
              ...(counted ? { ruleActionOverrides: [{ name: counted, actionToUse: { count: {} } }] } : {}),
            },
          },
        });
        if (group === 'AWSManagedRulesAnonymousIpList' && exemptPrefixes.length > 0) {
          // The group only labels hosting-provider requests now; this rule blocks them outside the exempt paths.
          rules.push({
            name: 'HostingProviderOutsideExemptPaths',
            priority: rules.length,
            action: { block: {} },
            visibilityConfig: visibility('HostingProviderOutsideExemptPaths'),
            statement: {
              andStatement: {
                statements: [
                  { labelMatchStatement: { scope: 'LABEL', key: HOSTING_PROVIDER_LABEL } },
                  { notStatement: { statement: onPaths(exemptPrefixes) } },
                ],
              },
            },
          });
        }
      }
      associationConfig = {
        requestBody: {
          [props.scope === 'CLOUDFRONT' ? 'CLOUDFRONT' : 'API_GATEWAY']: {
            defaultSizeInspectionLimit: inspectionLimitFor(largestBody),
          },
        },
      };
    }

    this.webAcl = new wafv2.CfnWebACL(this, 'Resource', {
      scope: props.scope,
      defaultAction: { allow: {} },
      description: props.protection
        ? 'Bulwark entry: managed rules, per-IP and per-credential rate limits, body size cap'
        : 'Bulwark origin: only requests carrying the edge secret',
      rules,
      visibilityConfig: visibility(Names.uniqueResourceName(this, { maxLength: 128 })),
      associationConfig,
      customResponseBodies,
    });
    if (props.scope === 'CLOUDFRONT') {
      allowOutsideResidency(
        this.webAcl,
        'CloudFront-scope web ACL: rule configuration only, evaluated at the edge; its logs go to a log group in its own region.',
      );
    }

    const logKey = props.logKey ?? new LogKey(this, 'LogKey', { description: 'Encrypts WAF logs' }).key;
    this.logGroup = new logs.LogGroup(this, 'Logs', {
      // WAF only delivers to log groups whose name starts with aws-waf-logs-.
      logGroupName: `aws-waf-logs-${Names.uniqueResourceName(this, { maxLength: 400 })}`,
      encryptionKey: logKey,
      retention: props.logRetention ?? logs.RetentionDays.ONE_YEAR,
      removalPolicy: RemovalPolicy.RETAIN,
    });

    const redacted = [...ALWAYS_REDACTED_HEADERS, ...(props.originLock ? [props.originLock.headerName] : [])];
    this.loggingConfiguration = new wafv2.CfnLoggingConfiguration(this, 'Logging', {
      resourceArn: this.webAcl.attrArn,
      // WAF wants the log group ARN without the trailing ':*' that LogGroup.logGroupArn carries.
      logDestinationConfigs: [
        Stack.of(this).formatArn({
          service: 'logs',
          resource: 'log-group',
          resourceName: this.logGroup.logGroupName,
          arnFormat: ArnFormat.COLON_RESOURCE_NAME,
        }),
      ],
      redactedFields: redacted.map((name) => ({ singleHeader: { Name: name } })),
    });
  }

  public get webAclArn(): string {
    return this.webAcl.attrArn;
  }
}
