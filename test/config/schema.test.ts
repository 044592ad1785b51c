import {
  CATALOGUE,
  ConfigError,
  loadDeployments,
  parseCatalogue,
  parseDeployment,
  type DeploymentInput,
} from '../../lib/config';

const valid = CATALOGUE['prod-eu'] as DeploymentInput;

/** Returns a deep copy of the prod-eu entry with `patch` applied at `path`. */
function withField(path: string, value: unknown): unknown {
  const copy = JSON.parse(JSON.stringify(valid)) as Record<string, unknown>;
  const keys = path.split('.');
  let node: Record<string, unknown> = copy;
  for (const k of keys.slice(0, -1)) node = node[k] as Record<string, unknown>;
  const last = keys[keys.length - 1] as string;
  if (value === undefined) delete node[last];
  else node[last] = value;
  return copy;
}

function problemsOf(name: string, input: unknown): string[] {
  try {
    parseDeployment(name, input);
  } catch (e) {
    if (e instanceof ConfigError) return [...e.problems];
    throw e;
  }
  return [];
}

describe('deployment catalogue', () => {
  it('ships prod-ap-south-1 and prod-eu, both valid', () => {
    const all = loadDeployments();
    expect(all.map((d) => d.name)).toEqual(['prod-ap-south-1', 'prod-eu']);
    const ap = all[0];
    expect(ap).toMatchObject({ region: 'ap-south-1', backupRegion: 'ap-south-2', residency: 'in' });
    expect(all[1]).toMatchObject({ region: 'eu-west-1', backupRegion: 'eu-central-1', residency: 'eu' });
    for (const d of all) {
      expect(d.availabilityZones).toHaveLength(3);
      expect(d.auditRetentionMonths).toEqual({ pro: 12, business: 24, enterprise: 84 });
    }
  });

  // Each bad configuration must be refused with a message naming the deployment and the field.
  const cases: ReadonlyArray<[string, string, unknown, RegExp]> = [
    [
      'backup region outside the residency zone',
      'backupRegion',
      'us-east-1',
      /^prod-eu\.backupRegion: us-east-1 is outside residency zone eu$/,
    ],
    [
      'backup region in London (not EU)',
      'backupRegion',
      'eu-west-2',
      /^prod-eu\.backupRegion: eu-west-2 is outside residency zone eu$/,
    ],
    [
      'backup region equal to the primary',
      'backupRegion',
      'eu-west-1',
      /^prod-eu\.backupRegion: eu-west-1 equals the primary region/,
    ],
    ['unknown region', 'region', 'eu-west-9', /^prod-eu\.region: eu-west-9 is not a known region/],
    [
      'primary region outside the residency zone',
      'region',
      'us-east-2',
      /^prod-eu\.region: us-east-2 is outside residency zone eu$/,
    ],
    [
      'fewer than 2 AZs',
      'availabilityZones',
      ['eu-west-1a'],
      /^prod-eu\.availabilityZones: needs at least 2 availability zones/,
    ],
    [
      'AZ not in the region',
      'availabilityZones',
      ['eu-west-1a', 'eu-central-1b'],
      /^prod-eu\.availabilityZones\[1\]: eu-central-1b is not an availability zone of eu-west-1/,
    ],
    [
      'duplicated AZ',
      'availabilityZones',
      ['eu-west-1a', 'eu-west-1a'],
      /^prod-eu\.availabilityZones\[1\]: eu-west-1a is listed twice$/,
    ],
    ['malformed account', 'account', '12345', /^prod-eu\.account: must be a 12-digit AWS account id$/],
    ['account of the wrong type', 'account', 123456789012, /^prod-eu\.account: /],
    ['AZs of the wrong type', 'availabilityZones', 'eu-west-1a', /^prod-eu\.availabilityZones: must be a list/],
    ['unknown residency zone', 'residency', 'mars', /^prod-eu\.residency: /],
    ['unknown key', 'backupRegions', ['eu-central-1'], /^prod-eu: Unrecognized key: "backupRegions"$/],
    ['missing field', 'alarms', undefined, /^prod-eu\.alarms: /],
    ['bad alarm email', 'alarms.email', 'not-an-email', /^prod-eu\.alarms\.email: must be an email address$/],
    [
      'enterprise retention below 7 years',
      'auditRetentionMonths.enterprise',
      60,
      /^prod-eu\.auditRetentionMonths\.enterprise: 60 months is below the enterprise plan minimum of 84$/,
    ],
    ['fractional retention', 'auditRetentionMonths.pro', 12.5, /^prod-eu\.auditRetentionMonths\.pro: /],
    [
      'Telnyx key with non-zero padding bits',
      'webhooks',
      { telnyxPublicKey: `${'A'.repeat(42)}B=` },
      /^prod-eu\.webhooks\.telnyxPublicKey: is not a canonical base64 Ed25519 public key$/,
    ],
    [
      'certificate in another region',
      'edge.certificateArn',
      'arn:aws:acm:us-east-1:000000000000:certificate/00000000-0000-4000-8000-000000000000',
      /^prod-eu\.edge\.certificateArn: certificate is in us-east-1; the API custom domain needs one in eu-west-1$/,
    ],
    [
      'CloudFront certificate outside us-east-1',
      'edge.cloudFrontCertificateArn',
      'arn:aws:acm:eu-west-1:000000000000:certificate/00000000-0000-4000-8000-000000000000',
      /^prod-eu\.edge\.cloudFrontCertificateArn: certificate is in eu-west-1; CloudFront only accepts/,
    ],
    [
      'upper-case domain',
      'edge.domainName',
      'API.Example.com',
      /^prod-eu\.edge\.domainName: must be a lower-case fully qualified domain name$/,
    ],
    [
      'rate limit below the WAF minimum',
      'edge.rateLimitPerFiveMinutes',
      10,
      /^prod-eu\.edge\.rateLimitPerFiveMinutes: WAF rate limits start at 100$/,
    ],
    [
      'burst below rate',
      'edge.throttle.burstLimit',
      10,
      /^prod-eu\.edge\.throttle\.burstLimit: burst limit 10 is below the rate limit 200$/,
    ],
  ];

  it.each(cases)('refuses %s', (_title, field, value, expected) => {
    const problems = problemsOf('prod-eu', withField(field, value));
    expect(problems.length).toBeGreaterThan(0);
    expect(problems.some((p) => expected.test(p))).toBe(true);
  });

  it('refuses a malformed deployment name', () => {
    expect(problemsOf('Prod_EU', valid)).toEqual([
      'Prod_EU: deployment names are 3-32 lower-case letters, digits and dashes',
    ]);
  });

  it('reports every problem of every deployment at once', () => {
    expect(() =>
      parseCatalogue({
        a1a: withField('backupRegion', 'us-east-1'),
        b2b: withField('account', 'x'),
      }),
    ).toThrow(/a1a\.backupRegion: us-east-1 is outside residency zone eu\n {2}- b2b\.account: must be a 12-digit/);
  });

  it('refuses an empty catalogue', () => {
    expect(() => parseCatalogue({})).toThrow(/catalogue: lists no deployments/);
  });
});

describe('loading the catalogue', () => {
  it('selects deployments with the `deployments` context key', () => {
    expect(loadDeployments({ context: { deployments: 'prod-eu' } }).map((d) => d.name)).toEqual(['prod-eu']);
  });

  it('names an unknown selected deployment', () => {
    expect(() => loadDeployments({ context: { deployments: 'prod-eu,prod-mars' } })).toThrow(
      /deployments: prod-mars is not in the catalogue \(prod-ap-south-1, prod-eu\)/,
    );
  });

  it('overrides the placeholder account, most specific source first', () => {
    const env = { BULWARK_ACCOUNT: '111111111111', BULWARK_ACCOUNT_PROD_EU: '222222222222' };
    const byName = (ds: ReturnType<typeof loadDeployments>) => Object.fromEntries(ds.map((d) => [d.name, d.account]));
    expect(byName(loadDeployments({ env }))).toEqual({ 'prod-ap-south-1': '111111111111', 'prod-eu': '222222222222' });
    expect(
      byName(loadDeployments({ env, context: { 'prod-eu:account': '333333333333', account: '444444444444' } })),
    ).toEqual({ 'prod-ap-south-1': '444444444444', 'prod-eu': '333333333333' });
  });

  it('validates overrides too', () => {
    expect(() => loadDeployments({ env: { BULWARK_ACCOUNT_PROD_EU: 'abc' } })).toThrow(
      /prod-eu\.account: must be a 12-digit AWS account id/,
    );
  });

  it('validates every deployment even when only one is selected', () => {
    const catalogue = { ...CATALOGUE, broken: withField('region', 'nowhere-1') as DeploymentInput };
    expect(() => loadDeployments({ catalogue, context: { deployments: 'prod-eu' } })).toThrow(
      /broken\.region: nowhere-1/,
    );
  });
});
