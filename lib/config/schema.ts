import { z } from 'zod';
import { PLAN_RETENTION_MINIMUM_MONTHS, PLANS, type Plan } from '../../contracts/plans';
import { canImportTelnyxKey, MIN_BODY_BYTES } from '../../contracts/webhooks';
import { REGIONS, RESIDENCY_ZONES, isKnownRegion, regionInZone } from './regions';

/** The shortest audit retention any plan promises: the floor every audit bucket's default must meet. */
export function shortestAuditRetentionMonths(retention: Readonly<Record<Plan, number>>): number {
  return Math.min(...PLANS.map((p) => retention[p]));
}

/** The longest audit retention any plan promises: nothing is kept (or locked) longer. */
export function longestAuditRetentionMonths(retention: Readonly<Record<Plan, number>>): number {
  return Math.max(...PLANS.map((p) => retention[p]));
}

const DEPLOYMENT_NAME = /^[a-z][a-z0-9-]{1,30}[a-z0-9]$/;
const FQDN = /^(?=.{4,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$/;
const ACM_ARN = /^arn:aws:acm:([a-z0-9-]+):(\d{12}):certificate\/[0-9a-f-]{36}$/;

const region = z.string().refine(isKnownRegion, {
  error: (issue) => `${String(issue.input)} is not a known region (known: ${Object.keys(REGIONS).join(', ')})`,
});

const telnyxKey = z
  .string()
  .regex(/^[A-Za-z0-9+/]{43}=$/, {
    message: 'must be the raw 32-byte Ed25519 public key in base64 (44 characters)',
    abort: true,
  })
  // The webhook function's own import: canonical base64 (zero padding bits) of a valid key.
  .refine(canImportTelnyxKey, 'is not a canonical base64 Ed25519 public key');

const months = z.int('must be a whole number of months').positive('must be positive');

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

/** Data tier sizing (issue 3). Every field has a production default; override per deployment. */
export const dataSchema = z.strictObject({
  /** VPC CIDR; /16 to /20 (the subnets are /24 data and /22 app per AZ). */
  vpcCidr: z
    .string()
    .regex(/^(\d{1,3}\.){3}\d{1,3}\/(1[6-9]|20)$/, 'must be an IPv4 CIDR from /16 to /20')
    .default('10.40.0.0/16'),
  /** RDS instance class without the `db.` prefix, e.g. `r6g.large`. */
  databaseInstanceType: z
    .string()
    .regex(/^[a-z][a-z0-9-]*\.[a-z0-9]+$/, 'must be an instance class like r6g.large (no db. prefix)')
    .default('r6g.large'),
  /** Initial storage; autoscaling grows it up to 10x. */
  allocatedStorageGiB: z.int().min(20).max(6000).default(100),
  /** ElastiCache node type. */
  cacheNodeType: z
    .string()
    .regex(/^cache\.[a-z0-9-]+\.[a-z0-9]+$/, 'must be a node type like cache.r7g.large')
    .default('cache.r7g.large'),
});

export const deploymentSchema = z
  .strictObject({
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
       * URI path prefixes that requests from cloud hosting IP ranges may reach (webhook senders run
       * there); elsewhere the anonymous IP list blocks them. Only the capability that owns such paths
       * should add them.
       * @default [] (hosting provider IPs blocked everywhere)
       */
      hostingProviderExemptPathPrefixes: z
        .array(z.string().regex(/^\/[A-Za-z0-9._~\-/]+$/, 'must be a URI path prefix starting with /'))
        .max(10, 'at most 10 prefixes')
        .default([]),
      /**
       * Content-Security-Policy sent on every API response. The API serves JSON only, so nothing may load.
       * @default "default-src 'none'; frame-ancestors 'none'"
       */
      contentSecurityPolicy: z
        .string()
        .regex(/^[\x20-\x7e]+$/, 'must be printable ASCII')
        .refine((v) => /frame-ancestors\s/.test(v), 'must restrict frame-ancestors')
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
    /** Where alarms go. */
    alarms: z.strictObject({
      email: z.email('must be an email address'),
    }),
  })
  .superRefine((d, ctx) => {
    if (!regionInZone(d.region, d.residency)) {
      ctx.addIssue({
        code: 'custom',
        path: ['region'],
        message: `${d.region} is outside residency zone ${d.residency}`,
      });
    }
    if (d.backupRegion === d.region) {
      ctx.addIssue({
        code: 'custom',
        path: ['backupRegion'],
        message: `${d.backupRegion} equals the primary region; backups must be copied to a second region`,
      });
    } else if (!regionInZone(d.backupRegion, d.residency)) {
      ctx.addIssue({
        code: 'custom',
        path: ['backupRegion'],
        message: `${d.backupRegion} is outside residency zone ${d.residency}`,
      });
    }
    const known = REGIONS[d.region]?.availabilityZones ?? [];
    const seen = new Set<string>();
    d.availabilityZones.forEach((az, i) => {
      if (seen.has(az)) {
        ctx.addIssue({ code: 'custom', path: ['availabilityZones', i], message: `${az} is listed twice` });
      }
      seen.add(az);
      if (isKnownRegion(d.region) && !known.includes(az)) {
        ctx.addIssue({
          code: 'custom',
          path: ['availabilityZones', i],
          message: `${az} is not an availability zone of ${d.region} (${known.join(', ')})`,
        });
      }
    });
    for (const plan of Object.keys(PLAN_RETENTION_MINIMUM_MONTHS) as Plan[]) {
      const min = PLAN_RETENTION_MINIMUM_MONTHS[plan];
      if (d.auditRetentionMonths[plan] < min) {
        ctx.addIssue({
          code: 'custom',
          path: ['auditRetentionMonths', plan],
          message: `${d.auditRetentionMonths[plan]} months is below the ${plan} plan minimum of ${min}`,
        });
      }
    }
    if (d.environment === 'production' && d.webhooks.verification !== 'required') {
      ctx.addIssue({
        code: 'custom',
        path: ['webhooks', 'verification'],
        message: 'webhook verification cannot be disabled in a production deployment',
      });
    }
    if (d.webhooks.telnyxPreviousPublicKey && !d.webhooks.telnyxPublicKey) {
      ctx.addIssue({
        code: 'custom',
        path: ['webhooks', 'telnyxPreviousPublicKey'],
        message: 'a previous Telnyx key needs a current telnyxPublicKey',
      });
    }
    const regional = ACM_ARN.exec(d.edge.certificateArn);
    if (regional && regional[1] !== d.region) {
      ctx.addIssue({
        code: 'custom',
        path: ['edge', 'certificateArn'],
        message: `certificate is in ${regional[1]}; the API custom domain needs one in ${d.region}`,
      });
    }
    const global = d.edge.cloudFrontCertificateArn ? ACM_ARN.exec(d.edge.cloudFrontCertificateArn) : null;
    if (global && global[1] !== 'us-east-1') {
      ctx.addIssue({
        code: 'custom',
        path: ['edge', 'cloudFrontCertificateArn'],
        message: `certificate is in ${global[1]}; CloudFront only accepts certificates from us-east-1`,
      });
    }
    if (d.edge.entry === 'cloudfront') {
      // A CLOUDFRONT-scope web ACL and its log destination can only live in us-east-1.
      if (!regionInZone('us-east-1', d.residency)) {
        ctx.addIssue({
          code: 'custom',
          path: ['edge', 'entry'],
          message:
            `cloudfront keeps web ACL logs (client IPs, headers) in us-east-1, outside residency zone ` +
            `${d.residency}; use 'regional'`,
        });
      }
      if (d.edge.apiTlsPolicy === 'SecurityPolicy_TLS13_1_3_2025_09') {
        ctx.addIssue({
          code: 'custom',
          path: ['edge', 'apiTlsPolicy'],
          message: 'CloudFront connects to origins with TLS 1.2; a TLS 1.3-only API would refuse it',
        });
      }
      if (!d.edge.cloudFrontCertificateArn) {
        ctx.addIssue({
          code: 'custom',
          path: ['edge', 'cloudFrontCertificateArn'],
          message: 'is required when edge.entry is cloudfront (the default *.cloudfront.net domain allows TLS 1.0)',
        });
      }
    } else if (d.edge.cloudFrontCertificateArn) {
      ctx.addIssue({
        code: 'custom',
        path: ['edge', 'cloudFrontCertificateArn'],
        message: 'is only used when edge.entry is cloudfront',
      });
    }
    if (d.edge.throttle.burstLimit < d.edge.throttle.rateLimit) {
      ctx.addIssue({
        code: 'custom',
        path: ['edge', 'throttle', 'burstLimit'],
        message: `burst limit ${d.edge.throttle.burstLimit} is below the rate limit ${d.edge.throttle.rateLimit}`,
      });
    }
  });

/** What a catalogue entry looks like before validation. */
export type DeploymentInput = z.input<typeof deploymentSchema>;

/** A validated deployment, with its name. Constructs receive this, never raw input or `process.env`. */
export type DeploymentConfig = z.output<typeof deploymentSchema> & { readonly name: string };

export class ConfigError extends Error {
  constructor(readonly problems: readonly string[]) {
    super(`Invalid deployment configuration:\n  - ${problems.join('\n  - ')}`);
    this.name = 'ConfigError';
  }
}

function formatPath(path: readonly PropertyKey[]): string {
  return path.map((p) => (typeof p === 'number' ? `[${p}]` : `.${String(p)}`)).join('');
}

/** Validates one deployment; throws a ConfigError naming `<deployment>.<field>` for every problem. */
export function parseDeployment(name: string, input: unknown): DeploymentConfig {
  const problems: string[] = [];
  if (!DEPLOYMENT_NAME.test(name)) {
    problems.push(`${name}: deployment names are 3-32 lower-case letters, digits and dashes`);
  }
  const result = deploymentSchema.safeParse(input);
  if (!result.success) {
    for (const issue of result.error.issues) {
      problems.push(`${name}${formatPath(issue.path)}: ${issue.message}`);
    }
  }
  if (problems.length > 0 || !result.success) throw new ConfigError(problems);
  return { ...result.data, name };
}

/** Validates a whole catalogue, reporting every problem of every deployment at once. */
export function parseCatalogue(input: Readonly<Record<string, unknown>>): DeploymentConfig[] {
  const problems: string[] = [];
  const out: DeploymentConfig[] = [];
  const names = Object.keys(input);
  if (names.length === 0) problems.push('catalogue: lists no deployments');
  for (const name of names) {
    try {
      out.push(parseDeployment(name, input[name]));
    } catch (e) {
      if (e instanceof ConfigError) problems.push(...e.problems);
      else throw e;
    }
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return out;
}
