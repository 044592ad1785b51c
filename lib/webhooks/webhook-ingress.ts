import * as path from 'node:path';
import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import * as apigateway from 'aws-cdk-lib/aws-apigateway';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as cloudwatchActions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as nodejs from 'aws-cdk-lib/aws-lambda-nodejs';
import * as logs from 'aws-cdk-lib/aws-logs';
import type * as rds from 'aws-cdk-lib/aws-rds';
import type * as sns from 'aws-cdk-lib/aws-sns';
import { Construct } from 'constructs';
import { acknowledge } from '../compliance/acknowledge';
import type { DeploymentConfig } from '../config';
import { proxyConnectStatement } from '../data/proxy-connect';
import { allowLogsToUseKey, customerKey } from '../observability/keys';
import {
  canImportTelnyxKey,
  DEFAULT_MAX_BODY_BYTES,
  MAX_BODY_BYTES,
  MIN_BODY_BYTES,
} from '../../lambda/webhooks/config';
import { PROVIDERS } from '../../lambda/webhooks/providers';
import { METRIC_NAMESPACE } from '../../lambda/webhooks/telemetry';
import { DATABASE_ROLES } from '../../lambda/shared/database-roles';
import { PROXY_PORT } from '../data/database';

/** The carriers with a route under `/webhooks/` (the function's own list). */
export const WEBHOOK_PROVIDERS = PROVIDERS;

/** Maximum body accepted by default (carrier events are a few KiB); the function's own default. */
export const DEFAULT_WEBHOOK_MAX_BODY_BYTES = DEFAULT_MAX_BODY_BYTES;

export interface WebhookDatabaseProps {
  /** RDS Proxy the function connects through, with IAM authentication and TLS. */
  readonly proxy: rds.IDatabaseProxy;
  /** Database name. */
  readonly databaseName: string;
  /**
   * Database role the function authenticates as (IAM auth); never a superuser or BYPASSRLS role.
   * @default 'bulwark_webhooks' (its own role, migrations/0401)
   */
  readonly user?: string;
}

export interface WebhookIngressProps {
  /** VPC the function runs in. */
  readonly vpc: ec2.IVpc;
  /** Security group of the function; must be allowed to reach the database proxy. */
  readonly securityGroup: ec2.ISecurityGroup;
  /**
   * Subnets of the function, e.g. the data tier's `functionSubnets`.
   * @default - the VPC's private subnets (with egress if it has any, otherwise isolated); never public
   */
  readonly vpcSubnets?: ec2.SubnetSelection;
  /** API the routes `POST /webhooks/{telnyx,frejun,didlogic}` are added to (under `api.root`). */
  readonly api: apigateway.IRestApi;
  /** Deployment environment (`deployment.environment`): `production` makes verification mandatory. */
  readonly environment: DeploymentConfig['environment'];
  /**
   * Telnyx Ed25519 public key: the raw 32 bytes, base64 (as the Telnyx portal shows it). It is
   * public, so it travels as configuration.
   * @default - none: Telnyx events are refused with WEBHOOK_SECRET_MISSING (503) until it is set
   */
  readonly telnyxPublicKey?: string;
  /**
   * The Telnyx key being replaced, still accepted during a key rotation window (same format).
   * @default - none: only `telnyxPublicKey` verifies
   */
  readonly telnyxPreviousPublicKey?: string;
  /**
   * Turn signature verification off, for a carrier simulator in a development deployment. Refused
   * (synth fails) in production; the function logs a warning at every cold start when off.
   * @default 'required'
   */
  readonly verification?: 'required' | 'disabled';
  /** Database for replay deduplication. */
  readonly database: WebhookDatabaseProps;
  /** Largest body accepted, in bytes. @default 262144 */
  readonly maxBodyBytes?: number;
  /** Key for the function's log group and environment. @default - a new key with rotation */
  readonly encryptionKey?: kms.IKey;
  /** Log retention. @default logs.RetentionDays.ONE_YEAR */
  readonly logRetention?: logs.RetentionDays;
  /** Reserved concurrency: caps what a flood of forged requests can cost. @default 50 */
  readonly reservedConcurrentExecutions?: number;
  /** Where the ingress alarms go (the deployment's alarm topic). */
  readonly alarmTopic: sns.ITopic;
  /**
   * Refused signatures in 5 minutes above which the forged-traffic alarm fires (an attack, or a
   * carrier whose secret no longer matches).
   * @default 50
   */
  readonly signatureFailureAlarmThreshold?: number;
}

/** Metric namespace the function writes (lambda/webhooks/telemetry.ts). */
export const WEBHOOK_METRIC_NAMESPACE = METRIC_NAMESPACE;

/**
 * Public carrier webhook endpoints: one function in the VPC behind `POST /webhooks/<provider>`,
 * verifying every request over its raw bytes before anything else (lambda/webhooks).
 */
export class WebhookIngress extends Construct {
  public readonly function: nodejs.NodejsFunction;
  /** The function's one customer-managed policy; capabilities that grant it more add statements here. */
  public readonly policy: iam.ManagedPolicy;
  /** The function's role (the function itself holds an immutable view of it). */
  public readonly role: iam.Role;
  public readonly logGroup: logs.ILogGroup;
  /** Alarms: missing/unreadable key or secret, processing failures, function errors, forged traffic. */
  public readonly alarms: readonly cloudwatch.Alarm[];
  /** The webhook methods, by provider. */
  public readonly methods: Readonly<Record<(typeof WEBHOOK_PROVIDERS)[number], apigateway.Method>>;

  constructor(scope: Construct, id: string, props: WebhookIngressProps) {
    super(scope, id);
    const verification = props.verification ?? 'required';
    if (props.environment === 'production' && verification !== 'required') {
      throw new Error(`${this.node.path}: webhook verification cannot be disabled in a production deployment`);
    }
    for (const [name, value] of [
      ['telnyxPublicKey', props.telnyxPublicKey],
      ['telnyxPreviousPublicKey', props.telnyxPreviousPublicKey],
    ] as const) {
      // The function's own import, at synth: a key it would refuse at every cold start fails here.
      if (value !== undefined && !canImportTelnyxKey(value)) {
        throw new Error(`${this.node.path}: ${name} must be a raw 32-byte Ed25519 key in canonical base64`);
      }
    }
    if (props.telnyxPreviousPublicKey && !props.telnyxPublicKey) {
      throw new Error(`${this.node.path}: telnyxPreviousPublicKey needs a current telnyxPublicKey`);
    }
    const maxBodyBytes = props.maxBodyBytes ?? DEFAULT_WEBHOOK_MAX_BODY_BYTES;
    if (!Number.isInteger(maxBodyBytes) || maxBodyBytes < MIN_BODY_BYTES || maxBodyBytes > MAX_BODY_BYTES) {
      throw new Error(`${this.node.path}: maxBodyBytes must be an integer from ${MIN_BODY_BYTES} to ${MAX_BODY_BYTES}`);
    }
    const user = props.database.user ?? DATABASE_ROLES.webhooks;

    const key =
      props.encryptionKey ?? customerKey(this, 'Key', 'Encrypts the webhook ingress logs and function environment');
    // Logs may use it only for this account's log groups in this region (encryption context).
    allowLogsToUseKey(key);

    const logGroup = new logs.LogGroup(this, 'Logs', {
      encryptionKey: key,
      retention: props.logRetention ?? logs.RetentionDays.ONE_YEAR,
      removalPolicy: RemovalPolicy.RETAIN,
    });

    // One customer-managed policy with exactly what the function does (no AWS-managed policies, no
    // inline policy): write its logs, attach to the VPC, trace, read its environment, connect as `user`.
    const policy = new iam.ManagedPolicy(this, 'Policy', {
      description: 'Webhook ingress function: logs, VPC attachment, tracing, database connect',
      statements: [
        new iam.PolicyStatement({
          actions: ['logs:CreateLogStream', 'logs:PutLogEvents'],
          // The log group's Arn attribute already ends in `:*`, covering its streams.
          resources: [logGroup.logGroupArn],
        }),
        new iam.PolicyStatement({
          // Lambda's VPC attachment; these EC2 actions support no resource-level scoping.
          actions: [
            'ec2:CreateNetworkInterface',
            'ec2:DescribeNetworkInterfaces',
            'ec2:DescribeSubnets',
            'ec2:DeleteNetworkInterface',
            'ec2:AssignPrivateIpAddresses',
            'ec2:UnassignPrivateIpAddresses',
          ],
          resources: ['*'],
        }),
        new iam.PolicyStatement({
          actions: ['xray:PutTraceSegments', 'xray:PutTelemetryRecords'],
          resources: ['*'],
        }),
        new iam.PolicyStatement({ actions: ['kms:Decrypt'], resources: [key.keyArn] }),
        proxyConnectStatement(this, props.database.proxy, user),
      ],
    });
    const role = new iam.Role(this, 'Role', {
      assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
      description: 'Webhook ingress function',
      managedPolicies: [policy],
    });
    acknowledge(
      policy,
      'AwsSolutions-IAM5[Resource::*]',
      'Resource::* is required by Lambda VPC attachment (ec2:CreateNetworkInterface and friends have no ' +
        'resource-level scoping) and by X-Ray segment upload (xray:PutTraceSegments accepts only *).',
    );

    this.policy = policy;
    this.role = role;
    this.function = new nodejs.NodejsFunction(this, 'Function', {
      entry: path.join(__dirname, '..', '..', 'lambda', 'webhooks', 'index.ts'),
      handler: 'handler',
      runtime: lambda.Runtime.NODEJS_22_X,
      architecture: lambda.Architecture.ARM_64,
      memorySize: 512,
      timeout: Duration.seconds(10),
      // Everything the function may do is in `policy`; nothing is added behind its back.
      role: role.withoutPolicyUpdates(),
      vpc: props.vpc,
      vpcSubnets: props.vpcSubnets,
      securityGroups: [props.securityGroup],
      allowPublicSubnet: false,
      reservedConcurrentExecutions: props.reservedConcurrentExecutions ?? 50,
      tracing: lambda.Tracing.ACTIVE,
      logGroup,
      loggingFormat: lambda.LoggingFormat.JSON,
      environmentEncryption: key,
      environment: {
        BULWARK_ENVIRONMENT: props.environment,
        WEBHOOK_VERIFICATION: verification,
        WEBHOOK_MAX_BODY_BYTES: String(maxBodyBytes),
        ...(props.telnyxPublicKey ? { TELNYX_PUBLIC_KEY: props.telnyxPublicKey } : {}),
        ...(props.telnyxPreviousPublicKey ? { TELNYX_PREVIOUS_PUBLIC_KEY: props.telnyxPreviousPublicKey } : {}),
        DB_HOST: props.database.proxy.endpoint,
        DB_PORT: String(PROXY_PORT),
        DB_NAME: props.database.databaseName,
        DB_USER: user,
        // The Lambda runtime's CA bundle includes the RDS CAs; pg verifies the proxy's certificate.
        NODE_EXTRA_CA_CERTS: '/var/runtime/ca-cert.pem',
        NODE_OPTIONS: '--enable-source-maps',
      },
      // The SDK is bundled (pinned versions, not the runtime's); pg's optional native binding is never used.
      bundling: { minify: true, sourceMap: true, target: 'node22', externalModules: ['pg-native'] },
    });

    const resource = props.api.root.addResource('webhooks');
    const integration = new apigateway.LambdaIntegration(this.function, { proxy: true });
    const methods = {} as Record<(typeof WEBHOOK_PROVIDERS)[number], apigateway.Method>;
    for (const provider of WEBHOOK_PROVIDERS) {
      const method = resource.addResource(provider).addMethod('POST', integration, {
        authorizationType: apigateway.AuthorizationType.NONE,
      });
      const reason =
        `Carriers call ${provider} webhooks without AWS or user credentials; every request is authenticated ` +
        'by its provider signature over the raw body inside the function, and refused otherwise.';
      acknowledge(method, 'AwsSolutions-APIG4', reason);
      acknowledge(method, 'AwsSolutions-COG4', reason);
      methods[provider] = method;
    }
    this.methods = methods;

    const fn = this.function.node.defaultChild as lambda.CfnFunction;
    const syncOnly =
      'API Gateway invokes this function synchronously only; a dead-letter queue applies to asynchronous ' +
      'invocations. A failed request returns 5xx and the carrier retries it (dedup makes that safe).';
    acknowledge(fn, 'HIPAA.Security-LambdaDLQ', syncOnly);
    acknowledge(fn, 'NIST.800.53.R5-LambdaDLQ', syncOnly);
    acknowledge(fn, 'Serverless-LambdaDLQ', syncOnly);
    const runtime =
      'Node.js 22 is the runtime every Bulwark function is pinned to (team toolchain, esbuild target node22); ' +
      'moving to Node.js 24 is one project-wide change, not a per-function drift.';
    acknowledge(fn, 'AwsSolutions-L1', runtime);
    acknowledge(fn, 'Serverless-LambdaLatestVersion', runtime);
    this.logGroup = logGroup;
    this.alarms = this.createAlarms(props);
  }

  private createAlarms(props: WebhookIngressProps): cloudwatch.Alarm[] {
    const outcome = (code: string) =>
      new cloudwatch.Metric({
        namespace: WEBHOOK_METRIC_NAMESPACE,
        metricName: 'Requests',
        dimensionsMap: { Outcome: code },
        statistic: cloudwatch.Stats.SUM,
        period: Duration.minutes(5),
      });
    const alarm = (id: string, description: string, metric: cloudwatch.IMetric, threshold: number) => {
      const a = new cloudwatch.Alarm(this, id, {
        alarmDescription: description,
        metric,
        threshold,
        evaluationPeriods: 1,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      });
      a.addAlarmAction(new cloudwatchActions.SnsAction(props.alarmTopic));
      return a;
    };
    return [
      alarm(
        'SecretMissingAlarm',
        'Webhooks refused because a key or secret is missing or unreadable (WEBHOOK_SECRET_MISSING/UNREADABLE): ' +
          'carriers are retrying events that cannot be verified until it is configured.',
        new cloudwatch.MathExpression({
          expression: 'missing + unreadable',
          usingMetrics: {
            missing: outcome('WEBHOOK_SECRET_MISSING'),
            unreadable: outcome('WEBHOOK_SECRET_UNREADABLE'),
          },
          period: Duration.minutes(5),
          label: 'Webhook requests refused for configuration',
        }),
        1,
      ),
      alarm(
        'ProcessingFailedAlarm',
        'Verified webhook events failed to record or process (PROCESSING_FAILED); carriers will retry.',
        outcome('PROCESSING_FAILED'),
        5,
      ),
      alarm(
        'ForgedTrafficAlarm',
        'Many webhook signatures refused (SIGNATURE_INVALID): forged traffic, or a carrier secret out of date.',
        outcome('SIGNATURE_INVALID'),
        props.signatureFailureAlarmThreshold ?? 50,
      ),
      alarm(
        'FunctionErrorsAlarm',
        'The webhook function failed outright (e.g. refused to cold-start on invalid configuration).',
        this.function.metricErrors({ period: Duration.minutes(5), statistic: cloudwatch.Stats.SUM }),
        1,
      ),
    ];
  }
}
