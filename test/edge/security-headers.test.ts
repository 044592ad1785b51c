import fc from 'fast-check';
import {
  DEFAULT_CONTENT_SECURITY_POLICY,
  HSTS_VALUE,
  securityHeaders,
  withSecurityHeaders,
} from '../../contracts/security-headers';

describe('security headers', () => {
  it('pins the exact values', () => {
    expect(securityHeaders()).toEqual({
      'Strict-Transport-Security': 'max-age=63072000; includeSubDomains; preload',
      'X-Content-Type-Options': 'nosniff',
      'X-Frame-Options': 'DENY',
      'Referrer-Policy': 'no-referrer',
      'Content-Security-Policy': "default-src 'none'; frame-ancestors 'none'",
      'Cache-Control': 'no-store',
    });
    expect(HSTS_VALUE).toBe('max-age=63072000; includeSubDomains; preload');
    expect(DEFAULT_CONTENT_SECURITY_POLICY).toBe("default-src 'none'; frame-ancestors 'none'");
  });

  it('adds them to a proxy result and keeps the handler headers that do not clash', () => {
    const out = withSecurityHeaders({ statusCode: 200, body: '{}', headers: { 'Content-Type': 'application/json' } });
    expect(out.statusCode).toBe(200);
    expect(out.body).toBe('{}');
    expect(out.headers).toEqual({ 'Content-Type': 'application/json', ...securityHeaders() });
  });

  it('never lets a handler header weaken one of them, whatever its case', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...Object.keys(securityHeaders())),
        fc.string(),
        fc.boolean(),
        (name, value, upper) => {
          const handlerName = upper ? name.toUpperCase() : name.toLowerCase();
          const out = withSecurityHeaders({ headers: { [handlerName]: value } });
          const matching = Object.entries(out.headers).filter(([n]) => n.toLowerCase() === name.toLowerCase());
          expect(matching).toEqual([[name, securityHeaders()[name]]]);
        },
      ),
    );
  });

  it('uses the configured CSP', () => {
    expect(withSecurityHeaders({}, "default-src 'none'; frame-ancestors 'none'; sandbox").headers).toMatchObject({
      'Content-Security-Policy': "default-src 'none'; frame-ancestors 'none'; sandbox",
    });
  });
});
