import { ConfigError, parseDeployment, CATALOGUE, regionInZone, type DeploymentInput } from '../../lib/config';
import { DEFAULT_CONTENT_SECURITY_POLICY } from '../../contracts/security-headers';
import { cloudFrontDeploymentInput } from './helpers';
import { EU, shippedInput } from '../support/catalogue';

function problems(name: string, input: unknown): string[] {
  try {
    parseDeployment(name, input);
    return [];
  } catch (e) {
    if (e instanceof ConfigError) return [...e.problems];
    throw e;
  }
}

const eu = shippedInput(EU);
const US_EAST_1_CERT = 'arn:aws:acm:us-east-1:000000000000:certificate/00000000-0000-4000-8000-000000000000';

describe('edge configuration', () => {
  it('defaults to a regional entry, a 16 KiB body limit (64 KiB for webhooks) and the restrictive CSP', () => {
    const { entry: _entry, ...edge } = eu.edge;
    const d = parseDeployment('prod-eu', { ...eu, edge });
    expect(d.edge.entry).toBe('regional');
    expect(d.edge.maxRequestBodyBytes).toBe(16_384);
    expect(d.edge.webhookMaxRequestBodyBytes).toBe(65_536);
    expect(d.edge.contentSecurityPolicy).toBe(DEFAULT_CONTENT_SECURITY_POLICY);
    expect(d.edge.apiTlsPolicy).toBe('SecurityPolicy_TLS13_1_2_PFS_PQ_2025_09');
    expect(DEFAULT_CONTENT_SECURITY_POLICY).toBe("default-src 'none'; frame-ancestors 'none'");
  });

  // Every catalogue deployment whose residency zone excludes us-east-1, whatever its entry today.
  const outsideUsEast1 = Object.entries(CATALOGUE)
    .filter(([, d]) => !regionInZone('us-east-1', d.residency))
    .map(([name, d]) => [name, d.residency, d] as [string, string, DeploymentInput]);

  it('ships deployments whose zone excludes us-east-1', () => {
    expect(outsideUsEast1.map(([name]) => name)).toContain(EU.name);
  });

  it.each(outsideUsEast1)(
    'refuses a CloudFront entry for %s: its web ACL logs would sit in us-east-1, outside %s',
    (name, zone, input) => {
      const found = problems(name, {
        ...input,
        edge: { ...input.edge, entry: 'cloudfront', cloudFrontCertificateArn: US_EAST_1_CERT },
      });
      expect(found).toEqual([
        expect.stringMatching(new RegExp(`^${name}\\.edge\\.entry: .*outside residency zone ${zone}`)),
      ]);
    },
  );

  it('accepts a CloudFront entry where the zone contains us-east-1, and then requires the us-east-1 certificate', () => {
    expect(problems('prod-us', cloudFrontDeploymentInput())).toEqual([]);
    expect(problems('prod-us', cloudFrontDeploymentInput({ cloudFrontCertificateArn: undefined }))).toEqual([
      expect.stringMatching(/^prod-us\.edge\.cloudFrontCertificateArn: is required when edge\.entry is cloudfront/),
    ]);
  });

  it('refuses a TLS 1.3-only API behind CloudFront, which reaches origins over TLS 1.2', () => {
    expect(
      problems('prod-us', cloudFrontDeploymentInput({ apiTlsPolicy: 'SecurityPolicy_TLS13_1_3_2025_09' })),
    ).toEqual([expect.stringMatching(/^prod-us\.edge\.apiTlsPolicy: CloudFront connects to origins with TLS 1\.2/)]);
    expect(
      problems('prod-eu', { ...eu, edge: { ...eu.edge, apiTlsPolicy: 'SecurityPolicy_TLS13_1_3_2025_09' } }),
    ).toEqual([]);
    expect(problems('prod-eu', { ...eu, edge: { ...eu.edge, apiTlsPolicy: 'TLS_1_0' } })).toEqual([
      expect.stringMatching(/^prod-eu\.edge\.apiTlsPolicy: /),
    ]);
  });

  it('rejects a CloudFront certificate on a regional entry rather than ignoring it', () => {
    expect(problems('prod-eu', { ...eu, edge: { ...eu.edge, cloudFrontCertificateArn: US_EAST_1_CERT } })).toEqual([
      'prod-eu.edge.cloudFrontCertificateArn: is only used when edge.entry is cloudfront (from catalogue)',
    ]);
  });

  it.each([
    [0, /at least 1024 bytes/],
    [1023, /at least 1024 bytes/],
    [65_537, /inspects at most 65536 bytes/],
    [1.5, /./],
  ])('rejects a body limit of %p, for the API and for the webhooks', (limit, message) => {
    for (const field of ['maxRequestBodyBytes', 'webhookMaxRequestBodyBytes']) {
      const found = problems('prod-eu', { ...eu, edge: { ...eu.edge, [field]: limit } });
      expect(found).toEqual([expect.stringMatching(new RegExp(`^prod-eu\\.edge\\.${field}: `))]);
      expect(found[0]).toMatch(message);
    }
  });

  it('defaults to no hosting-provider exemptions and refuses prefixes that are not paths', () => {
    const { hostingProviderExemptPathPrefixes: _shipped, ...withoutExemption } = eu.edge;
    expect(
      parseDeployment('prod-eu', { ...eu, edge: withoutExemption }).edge.hostingProviderExemptPathPrefixes,
    ).toEqual([]);
    expect(
      problems('prod-eu', { ...eu, edge: { ...eu.edge, hostingProviderExemptPathPrefixes: ['/webhooks/', 'sms'] } }),
    ).toEqual([
      'prod-eu.edge.hostingProviderExemptPathPrefixes[1]: must be a URI path prefix starting with / (from catalogue)',
    ]);
  });

  it('requires the CSP to restrict framing', () => {
    expect(problems('prod-eu', { ...eu, edge: { ...eu.edge, contentSecurityPolicy: "default-src 'none'" } })).toEqual([
      'prod-eu.edge.contentSecurityPolicy: must restrict frame-ancestors (from catalogue)',
    ]);
  });
});

describe('per-tenant budget', () => {
  it('defaults to 3,000 requests per organisation per minute', () => {
    expect(parseDeployment('prod-eu', eu).edge.tenantBudget).toEqual({ requestsPerMinute: 3_000 });
  });

  it('refuses a budget the stage throttle could never reach, naming both settings', () => {
    expect(
      problems('prod-eu', {
        ...eu,
        edge: { ...eu.edge, throttle: { rateLimit: 10, burstLimit: 20 }, tenantBudget: { requestsPerMinute: 601 } },
      }),
    ).toEqual([
      'prod-eu.edge.tenantBudget.requestsPerMinute: 601 is more than the stage throttle admits in a minute (600, edge.throttle.rateLimit x 60): such a budget bounds no tenant (from catalogue)',
    ]);
  });

  it('refuses fractions, budgets under one per second and unknown fields, each by its path', () => {
    expect(
      problems('prod-eu', { ...eu, edge: { ...eu.edge, tenantBudget: { requestsPerMinute: 59.5, perPlan: {} } } }),
    ).toEqual([
      expect.stringMatching(/^prod-eu\.edge\.tenantBudget\.requestsPerMinute: /),
      expect.stringMatching(/^prod-eu\.edge\.tenantBudget\.perPlan: is not a known field/),
    ]);
  });
});

describe('per-credential rate limits', () => {
  it('default to 1,500 per bearer token and 3,000 per API key per five minutes', () => {
    expect(parseDeployment('prod-eu', eu).edge.credentialRateLimits).toEqual({
      bearerTokenPerFiveMinutes: 1_500,
      apiKeyPerFiveMinutes: 3_000,
    });
  });

  it('takes one limit and defaults the other', () => {
    const d = parseDeployment('prod-eu', {
      ...eu,
      edge: { ...eu.edge, credentialRateLimits: { apiKeyPerFiveMinutes: 6000 } },
    });
    expect(d.edge.credentialRateLimits).toEqual({ bearerTokenPerFiveMinutes: 1_500, apiKeyPerFiveMinutes: 6_000 });
  });

  it('names the deployment and the field of each bad limit', () => {
    const found = problems('prod-eu', {
      ...eu,
      edge: {
        ...eu.edge,
        credentialRateLimits: { bearerTokenPerFiveMinutes: 50, apiKeyPerFiveMinutes: 1.5, perTenant: 9 },
      },
    });
    expect(found).toEqual(
      expect.arrayContaining([
        expect.stringMatching(
          /^prod-eu\.edge\.credentialRateLimits\.bearerTokenPerFiveMinutes: WAF rate limits start at 100/,
        ),
        expect.stringMatching(/^prod-eu\.edge\.credentialRateLimits\.apiKeyPerFiveMinutes: /),
        expect.stringMatching(/^prod-eu\.edge\.credentialRateLimits\.perTenant: is not a known field/),
      ]),
    );
  });
});
