import {
  ConfigError,
  PLACEHOLDER_ACCOUNT,
  envKey,
  loadDeployments,
  parseCatalogue,
  parseDeployment,
  placeholderFields,
  type DeploymentInput,
} from '../../lib/config';
import { CATALOGUE_NAMES, EU, INDIA, PINNED, shippedInput } from '../support/catalogue';

// Every case below starts from the shipped EU entry (region eu-west-1, zone eu), under a neutral name.
const valid = shippedInput(EU);
const NAME = 'dep-a';
const CATALOGUE_SOURCE = / \(from catalogue\)$/;
const REAL = '123456789012';
const cert = (region: string, account: string, id = '1f2e3d4c-5b6a-4978-8695-a4b3c2d1e0f9') =>
  `arn:aws:acm:${region}:${account}:certificate/${id}`;

/** A deep copy of the EU entry with `value` at the dotted `path` (removed when undefined). */
function withField(path: string, value: unknown, base: unknown = valid): Record<string, unknown> {
  const copy = JSON.parse(JSON.stringify(base)) as Record<string, unknown>;
  const keys = path.split('.');
  let node: Record<string, unknown> = copy;
  for (const k of keys.slice(0, -1)) node = (node[k] ??= {}) as Record<string, unknown>;
  const last = keys[keys.length - 1] as string;
  if (value === undefined) delete node[last];
  else node[last] = value;
  return copy;
}

/** The EU entry made deployable: real account, domain, certificate and alarm e-mail. */
const deployable = [
  ['account', REAL],
  ['edge.domainName', 'api.eu.acme-saas.io'],
  ['edge.certificateArn', cert('eu-west-1', REAL)],
  ['alarms.email', 'oncall@acme-saas.io'],
].reduce<Record<string, unknown>>((acc, [p, v]) => withField(p as string, v, acc), withField('account', REAL));

function problemsOf(name: string, input: unknown): string[] {
  try {
    parseDeployment(name, input);
  } catch (e) {
    if (e instanceof ConfigError) return [...e.problems];
    throw e;
  }
  return [];
}

function loadProblems(...args: Parameters<typeof loadDeployments>): string[] {
  try {
    loadDeployments(...args);
  } catch (e) {
    if (e instanceof ConfigError) return [...e.problems];
    throw e;
  }
  return [];
}

describe('deployment catalogue', () => {
  it('ships the pinned deployments (test/support/catalogue.ts), and every entry is valid', () => {
    const all = loadDeployments();
    expect(all.map((d) => d.name)).toEqual(CATALOGUE_NAMES);
    for (const pin of PINNED) expect(all.find((d) => d.name === pin.name)).toMatchObject(pin);
    for (const d of all) {
      expect(d.availabilityZones.length).toBeGreaterThanOrEqual(2);
      expect(Object.keys(d.auditRetentionMonths).sort()).toEqual(['business', 'enterprise', 'pro']);
    }
  });

  // Each bad configuration must be refused with a message naming the deployment, the field and the source.
  const cases: ReadonlyArray<[string, string, unknown, RegExp]> = [
    [
      'backup region outside the zone',
      'backupRegion',
      'us-east-1',
      /^dep-a\.backupRegion: us-east-1 is outside residency zone eu/,
    ],
    [
      'backup region in London (not EU)',
      'backupRegion',
      'eu-west-2',
      /^dep-a\.backupRegion: eu-west-2 is outside residency zone eu/,
    ],
    [
      'backup region equal to the primary',
      'backupRegion',
      'eu-west-1',
      /^dep-a\.backupRegion: eu-west-1 equals the primary region/,
    ],
    ['unknown region', 'region', 'eu-west-9', /^dep-a\.region: eu-west-9 is not a known region/],
    ['region named constructor', 'region', 'constructor', /^dep-a\.region: constructor is not a known region/],
    ['region named toString', 'region', 'toString', /^dep-a\.region: toString is not a known region/],
    ['region named __proto__', 'region', '__proto__', /^dep-a\.region: __proto__ is not a known region/],
    [
      'backup region named constructor',
      'backupRegion',
      'constructor',
      /^dep-a\.backupRegion: constructor is not a known/,
    ],
    ['backup region named __proto__', 'backupRegion', '__proto__', /^dep-a\.backupRegion: __proto__ is not a known/],
    [
      'a look-alike region (Cyrillic e)',
      'region',
      'eu-w\u0435st-1',
      /^dep-a\.region: eu-w\\u\{435\}st-1 is not a known region/,
    ],
    [
      'primary region outside the zone',
      'region',
      'us-east-2',
      /^dep-a\.region: us-east-2 is outside residency zone eu/,
    ],
    [
      'fewer than 2 AZs',
      'availabilityZones',
      ['eu-west-1a'],
      /^dep-a\.availabilityZones: needs at least 2 availability zones/,
    ],
    [
      'AZ not in the region',
      'availabilityZones',
      ['eu-west-1a', 'eu-central-1b'],
      /^dep-a\.availabilityZones\[1\]: eu-central-1b is not an availability zone of eu-west-1/,
    ],
    [
      'duplicated AZ',
      'availabilityZones',
      ['eu-west-1a', 'eu-west-1a'],
      /^dep-a\.availabilityZones\[1\]: eu-west-1a is listed twice/,
    ],
    ['malformed account', 'account', '12345', /^dep-a\.account: must be a 12-digit AWS account id/],
    ['account of the wrong type', 'account', 123456789012, /^dep-a\.account: /],
    ['AZs of the wrong type', 'availabilityZones', 'eu-west-1a', /^dep-a\.availabilityZones: must be a list/],
    ['unknown residency zone', 'residency', 'mars', /^dep-a\.residency: /],
    [
      'unknown key',
      'backupRegions',
      ['eu-central-1'],
      /^dep-a\.backupRegions: is not a known field \(known: account, region, backupRegion,/,
    ],
    ['unknown nested key', 'edge.domain', 'x.io', /^dep-a\.edge\.domain: is not a known field \(known: domainName,/],
    ['missing field', 'alarms', undefined, /^dep-a\.alarms: /],
    ['bad alarm email', 'alarms.email', 'not-an-email', /^dep-a\.alarms\.email: must be an email address/],
    [
      'enterprise retention below 7 years',
      'auditRetentionMonths.enterprise',
      60,
      /^dep-a\.auditRetentionMonths\.enterprise: 60 months is below the enterprise plan minimum of 84/,
    ],
    ['fractional retention', 'auditRetentionMonths.pro', 12.5, /^dep-a\.auditRetentionMonths\.pro: /],
    [
      'retention past Object Lock’s 100 years',
      'auditRetentionMonths.enterprise',
      1e9,
      /^dep-a\.auditRetentionMonths\.enterprise: S3 Object Lock retains for at most 1200 months/,
    ],
    [
      'Telnyx key with non-zero padding bits',
      'webhooks',
      { telnyxPublicKey: `${'A'.repeat(42)}B=` },
      /^dep-a\.webhooks\.telnyxPublicKey: is not a canonical base64 Ed25519 public key/,
    ],
    [
      'certificate in another region',
      'edge.certificateArn',
      cert('us-east-1', PLACEHOLDER_ACCOUNT),
      /^dep-a\.edge\.certificateArn: certificate is in us-east-1; the API custom domain needs one in eu-west-1/,
    ],
    [
      'CloudFront certificate outside us-east-1',
      'edge.cloudFrontCertificateArn',
      cert('eu-west-1', PLACEHOLDER_ACCOUNT),
      /^dep-a\.edge\.cloudFrontCertificateArn: certificate is in eu-west-1; CloudFront only accepts/,
    ],
    [
      'upper-case domain',
      'edge.domainName',
      'API.Example.com',
      /^dep-a\.edge\.domainName: must be a lower-case fully qualified domain name/,
    ],
    [
      'rate limit below the WAF minimum',
      'edge.rateLimitPerFiveMinutes',
      10,
      /^dep-a\.edge\.rateLimitPerFiveMinutes: WAF rate limits start at 100/,
    ],
    [
      'burst below rate',
      'edge.throttle.burstLimit',
      10,
      /^dep-a\.edge\.throttle\.burstLimit: burst limit 10 is below the rate limit 200/,
    ],
    [
      'a CIDR that is no address',
      'data.vpcCidr',
      '999.999.999.999/16',
      /^dep-a\.data\.vpcCidr: 999\.999\.999\.999\/16 is not an IPv4 address/,
    ],
    [
      'a CIDR with host bits set',
      'data.vpcCidr',
      '10.40.1.0/16',
      /^dep-a\.data\.vpcCidr: 10\.40\.1\.0\/16 has host bits set; the network is 10\.40\.0\.0\/16/,
    ],
    ['a CIDR too large', 'data.vpcCidr', '10.0.0.0/8', /^dep-a\.data\.vpcCidr: .*from \/16 to \/20/],
    [
      'a CSP that lets anyone frame the API',
      'edge.contentSecurityPolicy',
      "default-src 'none'; frame-ancestors *",
      /^dep-a\.edge\.contentSecurityPolicy: frame-ancestors \* admits any origin/,
    ],
    [
      'a CSP that loads from anywhere',
      'edge.contentSecurityPolicy',
      "default-src *; frame-ancestors 'none'",
      /^dep-a\.edge\.contentSecurityPolicy: default-src \* admits any origin/,
    ],
    [
      'a CSP without default-src',
      'edge.contentSecurityPolicy',
      "frame-ancestors 'none'",
      /^dep-a\.edge\.contentSecurityPolicy: must set default-src/,
    ],
    [
      'an exempt prefix that climbs out',
      'edge.hostingProviderExemptPathPrefixes',
      ['/webhooks/../admin'],
      /^dep-a\.edge\.hostingProviderExemptPathPrefixes\[0\]: \/webhooks\/\.\.\/admin has an empty, \. or \.\. segment.*\(\/admin\)/,
    ],
    [
      'an exempt prefix with //',
      'edge.hostingProviderExemptPathPrefixes',
      ['//webhooks/'],
      /^dep-a\.edge\.hostingProviderExemptPathPrefixes\[0\]: .*\(\/webhooks\/\)/,
    ],
  ];

  it.each(cases)('refuses %s', (_title, field, value, expected) => {
    const problems = problemsOf(NAME, withField(field, value));
    expect(problems.filter((p) => expected.test(p))).toEqual([expect.stringMatching(CATALOGUE_SOURCE)]);
  });

  it('refuses a null entry, or one that is not an object, naming the deployment', () => {
    expect(problemsOf(NAME, null)).toEqual([
      'dep-a: must be an object of deployment settings, not null (from catalogue)',
    ]);
    expect(problemsOf(NAME, ['x'])).toEqual([
      'dep-a: must be an object of deployment settings, not a list (from catalogue)',
    ]);
  });

  it('lists every problem: a type error does not hide the checks between fields', () => {
    const input = withField('backupRegion', 'eu-west-1', withField('account', 5));
    const problems = problemsOf(NAME, withField('edge.throttle.rateLimit', 'fast', input));
    expect(problems).toEqual([
      expect.stringMatching(/^dep-a\.account: Invalid input: expected string, received number/),
      expect.stringMatching(/^dep-a\.edge\.throttle\.rateLimit: /),
      expect.stringMatching(/^dep-a\.backupRegion: eu-west-1 equals the primary region/),
    ]);
    // A broken edge section keeps the checks that need only other fields.
    expect(problemsOf(NAME, withField('region', 'us-east-2', withField('edge', 'none')))).toEqual([
      expect.stringMatching(/^dep-a\.edge: /),
      expect.stringMatching(/^dep-a\.region: us-east-2 is outside residency zone eu/),
      expect.stringMatching(/^dep-a\.availabilityZones\[0\]: eu-west-1a is not an availability zone of us-east-2/),
      expect.stringMatching(/^dep-a\.availabilityZones\[1\]/),
      expect.stringMatching(/^dep-a\.availabilityZones\[2\]/),
    ]);
  });

  it('refuses a malformed deployment name, escaping what is not printable ASCII', () => {
    expect(problemsOf('Prod_EU', valid)).toEqual([
      'Prod_EU: deployment names are 3-32 lower-case letters, digits and dashes (from catalogue)',
    ]);
    expect(problemsOf('prod-\u0435u', valid)).toEqual([
      'prod-\\u{435}u: deployment names are 3-32 lower-case letters, digits and dashes (from catalogue)',
    ]);
  });

  it('loads deployments named like Object members, with no prototype lookups', () => {
    const catalogue = JSON.parse(
      `{"constructor": ${JSON.stringify(valid)}, "__proto__": ${JSON.stringify(valid)}}`,
    ) as Record<string, DeploymentInput>;
    expect(loadProblems({ catalogue })).toEqual([
      '__proto__: deployment names are 3-32 lower-case letters, digits and dashes (from catalogue)',
    ]);
    expect(
      loadDeployments({
        catalogue: { constructor: deployable as DeploymentInput },
        context: { 'constructor:account': REAL },
      }),
    ).toEqual([expect.objectContaining({ name: 'constructor', account: REAL })]);
  });

  it('reports every problem of every deployment at once', () => {
    expect(() =>
      parseCatalogue({
        a1a: withField('backupRegion', 'us-east-1'),
        b2b: withField('account', 'x'),
      }),
    ).toThrow(
      /a1a\.backupRegion: us-east-1 is outside residency zone eu \(from catalogue\)\n {2}- b2b\.account: must be a 12-digit/,
    );
  });

  it('refuses an empty catalogue, or one that is not an object', () => {
    expect(() => parseCatalogue({})).toThrow(/catalogue: lists no deployments/);
    expect(() => parseCatalogue(null)).toThrow(/catalogue: must map deployment names to settings, not null/);
  });
});

describe('placeholders cannot reach a deploy', () => {
  it('allows every placeholder with the placeholder account, and names them for the synth summary', () => {
    const d = parseDeployment(NAME, valid);
    expect(placeholderFields(d)).toEqual(['account', 'edge.domainName', 'edge.certificateArn', 'alarms.email']);
    expect(placeholderFields(parseDeployment(NAME, deployable))).toEqual([]);
  });

  it('refuses each placeholder once the account is real, naming the field', () => {
    expect(problemsOf(NAME, withField('account', REAL))).toEqual([
      expect.stringMatching(
        /^dep-a\.edge\.certificateArn: is the catalogue's placeholder certificate; .* \(from catalogue\)$/,
      ),
      expect.stringMatching(/^dep-a\.edge\.domainName: api\.eu\.bulwark\.example\.com is a placeholder/),
      expect.stringMatching(/^dep-a\.alarms\.email: platform-alarms@bulwark\.example\.com is a placeholder/),
    ]);
    expect(problemsOf(NAME, deployable)).toEqual([]);
  });

  it.each([
    [
      'a placeholder certificate id in the real account',
      'edge.certificateArn',
      cert('eu-west-1', REAL, '00000000-0000-4000-8000-000000000000'),
      /is the catalogue's placeholder certificate/,
    ],
    [
      'a certificate in another account',
      'edge.certificateArn',
      cert('eu-west-1', '210987654321'),
      /certificate is in account 210987654321, not the deployment's account 123456789012/,
    ],
    [
      'a certificate in the wrong region',
      'edge.certificateArn',
      cert('eu-central-1', REAL),
      /certificate is in eu-central-1; the API custom domain needs one in eu-west-1/,
    ],
    ['a reserved test domain', 'edge.domainName', 'api.bulwark.test', /is a placeholder/],
    ['an e-mail at example.org', 'alarms.email', 'ops@example.org', /is a placeholder/],
  ])('refuses %s', (_title, field, value, expected) => {
    const problems = problemsOf(NAME, withField(field, value, deployable));
    expect(problems).toEqual([expect.stringMatching(new RegExp(`^dep-a\\.${field.replace('.', '\\.')}: `))]);
    expect(problems[0]).toMatch(expected);
  });

  it('checks a CloudFront certificate the same way', () => {
    const us = withField(
      'edge.cloudFrontCertificateArn',
      cert('us-east-1', '210987654321'),
      withField('edge.entry', 'cloudfront', deployable),
    );
    expect(problemsOf(NAME, us)).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^dep-a\.edge\.cloudFrontCertificateArn: certificate is in account 210987654321/),
      ]),
    );
  });
});

describe('loading the catalogue', () => {
  it('selects deployments with the `deployments` context key', () => {
    expect(loadDeployments({ context: { deployments: EU.name } }).map((d) => d.name)).toEqual([EU.name]);
  });

  it('names an unknown selected deployment, and refuses a selection of nothing', () => {
    expect(loadProblems({ context: { deployments: `${EU.name},prod-mars` } })).toEqual([
      `deployments: prod-mars is not in the catalogue (${CATALOGUE_NAMES.join(', ')}) (from context deployments)`,
    ]);
    expect(loadProblems({ context: { deployments: ',' } })).toEqual([
      'deployments: , selects no deployment; omit it to select all (from context deployments)',
    ]);
    expect(loadProblems({ context: { deployments: 7 } })).toEqual([
      'deployments: must be a comma-separated list of deployment names, not 7 (from context deployments)',
    ]);
  });

  it('overrides the placeholder account, most specific source first', () => {
    const catalogue = { 'dep-a': valid, 'dep-b': shippedInput(INDIA) };
    const env = { BULWARK_ACCOUNT: '111111111111', [envKey('dep-a')]: '222222222222' };
    const accounts = (ctx: Record<string, unknown> = {}) =>
      Object.fromEntries(
        (() => {
          try {
            return loadDeployments({ catalogue, env, context: ctx });
          } catch (e) {
            // Real accounts refuse the shipped placeholders; the account each deployment got is what matters here.
            return (e as ConfigError).problems.flatMap((p) => {
              const m = /^(dep-[ab])\.edge\.certificateArn: .* account (\d{12}) /.exec(p);
              return m ? [{ name: m[1] as string, account: m[2] as string }] : [];
            });
          }
        })().map((d) => [d.name, d.account]),
      );
    expect(accounts()).toEqual({ 'dep-a': '222222222222', 'dep-b': '111111111111' });
    expect(accounts({ 'dep-a:account': '333333333333', account: '444444444444' })).toEqual({
      'dep-a': '333333333333',
      'dep-b': '444444444444',
    });
  });

  it('says where a bad value came from: context or environment', () => {
    expect(loadProblems({ env: { [envKey(EU.name)]: 'abc' }, context: { deployments: EU.name } })).toEqual([
      `${EU.name}.account: must be a 12-digit AWS account id (from environment ${envKey(EU.name)})`,
    ]);
    expect(loadProblems({ catalogue: { 'dep-a': valid }, context: { account: 123456789012 } })).toEqual([
      'dep-a.account: 123456789012 is a number; pass the account as a string of 12 digits (a number loses leading zeros) (from context account)',
      'dep-a.account: Invalid input: expected string, received number (from context account)',
    ]);
    expect(loadProblems({ catalogue: { 'dep-a': valid }, context: { 'dep-b:account': REAL } })).toEqual([
      'dep-b.account: there is no deployment dep-b in the catalogue (dep-a) (from context dep-b:account)',
    ]);
    expect(loadProblems({ catalogue: { 'dep-a': valid }, env: { BULWARK_ACCOUNT_DEP_AA: REAL } })).toEqual([
      'dep-aa.account: there is no deployment dep-aa in the catalogue (dep-a); its variable would be one of ' +
        'BULWARK_ACCOUNT_DEP_A (from environment BULWARK_ACCOUNT_DEP_AA)',
    ]);
    // The right variable is read (its bad value is reported), an empty mistyped one counts as unset.
    expect(
      loadProblems({ catalogue: { 'dep-a': valid }, env: { BULWARK_ACCOUNT_DEP_A: 'abc', BULWARK_ACCOUNT_X: '' } }),
    ).toEqual(['dep-a.account: must be a 12-digit AWS account id (from environment BULWARK_ACCOUNT_DEP_A)']);
  });

  it('ignores an empty environment variable but not an empty context value', () => {
    expect(loadDeployments({ catalogue: { 'dep-a': valid }, env: { BULWARK_ACCOUNT: '' } })[0]?.account).toBe(
      PLACEHOLDER_ACCOUNT,
    );
    expect(loadProblems({ catalogue: { 'dep-a': valid }, context: { account: '' } })).toEqual([
      'dep-a.account: must be a 12-digit AWS account id (from context account)',
    ]);
  });

  it('validates every deployment even when only one is selected', () => {
    const catalogue = { 'dep-a': valid, broken: withField('region', 'nowhere-1') as DeploymentInput };
    expect(() => loadDeployments({ catalogue, context: { deployments: 'dep-a' } })).toThrow(
      /broken\.region: nowhere-1/,
    );
  });
});
