import * as path from 'node:path';
import { Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import * as apigateway from 'aws-cdk-lib/aws-apigateway';
import * as cognito from 'aws-cdk-lib/aws-cognito';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import type * as sns from 'aws-cdk-lib/aws-sns';
import { Construct } from 'constructs';
import { securityHeaders } from '../../contracts/security-headers';
import { TENANT_ROUTE_PREFIXES } from '../../contracts/tenant-api';
import { FILES_CREDENTIAL_REUSE_SECONDS } from '../../contracts/tenant-files';
import { staticHeaderValues } from '../api/platform-api';
import { acknowledge } from '../compliance/acknowledge';
import { customerKey } from '../observability/keys';
import type { DatabaseAccess } from '../data/database-access';
import { BulwarkFunction } from '../shared/function';
import type { GateKey } from './gate-key';
import { orgSessionRole } from '../tenant-files/session-role';
import { TenantBudgetTable } from './tenant-budget';

/** The aggregate per-organisation request budget (docs/rate-limits.md "Per tenant"). */
export interface TenantGuardBudget {
  /** Requests per organisation per minute (`edge.tenantBudget.requestsPerMinute`). */
  readonly requestsPerMinute: number;
  /**
   * The DynamoDB interface endpoint's URL in the API's VPC (DataStack.dynamoDbEndpointUrl).
   * @default - the SDK's regional endpoint (a VPC without a DynamoDB endpoint cannot reach it: the budget then fails open)
   */
  readonly endpointUrl?: string;
  /** How long a request waits for DynamoDB before it goes on uncounted. @default 100 */
  readonly timeoutMillis?: number;
  /** Where the alarm on requests passed uncounted goes. @default - no alarm */
  readonly alarmTopic?: sns.ITopic;
}

export interface TenantGuardProps {
  /** REST API the tenant routes are added to, under `api.root`. */
  readonly api: apigateway.IRestApi;
  /** The tenant API's database access (the data tier's, as `bulwark_app`); the API runs where it says. */
  readonly database: DatabaseAccess;
  /**
   * The key the authorizer signs gate tickets with (the data tier's, `DatabaseSchema.gateKey`, which
   * the migration function installs into the database). Only the authorizer reads it here.
   */
  readonly gateKey: GateKey;
  /** Days the function logs are kept. @default logs.RetentionDays.ONE_YEAR */
  readonly logRetention?: logs.RetentionDays;
  /** Maximum concurrent API executions (protects the database). @default 50 */
  readonly apiConcurrency?: number;
  /** Maximum concurrent authorizer executions. @default 100 */
  readonly authorizerConcurrency?: number;
  /**
   * How long API Gateway keeps an authorizer verdict per Authorization header. A cached verdict for
   * a token is never honoured past the token's own expiry (the API function checks it), and API keys
   * are checked in the database on every request whatever the cache holds. Keep it shorter than a
   * gate ticket's life (MAX_TICKET_SECONDS, 5 minutes), or a cached verdict carries an expired ticket.
   * Shorter than the files credentials' least remaining life (contracts/tenant-files.ts).
   * @default Duration.minutes(4)
   */
  readonly authorizerCacheTtl?: Duration;
  /**
   * Headers on the authorizer's refusals (401 gateway responses), as on every other response.
   * @default securityHeaders() (HSTS preload, nosniff, DENY framing, no-referrer, CSP, no-store)
   */
  readonly responseHeaders?: Readonly<Record<string, string>>;
  /**
   * The per-organisation request budget: a DynamoDB counter table the API spends before it opens a
   * transaction; a spent budget is `429 TENANT_RATE_LIMITED` with `Retry-After`.
   * @default - no per-tenant budget
   */
  readonly budget?: TenantGuardBudget;
}

/**
 * What the tenant API needs from the tenant keys (the `TenantKeys` construct provides it): the
 * provisioner it invokes, the export bucket it signs download links for, and the managed policy
 * that grants exactly that.
 */
export interface TenantGuardTenantKeys {
  readonly provisioner: lambda.IFunction;
  readonly exportBucket: s3.IBucket;
  /** lambda:InvokeFunction on the provisioner, s3:GetObject on exports/*, kms:Decrypt through S3. */
  readonly apiAccessPolicy: iam.IManagedPolicy;
}

/** What the file routes need from the tenant file store (lib/tenant-files/file-store.ts). */
export interface TenantGuardFileStore {
  readonly bucket: s3.IBucket;
  /** What a files-role session may do, scoped by its `org_id` session tag; attached to the files role. */
  readonly sessionPolicy: iam.IManagedPolicy;
}

/**
 * The tenant guard: the identity provider (a Cognito user pool with MFA required and a custom
 * `org_id` attribute); a REQUEST authorizer in front of every tenant route, which verifies bearer
 * tokens with jose against the pool's JWKS and lets well-formed API keys through to be checked in
 * the database; the tenant API (one function in the VPC that re-checks membership, or the API key's
 * hash, on every request and enters the tenant through the database gate). The schema it serves
 * belongs to the data tier (lib/data/schema.ts).
 */
export class TenantGuard extends Construct {
  public readonly userPool: cognito.IUserPool;
  public readonly userPoolClient: cognito.IUserPoolClient;
  public readonly apiFunction: lambda.IFunction;
  /** The API function's role (tagged and granted by capabilities such as tenant keys). */
  public readonly apiRole: iam.Role;
  /** The REQUEST authorizer in front of every tenant route (outside the VPC; no data access). */
  public readonly authorizerFunction: lambda.IFunction;
  /**
   * The API function's one customer-managed policy, where other capabilities add their grants
   * (tenant keys' `grantTenantKeyUse`, for sealing per-organisation secrets).
   */
  public readonly apiPolicy: iam.ManagedPolicy;
  /**
   * The role tenant files are read and written with (`useFileStore`): assumed only by the
   * authorizer, with the organisation it verified as the `org_id` session tag.
   */
  public filesRole?: iam.Role;
  /** The per-tenant budget's counter table, when `budget` is set. */
  public readonly budgetTable?: TenantBudgetTable;
  private readonly api: BulwarkFunction;
  private readonly authorizer: BulwarkFunction;
  private tenantKeysWired = false;

  constructor(scope: Construct, id: string, props: TenantGuardProps) {
    super(scope, id);
    const stack = Stack.of(this);
    const db = props.database;

    const userPool = new cognito.UserPool(this, 'UserPool', {
      selfSignUpEnabled: false,
      signInAliases: { email: true },
      mfa: cognito.Mfa.REQUIRED,
      mfaSecondFactor: { otp: true, sms: false },
      passwordPolicy: {
        minLength: 14,
        requireLowercase: true,
        requireUppercase: true,
        requireDigits: true,
        requireSymbols: true,
        tempPasswordValidity: Duration.days(3),
      },
      accountRecovery: cognito.AccountRecovery.EMAIL_ONLY,
      customAttributes: { org_id: new cognito.StringAttribute({ minLen: 36, maxLen: 36, mutable: true }) },
      featurePlan: cognito.FeaturePlan.PLUS,
      standardThreatProtectionMode: cognito.StandardThreatProtectionMode.FULL_FUNCTION,
      deletionProtection: true,
      removalPolicy: RemovalPolicy.RETAIN,
    });
    const client = userPool.addClient('ApiClient', {
      generateSecret: false,
      authFlows: { userSrp: true },
      preventUserExistenceErrors: true,
      idTokenValidity: Duration.minutes(60),
      accessTokenValidity: Duration.minutes(60),
      refreshTokenValidity: Duration.days(1),
      readAttributes: new cognito.ClientAttributes()
        .withStandardAttributes({ email: true, emailVerified: true })
        .withCustomAttributes('org_id'),
      writeAttributes: new cognito.ClientAttributes(),
    });
    this.userPool = userPool;
    this.userPoolClient = client;

    const key = customerKey(this, 'LogKey', 'Encrypts tenant guard logs and function environments');
    const lambdaDir = path.join(__dirname, '..', '..', 'lambda', 'tenant-guard');

    const api = new BulwarkFunction(this, 'Api', {
      entry: path.join(lambdaDir, 'handler.ts'),
      description: 'Tenant API: re-checks membership or the API key, enters the tenant through the database gate',
      invocation: { kind: 'synchronous', caller: 'API Gateway' },
      reservedConcurrentExecutions: props.apiConcurrency ?? 50,
      encryptionKey: key,
      memorySize: 512,
      timeout: Duration.seconds(15),
      logRetention: props.logRetention,
      network: db.network,
    });
    // Through the proxy with an IAM token (lambda/shared/db.ts): no password.
    db.connect(api);
    this.api = api;
    this.apiFunction = api.function;
    this.apiRole = api.role;
    this.apiPolicy = api.policy;

    if (props.budget) {
      const { requestsPerMinute, endpointUrl, timeoutMillis } = props.budget;
      if (!Number.isInteger(requestsPerMinute) || requestsPerMinute < 1) {
        throw new Error(
          `${this.node.path}: budget.requestsPerMinute must be a positive integer, got ${requestsPerMinute}`,
        );
      }
      const budget = new TenantBudgetTable(this, 'Budget', {
        spender: api.role,
        ...(props.budget.alarmTopic ? { alarmTopic: props.budget.alarmTopic } : {}),
      });
      // Not invoked before it may spend (a refused UpdateItem would only fail open, but silently).
      api.function.node.addDependency(budget.spendPolicy);
      api.addEnvironment('TENANT_BUDGET_TABLE', budget.table.tableName);
      api.addEnvironment('TENANT_BUDGET_PER_MINUTE', String(requestsPerMinute));
      if (endpointUrl) api.addEnvironment('TENANT_BUDGET_ENDPOINT', endpointUrl);
      if (timeoutMillis !== undefined) api.addEnvironment('TENANT_BUDGET_TIMEOUT_MS', String(timeoutMillis));
      this.budgetTable = budget;
    }

    // A cached verdict carries files credentials, which the authorizer hands out while at least
    // FILES_CREDENTIAL_REUSE_SECONDS of them are left: the cache must end before they do.
    const cacheTtl = props.authorizerCacheTtl ?? Duration.minutes(4);
    if (cacheTtl.toSeconds() >= FILES_CREDENTIAL_REUSE_SECONDS) {
      throw new Error(
        `${this.node.path}: authorizerCacheTtl must be shorter than ${FILES_CREDENTIAL_REUSE_SECONDS} s, the least life left in the files credentials a verdict carries`,
      );
    }

    // Outside the VPC on purpose: it has no data access, and it must reach the pool's public JWKS,
    // which the data VPC (no internet path) cannot.
    const authorizer = new BulwarkFunction(this, 'Authorizer', {
      entry: path.join(lambdaDir, 'authorizer-handler.ts'),
      description: 'Tenant API REQUEST authorizer: verifies bearer tokens against the user pool JWKS',
      invocation: { kind: 'synchronous', caller: 'API Gateway (REQUEST authorizer)' },
      reservedConcurrentExecutions: props.authorizerConcurrency ?? 100,
      encryptionKey: key,
      memorySize: 256,
      timeout: Duration.seconds(10),
      logRetention: props.logRetention,
      outsideVpc:
        'The token authorizer holds no data access (no database, no data keys; it reads only the gate-key secret it signs gate tickets with) and must fetch the identity provider public JWKS, which the isolated data VPC cannot reach.',
      environment: {
        JWT_ISSUER: `https://cognito-idp.${stack.region}.${stack.urlSuffix}/${userPool.userPoolId}`,
        JWT_AUDIENCE: client.userPoolClientId,
        GATE_KEY_SECRET_ARN: props.gateKey.secret.secretArn,
      },
      // It signs gate tickets with the gate key: the one secret it reads.
      statements: props.gateKey.readStatements(),
    });
    this.authorizer = authorizer;
    this.authorizerFunction = authorizer.function;

    const requestAuthorizer = new apigateway.RequestAuthorizer(this, 'TokenAuthorizer', {
      handler: authorizer.function,
      identitySources: [apigateway.IdentitySource.header('Authorization')],
      resultsCacheTtl: cacheTtl,
    });
    // The authorizer's refusals, with the same security headers as every other response: a missing
    // Authorization header never reaches it (401 TOKEN_MISSING); its Deny carries the reason.
    const headers = staticHeaderValues(props.responseHeaders ?? securityHeaders());
    for (const [id, type, error] of [
      ['TokenMissing', apigateway.ResponseType.UNAUTHORIZED, 'TOKEN_MISSING'],
      ['TokenRefused', apigateway.ResponseType.ACCESS_DENIED, '$context.authorizer.error'],
    ] as const) {
      new apigateway.GatewayResponse(this, id, {
        restApi: props.api,
        type,
        statusCode: '401',
        responseHeaders: headers,
        templates: { 'application/json': `{"error":"${error}","header":"authorization"}` },
      });
    }
    // No test-invoke permission: a console test invocation would skip the authorizer.
    const integration = new apigateway.LambdaIntegration(api.function, { allowTestInvoke: false });
    const options: apigateway.MethodOptions = {
      authorizer: requestAuthorizer,
      authorizationType: apigateway.AuthorizationType.CUSTOM,
    };
    for (const r of TENANT_ROUTE_PREFIXES) {
      const resource = props.api.root.addResource(r);
      for (const method of [
        resource.addMethod('ANY', integration, options),
        resource.addProxy({ anyMethod: false }).addMethod('ANY', integration, options),
      ]) {
        acknowledge(
          method,
          'AwsSolutions-COG4',
          'Authorized by the REQUEST authorizer, which verifies the Cognito user pool’s tokens with jose (signature, issuer, audience, expiry, org_id); a Cognito authorizer could not admit the API keys the tenant API accepts.',
        );
      }
    }
  }

  /**
   * Wires the tenant API to the tenant keys: PROVISIONER_FUNCTION and EXPORT_BUCKET in its
   * environment (validated at cold start) and the tenant keys' API access policy on its role.
   * References point from this stack to the tenant-keys stack only, never back.
   */
  public useTenantKeys(keys: TenantGuardTenantKeys): void {
    if (this.tenantKeysWired) throw new Error(`${this.node.path}: tenant keys are already wired`);
    this.api.role.addManagedPolicy(keys.apiAccessPolicy);
    this.api.addEnvironment('PROVISIONER_FUNCTION', keys.provisioner.functionName);
    this.api.addEnvironment('EXPORT_BUCKET', keys.exportBucket.bucketName);
    this.tenantKeysWired = true;
  }

  /**
   * Wires tenant files (docs/tenant-files.md). IAM is a gate of its own here, independent of the
   * API function: the API's role gets nothing on the bucket. The authorizer, which verified the
   * token, assumes the files role with the verified organisation as the `org_id` session tag and
   * hands those credentials to the API in its verdict; the API presigns with them. The files role
   * reaches only `orgs/${aws:PrincipalTag/org_id}/*`, reads only released objects, and uses only
   * the key tagged with that organisation, through S3, under its org_id context.
   *
   * @param store the file store's bucket and the session policy the files role gets
   */
  public useFileStore(store: TenantGuardFileStore): iam.Role {
    if (this.filesRole) throw new Error(`${this.node.path}: the file store is already wired`);
    const authorizerRole = this.authorizer.role;
    const role = orgSessionRole(this, 'FilesRole', {
      assumedBy: authorizerRole,
      description: 'Tenant files: assumed by the tenant authorizer only, scoped by the org_id session tag',
      tagSid: 'TagSessionsWithTheVerifiedOrganisationOnly',
    });
    role.addManagedPolicy(store.sessionPolicy);
    // No identity statement on the authorizer: in the same account a trust policy that names the
    // role's ARN grants AssumeRole and TagSession by itself, and the authorizer's policy naming the
    // files role would close a dependency cycle (its role -> its policy -> files role -> its role).
    this.authorizer.addEnvironment('FILES_ROLE_ARN', role.roleArn);
    this.api.addEnvironment('FILES_BUCKET', store.bucket.bucketName);
    this.filesRole = role;
    return role;
  }
}
