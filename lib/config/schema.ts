import { z } from 'zod';
import { PLAN_RETENTION_MINIMUM_MONTHS, PLANS, type Plan } from '../../contracts/plans';
import { canImportTelnyxKey, MIN_BODY_BYTES } from '../../contracts/webhooks';
import {
  PLACEHOLDER_ACCOUNT,
  certificateParts,
  isPlaceholderCertificate,
  isPlaceholderDomain,
  isPlaceholderEmail,
} from './placeholders';
import { REGIONS, RESIDENCY_ZONES, isKnownRegion, regionFacts, regionInZone, type ResidencyZone } from './regions';

/** The shortest audit retention any plan promises: the floor every audit bucket's default must meet. */
export function shortestAuditRetentionMonths(retention: Readonly<Record<Plan, number>>): number {
  return Math.min(...PLANS.map((p) => retention[p]));
}

/** The longest audit retention any plan promises: nothing is kept (or locked) longer. */
export function longestAuditRetentionMonths(retention: Readonly<Record<Plan, number>>): number {
  return Math.max(...PLANS.map((p) => retention[p]));
}

const DEPLOYMENT_NAME = /^[a-z][a-z0-9-]{1,30}[a-z0-9]$/;
const CELL_GROUP = /^[a-z][a-z0-9-]{0,30}[a-z0-9]$/;
/** AWS's default quota of customer managed KMS keys per account and region (keys pending deletion count). */
export const DEFAULT_KEY_QUOTA = 100_000;
const FQDN = /^(?=.{4,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$/;
const ACM_ARN = /^arn:aws:acm:([a-z0-9-]+):(\d{12}):certificate\/[0-9a-f-]{36}$/;

/**
 * A value as a message may quote it: printable ASCII as is, everything else escaped (so a Cyrillic `е`
 * in `eu-wеst-1` shows as `\u{435}`), and long values shortened.
 */
export function show(value: unknown): string {
  let text: string;
  if (typeof value === 'string') text = value;
  else if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') text = String(value);
  else if (value === null) return 'null';
  else if (value === undefined) return 'nothing';
  else if (Array.isArray(value)) return 'a list';
  else return `a ${typeof value}`;
  const escaped = [...text]
    .map((c) => (/^[\x20-\x7e]$/.test(c) ? c : `\\u{${(c.codePointAt(0) ?? 0).toString(16)}}`))
    .join('');
  return escaped.length > 120 ? `${escaped.slice(0, 117)}...` : escaped;
}

const region = z.string().refine(isKnownRegion, {
  error: (issue) => `${show(issue.input)} is not a known region (known: ${Object.keys(REGIONS).join(', ')})`,
});

const telnyxKey = z
  .string()
  .regex(/^[A-Za-z0-9+/]{43}=$/, {
    message: 'must be the raw 32-byte Ed25519 public key in base64 (44 characters)',
    abort: true,
  })
  // The webhook function's own import: canonical base64 (zero padding bits) of a valid key.
  .refine(canImportTelnyxKey, 'is not a canonical base64 Ed25519 public key');

/** S3 Object Lock retains for at most 100 years. */
export const MAX_RETENTION_MONTHS = 1200;
const months = z
  .int('must be a whole number of months')
  .positive('must be positive')
  .max(MAX_RETENTION_MONTHS, `S3 Object Lock retains for at most ${MAX_RETENTION_MONTHS} months (100 years)`);

/** Shapes of the public entry point; see `edge.entry`. */
export const EDGE_ENTRIES = ['regional', 'cloudfront'] as const;
export type EdgeEntry = (typeof EDGE_ENTRIES)[number];

/**
 * TLS security policies Bulwark allows on the regional API and its custom domain.
 * - `SecurityPolicy_TLS13_1_2_PFS_PQ_2025_09`: TLS 1.3, and TLS 1.2 with ECDHE + AES-GCM only
 *   (forward secrecy, no CBC), hybrid post-quantum key exchange. The default.
 * - `SecurityPolicy_TLS13_1_3_2025_09`: TLS 1.3 only (regional entries; CloudFront reaches origins over TLS 1.2).
 * - `TLS_1_2`: API Gateway's legacy TLS 1.2 policy, which still offers CBC and non-forward-secret suites;
 *   only for clients that cannot do better.
 */
export const API_TLS_POLICIES = [
  'SecurityPolicy_TLS13_1_2_PFS_PQ_2025_09',
  'SecurityPolicy_TLS13_1_3_2025_09',
  'TLS_1_2',
] as const;
export type ApiTlsPolicy = (typeof API_TLS_POLICIES)[number];

/** AWS WAF inspects at most 64 KiB of a request body for CloudFront and API Gateway. */
export const MAX_INSPECTABLE_BODY_BYTES = 65_536;

const certificateArn = z
  .string()
  .regex(ACM_ARN, 'must be an ACM certificate ARN (arn:aws:acm:<region>:<account>:certificate/<id>)');

/** Why `v` is not a VPC CIDR Bulwark can use, or undefined. */
function cidrProblem(v: string): string | undefined {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\/(\d{1,2})$/.exec(v);
  if (!m) return 'must be an IPv4 CIDR like 10.40.0.0/16';
  const octets = m.slice(1, 5).map(Number);
  const bits = Number(m[5]);
  if (octets.some((o) => o > 255)) return `${show(v)} is not an IPv4 address (octets go up to 255)`;
  if (bits < 16 || bits > 20) return `${show(v)}: the prefix must be from /16 to /20 (subnets are /24 and /22 per AZ)`;
  const address = octets.reduce((a, o) => a * 256 + o, 0);
  const size = 2 ** (32 - bits);
  const network = address - (address % size);
  if (network !== address) {
    const text = [24, 16, 8, 0].map((s) => Math.floor(network / 2 ** s) % 256).join('.');
    return `${show(v)} has host bits set; the network is ${text}/${bits}`;
  }
  return undefined;
}

/** Why `v` is not a path prefix the web ACL can match literally, or undefined. */
function pathPrefixProblem(v: string): string | undefined {
  if (!/^\/[A-Za-z0-9._~\-/]+$/.test(v)) return 'must be a URI path prefix starting with /';
  const segments = v.slice(1).split('/');
  const inner = segments.slice(0, -1);
  if (segments.some((s) => s === '.' || s === '..') || inner.some((s) => s === '')) {
    const resolved: string[] = [];
    for (const s of segments) {
      if (s === '..') resolved.pop();
      else if (s !== '.' && s !== '') resolved.push(s);
    }
    const normalised = `/${resolved.join('/')}${v.endsWith('/') && resolved.length > 0 ? '/' : ''}`;
    return (
      `${show(v)} has an empty, . or .. segment, so it would exempt requests that resolve elsewhere; ` +
      `write the path as it resolves (${normalised})`
    );
  }
  return undefined;
}

/** Why a Content-Security-Policy is too open for a JSON API. */
function cspProblems(v: string): string[] {
  const problems: string[] = [];
  const directives = new Map<string, string[]>();
  for (const part of v.split(';')) {
    const [name, ...sources] = part.trim().split(/\s+/).filter(Boolean);
    if (name === undefined) continue;
    const key = name.toLowerCase();
    if (directives.has(key)) problems.push(`repeats ${key}; browsers ignore the second one`);
    else directives.set(key, sources);
  }
  if (!directives.has('frame-ancestors')) problems.push('must restrict frame-ancestors');
  if (!directives.has('default-src')) problems.push("must set default-src (the API serves JSON: 'none')");
  for (const [name, sources] of directives) {
    if (name !== 'frame-ancestors' && !name.endsWith('-src')) continue;
    // `*`, a bare scheme (`https:`) or an unsafe keyword admits any origin or any inline code.
    const open = sources.filter((s) => s === '*' || /^[a-z][a-z0-9+.-]*:$/i.test(s) || /^'unsafe-/i.test(s));
    if (open.length > 0) problems.push(`${name} ${show(open.join(' '))} admits any origin; name origins or use 'none'`);
  }
  return problems;
}

/** Data tier sizing (issue 3). Every field has a production default; override per deployment. */
export const dataSchema = z.strictObject({
  /** VPC CIDR; /16 to /20 (the subnets are /24 data and /22 app per AZ). */
  vpcCidr: z
    .string()
    .superRefine((v, ctx) => {
      const problem = cidrProblem(v);
      if (problem) ctx.addIssue({ code: 'custom', message: problem });
    })
    .default('10.40.0.0/16'),
  /** RDS instance class without the `db.` prefix, e.g. `r6g.large`. */
  databaseInstanceType: z
    .string()
    .regex(/^[a-z][a-z0-9-]*\.[a-z0-9]+$/, 'must be an instance class like r6g.large (no db. prefix)')
    .default('r6g.large'),
  /** Initial storage; autoscaling grows it up to 10x. */
  allocatedStorageGiB: z.int().min(20).max(6000).default(100),
});

export const deploymentSchema = z.strictObject({
  /** AWS account id. The catalogue ships a placeholder; see README "Accounts". */
  account: z.string().regex(/^\d{12}$/, 'must be a 12-digit AWS account id'),
  /** Primary region: every stack that holds data lives here. */
  region,
  /** Region that receives backup copies. Must differ from `region` and sit in the same residency zone. */
  backupRegion: region,
  /** Explicit AZ names, so synth makes no lookups. At least 2; production uses 3. */
  availabilityZones: z
    .array(z.string(), 'must be a list of availability zone names')
    .min(2, 'needs at least 2 availability zones for Multi-AZ')
    .max(6, 'at most 6 availability zones'),
  /** Legal boundary that every data store, key, log and backup of this deployment must stay within. */
  residency: z.enum(RESIDENCY_ZONES),
  /** `production` makes webhook verification mandatory and enables deletion protection everywhere. */
  environment: z.enum(['production', 'staging', 'development']),
  /** Audit retention in months per plan (Object Lock COMPLIANCE). */
  auditRetentionMonths: z.strictObject({ pro: months, business: months, enterprise: months }),
  /** Public entry point. */
  edge: z.strictObject({
    /** Custom domain of the API, e.g. api.eu.example.com. */
    domainName: z.string().regex(FQDN, 'must be a lower-case fully qualified domain name'),
    /** ACM certificate for `domainName` in the deployment's own region (regional API custom domain). */
    certificateArn,
    /** ACM certificate for `domainName` in us-east-1, required by CloudFront. */
    cloudFrontCertificateArn: certificateArn.optional(),
    /** WAF rate-based rule: requests per client IP per 5 minutes. */
    rateLimitPerFiveMinutes: z.int().min(100, 'WAF rate limits start at 100').max(2_000_000_000),
    /**
     * WAF rate-based rule for the webhook paths (`/webhooks/`), which the general rule then skips:
     * carriers post from few addresses for every tenant (docs/webhooks.md "At the edge").
     * @default 30000 (100 per second per carrier address)
     */
    webhookRateLimitPerFiveMinutes: z.int().min(100, 'WAF rate limits start at 100').max(2_000_000_000).default(30_000),
    /**
     * WAF rate-based rules per credential (the exact Authorization header, case-folded): requests per
     * 5 minutes per bearer token (one person's session) and per tenant API key, wherever they come from
     * (docs/rate-limits.md). Webhook paths are outside them.
     * @default { bearerTokenPerFiveMinutes: 1500, apiKeyPerFiveMinutes: 3000 }
     */
    credentialRateLimits: z
      .strictObject({
        bearerTokenPerFiveMinutes: z.int().min(100, 'WAF rate limits start at 100').max(2_000_000_000).default(1_500),
        apiKeyPerFiveMinutes: z.int().min(100, 'WAF rate limits start at 100').max(2_000_000_000).default(3_000),
      })
      .default({ bearerTokenPerFiveMinutes: 1_500, apiKeyPerFiveMinutes: 3_000 }),
    /**
     * The aggregate per-organisation request budget the tenant API enforces (docs/rate-limits.md
     * "Per tenant"): requests per minute per organisation, all its people and API keys together,
     * counted in DynamoDB in a fixed one-minute window. At most what the stage throttle admits in a
     * minute (`throttle.rateLimit` × 60), or it bounds no tenant.
     * @default { requestsPerMinute: 3000 } (50 per second: a quarter of the shipped stage throttle)
     */
    tenantBudget: z
      .strictObject({
        requestsPerMinute: z
          .int('must be a whole number of requests')
          .min(60, 'at least 60 requests per minute (one per second)')
          // Every request of an organisation writes its one counter item; DynamoDB takes at most
          // 1,000 writes per second on one partition, beyond which the budget throttles and fails open.
          .max(60_000, 'at most 60,000 per minute: one counter item takes at most 1,000 writes per second')
          .default(3_000),
      })
      .default({ requestsPerMinute: 3_000 }),
    /** API Gateway stage throttling. */
    throttle: z.strictObject({
      rateLimit: z.number().positive(),
      burstLimit: z.int().positive(),
    }),
    /**
     * Public entry point shape (docs/edge.md "Residency").
     * - `regional`: the API's regional custom domain is the entry, behind a REGIONAL web ACL. Every log
     *   that holds client IPs or headers stays in the deployment's region.
     * - `cloudfront`: CloudFront in front of the regional API, with a CLOUDFRONT-scope web ACL in
     *   us-east-1 (its logs must live there too), so only residency zones that contain us-east-1 may use it.
     * @default 'regional'
     */
    entry: z.enum(EDGE_ENTRIES).default('regional'),
    /**
     * TLS security policy of the regional API and its custom domain (see API_TLS_POLICIES).
     * @default 'SecurityPolicy_TLS13_1_2_PFS_PQ_2025_09'
     */
    apiTlsPolicy: z.enum(API_TLS_POLICIES).default('SecurityPolicy_TLS13_1_2_PFS_PQ_2025_09'),
    /**
     * Largest request body the API accepts, in bytes. The web ACL blocks larger bodies; it is also the
     * WAF body inspection limit, so nothing the API accepts goes uninspected. At most 64 KiB, the
     * largest body AWS WAF can inspect for CloudFront and API Gateway.
     * @default 16384 (16 KiB, the inspection limit WAF includes at no extra cost)
     */
    maxRequestBodyBytes: z
      .int()
      // Webhook events are larger than a KiB; the webhook function refuses a smaller limit.
      .min(MIN_BODY_BYTES, `must be at least ${MIN_BODY_BYTES} bytes`)
      .max(MAX_INSPECTABLE_BODY_BYTES, `WAF inspects at most ${MAX_INSPECTABLE_BODY_BYTES} bytes of a body`)
      .default(16_384),
    /**
     * Largest request body under the webhook paths (`/webhooks/`), where carriers post events larger
     * than people's requests: the web ACL holds those paths to this cap instead of
     * `maxRequestBodyBytes`, and the webhook function refuses anything larger. The web ACL's body
     * inspection limit covers the larger of the two, so nothing accepted goes uninspected; AWS WAF
     * bills inspection beyond its first 16 KiB (docs/edge.md "Body size").
     * @default 65536 (64 KiB, the most AWS WAF inspects)
     */
    webhookMaxRequestBodyBytes: z
      .int()
      .min(MIN_BODY_BYTES, `must be at least ${MIN_BODY_BYTES} bytes`)
      .max(MAX_INSPECTABLE_BODY_BYTES, `WAF inspects at most ${MAX_INSPECTABLE_BODY_BYTES} bytes of a body`)
      .default(MAX_INSPECTABLE_BODY_BYTES),
    /**
     * URI path prefixes that requests from cloud hosting IP ranges may reach (webhook senders run
     * there); elsewhere the anonymous IP list blocks them. Only the capability that owns such paths
     * should add them.
     * @default [] (hosting provider IPs blocked everywhere)
     */
    hostingProviderExemptPathPrefixes: z
      .array(
        z.string().superRefine((v, ctx) => {
          const problem = pathPrefixProblem(v);
          if (problem) ctx.addIssue({ code: 'custom', message: problem });
        }),
        'must be a list of URI path prefixes',
      )
      .max(10, 'at most 10 prefixes')
      .default([]),
    /**
     * Content-Security-Policy sent on every API response. The API serves JSON only, so nothing may load.
     * @default "default-src 'none'; frame-ancestors 'none'"
     */
    contentSecurityPolicy: z
      .string()
      .regex(/^[\x20-\x7e]+$/, { message: 'must be printable ASCII', abort: true })
      .superRefine((v, ctx) => {
        for (const problem of cspProblems(v)) ctx.addIssue({ code: 'custom', message: problem });
      })
      .default("default-src 'none'; frame-ancestors 'none'"),
  }),
  /** Data tier sizing. @default see dataSchema */
  data: dataSchema.prefault({}),
  /** Carrier webhook ingress (docs/webhooks.md). */
  webhooks: z
    .strictObject({
      /**
       * Telnyx Ed25519 public key, the raw 32 bytes in base64 as the Telnyx portal shows it (public,
       * so it is configuration). Unset: Telnyx events are refused with WEBHOOK_SECRET_MISSING.
       */
      telnyxPublicKey: telnyxKey.optional(),
      /** The Telnyx key being replaced, still accepted during a key rotation; remove it when done. */
      telnyxPreviousPublicKey: telnyxKey.optional(),
      /** `disabled` only for a carrier simulator outside production; production refuses it. */
      verification: z.enum(['required', 'disabled']).default('required'),
    })
    .default({ verification: 'required' }),
  /**
   * Deploy the account baseline (GuardDuty, Security Hub, AWS Config, IAM Access Analyzer) in the
   * deployment's region (docs/security-baseline.md). `false` where the organisation already runs them.
   * @default true in production, false elsewhere (see deploysAccountBaseline)
   */
  accountBaseline: z.boolean().optional(),
  /** Where alarms go. */
  alarms: z.strictObject({
    email: z.email('must be an email address'),
  }),
  /**
   * The cell group this deployment is a cell of (docs/tenant-keys.md "Key quota: cells"). Every cell
   * of a group shares its region, residency zone and environment, and has its own account (the KMS
   * key quota is per account and region); new tenants are placed in the cell with the most headroom
   * (lib/config/cells.ts, `npx tsx tools/cells/place.ts`).
   * @default - a group of one, named after the deployment
   */
  cell: z
    .strictObject({
      /** The group's name, e.g. `eu`; cells of one group are siblings. */
      group: z.string().regex(CELL_GROUP, 'must be 2-32 lower-case letters, digits and dashes'),
      /** `false` drains the cell: its tenants stay, new tenants go to its siblings. @default true */
      acceptsNewTenants: z.boolean().default(true),
      /**
       * Customer managed KMS keys the account may hold in the region, keys pending deletion included:
       * AWS's default, or the quota AWS raised it to for this account. @default 100000
       */
      keyQuota: z.int('must be a whole number of keys').positive('must be positive').default(DEFAULT_KEY_QUOTA),
    })
    .optional(),
});

/** What a catalogue entry looks like before validation. */
export type DeploymentInput = z.input<typeof deploymentSchema>;

/** A validated deployment, with its name. Constructs receive this, never raw input or `process.env`. */
export type DeploymentConfig = z.output<typeof deploymentSchema> & { readonly name: string };

/** Configuration problems, each `<deployment>.<field>: <problem> (from <source>)`. The only error loading throws. */
/** Whether `d` deploys the account baseline: its `accountBaseline`, else only in production. */
export function deploysAccountBaseline(d: Pick<DeploymentConfig, 'accountBaseline' | 'environment'>): boolean {
  return d.accountBaseline ?? d.environment === 'production';
}

export class ConfigError extends Error {
  constructor(readonly problems: readonly string[]) {
    super(`Invalid deployment configuration:\n  - ${problems.join('\n  - ')}`);
    this.name = 'ConfigError';
  }
}

/** Where a value came from, for messages: `catalogue`, `context <key>` or `environment <VAR>`. */
export type ValueSource = string;

/** Sources of values that did not come from the catalogue, by top-level field (today only `account`). */
export type ValueSources = Readonly<Partial<Record<string, ValueSource>>>;

interface Issue {
  readonly path: readonly PropertyKey[];
  readonly message: string;
}

function formatPath(path: readonly PropertyKey[]): string {
  return path.map((p) => (typeof p === 'number' ? `[${p}]` : `.${show(String(p))}`)).join('');
}

/** Own property of a plain object; never a prototype member such as `constructor`. */
function own(obj: unknown, key: string): unknown {
  if (obj === null || typeof obj !== 'object' || Array.isArray(obj) || !Object.hasOwn(obj, key)) return undefined;
  return (obj as Record<string, unknown>)[key];
}

/** `value` parsed by `schema` (defaults applied), or undefined when it is invalid: checks skip what they cannot read. */
function valid<S extends z.ZodType>(schema: S, value: unknown): z.output<S> | undefined {
  const r = schema.safeParse(value);
  return r.success ? r.data : undefined;
}

const F = deploymentSchema.shape;
const E = F.edge.shape;
const W = F.webhooks.unwrap().shape;

/**
 * Checks between fields. They read each field on its own, so a type error in one field does not hide
 * the others' problems; a check only skips when a field it needs is itself invalid (already reported).
 */
function crossFieldIssues(raw: unknown): Issue[] {
  const issues: Issue[] = [];
  const add = (path: readonly PropertyKey[], message: string) => issues.push({ path, message });

  const account = valid(F.account, own(raw, 'account'));
  const region = valid(F.region, own(raw, 'region'));
  const backupRegion = valid(F.backupRegion, own(raw, 'backupRegion'));
  const residency: ResidencyZone | undefined = valid(F.residency, own(raw, 'residency'));
  const environment = valid(F.environment, own(raw, 'environment'));
  const edgeRaw = own(raw, 'edge');
  const entry = valid(E.entry, own(edgeRaw, 'entry'));
  const apiTlsPolicy = valid(E.apiTlsPolicy, own(edgeRaw, 'apiTlsPolicy'));
  const certificateArn = valid(E.certificateArn, own(edgeRaw, 'certificateArn'));
  const cfRaw = own(edgeRaw, 'cloudFrontCertificateArn');
  const cloudFrontCertificateArn = valid(E.cloudFrontCertificateArn, cfRaw);
  const domainName = valid(E.domainName, own(edgeRaw, 'domainName'));
  const email = valid(F.alarms.shape.email, own(own(raw, 'alarms'), 'email'));

  if (region && residency && !regionInZone(region, residency)) {
    add(['region'], `${region} is outside residency zone ${residency}`);
  }
  if (backupRegion && region && backupRegion === region) {
    add(['backupRegion'], `${backupRegion} equals the primary region; backups must be copied to a second region`);
  } else if (backupRegion && residency && !regionInZone(backupRegion, residency)) {
    add(['backupRegion'], `${backupRegion} is outside residency zone ${residency}`);
  }

  const azs = own(raw, 'availabilityZones');
  if (Array.isArray(azs)) {
    const known = region ? (regionFacts(region)?.availabilityZones ?? []) : [];
    const seen = new Set<string>();
    azs.forEach((az: unknown, i) => {
      if (typeof az !== 'string') return;
      if (seen.has(az)) add(['availabilityZones', i], `${show(az)} is listed twice`);
      seen.add(az);
      if (region && !known.includes(az)) {
        add(['availabilityZones', i], `${show(az)} is not an availability zone of ${region} (${known.join(', ')})`);
      }
    });
  }

  const retention = own(raw, 'auditRetentionMonths');
  for (const plan of PLANS) {
    const months = valid(F.auditRetentionMonths.shape[plan], own(retention, plan));
    const min = PLAN_RETENTION_MINIMUM_MONTHS[plan];
    if (months !== undefined && months < min) {
      add(['auditRetentionMonths', plan], `${months} months is below the ${plan} plan minimum of ${min}`);
    }
  }

  const webhooksRaw = own(raw, 'webhooks');
  const verification = valid(W.verification, own(webhooksRaw, 'verification'));
  if (environment === 'production' && verification === 'disabled') {
    add(['webhooks', 'verification'], 'webhook verification cannot be disabled in a production deployment');
  }
  if (own(webhooksRaw, 'telnyxPreviousPublicKey') !== undefined && own(webhooksRaw, 'telnyxPublicKey') === undefined) {
    add(['webhooks', 'telnyxPreviousPublicKey'], 'a previous Telnyx key needs a current telnyxPublicKey');
  }

  const regional = certificateArn ? certificateParts(certificateArn) : undefined;
  if (regional && region && regional.region !== region) {
    add(
      ['edge', 'certificateArn'],
      `certificate is in ${regional.region}; the API custom domain needs one in ${region}`,
    );
  }
  const global = cloudFrontCertificateArn ? certificateParts(cloudFrontCertificateArn) : undefined;
  if (global && global.region !== 'us-east-1') {
    add(
      ['edge', 'cloudFrontCertificateArn'],
      `certificate is in ${global.region}; CloudFront only accepts certificates from us-east-1`,
    );
  }
  if (entry === 'cloudfront') {
    // A CLOUDFRONT-scope web ACL and its log destination can only live in us-east-1.
    if (residency && !regionInZone('us-east-1', residency)) {
      add(
        ['edge', 'entry'],
        `cloudfront keeps web ACL logs (client IPs, headers) in us-east-1, outside residency zone ` +
          `${residency}; use 'regional'`,
      );
    }
    if (apiTlsPolicy === 'SecurityPolicy_TLS13_1_3_2025_09') {
      add(['edge', 'apiTlsPolicy'], 'CloudFront connects to origins with TLS 1.2; a TLS 1.3-only API would refuse it');
    }
    if (cfRaw === undefined) {
      add(
        ['edge', 'cloudFrontCertificateArn'],
        'is required when edge.entry is cloudfront (the default *.cloudfront.net domain allows TLS 1.0)',
      );
    }
  } else if (entry === 'regional' && cfRaw !== undefined) {
    add(['edge', 'cloudFrontCertificateArn'], 'is only used when edge.entry is cloudfront');
  }

  const throttle = own(edgeRaw, 'throttle');
  const rateLimit = valid(E.throttle.shape.rateLimit, own(throttle, 'rateLimit'));
  const burstLimit = valid(E.throttle.shape.burstLimit, own(throttle, 'burstLimit'));
  if (rateLimit !== undefined && burstLimit !== undefined && burstLimit < rateLimit) {
    add(['edge', 'throttle', 'burstLimit'], `burst limit ${burstLimit} is below the rate limit ${rateLimit}`);
  }
  const perMinute = valid(
    E.tenantBudget.unwrap().shape.requestsPerMinute,
    own(own(edgeRaw, 'tenantBudget'), 'requestsPerMinute'),
  );
  if (rateLimit !== undefined && perMinute !== undefined && perMinute > rateLimit * 60) {
    add(
      ['edge', 'tenantBudget', 'requestsPerMinute'],
      `${perMinute} is more than the stage throttle admits in a minute (${rateLimit * 60}, edge.throttle.rateLimit x 60): ` +
        'such a budget bounds no tenant',
    );
  }

  // A deployment synthesized for a real account must carry no placeholder, and its certificates must be
  // its own. With the placeholder account the synth summary lists the placeholders instead.
  if (account && account !== PLACEHOLDER_ACCOUNT) {
    const certificates = [
      ['certificateArn', certificateArn],
      ['cloudFrontCertificateArn', cloudFrontCertificateArn],
    ] as const;
    for (const [field, arn] of certificates) {
      const parts = arn ? certificateParts(arn) : undefined;
      if (!arn || !parts) continue;
      if (isPlaceholderCertificate(arn)) {
        add(
          ['edge', field],
          `is the catalogue's placeholder certificate; request one for the domain in account ${account} ` +
            `and put its ARN in lib/config/catalogue.ts`,
        );
      } else if (parts.account !== account) {
        add(['edge', field], `certificate is in account ${parts.account}, not the deployment's account ${account}`);
      }
    }
    if (domainName && isPlaceholderDomain(domainName)) {
      add(['edge', 'domainName'], `${domainName} is a placeholder (a reserved example domain); set the API's domain`);
    }
    if (email && isPlaceholderEmail(email)) {
      add(['alarms', 'email'], `${show(email)} is a placeholder (a reserved example domain); set who receives alarms`);
    }
  }
  return issues;
}

/** The fields an object schema at `path` of the deployment accepts, for "unknown field" messages. */
function knownFields(path: readonly PropertyKey[]): string[] {
  let schema: z.ZodType | undefined = deploymentSchema;
  for (const key of [...path, undefined]) {
    while (schema instanceof z.ZodDefault || schema instanceof z.ZodPrefault || schema instanceof z.ZodOptional) {
      schema = schema.unwrap() as z.ZodType;
    }
    if (!(schema instanceof z.ZodObject)) return [];
    if (key === undefined) return Object.keys(schema.shape);
    const shape = schema.shape as Record<string, z.ZodType>;
    schema = typeof key === 'string' && Object.hasOwn(shape, key) ? shape[key] : undefined;
  }
  return [];
}

/** Every issue of a deployment entry, and the parsed entry when there is none. */
function check(input: unknown): { issues: Issue[]; data?: z.output<typeof deploymentSchema> } {
  if (input === null || typeof input !== 'object' || Array.isArray(input)) {
    return { issues: [{ path: [], message: `must be an object of deployment settings, not ${show(input)}` }] };
  }
  const issues: Issue[] = [];
  const result = deploymentSchema.safeParse(input);
  for (const issue of result.success ? [] : result.error.issues) {
    if (issue.code === 'unrecognized_keys') {
      const known = knownFields(issue.path);
      for (const key of issue.keys) {
        issues.push({ path: [...issue.path, key], message: `is not a known field (known: ${known.join(', ')})` });
      }
    } else {
      issues.push({ path: issue.path, message: issue.message });
    }
  }
  issues.push(...crossFieldIssues(input));
  return { issues, ...(result.success && issues.length === 0 ? { data: result.data } : {}) };
}

/**
 * Validates one deployment; throws a ConfigError naming `<deployment>.<field>` and the value's source for
 * every problem. `sources` names the source of values that did not come from the catalogue.
 */
export function parseDeployment(name: string, input: unknown, sources: ValueSources = {}): DeploymentConfig {
  const problems: string[] = [];
  const shown = show(name);
  if (!DEPLOYMENT_NAME.test(name)) {
    problems.push(`${shown}: deployment names are 3-32 lower-case letters, digits and dashes (from catalogue)`);
  }
  const { issues, data } = check(input);
  for (const issue of issues) {
    const top = issue.path[0];
    const source = (typeof top === 'string' && Object.hasOwn(sources, top) ? sources[top] : undefined) ?? 'catalogue';
    problems.push(`${shown}${formatPath(issue.path)}: ${issue.message} (from ${source})`);
  }
  if (problems.length > 0 || !data) throw new ConfigError(problems);
  return { ...data, name };
}

/** Validates a whole catalogue, reporting every problem of every deployment at once. */
export function parseCatalogue(
  input: unknown,
  sources: ReadonlyMap<string, ValueSources> = new Map(),
): DeploymentConfig[] {
  if (input === null || typeof input !== 'object' || Array.isArray(input)) {
    throw new ConfigError([`catalogue: must map deployment names to settings, not ${show(input)} (from catalogue)`]);
  }
  const problems: string[] = [];
  const out: DeploymentConfig[] = [];
  const names = Object.keys(input);
  if (names.length === 0) problems.push('catalogue: lists no deployments (from catalogue)');
  for (const name of names) {
    try {
      out.push(parseDeployment(name, own(input, name), sources.get(name)));
    } catch (e) {
      if (e instanceof ConfigError) problems.push(...e.problems);
      else throw e;
    }
  }
  problems.push(...cellGroupProblems(out, sources));
  if (problems.length > 0) throw new ConfigError(problems);
  return out;
}

/**
 * Cells of one group share region, residency zone and environment, and each has its own account:
 * two cells in one account would share its key quota and gain nothing. (The placeholder account is
 * left to the synth summary, as elsewhere.) A deployment naming no group is a group of its own,
 * so no group may take another deployment's name. Checked among the deployments valid on their own.
 */
function cellGroupProblems(
  deployments: readonly DeploymentConfig[],
  sources: ReadonlyMap<string, ValueSources>,
): string[] {
  const problems: string[] = [];
  const first = new Map<string, DeploymentConfig>();
  const accounts = new Map<string, DeploymentConfig>();
  const ungrouped = new Set(deployments.filter((d) => !d.cell).map((d) => d.name));
  for (const d of deployments) {
    if (!d.cell) continue;
    const group = d.cell.group;
    const at = `${show(d.name)}.cell.group`;
    if (ungrouped.has(group)) {
      problems.push(
        `${at}: ${show(group)} is the name of deployment ${show(group)}, which is in no group; name the group differently (from catalogue)`,
      );
    }
    const head = first.get(group);
    if (!head) {
      first.set(group, d);
    } else {
      for (const field of ['region', 'residency', 'environment'] as const) {
        if (d[field] !== head[field]) {
          problems.push(
            `${at}: cells of group ${show(group)} share their ${field}; ${show(head.name)} has ${show(head[field])}, ` +
              `this one ${show(d[field])} (from catalogue)`,
          );
        }
      }
    }
    if (d.account === PLACEHOLDER_ACCOUNT) continue;
    const key = `${group}/${d.account}`;
    const sibling = accounts.get(key);
    if (sibling) {
      const source = sources.get(d.name)?.['account'] ?? 'catalogue';
      problems.push(
        `${show(d.name)}.account: ${d.account} is also the account of ${show(sibling.name)}, a cell of the same group; ` +
          `cells in one account share its KMS key quota, so each needs its own account (from ${source})`,
      );
    } else {
      accounts.set(key, d);
    }
  }
  return problems;
}
