/**
 * The controls matrix: each promise Bulwark makes, the code that implements it, the tests that prove
 * it and the rules that guard it at synth. `docs/controls.md` is rendered from this list, and a test
 * fails when the document is stale, a listed file is missing, or a listed test does not exist.
 */
export interface TestRef {
  /** Test file, relative to the repository root. */
  readonly file: string;
  /** The test's title (or a describe title) exactly as written in the file. */
  readonly name: string;
}

export interface Control {
  readonly id: string;
  readonly promise: string;
  /** Source files (relative to the repository root) that implement the control. */
  readonly implementedBy: readonly string[];
  readonly provenBy: readonly TestRef[];
  /** Compliance rule ids that fail synth when the control is broken. */
  readonly guardedBy: readonly string[];
}

export const CONTROLS: readonly Control[] = [
  {
    id: 'compliance-gate',
    promise:
      'Every deployment passes five cdk-nag packs and Bulwark’s own pack with zero unacknowledged findings; each accepted finding is scoped to one resource with a specific reason.',
    implementedBy: ['lib/compliance/gate.ts', 'lib/compliance/acknowledge.ts', 'lib/compliance/bulwark-pack.ts'],
    provenBy: [
      { file: 'test/compliance/gate.test.ts', name: 'fails synth on a non-compliant construct' },
      {
        file: 'test/compliance/gate.test.ts',
        name: 'an acknowledgement removes exactly that finding on exactly that construct',
      },
      { file: 'test/compliance/acknowledge.test.ts', name: 'refuses %s as scope' },
      {
        file: 'test/foundation/deployments.test.ts',
        name: 'passes the compliance gate with zero unacknowledged findings',
      },
    ],
    guardedBy: [],
  },
  {
    id: 'hsts',
    promise: 'HTTPS only, with HSTS exactly `max-age=63072000; includeSubDomains; preload` on every response.',
    implementedBy: ['lib/compliance/bulwark-rules.ts'],
    provenBy: [
      {
        file: 'test/compliance/bulwark-pack.test.ts',
        name: 'flags a response headers policy with a short max-age, without preload, or without HSTS',
      },
      {
        file: 'test/compliance/bulwark-pack.test.ts',
        name: 'flags an API Gateway response that sets another HSTS value, accepts the exact one',
      },
    ],
    guardedBy: ['Bulwark-HstsPreload'],
  },
  {
    id: 'waf',
    promise: 'A WAF with managed rules and a per-client rate limit in front of every public entry point.',
    implementedBy: ['lib/compliance/bulwark-rules.ts'],
    provenBy: [{ file: 'test/compliance/bulwark-pack.test.ts', name: 'flags a web ACL without a rate-based rule' }],
    guardedBy: ['Bulwark-WafRateBasedRule'],
  },
  {
    id: 'encryption-in-transit',
    promise: 'TLS 1.2+ everywhere: the database refuses plaintext connections.',
    implementedBy: ['lib/compliance/bulwark-rules.ts'],
    provenBy: [
      {
        file: 'test/compliance/bulwark-pack.test.ts',
        name: 'flags a default parameter group and one without rds.force_ssl = 1',
      },
    ],
    guardedBy: ['Bulwark-RdsForceSsl'],
  },
  {
    id: 'tenant-keys-context',
    promise: 'A tenant key can only be used for data bound to its own tenant (`org_id` encryption context).',
    implementedBy: ['lib/compliance/bulwark-rules.ts'],
    provenBy: [
      {
        file: 'test/compliance/bulwark-pack.test.ts',
        name: 'flags a role that may use any key without the org_id encryption context',
      },
    ],
    guardedBy: ['Bulwark-TenantKeyEncryptionContext'],
  },
  {
    id: 'database-isolation',
    promise: 'The database has no path from outside the VPC: no function outside it can reach the database.',
    implementedBy: ['lib/compliance/bulwark-rules.ts'],
    provenBy: [
      {
        file: 'test/compliance/bulwark-pack.test.ts',
        name: 'flags out-of-VPC functions given the endpoint, rds-db:connect, or the database secret',
      },
    ],
    guardedBy: ['Bulwark-LambdaDatabaseInVpc'],
  },
  {
    id: 'audit-immutability',
    promise: 'Audit records cannot be altered or deleted before their plan retention ends, by anyone.',
    implementedBy: ['lib/compliance/bulwark-rules.ts'],
    provenBy: [
      {
        file: 'test/compliance/bulwark-pack.test.ts',
        name: 'flags GOVERNANCE mode, short retention, and an audit bucket without Object Lock',
      },
    ],
    guardedBy: ['Bulwark-ObjectLockCompliance'],
  },
  {
    id: 'residency',
    promise:
      'An EU deployment keeps its data, keys, logs and backups inside the EU; global resources only by reasoned allowance.',
    implementedBy: ['lib/residency/guard.ts', 'lib/residency/report.ts', 'lib/config/regions.ts'],
    provenBy: [
      {
        file: 'test/residency/guard.test.ts',
        name: 'names the resource and the region when a log destination leaves the zone',
      },
      { file: 'test/residency/guard.test.ts', name: 'treats London as outside the EU' },
      { file: 'test/config/schema.test.ts', name: 'refuses %s' },
      { file: 'test/residency/report.test.ts', name: 'lists every stack of prod-eu inside the EU' },
    ],
    guardedBy: ['Bulwark-Residency'],
  },
];
