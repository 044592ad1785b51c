/**
 * The per-credential rate limits of the entry web ACL, read the way WAF reads them: the synthesized
 * statements are evaluated over requests (the subset of WAF's statement language they use), and the
 * header spellings are the ones the tenant guard's own parser accepts.
 */
import * as path from 'node:path';
import { Template } from 'aws-cdk-lib/assertions';
import { RATE_LIMITED_BODY } from '../../contracts/rate-limits';
import { WEBHOOK_PATH_PREFIX } from '../../contracts/webhooks';
import { CANONICAL_AUTHORIZATION, EdgeWebAcl } from '../../lib/edge/web-acl';
import { parseAuthorization } from '../../lambda/tenant-guard/guard';
import { bareStack } from './helpers';

/* eslint-disable @typescript-eslint/no-explicit-any */
type Statement = Record<string, any>;
interface Rule {
  Name: string;
  Priority: number;
  Action?: Record<string, any>;
  Statement: Statement;
}
interface Request {
  readonly path: string;
  readonly authorization?: string;
}

function transform(value: string, transformations: { Type: string }[]): string {
  return transformations.reduce((v, t) => {
    if (t.Type === 'NONE') return v;
    if (t.Type === 'LOWERCASE') return v.toLowerCase();
    if (t.Type === 'NORMALIZE_PATH') return path.posix.normalize(v);
    throw new Error(`transformation ${t.Type} is not modelled`);
  }, value);
}

function field(req: Request, f: Record<string, any>): string | undefined {
  if (f['UriPath']) return req.path;
  if (f['SingleHeader']?.Name === 'authorization') return req.authorization;
  throw new Error(`field ${JSON.stringify(f)} is not modelled`);
}

/** WAF's verdict for one statement; a missing field matches no byte, regex or size statement. */
function matches(s: Statement, req: Request): boolean {
  if (s['AndStatement']) return (s['AndStatement'].Statements as Statement[]).every((x) => matches(x, req));
  if (s['OrStatement']) return (s['OrStatement'].Statements as Statement[]).some((x) => matches(x, req));
  if (s['NotStatement']) return !matches(s['NotStatement'].Statement, req);
  const leaf = s['ByteMatchStatement'] ?? s['RegexMatchStatement'] ?? s['SizeConstraintStatement'];
  if (!leaf) throw new Error(`statement ${Object.keys(s).join()} is not modelled`);
  const raw = field(req, leaf.FieldToMatch);
  if (raw === undefined) return false;
  const v = transform(raw, leaf.TextTransformations);
  if (s['RegexMatchStatement']) return new RegExp(leaf.RegexString).test(v);
  if (s['SizeConstraintStatement']) {
    if (leaf.ComparisonOperator !== 'GT') throw new Error('only GT is modelled');
    return Buffer.byteLength(v) > leaf.Size;
  }
  if (leaf.PositionalConstraint === 'STARTS_WITH') return v.startsWith(leaf.SearchString);
  if (leaf.PositionalConstraint === 'EXACTLY') return v === leaf.SearchString;
  throw new Error(`positional constraint ${leaf.PositionalConstraint} is not modelled`);
}

function entryAcl() {
  const stack = bareStack('eu-west-1');
  new EdgeWebAcl(stack, 'Acl', {
    scope: 'REGIONAL',
    pathRateLimits: [{ name: 'Webhooks', pathPrefixes: [WEBHOOK_PATH_PREFIX], rateLimitPerFiveMinutes: 30_000 }],
    protection: {
      rateLimitPerFiveMinutes: 2000,
      maxRequestBodyBytes: 16_384,
      credentialRateLimits: { bearerTokenPerFiveMinutes: 600, apiKeyPerFiveMinutes: 900 },
    },
  });
  const acl = Object.values(Template.fromStack(stack).findResources('AWS::WAFv2::WebACL'))[0] as {
    Properties: Record<string, any>;
  };
  const rules = [...(acl.Properties['Rules'] as Rule[])].sort((a, b) => a.Priority - b.Priority);
  const rule = (name: string): Rule => {
    const found = rules.find((r) => r.Name === name);
    if (!found) throw new Error(`no rule ${name}`);
    return found;
  };
  const refusal = rule('AuthorizationNotCanonical');
  /** The rate-limit bucket a request counts in: rule name and aggregate key, or none. */
  const bucket = (req: Request): string | undefined => {
    for (const name of ['RateLimitPerBearerToken', 'RateLimitPerApiKey']) {
      const rate = rule(name).Statement['RateBasedStatement'];
      if (!matches(rate.ScopeDownStatement, req)) continue;
      const [key] = rate.CustomKeys as { Header: { Name: string; TextTransformations: { Type: string }[] } }[];
      const value = field(req, { SingleHeader: { Name: key!.Header.Name } });
      return value === undefined ? undefined : `${name}:${transform(value, key!.Header.TextTransformations)}`;
    }
    return undefined;
  };
  return { props: acl.Properties, rules, rule, blocked: (req: Request) => matches(refusal.Statement, req), bucket };
}

// A JWT's shape (base64url segments) and an API key exactly as POST /api-keys mints it.
const JWT = 'eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhIn0.c2lnbmF0dXJlLWJ5dGVzX2hlcmUtMTIz';
const API_KEY = `bwk_${'0123456789abcdef'.repeat(2)}_${'Ab-_9'.repeat(8)}xyz`;

describe('EdgeWebAcl: per-credential rate limits', () => {
  const acl = entryAcl();

  it('answers 429 {"error":"RATE_LIMITED"} from each per-credential rule, with the configured limits', () => {
    for (const [name, limit] of [
      ['RateLimitPerBearerToken', 600],
      ['RateLimitPerApiKey', 900],
    ] as const) {
      const r = acl.rule(name);
      expect(r.Action).toEqual({
        Block: { CustomResponse: { ResponseCode: 429, CustomResponseBodyKey: 'RateLimited' } },
      });
      expect(r.Statement['RateBasedStatement']).toMatchObject({
        Limit: limit,
        EvaluationWindowSec: 300,
        AggregateKeyType: 'CUSTOM_KEYS',
      });
    }
    expect(acl.props['CustomResponseBodies']).toEqual({
      RateLimited: { ContentType: 'APPLICATION_JSON', Content: JSON.stringify(RATE_LIMITED_BODY) },
    });
  });

  it('counts each bearer token and each API key in its own bucket, whatever the scheme case', () => {
    const bearer = acl.bucket({ path: '/leads', authorization: `Bearer ${JWT}` });
    expect(bearer).toBe(`RateLimitPerBearerToken:bearer ${JWT.toLowerCase()}`);
    expect(acl.bucket({ path: '/leads', authorization: `BEARER ${JWT}` })).toBe(bearer);
    const key = acl.bucket({ path: '/tenant', authorization: `ApiKey ${API_KEY}` });
    expect(key).toBe(`RateLimitPerApiKey:apikey ${API_KEY.toLowerCase()}`);
    expect(acl.bucket({ path: '/tenant', authorization: `apikey ${API_KEY}` })).toBe(key);
    expect(acl.bucket({ path: '/tenant', authorization: `ApiKey ${API_KEY.replace(/.$/, 'q')}` })).not.toBe(key);
    for (const req of [
      { path: '/leads', authorization: `Bearer ${JWT}` },
      { path: '/tenant', authorization: `ApiKey ${API_KEY}` },
    ]) {
      expect(acl.blocked(req)).toBe(false);
    }
  });

  it('blocks every other spelling the tenant guard would accept, so a credential has exactly one bucket', () => {
    const spellings = [
      `Bearer  ${JWT}`,
      `Bearer\t${JWT}`,
      `\tBearer ${JWT}`,
      `Bearer ${JWT} `,
      `Bearer\u00a0${JWT}`,
      `ApiKey  ${API_KEY}`,
      `ApiKey\u2003${API_KEY}`,
      `ApiKey ${API_KEY}\u3000`,
    ];
    for (const authorization of spellings) {
      // The guard's parser takes each of them as the credential itself...
      expect(() => parseAuthorization(authorization)).not.toThrow();
      // ...and the web ACL refuses each before it could open a second budget for it.
      expect({ authorization, blocked: acl.blocked({ path: '/leads', authorization }) }).toEqual({
        authorization,
        blocked: true,
      });
    }
    // Every spelling that gets through lands in the same bucket as the canonical one.
    const variants = ['Bearer', 'bearer', 'BEARER', 'bEaReR'].flatMap((s) =>
      [' ', '  ', '\t'].map((w) => `${s}${w}${JWT}`),
    );
    const through = variants.filter((authorization) => !acl.blocked({ path: '/leads', authorization }));
    expect(through.length).toBe(4);
    expect(new Set(through.map((authorization) => acl.bucket({ path: '/leads', authorization }))).size).toBe(1);
  });

  it('leaves requests without Authorization to the per-IP limit and the authorizer', () => {
    expect(acl.blocked({ path: '/leads' })).toBe(false);
    expect(acl.bucket({ path: '/leads' })).toBeUndefined();
    expect(acl.blocked({ path: '/leads', authorization: '' })).toBe(false);
  });

  it('keeps webhook paths (their own limit) out of the credential rules, normalised paths included', () => {
    const odd = { path: `${WEBHOOK_PATH_PREFIX}telnyx`, authorization: 'Basic   dXNlcjpwYXNz' };
    expect(acl.blocked(odd)).toBe(false);
    expect(acl.bucket({ path: `${WEBHOOK_PATH_PREFIX}telnyx`, authorization: `Bearer ${JWT}` })).toBeUndefined();
    // A path that only looks like a webhook path is a tenant path.
    const disguised = { path: `${WEBHOOK_PATH_PREFIX}../leads`, authorization: `Bearer  ${JWT}` };
    expect(acl.blocked(disguised)).toBe(true);
  });

  it('refuses the non-canonical spellings before it counts credentials', () => {
    const order = acl.rules.map((r) => r.Name);
    expect(order.indexOf('AuthorizationNotCanonical')).toBeLessThan(order.indexOf('RateLimitPerBearerToken'));
    expect(order.indexOf('AuthorizationNotCanonical')).toBeLessThan(order.indexOf('RateLimitPerApiKey'));
    expect(CANONICAL_AUTHORIZATION.startsWith('^') && CANONICAL_AUTHORIZATION.endsWith('$')).toBe(true);
  });

  it('refuses a credential limit WAF would not take', () => {
    const stack = bareStack('eu-west-1');
    expect(
      () =>
        new EdgeWebAcl(stack, 'Acl', {
          scope: 'REGIONAL',
          protection: {
            rateLimitPerFiveMinutes: 2000,
            maxRequestBodyBytes: 16_384,
            credentialRateLimits: { bearerTokenPerFiveMinutes: 99, apiKeyPerFiveMinutes: 900 },
          },
        }),
    ).toThrow(/bearerTokenPerFiveMinutes must be an integer of at least 100/);
  });
});
