import * as path from 'node:path';
import { CustomResource, Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import * as apigateway from 'aws-cdk-lib/aws-apigateway';
import * as cognito from 'aws-cdk-lib/aws-cognito';
import type * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as nodejs from 'aws-cdk-lib/aws-lambda-nodejs';
import * as logs from 'aws-cdk-lib/aws-logs';
import type * as rds from 'aws-cdk-lib/aws-rds';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import type * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { Construct } from 'constructs';
import { DATABASE_ROLES, type RolePurpose } from '../../lambda/shared/database-roles';
import { securityHeaders } from '../../lambda/shared/security-headers';
import { BOOTSTRAP_VERSION } from '../../lambda/tenant-guard/bootstrap';
import { loadMigrations } from '../../lambda/shared/migrations';
import { staticHeaderValues } from '../api/platform-api';
import { acknowledge } from '../compliance/acknowledge';
import { deadLetterQueue } from '../observability/dead-letter-queue';
import { allowLogsToUseKey, customerKey } from '../observability/keys';
import { PROXY_PORT } from '../data/database';
import { GateKey } from './gate-key';

export interface TenantGuardDatabase {
  /**
   * The database instance. Only the migration custom resource connects here (as the master user to
   * bootstrap the roles, then as the migrator): the proxy admits IAM tokens only.
   */
  readonly instance: rds.IDatabaseInstance;
  /** The RDS Proxy (TLS + IAM auth) the API function connects through as `bulwark_app`. */
  readonly proxy: rds.IDatabaseProxy;
  /** Database name. */
  readonly databaseName: string;
  /** The master user's secret (`{username, password}`); read only by the migration resource. */
  readonly masterSecret: secretsmanager.ISecret;
  /** One secret per login role; the bootstrap sets each role's password from its secret. */
  readonly users: Readonly<Record<RolePurpose, secretsmanager.ISecret>>;
}

export interface TenantGuardProps {
  /** VPC the functions run in (private subnets; the database is reachable from there). */
  readonly vpc: ec2.IVpc;
  /** Security group of the functions; must be allowed to reach the database (proxy). */
  readonly securityGroup: ec2.ISecurityGroup;
  /** Subnets for the functions. @default - the VPC's private subnets */
  readonly vpcSubnets?: ec2.SubnetSelection;
  /** REST API the tenant routes are added to, under `api.root`. */
  readonly api: apigateway.IRestApi;
  readonly database: TenantGuardDatabase;
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
   * @default Duration.minutes(4)
   */
  readonly authorizerCacheTtl?: Duration;
  /**
   * Headers on the authorizer's refusals (401 gateway responses), as on every other response.
   * @default securityHeaders() (HSTS preload, nosniff, DENY framing, no-referrer, CSP, no-store)
   */
  readonly responseHeaders?: Readonly<Record<string, string>>;
}

const LAMBDA_DIR = path.join(__dirname, '..', '..', 'lambda', 'tenant-guard');
const MIGRATIONS_DIR = path.join(__dirname, '..', '..', 'migrations');
const ROUTES = [
  'leads',
  'memberships',
  'roles',
  'api-keys',
  'support-grants',
  'audit',
  'webhook-secrets',
  // Lifecycle, exports and key of the caller's tenant; tenant creation (platform owners).
  'tenant',
  'organisations',
] as const;

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

/**
 * The tenant guard: the identity provider (a Cognito user pool with MFA required and a custom
 * `org_id` attribute); a REQUEST authorizer in front of every tenant route, which verifies bearer
 * tokens with jose against the pool's JWKS and lets well-formed API keys through to be checked in
 * the database; the tenant API (one function in the VPC that re-checks membership, or the API key's
 * hash, on every request and enters the tenant through the database gate); and the deploy-time
 * migration custom resource that applies `migrations/*.sql`.
 */
export class TenantGuard extends Construct {
  public readonly userPool: cognito.IUserPool;
  public readonly userPoolClient: cognito.IUserPoolClient;
  public readonly apiFunction: lambda.IFunction;
  /** The API function's role (tagged and granted by capabilities such as tenant keys). */
  public readonly apiRole: iam.Role;
  /** The REQUEST authorizer in front of every tenant route (outside the VPC; no data access). */
  public readonly authorizerFunction: lambda.IFunction;
  public readonly migrationFunction: lambda.IFunction;
  /**
   * The schema custom resource: functions that need the schema depend on it
   * (`fn.node.addDependency(guard.schema)`), so they are updated only after the migrations ran.
   */
  public readonly schema: CustomResource;
  private readonly api: nodejs.NodejsFunction;
  private tenantKeysWired = false;

  private grants?: iam.Policy;

  /**
   * A policy of the API function's role where other capabilities add their grants (tenant keys'
   * `grantTenantKeyUse`, for sealing per-organisation secrets). Created on first use, so a guard
   * nobody grants anything renders no empty policy.
   */
  public get apiPolicy(): iam.Policy {
    if (!this.grants) {
      this.grants = new iam.Policy(this, 'ApiGrants', { roles: [this.apiRole] });
      for (const id of [
        'HIPAA.Security-IAMNoInlinePolicy',
        'NIST.800.53.R5-IAMNoInlinePolicy',
        'PCI.DSS.321-IAMNoInlinePolicy',
      ]) {
        acknowledge(
          this.grants,
          id,
          'Holds only the grants other capabilities give the tenant API function (tenant keys); attached to that one role, never shared.',
        );
      }
    }
    return this.grants;
  }

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

    const key = customerKey(this, 'LogKey', 'Encrypts tenant guard logs and dead-letter queues');
    allowLogsToUseKey(key);

    const common = (
      name: string,
      entry: string,
      environment: Record<string, string>,
      extra: Partial<nodejs.NodejsFunctionProps> = {},
      inVpc = true,
    ) => {
      const logGroup = new logs.LogGroup(this, `${name}Logs`, {
        encryptionKey: key,
        retention: props.logRetention ?? logs.RetentionDays.ONE_YEAR,
        removalPolicy: RemovalPolicy.RETAIN,
      });
      const dlq = deadLetterQueue(this, `${name}Dlq`, {
        encryptionKey: key,
        deadLetterOf: `the ${name} function`,
      });
      const fn = new nodejs.NodejsFunction(this, name, {
        entry: path.join(LAMBDA_DIR, entry),
        runtime: lambda.Runtime.NODEJS_22_X,
        architecture: lambda.Architecture.ARM_64,
        memorySize: 512,
        timeout: Duration.seconds(15),
        ...(inVpc ? { vpc: props.vpc, vpcSubnets: props.vpcSubnets, securityGroups: [props.securityGroup] } : {}),
        tracing: lambda.Tracing.ACTIVE,
        logGroup,
        deadLetterQueue: dlq,
        environment,
        bundling: { minify: true, sourceMap: true, target: 'node22' },
        ...extra,
      });
      acknowledgeFunctionFindings(fn, inVpc);
      return fn;
    };

    const api = common(
      'Api',
      'handler.ts',
      {
        // Through the proxy as bulwark_app with an IAM token (lambda/shared/db.ts): no password.
        DB_HOST: db.proxy.endpoint,
        DB_PORT: String(PROXY_PORT),
        DB_NAME: db.databaseName,
        DB_USER: DATABASE_ROLES.app,
      },
      { reservedConcurrentExecutions: props.apiConcurrency ?? 50 },
    );
    db.proxy.grantConnect(api, DATABASE_ROLES.app);
    this.apiFunction = api;
    if (!(api.role instanceof iam.Role)) throw new Error(`${this.node.path}: the API function needs its own role`);
    this.apiRole = api.role;
    this.api = api;

    // The key gate tickets are signed (authorizer) and verified (database) with.
    const gateKey = new GateKey(this, 'GateKey');
    const migrator = common(
      'Migrate',
      'migrate.ts',
      {
        // The instance itself, TLS verified against the RDS CA bundle the runtime ships (Node.js
        // 20+ runtimes load it only when asked). The proxy would refuse passwords.
        DB_HOST: db.instance.dbInstanceEndpointAddress,
        DB_PORT: db.instance.dbInstanceEndpointPort,
        DB_NAME: db.databaseName,
        MASTER_SECRET_ARN: db.masterSecret.secretArn,
        MIGRATOR_SECRET_ARN: db.users.migrator.secretArn,
        APP_SECRET_ARN: db.users.app.secretArn,
        AUDIT_SHIPPER_SECRET_ARN: db.users.auditShipper.secretArn,
        WEBHOOKS_SECRET_ARN: db.users.webhooks.secretArn,
        KEY_PROVISIONER_SECRET_ARN: db.users.keyProvisioner.secretArn,
        LIFECYCLE_SECRET_ARN: db.users.lifecycle.secretArn,
        GATE_KEY_SECRET_ARN: gateKey.secret.secretArn,
        NODE_EXTRA_CA_CERTS: '/var/runtime/ca-cert.pem',
      },
      {
        timeout: Duration.minutes(5),
        reservedConcurrentExecutions: 1,
        bundling: {
          minify: true,
          sourceMap: true,
          target: 'node22',
          commandHooks: {
            beforeBundling: () => [],
            beforeInstall: () => [],
            afterBundling: (_input: string, output: string) => [`cp -r "${MIGRATIONS_DIR}" "${output}/migrations"`],
          },
        },
      },
    );
    // Written out rather than `secret.grantRead`, which would also edit the data tier's key policy
    // from this stack (a cross-stack cycle): identity-based grants suffice in one account.
    const secrets = [db.masterSecret, ...Object.values(db.users)];
    migrator.addToRolePolicy(
      new iam.PolicyStatement({
        actions: ['secretsmanager:GetSecretValue', 'secretsmanager:DescribeSecret'],
        resources: secrets.map((x) => x.secretArn),
      }),
    );
    const keys = [...new Set(secrets.flatMap((x) => (x.encryptionKey ? [x.encryptionKey.keyArn] : [])))];
    if (keys.length > 0) {
      migrator.addToRolePolicy(
        new iam.PolicyStatement({
          actions: ['kms:Decrypt'],
          resources: keys,
          conditions: { StringEquals: { 'kms:ViaService': `secretsmanager.${stack.region}.amazonaws.com` } },
        }),
      );
    }
    // The migration function installs the gate key into the database (app_private.gate_keys).
    gateKey.grantRead(migrator);
    this.migrationFunction = migrator;

    const schema = new CustomResource(this, 'Schema', {
      serviceToken: migrator.functionArn,
      resourceType: 'Custom::BulwarkSchema',
      // A new migration set, a replaced secret or a new bootstrap re-runs the resource (both steps
      // are idempotent). Rotations need no re-run: they change the password in the database themselves.
      properties: {
        Migrations: loadMigrations(MIGRATIONS_DIR)
          .map((m) => `${m.version}:${m.checksum}`)
          .join(','),
        Bootstrap: BOOTSTRAP_VERSION,
        Secrets: secrets.map((x) => x.secretArn),
      },
    });
    schema.node.addDependency(migrator);
    // The API serves the schema: its new code goes live only after the migrations ran.
    api.node.addDependency(schema);
    this.schema = schema;

    // Outside the VPC on purpose: it has no data access, and it must reach the pool's public JWKS,
    // which the data VPC (no internet path) cannot.
    const authorizerFn = common(
      'Authorizer',
      'authorizer-handler.ts',
      {
        JWT_ISSUER: `https://cognito-idp.${stack.region}.${stack.urlSuffix}/${userPool.userPoolId}`,
        JWT_AUDIENCE: client.userPoolClientId,
        GATE_KEY_SECRET_ARN: gateKey.secret.secretArn,
      },
      {
        memorySize: 256,
        timeout: Duration.seconds(10),
        reservedConcurrentExecutions: props.authorizerConcurrency ?? 100,
      },
      false,
    );
    const outside = authorizerFn.node.defaultChild as lambda.CfnFunction;
    for (const id of [
      'HIPAA.Security-LambdaInsideVPC',
      'NIST.800.53.R5-LambdaInsideVPC',
      'PCI.DSS.321-LambdaInsideVPC',
    ]) {
      acknowledge(
        outside,
        id,
        'The token authorizer holds no data access (no database, no data keys; it reads only the gate-key secret it signs gate tickets with) and must fetch the identity provider public JWKS, which the isolated data VPC cannot reach.',
      );
    }
    // It signs gate tickets with the gate key: the one secret it reads.
    gateKey.grantRead(authorizerFn);
    this.authorizerFunction = authorizerFn;

    const authorizer = new apigateway.RequestAuthorizer(this, 'TokenAuthorizer', {
      handler: authorizerFn,
      identitySources: [apigateway.IdentitySource.header('Authorization')],
      resultsCacheTtl: props.authorizerCacheTtl ?? Duration.minutes(4),
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
    const integration = new apigateway.LambdaIntegration(api);
    const options: apigateway.MethodOptions = {
      authorizer,
      authorizationType: apigateway.AuthorizationType.CUSTOM,
    };
    for (const r of ROUTES) {
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
    this.api.role!.addManagedPolicy(keys.apiAccessPolicy);
    this.api.addEnvironment('PROVISIONER_FUNCTION', keys.provisioner.functionName);
    this.api.addEnvironment('EXPORT_BUCKET', keys.exportBucket.bucketName);
    this.tenantKeysWired = true;
  }
}

/**
 * Findings every VPC Lambda function of this construct carries by construction, each accepted on
 * the one resource it concerns with the reason it does not apply.
 */
function acknowledgeFunctionFindings(fn: nodejs.NodejsFunction, inVpc: boolean): void {
  const role = fn.role!.node.defaultChild as iam.CfnRole;
  const policy = fn.role!.node.findChild('DefaultPolicy');
  acknowledge(
    role,
    'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]',
    'Lets the function write only to its own KMS-encrypted log group; the AWS-maintained policy tracks Lambda logging changes.',
  );
  if (inVpc) {
    acknowledge(
      role,
      'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole]',
      'Required for a function in a VPC to manage its network interfaces; the AWS-maintained policy is the documented minimum.',
    );
  }
  acknowledge(
    policy,
    'AwsSolutions-IAM5[Resource::*]',
    'X-Ray PutTraceSegments/PutTelemetryRecords support no resource-level permissions; every other statement names its resource.',
  );
  for (const id of [
    'HIPAA.Security-IAMNoInlinePolicy',
    'NIST.800.53.R5-IAMNoInlinePolicy',
    'PCI.DSS.321-IAMNoInlinePolicy',
  ]) {
    acknowledge(
      policy,
      id,
      'The CDK-generated default policy is scoped to this one role and its grants (secret, DLQ, tracing); it is never shared.',
    );
  }
  const runtime = fn.node.defaultChild as lambda.CfnFunction;
  for (const id of ['AwsSolutions-L1', 'Serverless-LambdaLatestVersion']) {
    acknowledge(
      runtime,
      id,
      'Node.js 22 is the platform-wide pinned runtime (LTS, supported by Lambda); upgrades are made fleet-wide, not per function.',
    );
  }
}
