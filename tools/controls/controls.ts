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

const t = (file: string, name: string): TestRef => ({ file, name });

export const CONTROLS: readonly Control[] = [
  {
    id: 'tenant-isolation',
    promise:
      'One tenant can never read or change another tenant’s data: the application guard (JWT verified at the edge by the REQUEST authorizer, API keys checked by hash, membership re-checked per request, strict RBAC) and forced row-level security in PostgreSQL, whose tenant context can only be set through a membership-checking gate.',
    implementedBy: [
      'migrations/0001_tenancy_core.sql',
      'migrations/0003_tenant_context_scalar.sql',
      'migrations/0403_domain_grid.sql',
      'lambda/tenant-guard/authorizer.ts',
      'lambda/tenant-guard/guard.ts',
      'lambda/tenant-guard/permissions.ts',
      'lambda/tenant-guard/jwt.ts',
      'lib/tenant-guard/tenant-guard.ts',
    ],
    provenBy: [
      t(
        'test/tenant-guard/rls.test.ts',
        'cross-tenant matrix: every tenant table x SELECT/INSERT/UPDATE/DELETE x every context',
      ),
      t('test/tenant-guard/rls.test.ts', 'weakening one SELECT policy makes the matrix fail'),
      t(
        'test/tenant-guard/rls.test.ts',
        'weakening one DELETE policy (context only) makes the matrix fail in every read-only context',
      ),
      t(
        'test/tenant-guard/adversary.test.ts',
        'the domain grid holds in the database: a role without the permission cannot write, whatever SQL it sends',
      ),
      t(
        'test/tenant-guard/adversary.test.ts',
        'no function role can LOCK any relation in a mode that blocks writes (generated from the catalog)',
      ),
      t(
        'test/tenant-guard/rls.test.ts',
        'leaky-function probe: a cheap side-effecting function in WHERE never sees another tenant',
      ),
      t('test/tenant-guard/rls.test.ts', 'a pooled connection never carries one request’s tenant into the next'),
      t(
        'test/tenant-guard/context-gate.test.ts',
        'ignores contexts forged with set_config / SET by the application role',
      ),
      t(
        'test/tenant-guard/api.test.ts',
        'refuses expired, forged, wrong-audience, wrong-issuer and missing-claim tokens',
      ),
      t(
        'test/tenant-guard/gateway.test.ts',
        'verifies bearer tokens at the edge: valid passes; missing, expired, forged, wrong-audience and claimless are refused with their code',
      ),
      t(
        'test/tenant-guard/gateway.test.ts',
        'API keys pass the deployed gateway and are checked in the database on every request: wrong secret, revocation',
      ),
      t('test/tenant-guard/gateway.test.ts', 'a cached verdict is never honoured past its token’s expiry'),
      t(
        'test/tenant-guard/construct.test.ts',
        'puts every tenant route behind the REQUEST authorizer, keyed on the Authorization header',
      ),
      t(
        'test/tenant-guard/api.test.ts',
        'a revoked membership is refused immediately, with the same still-valid token',
      ),
      t(
        'test/tenant-guard/api.test.ts',
        'require(module, action) is strict: unknown module, action or role is refused',
      ),
      t(
        'test/tenant-guard/api.test.ts',
        'bulk delete scopes the list to the caller’s organisation: out-of-org ids dropped, counted, untouched',
      ),
    ],
    guardedBy: [],
  },
  {
    id: 'support-mode-tracking',
    promise:
      'Platform staff reach tenant data only through a reasoned support grant of at most 4 hours; every action under it carries the grant id; the Owner can list and revoke grants.',
    implementedBy: ['migrations/0001_tenancy_core.sql', 'lambda/tenant-guard/api.ts'],
    provenBy: [
      t('test/tenant-guard/api.test.ts', 'opens a reasoned grant of at most 4 hours; only platform_support may'),
      t(
        'test/tenant-guard/api.test.ts',
        'every action under a grant carries its id; expired and revoked grants are refused; the Owner lists and revokes',
      ),
      t(
        'test/tenant-guard/context-gate.test.ts',
        'a live grant enters exactly one organisation, read-only; expired and revoked grants are refused',
      ),
    ],
    guardedBy: [],
  },
  {
    id: 'own-calls',
    promise:
      'Members and Viewers list and read only the calls they handled, and those calls’ recordings; Owners and Admins see all of the organisation’s. PostgreSQL enforces it on the context’s user and role, so a compromised API connection cannot widen it, and another agent’s call answers exactly as one that does not exist.',
    implementedBy: ['migrations/0410_own_calls.sql', 'lambda/tenant-guard/routes/calls.ts', 'contracts/calls.ts'],
    provenBy: [
      t(
        'test/tenant-guard/own-calls.test.ts',
        'Members and Viewers see their own calls and recordings; Owners, Admins, support and oversight all; another tenant none',
      ),
      t(
        'test/tenant-guard/own-calls.test.ts',
        'GET /calls/{id}: another agent’s call answers exactly as a call that does not exist (404, no oracle)',
      ),
      t(
        'test/tenant-guard/own-calls.test.ts',
        'POST /calls: a Member logs its own call (audited), never another agent’s; an Admin any; a Viewer none',
      ),
      t('test/tenant-guard/own-calls.test.ts', 'a calls SELECT policy that forgets the agent makes the checks fail'),
      t(
        'test/tenant-guard/own-calls.test.ts',
        'an UPDATE policy that forgets the agent lets a Member change and give away calls, and the checks see it',
      ),
      t(
        'test/tenant-guard/own-calls.test.ts',
        'a recordings policy that no longer follows its call makes the checks fail',
      ),
    ],
    guardedBy: [],
  },
  {
    id: 'database-isolation',
    promise:
      'The database has no public path: isolated subnets without internet or NAT, no data port open to the world, and no function outside the VPC that can reach it.',
    implementedBy: ['lib/data/network.ts', 'lib/data/database.ts', 'lib/compliance/rules/LambdaDatabaseInVpc.ts'],
    provenBy: [
      t(
        'test/data/data-stack.test.ts',
        '%s: isolated subnets in every listed AZ, no internet or NAT gateway, no route out',
      ),
      t(
        'test/data/data-stack.test.ts',
        'passes the compliance gate and admits nothing from 0.0.0.0/0 or ::/0, on any port',
      ),
      t('test/data/data-stack.test.ts', 'the compliance gate refuses a data port opened to the world'),
      t(
        'test/data/data-stack.test.ts',
        '%s: only the migration function, the proxy and secret rotation reach the instance',
      ),
      t('test/data/data-stack.test.ts', '%s: no security group of any stack has egress to 0.0.0.0/0 or ::/0'),
      t(
        'test/data/data-stack.test.ts',
        "%s: every endpoint admits only this account's principals to this account's resources",
      ),
      t(
        'test/compliance/rules/LambdaDatabaseInVpc.test.ts',
        'flags out-of-VPC functions given the endpoint, rds-db:connect, or the database secret',
      ),
      t(
        'test/compliance/rules/LambdaDatabaseInVpc.test.ts',
        'flags an out-of-VPC function in another stack given the proxy endpoint or the database secret',
      ),
    ],
    guardedBy: ['Bulwark-LambdaDatabaseInVpc', 'NIST.800.53.R5-RDSInstancePublicAccess', 'AwsSolutions-EC23'],
  },
  {
    id: 'encryption-in-transit',
    promise:
      'TLS 1.2+ everywhere: the API and its custom domain, the database (rds.force_ssl), the proxy, and every bucket (TLS-only policies).',
    implementedBy: ['lib/api/platform-api.ts', 'lib/data/database.ts', 'lib/compliance/rules/RdsForceSsl.ts'],
    provenBy: [
      t(
        'test/edge/platform-api.test.ts',
        'serves the custom domain with the regional certificate and a TLS 1.2+ forward-secret policy, API included',
      ),
      t('test/edge/platform-api.test.ts', 'refuses policies that admit TLS 1.0'),
      t('test/data/data-stack.test.ts', '%s: TLS 1.2+ is forced and connections, DDL and role changes are logged'),
      t(
        'test/data/data-stack.test.ts',
        '%s: RDS Proxy requires TLS and IAM authentication for every user, in the data subnets',
      ),
      t('test/data/parameters.test.ts', 'requires TLS 1.2 or later and SCRAM passwords'),
      t(
        'test/compliance/rules/RdsForceSsl.test.ts',
        'flags a default parameter group and one without rds.force_ssl = 1',
      ),
    ],
    guardedBy: ['Bulwark-RdsForceSsl', 'AwsSolutions-S10', 'NIST.800.53.R5-S3BucketSSLRequestsOnly'],
  },
  {
    id: 'encryption-at-rest',
    promise:
      'Every data store, log group, bucket, secret and backup is encrypted with a customer-managed KMS key with rotation on.',
    implementedBy: ['lib/observability/keys.ts', 'lib/data/database.ts', 'lib/audit/locked-bucket.ts'],
    provenBy: [
      t('test/data/data-stack.test.ts', 'encrypts every log group and bucket with a customer-managed key'),
      t('test/data/data-stack.test.ts', 'the invariant checks flag violations'),
      t(
        'test/data/data-stack.test.ts',
        '%s: PostgreSQL 17, Multi-AZ, private, non-default port, encrypted, IAM auth, protected',
      ),
    ],
    guardedBy: [
      'AwsSolutions-RDS2',
      'HIPAA.Security-RDSStorageEncrypted',
      'HIPAA.Security-CloudWatchLogGroupEncrypted',
    ],
  },
  {
    id: 'hsts',
    promise:
      'HTTPS only, with HSTS exactly `max-age=63072000; includeSubDomains; preload` (and nosniff, DENY framing, no-referrer, a deny-all CSP) on every response.',
    implementedBy: ['contracts/security-headers.ts', 'lib/api/platform-api.ts', 'lib/compliance/rules/HstsPreload.ts'],
    provenBy: [
      t(
        'test/edge/platform-api.test.ts',
        'adds the security headers, with the exact HSTS value, to every 4XX and 5XX API Gateway produces',
      ),
      t('test/edge/edge-stage.test.ts', 'sends the exact security headers, overriding anything the origin says'),
      t(
        'test/compliance/rules/HstsPreload.test.ts',
        'flags a response headers policy with a short max-age, without preload, or without HSTS',
      ),
      t(
        'test/compliance/rules/HstsPreload.test.ts',
        'flags an API Gateway response that sets another HSTS value, accepts the exact one',
      ),
    ],
    guardedBy: ['Bulwark-HstsPreload'],
  },
  {
    id: 'waf',
    promise:
      'A WAF web ACL with AWS managed rules, a per-client rate limit and a body-size cap in front of every public entry point, logging with credentials redacted; no path around it.',
    implementedBy: ['lib/edge/web-acl.ts', 'lib/stacks/edge-stack.ts', 'lib/api/platform-api.ts'],
    provenBy: [
      t(
        'test/edge/web-acl.test.ts',
        'runs the five AWS managed rule groups with their own actions (no count-only override)',
      ),
      t('test/edge/web-acl.test.ts', 'blocks per client IP above the configured five-minute rate'),
      t(
        'test/edge/web-acl.test.ts',
        'logs to a KMS-encrypted, retained log group named for WAF, with authorization and cookie redacted',
      ),
      t('test/edge/edge-stage.test.ts', 'reports APIG3 (and the WAF association rules of the other packs)'),
      t('test/edge/platform-api.test.ts', 'is regional and reachable only through its custom domain'),
      t('test/compliance/rules/WafRateBasedRule.test.ts', 'flags a web ACL without a rate-based rule'),
    ],
    guardedBy: ['Bulwark-WafRateBasedRule', 'AwsSolutions-APIG3', 'AwsSolutions-CFR4'],
  },
  {
    id: 'rate-limits',
    promise:
      'Every bearer token and every API key has its own rate limit at the entry web ACL, wherever it calls from, and cannot be respelled into a second budget; the limits and the stage throttle answer 429 {"error":"RATE_LIMITED"}; no function can raise or remove them.',
    implementedBy: [
      'lib/edge/web-acl.ts',
      'lib/api/platform-api.ts',
      'contracts/rate-limits.ts',
      'lib/config/schema.ts',
      'tools/access-proof/must-deny.ts',
    ],
    provenBy: [
      t(
        'test/edge/credential-rate-limits.test.ts',
        'counts each bearer token and each API key in its own bucket, whatever the scheme case',
      ),
      t(
        'test/edge/credential-rate-limits.test.ts',
        'blocks every other spelling the tenant guard would accept, so a credential has exactly one bucket',
      ),
      t(
        'test/edge/credential-rate-limits.test.ts',
        'answers 429 {"error":"RATE_LIMITED"} from each per-credential rule, with the configured limits',
      ),
      t(
        'test/edge/platform-api.test.ts',
        'answers the stage throttle with 429 {"error":"RATE_LIMITED"} and the security headers',
      ),
      t('test/edge/edge-stage.test.ts', 'put the full web ACL on the API stage and keep its logs in-region, redacted'),
      t('test/edge/config.test.ts', 'names the deployment and the field of each bad limit'),
    ],
    guardedBy: ['Bulwark-WafRateBasedRule'],
  },
  {
    id: 'tenant-budget',
    promise:
      'Each organisation has one aggregate request budget per minute, shared by all its people and API keys, counted against the organisation a verified credential proves (never one the client names) before the tenant API takes a database connection (the first request of an API key in an instance: right after the database proves it); a spent budget is 429 {"error":"TENANT_RATE_LIMITED"} with Retry-After, logged and counted; DynamoDB failures fail open, logged and counted; the API role can only update counter items.',
    implementedBy: [
      'lambda/tenant-guard/tenant-budget.ts',
      'lambda/tenant-guard/api.ts',
      'lib/tenant-guard/tenant-budget.ts',
      'lib/config/schema.ts',
      'tools/access-proof/budget-rows.ts',
    ],
    provenBy: [
      t(
        'test/tenant-guard/tenant-budget.test.ts',
        'allows an organisation up to its budget in a window and refuses above it, with the seconds left in the window',
      ),
      t(
        'test/tenant-guard/tenant-budget.test.ts',
        'admits exactly the budget when many instances race for it (the conditional update is atomic)',
      ),
      t(
        'test/tenant-guard/tenant-budget.test.ts',
        'fails open when DynamoDB does not answer within the timeout, and aborts the call',
      ),
      t(
        'test/tenant-guard/tenant-budget.test.ts',
        'sends one conditional UpdateItem keyed on the organisation and the window, returning the new count',
      ),
      t(
        'test/tenant-guard/tenant-budget-api.test.ts',
        'answers 429 TENANT_RATE_LIMITED with Retry-After once the organisation’s budget is spent, before taking a connection',
      ),
      t(
        'test/tenant-guard/tenant-budget-api.test.ts',
        'counts a bearer token against the organisation it proves, not the one X-Bulwark-Org names',
      ),
      t(
        'test/tenant-guard/tenant-budget-api.test.ts',
        'counts an API key against the organisation the database proves it belongs to; a key id without its secret spends nothing',
      ),
      t(
        'test/tenant-guard/tenant-budget-construct.test.ts',
        'is on demand, encrypted with its own customer-managed key, keyed on pk with TTL on expiresAt, retained and protected',
      ),
      t('test/edge/config.test.ts', 'refuses a budget the stage throttle could never reach, naming both settings'),
      t('test/access/proof.test.ts', '%s is %s in every deployment'),
    ],
    guardedBy: [],
  },
  {
    id: 'webhook-verification',
    promise:
      'Carrier webhooks are trusted only after their signature is verified over the exact bytes sent (Ed25519 or constant-time HMAC-SHA256), within 300 s, once; verification is mandatory in production and a missing key fails loudly.',
    implementedBy: [
      'lambda/webhooks/telnyx.ts',
      'lambda/webhooks/hmac.ts',
      'lambda/webhooks/handler.ts',
      'lambda/webhooks/dedup.ts',
    ],
    provenBy: [
      t('test/webhooks/conformance.test.ts', 'refuses a body with one byte changed'),
      t('test/webhooks/conformance.test.ts', 'refuses a timestamp 301 s old and 301 s in the future, accepts 300 s'),
      t(
        'test/webhooks/conformance.test.ts',
        'acknowledges a replay of an accepted event with success and does not process it again',
      ),
      t('test/webhooks/properties.test.ts', 'refuses any change to the signed bytes (body or timestamp)'),
      t('test/webhooks/dedup.test.ts', 'of two concurrent deliveries of the same event, exactly one processes'),
      t('test/webhooks/runtime.test.ts', 'refuses to cold-start in production with verification disabled'),
      t(
        'test/webhooks/runtime.test.ts',
        'Telnyx without a configured public key: WEBHOOK_SECRET_MISSING (503), logged at cold start',
      ),
    ],
    guardedBy: [],
  },
  {
    id: 'audit-immutability',
    promise:
      'Audit records cannot be altered or deleted before their plan retention ends (Pro 12 months, Business 24, Enterprise 7 years), by anyone: append-only hash-chained log in PostgreSQL, Object Lock COMPLIANCE archive, CloudTrail with validation.',
    implementedBy: [
      'migrations/0100_audit_log.sql',
      'lambda/audit/chain.ts',
      'lambda/audit/verify.ts',
      'lib/audit/locked-bucket.ts',
      'lib/compliance/rules/ObjectLockCompliance.ts',
    ],
    provenBy: [
      t(
        'test/audit/audit-log.test.ts',
        'refuses UPDATE, DELETE and TRUNCATE to the application role, inside a tenant context too',
      ),
      t(
        'test/audit/audit-log.test.ts',
        'refuses UPDATE, DELETE and TRUNCATE to the owner and even the superuser (trigger)',
      ),
      t('test/audit/audit-stack.test.ts', 'locks every audit bucket in COMPLIANCE mode for at least 12 months'),
      t(
        'test/audit/audit-stack.test.ts',
        'denies non-TLS access and every deletion on every bucket, for every principal',
      ),
      t(
        'test/audit/audit-stack.test.ts',
        'runs a multi-region CloudTrail with validation, KMS encryption and data events, into a locked bucket',
      ),
      t('test/audit/verify.test.ts', 'detects every single-byte modification of the archive'),
      t(
        'test/audit/shipper.test.ts',
        'writes ordered, conditional, KMS-encrypted batches with COMPLIANCE retention from each plan',
      ),
      t(
        'test/tenant-guard/api.test.ts',
        'exports the organisation audit log as CSV with filters, only with audit:view, and audits the export',
      ),
      t(
        'test/compliance/rules/ObjectLockCompliance.test.ts',
        'flags GOVERNANCE mode, short retention, and an audit bucket without Object Lock',
      ),
    ],
    guardedBy: ['Bulwark-ObjectLockCompliance'],
  },
  {
    id: 'control-plane-detection',
    promise:
      'An attack on the platform’s own control plane is seen and pages the on-call: a multi-region CloudTrail (global services included) into the residency zone, with alarms on root activity, platform key deletion/disabling/policy changes, Bulwark role policy and tag changes, trail tampering, audit bucket policy changes and bursts of authorization failures.',
    implementedBy: ['lib/audit/audit-trail.ts', 'lib/audit/trail-alarms.ts', 'lib/observability/alarm-topic.ts'],
    provenBy: [
      t(
        'test/audit/audit-stack.test.ts',
        'runs a multi-region CloudTrail with validation, KMS encryption and data events, into a locked bucket',
      ),
      t('test/audit/trail-alarms.test.ts', '%s: the filter pattern matches exactly the events it is for'),
      t(
        'test/audit/trail-alarms.test.ts',
        'pages the alarm topic: one event is enough, except a burst of authorization failures',
      ),
      t('test/access/proof.test.ts', '%s is %s in every deployment'),
    ],
    guardedBy: [
      'Bulwark-Residency',
      'NIST.800.53.R5-CloudTrailCloudWatchLogsEnabled',
      'NIST.800.53.R5-CloudTrailEncryptionEnabled',
      'NIST.800.53.R5-CloudTrailLogFileValidationEnabled',
    ],
  },
  {
    id: 'account-baseline',
    promise:
      'Where the organisation does not already run them, each production deployment enables GuardDuty (S3, RDS, Lambda protections), Security Hub with AWS Foundational Security Best Practices, AWS Config recording into an encrypted in-zone bucket, and IAM Access Analyzer; high-severity findings page the on-call.',
    implementedBy: [
      'lib/detection/account-baseline.ts',
      'lib/stacks/account-baseline-stack.ts',
      'lib/config/schema.ts',
    ],
    provenBy: [
      t('test/detection/account-baseline.test.ts', 'runs GuardDuty with the S3, RDS and Lambda protections'),
      t(
        'test/detection/account-baseline.test.ts',
        'enables Security Hub with the Foundational Security Best Practices standard only',
      ),
      t(
        'test/detection/account-baseline.test.ts',
        'records every resource with AWS Config into an encrypted bucket in the region',
      ),
      t(
        'test/config/account-baseline.test.ts',
        'defaults to on in production and off elsewhere; an explicit value wins',
      ),
    ],
    guardedBy: ['Bulwark-Residency'],
  },
  {
    id: 'guardrails',
    promise:
      'Organisation guardrails outside the deployment: SCPs deny regions outside the residency zone (global services exempt), key deletion and disabling except break-glass, changes to `bulwark:*` tags of keys and roles, and stopping the trail; CloudFormation deploys with a least-privilege execution policy instead of AdministratorAccess.',
    implementedBy: [
      'guardrails/scp-deny-regions-outside-eu.json',
      'guardrails/scp-protect-keys-and-tags.json',
      'guardrails/scp-protect-detection.json',
      'guardrails/cdk-bootstrap-execution-policy.json',
      'tools/guardrails/guardrails.ts',
    ],
    provenBy: [
      t('test/guardrails/guardrails.test.ts', 'region SCPs'),
      t('test/guardrails/guardrails.test.ts', 'key and tag SCP'),
      t('test/guardrails/guardrails.test.ts', 'detection SCP'),
      t('test/guardrails/guardrails.test.ts', 'covers every resource type the shipped deployments synthesize'),
    ],
    guardedBy: [],
  },
  {
    id: 'backups-pitr',
    promise:
      'The database is recoverable to within 5 minutes (RPO) in under an hour (RTO): daily backups and continuous PITR for 30 days, copied to a locked vault in a second region of the same residency zone, proven by a scheduled restore drill.',
    implementedBy: [
      'lib/data/backup.ts',
      'lib/stacks/backup-vault-stack.ts',
      'lib/data/restore-drill.ts',
      'lambda/restore-drill/drill.ts',
    ],
    provenBy: [
      t('test/data/data-stack.test.ts', '%s: daily 02:00 UTC, 30 days, continuous (PITR), copied to the backup region'),
      t('test/data/data-stack.test.ts', '%s: the copy vault lives in the backup region, on its own key, locked'),
      t('test/data/data-stack.test.ts', '%s: both vaults are locked, and every plan retention fits its target lock'),
      t(
        'test/data/data-stack.test.ts',
        '%s: failed, aborted, expired and partial backup and copy jobs reach the alarm topic',
      ),
      t('test/data/restore-drill.test.ts', 'always deletes the temporary instance, whichever step fails (property)'),
      t(
        'test/data/restore-drill.test.ts',
        'reports a restore slower than the RTO as a failed drill, still deleting the instance',
      ),
    ],
    guardedBy: ['HIPAA.Security-RDSInBackupPlan', 'NIST.800.53.R5-RDSInBackupPlan'],
  },
  {
    id: 'backups-copy-drill',
    promise:
      'The copy in the backup region is proven restorable without the primary region: a monthly drill there restores the newest copy (under that region’s key) into an isolated network, measures the time to an available instance and the age of the data restored (the achieved RPO), always deletes it, and alarms through a topic of that region on failure, timeout, a slow restore or a stale copy.',
    implementedBy: [
      'lib/data/copy-restore-drill.ts',
      'lib/stacks/backup-vault-stack.ts',
      'lib/data/restore-drill.ts',
      'lambda/restore-drill/drill.ts',
    ],
    provenBy: [
      t(
        'test/data/copy-restore-drill.test.ts',
        'restores the newest available copy (across pages) into the isolated network, under the drill prefix',
      ),
      t(
        'test/data/copy-restore-drill.test.ts',
        'restores nothing when the vault holds no available copy, and reports NO_RECOVERY_POINT',
      ),
      t('test/data/copy-restore-drill.test.ts', 'still deletes the restored instance when the restore fails'),
      t(
        'test/data/copy-restore-drill.test.ts',
        'fails a restore that does not complete within its window (TIMEOUT, the failed metric), deleting it',
      ),
      t(
        'test/data/backup-region-drill.test.ts',
        'restores into a VPC with isolated subnets only: no internet gateway, no NAT, no route out',
      ),
      t(
        'test/data/backup-region-drill.test.ts',
        'deletes only drill-named, drill-tagged instances; restores only AWS Backup copies into drill instances',
      ),
      t(
        'test/data/backup-region-drill.test.ts',
        "alarms reach the backup region's alarm topic, which mails the deployment's alarm contact",
      ),
    ],
    guardedBy: ['Bulwark-Residency'],
  },
  {
    id: 'audit-survives-region',
    promise:
      'The audit archive and the CloudTrail log files survive the loss of the primary region or of a key: replicated into Object Lock buckets of the backup region under a key that lives there, keys nobody but break-glass can delete or disable, and expired only after the longest plan retention.',
    implementedBy: ['lib/audit/audit-replicas.ts', 'lib/audit/locked-bucket.ts', 'lib/observability/keys.ts'],
    provenBy: [
      t(
        'test/audit/replication.test.ts',
        '%s: archive and trail buckets replicate every version into the backup region',
      ),
      t(
        'test/audit/replication.test.ts',
        '%s: the replicas are locked like their sources, under a key of the backup region',
      ),
      t(
        'test/audit/replication.test.ts',
        '%s: archive, trail and replica keys: deletion and disabling only by break-glass',
      ),
      t(
        'test/audit/replication.test.ts',
        '%s: every Object Lock bucket expires after every plan retention and its own default',
      ),
    ],
    guardedBy: ['HIPAA.Security-S3BucketReplicationEnabled', 'NIST.800.53.R5-S3BucketReplicationEnabled'],
  },
  {
    id: 'tenant-keys',
    promise:
      'Each tenant’s secrets are envelope-encrypted under a KMS key of its own, usable only with the `org_id` encryption context of that tenant; APIs report only `*_set`.',
    implementedBy: [
      'lambda/tenant-keys/provisioner.ts',
      'lambda/tenant-keys/key-policy.ts',
      'lambda/tenant-keys/envelope-cipher.ts',
      'lib/tenant-keys/tenant-keys.ts',
      'lib/compliance/rules/TenantKeyEncryptionContext.ts',
    ],
    provenBy: [
      t(
        'test/tenant-keys/provisioner.test.ts',
        'lets the API role (tagged tenant-key user of this deployment) use the key only with org_id = that tenant',
      ),
      t('test/tenant-keys/envelope-cipher.test.ts', 'a ciphertext re-labelled with another tenant key is refused'),
      t('test/tenant-keys/envelope-cipher.test.ts', 'any single flipped bit anywhere in the ciphertext (property)'),
      t(
        'test/tenant-keys/tenant-keys-stack.test.ts',
        'a naive grant of tenant-key use without the org_id context is refused by the gate',
      ),
      t('test/tenant-keys/write-only.test.ts', 'reports *_set and never the value or the ciphertext'),
      t(
        'test/tenant-keys/key-guards.test.ts',
        'the provisioner cannot re-tag the database key into the tenant class (IAM alone, and the key policy)',
      ),
      t(
        'test/compliance/rules/TenantKeyEncryptionContext.test.ts',
        'flags a role that may use any key without the org_id encryption context',
      ),
    ],
    guardedBy: ['Bulwark-TenantKeyEncryptionContext'],
  },
  {
    id: 'credentials-vault',
    promise:
      'Mailbox passwords, OAuth refresh tokens, SIP passwords, carrier tokens and AI provider keys are never logged, never returned by any API after the initial save (only `<kind>_set`, `set_at`, `set_by`), and stored sealed under the tenant’s key above the database encryption, in a column the API role cannot read; OAuth access tokens are never stored; a missing credential is `CREDENTIAL_MISSING`; platform carrier keys never sit in a function’s environment.',
    implementedBy: [
      'migrations/0409_credentials_vault.sql',
      'lambda/tenant-guard/routes/credentials.ts',
      'lambda/tenant-keys/write-only.ts',
      'lambda/tenant-keys/envelope-cipher.ts',
      'contracts/credentials.ts',
      'lib/compliance/rules/LambdaEnvironmentNoSecrets.ts',
    ],
    provenBy: [
      t(
        'test/tenant-guard/credentials.test.ts',
        'sets every kind write-only: sealed under the tenant key with org and kind in the context, audited by kind',
      ),
      t(
        'test/tenant-guard/credentials.test.ts',
        'another tenant can neither see nor open it: RLS hides the row, the encryption context refuses the key',
      ),
      t(
        'test/tenant-guard/credentials.test.ts',
        'rotation replaces the sealed value (the old one is gone) and deletion removes the row; a missing one is CREDENTIAL_MISSING',
      ),
      t(
        'test/tenant-guard/credentials.test.ts',
        'no secret value appears in any response, log line, audit row, SQL parameter or export of these tests',
      ),
      t(
        'test/tenant-guard/credentials.test.ts',
        'exports say only which credentials are set; the export carries no value or ciphertext',
      ),
      t(
        'test/compliance/rules/LambdaEnvironmentNoSecrets.test.ts',
        'flags a credential-named variable that is not a secret ARN (a platform carrier key in plain text)',
      ),
    ],
    guardedBy: ['Bulwark-LambdaEnvironmentNoSecrets'],
  },
  {
    id: 'tenant-files',
    promise:
      'Uploaded files are stored SSE-KMS (AES-256) under their own tenant’s key in a versioned, TLS-only, private bucket under `orgs/<org_id>/`; every storage read carries the tenant identifier: the API function’s own role cannot reach the bucket, and the credentials that can are minted by the authorizer for the verified organisation only (session tag `org_id`), so a session of tenant A can never read, write or decrypt tenant B’s objects, even with a guessed key. Uploads stay quarantined until released.',
    implementedBy: [
      'lib/tenant-files/file-store.ts',
      'lib/tenant-guard/tenant-guard.ts',
      'lambda/tenant-guard/files-credentials.ts',
      'lambda/tenant-guard/routes/files.ts',
      'lambda/shared/s3-presigner.ts',
      'lambda/tenant-keys/key-policy.ts',
      'migrations/0408_tenant_files.sql',
    ],
    provenBy: [
      t('test/access/proof.test.ts', '%s is %s in every deployment'),
      t(
        'test/tenant-files/routes.test.ts',
        'presigns a PUT with the files credentials minted for the verified organisation, every constraint signed',
      ),
      t('test/shared/s3-presigner.test.ts', 'the file upload, every constraint a signed header, with %s'),
      t('test/tenant-files/routes.test.ts', "cannot address another organisation's file by id"),
      t(
        'test/tenant-files/routes.test.ts',
        'keeps a file quarantined until the checker releases it, and a rejected one for good',
      ),
      t(
        'test/tenant-files/credentials.test.ts',
        'assumes the files role for 15 minutes with the organisation as the one session tag',
      ),
      t(
        'test/tenant-guard/rls.test.ts',
        'cross-tenant matrix: every tenant table x SELECT/INSERT/UPDATE/DELETE x every context',
      ),
    ],
    guardedBy: ['Bulwark-TenantKeyEncryptionContext', 'AwsSolutions-S10'],
  },
  {
    id: 'tenant-files-export',
    promise:
      'A tenant export carries the organisation’s released files (bytes checked against each row’s SHA-256; quarantined and rejected files listed, never included), read by the export worker only through a read-only session tagged with the exported organisation (`org_id`): that session reads A’s released files under A’s key and context and nothing of B’s, and the worker’s own role reads no file. The export streams to S3, SSE-KMS under the export key, one part in memory at a time.',
    implementedBy: [
      'lambda/tenant-keys/export.ts',
      'lambda/tenant-keys/export-files.ts',
      'lambda/tenant-keys/s3-upload.ts',
      'lambda/tenant-keys/lifecycle-handler.ts',
      'lib/tenant-keys/tenant-keys.ts',
      'tools/access-proof/files-rows.ts',
    ],
    provenBy: [
      t('test/access/proof.test.ts', '%s is %s in every deployment'),
      t(
        'test/tenant-keys/export-files.test.ts',
        "carries the organisation's released files, read under an org_id-tagged session, checksums matching the rows",
      ),
      t('test/tenant-keys/export-files.test.ts', 'lists quarantined and rejected files without reading them'),
      t(
        'test/tenant-keys/export-files.test.ts',
        'fails the export when bytes do not match the row (size or SHA-256), and writes no export',
      ),
      t(
        'test/tenant-keys/export-files.test.ts',
        'streams a 25 MiB file as a multipart upload, holding about one part ahead of what was uploaded',
      ),
      t(
        'test/tenant-keys/lifecycle-export.pg.test.ts',
        'carries the bytes of the organisation’s released files, checksums matching the rows; never another’s',
      ),
    ],
    guardedBy: ['Bulwark-TenantKeyEncryptionContext'],
  },
  {
    id: 'tenant-key-policy-refresh',
    promise:
      'Every managed tenant key is brought up to the current key policy once per policy version (the policy rendered for its own organisation, after its tags are checked, without bypassing the KMS lock-out check); bring-your-own keys are only checked, never written, and serve tenant files only once their policy allows it. Only the provisioner may read or write tenant key policies, and only on keys tagged as this deployment’s tenant keys; keys still behind are a metric and an alarm.',
    implementedBy: [
      'lambda/tenant-keys/policy-refresh.ts',
      'lambda/tenant-keys/key-policy.ts',
      'lambda/tenant-keys/provisioner-handler.ts',
      'migrations/0414_key_policy_versions.sql',
      'lib/tenant-keys/tenant-keys.ts',
      'lambda/tenant-guard/routes/files.ts',
    ],
    provenBy: [
      t('test/access/proof.test.ts', '%s is %s in every deployment'),
      t(
        'test/tenant-keys/policy-refresh.test.ts',
        're-puts an older managed key with the current policy rendered for its organisation, then records it',
      ),
      t(
        'test/tenant-keys/policy-refresh.test.ts',
        'never writes a key whose tags name another organisation, or whose policy it does not recognise',
      ),
      t(
        'test/tenant-keys/policy-refresh.test.ts',
        'only checks a bring-your-own key: recorded once its policy allows files, never written',
      ),
      t(
        'test/tenant-keys/policy-refresh.test.ts',
        'is bounded by the invocation time and resumes where the recorded versions say',
      ),
      t(
        'test/tenant-keys/policy-refresh.pg.test.ts',
        'a refresh run re-puts the managed key once, checks the bring-your-own key, and resumes from the database',
      ),
      t(
        'test/tenant-files/routes.test.ts',
        'are refused until the provisioner records their policy at the files version, then served',
      ),
    ],
    guardedBy: [],
  },
  {
    id: 'tenant-file-quarantine',
    promise:
      'An upload is downloadable only once the quarantine checker released it: its exact version has the declared size and SHA-256, starts with the magic number of its declared type and is SSE-KMS under its own organisation’s tenant key (anything else, such as the `aws/s3` key, is rejected and its bytes expire). The database decides and records the release in the tenant’s audit trail; the checker reads only the first bytes of versions under `orgs/`, each only under its organisation’s key and context through S3, writes nothing but the scan mark (the one exception to the bucket policy that denies tag writes to everyone, administrators included), deletes nothing, and its database role can execute one function and read no table.',
    implementedBy: [
      'lib/tenant-files/file-checker.ts',
      'lib/tenant-files/file-store.ts',
      'lambda/tenant-files/checker.ts',
      'lambda/tenant-files/checker-handler.ts',
      'lambda/tenant-files/magic.ts',
      'migrations/0413_file_checks.sql',
    ],
    provenBy: [
      t('test/access/proof.test.ts', '%s is %s in every deployment'),
      t(
        'test/tenant-files/checker.pg.test.ts',
        'releases a file whose bytes match its declaration, once, with an audit event in its own chain',
      ),
      t('test/tenant-files/checker.pg.test.ts', 'rejects a size mismatch, and never moves a decided row back'),
      t(
        'test/tenant-files/checker.pg.test.ts',
        'rejects bytes whose magic number is not the declared type (a PNG declared as a PDF)',
      ),
      t(
        'test/tenant-files/checker.pg.test.ts',
        "rejects an object under the aws/s3 key, another organisation's key, or not SSE-KMS at all, without reading it",
      ),
      t(
        'test/tenant-files/checker.pg.test.ts',
        'is idempotent: a duplicate event changes nothing, writes no event, and marks the version again',
      ),
      t('test/tenant-files/checker.pg.test.ts', 'cannot be called by the API role (or any other function role)'),
      t('test/tenant-files/checker.pg.test.ts', 'can read no tenant table, write none, and call no other function'),
      t(
        'test/tenant-files/checker.test.ts',
        'reads the first bytes of the pinned version only, then marks that version clean',
      ),
      t(
        'test/tenant-files/checker.test.ts',
        'never lets a new version inherit the release of a file: it is marked by its own verdict',
      ),
      t(
        'test/tenant-files/routes.test.ts',
        'serves the presigned download once the quarantine checker, as bulwark_file_checker, released the upload',
      ),
      t(
        'test/tenant-files/construct.test.ts',
        "exempts the checker's role, and only it, from NobodyWritesTheReleaseMark",
      ),
    ],
    guardedBy: [],
  },
  {
    id: 'deletion-after-grace',
    promise:
      'A cancelled tenant keeps access to the end of its billing period, then 30 days of restorable grace; after that its rows and objects are deleted and its key scheduled for deletion, so backups sealed under it become unreadable. Every step is audited.',
    implementedBy: [
      'lambda/tenant-keys/lifecycle.ts',
      'lambda/tenant-keys/lifecycle-processor.ts',
      'migrations/0300_tenant_keys_lifecycle.sql',
      'migrations/0301_system_audit_events.sql',
      'lambda/audit/pg-system-sink.ts',
    ],
    provenBy: [
      t(
        'test/tenant-keys/lifecycle.test.ts',
        'never shreds before access end + 30 days, and shredded is terminal (property)',
      ),
      t(
        'test/tenant-keys/lifecycle.test.ts',
        'moves due tenants, shreds after the grace period and schedules the key for deletion, auditing each step',
      ),
      t(
        'test/tenant-keys/lifecycle.test.ts',
        'schedules deletion of a bring-your-own key like any other, once its tags name the tenant',
      ),
      t(
        'test/tenant-keys/lifecycle-export.pg.test.ts',
        'grace: access is suspended, nothing is deleted, and the Owner can restore',
      ),
      t(
        'test/tenant-keys/lifecycle-export.pg.test.ts',
        'shredded: rows and objects deleted, key scheduled for deletion, other tenants untouched, final',
      ),
      t(
        'test/tenant-keys/lifecycle-export.pg.test.ts',
        'the catalog check bites: a new tenant table without app.allow_tenant_erasure is reported',
      ),
      t(
        'test/tenant-keys/envelope-cipher.test.ts',
        'after the tenant key is destroyed nothing opens (crypto-shredding)',
      ),
      t(
        'test/tenant-keys/system-audit.pg.test.ts',
        'the lifecycle function writes each step’s event into the durable audit log',
      ),
      t(
        'test/tenant-keys/system-audit.pg.test.ts',
        'erasure: a failed event rolls the deletion back; the next run erases and audits the true count',
      ),
      t(
        'test/audit/system-audit.test.ts',
        'the database refuses, whoever calls: a non-system actor, a person, a name outside the namespace, a back-dated event',
      ),
    ],
    guardedBy: [],
  },
  {
    id: 'residency',
    promise:
      'A deployment keeps its data, keys, logs and backups inside its residency zone (EU excludes London and Zurich); global resources only by reasoned allowance.',
    implementedBy: [
      'lib/residency/guard.ts',
      'tools/residency/report.ts',
      'lib/config/regions.ts',
      'lib/config/schema.ts',
    ],
    provenBy: [
      t('test/residency/guard.test.ts', 'names the resource and the region when a log destination leaves the zone'),
      t('test/residency/guard.test.ts', 'treats London as outside the EU'),
      t(
        'test/residency/guard.test.ts',
        'flags a resource that reads an out-of-zone region from Mappings, naming the region its partition selects',
      ),
      t(
        'test/residency/guard.test.ts',
        'flags unread Mappings, Outputs and Parameter defaults that name a region outside the zone',
      ),
      t('test/residency/guard.test.ts', 'fails synth through the validation plugin'),
      t(
        'test/residency/guard.test.ts',
        'fails synth naming the resources and the region when the backup region leaves the zone',
      ),
      t('test/config/schema.test.ts', 'refuses %s'),
      t('test/residency/report.test.ts', 'lists every stack of the pinned EU deployment inside the EU'),
      t(
        'test/residency/report.test.ts',
        'lists each secret rotation application as allowed, with its us-east-1 code origin and the reason',
      ),
      t(
        'test/edge/edge-stage.test.ts',
        'keep every stack, and so every log holding client IPs, in the deployment region inside its zone',
      ),
    ],
    guardedBy: ['Bulwark-Residency'],
  },
  {
    id: 'compliance-gate',
    promise:
      'Every deployment passes five cdk-nag packs and Bulwark’s own pack with zero unacknowledged findings; each accepted finding is scoped to one resource with a specific reason, and an acknowledgement that matches no finding fails synth.',
    implementedBy: ['lib/compliance/gate.ts', 'lib/compliance/acknowledge.ts', 'lib/compliance/bulwark-pack.ts'],
    provenBy: [
      t('test/compliance/gate.test.ts', 'fails synth on a non-compliant construct'),
      t('test/compliance/gate.test.ts', 'an acknowledgement removes exactly that finding on exactly that construct'),
      t('test/compliance/acknowledge.test.ts', 'refuses %s as scope'),
      t(
        'test/compliance/gate.test.ts',
        'fail synth, naming the resource and the acknowledged id; a matching one passes',
      ),
      t('test/compliance/gate.test.ts', 'of the CDK template validator are checked against its report'),
      t('test/foundation/deployments.test.ts', 'passes the compliance gate with zero unacknowledged findings'),
    ],
    guardedBy: [],
  },
];
