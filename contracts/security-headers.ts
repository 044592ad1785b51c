/**
 * The security headers every API response carries, whichever entry point serves it.
 *
 * Shared by the CDK app (gateway responses, CloudFront, the rule pack) and the Lambda handlers: API Gateway
 * cannot add headers to Lambda proxy responses, so on a `regional` entry the handler sets them
 * (docs/edge.md "Security headers").
 */

/** Two years, subdomains, and eligible for the browsers' preload list. Exact value; tests pin it. */
export const HSTS_VALUE = 'max-age=63072000; includeSubDomains; preload';
export const HSTS_MAX_AGE_SECONDS = 63_072_000;

/** The API serves JSON only: nothing may load, nothing may frame it. */
export const DEFAULT_CONTENT_SECURITY_POLICY = "default-src 'none'; frame-ancestors 'none'";

/** Header name to value, in a stable order. */
export function securityHeaders(
  contentSecurityPolicy: string = DEFAULT_CONTENT_SECURITY_POLICY,
): Readonly<Record<string, string>> {
  return {
    'Strict-Transport-Security': HSTS_VALUE,
    'X-Content-Type-Options': 'nosniff',
    'X-Frame-Options': 'DENY',
    'Referrer-Policy': 'no-referrer',
    'Content-Security-Policy': contentSecurityPolicy,
    // Responses are per tenant and per user; no shared cache may keep them.
    'Cache-Control': 'no-store',
  };
}

/** The part of an API Gateway proxy result this module touches. */
export interface ProxyResultHeaders {
  readonly headers?: { readonly [name: string]: string | number | boolean };
}

function headerSet(contentSecurityPolicy: string) {
  const secure = securityHeaders(contentSecurityPolicy);
  return { secure, overridden: new Set(Object.keys(secure).map((h) => h.toLowerCase())) };
}
// Every response of every handler adds these: built once per cold start, not per response.
const DEFAULT_SET = headerSet(DEFAULT_CONTENT_SECURITY_POLICY);

/**
 * Returns `response` with the security headers added, for Lambda proxy handlers behind the API.
 * The security headers win over same-named headers the handler set (compared case-insensitively),
 * so a handler cannot weaken HSTS or the CSP by accident.
 */
export function withSecurityHeaders<T extends ProxyResultHeaders>(
  response: T,
  contentSecurityPolicy: string = DEFAULT_CONTENT_SECURITY_POLICY,
): T & { readonly headers: { readonly [name: string]: string | number | boolean } } {
  const { secure, overridden } =
    contentSecurityPolicy === DEFAULT_CONTENT_SECURITY_POLICY ? DEFAULT_SET : headerSet(contentSecurityPolicy);
  const kept = Object.entries(response.headers ?? {}).filter(([name]) => !overridden.has(name.toLowerCase()));
  return { ...response, headers: { ...Object.fromEntries(kept), ...secure } };
}
