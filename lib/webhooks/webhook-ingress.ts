import * as path from 'node:path';
import { Duration } from 'aws-cdk-lib';
import * as apigateway from 'aws-cdk-lib/aws-apigateway';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as cloudwatchActions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as nodejs from 'aws-cdk-lib/aws-lambda-nodejs';
import * as logs from 'aws-cdk-lib/aws-logs';
import type * as sns from 'aws-cdk-lib/aws-sns';
import { Construct } from 'constructs';
import { acknowledge } from '../compliance/acknowledge';
import type { DeploymentConfig } from '../config';
import type { DatabaseAccess } from '../data/database-access';
import { allowLogsToUseKey, customerKey } from '../observability/keys';
import {
  canImportTelnyxKey,
  DEFAULT_MAX_BODY_BYTES,
  MAX_BODY_BYTES,
  MIN_BODY_BYTES,
  PROVIDERS,
  WEBHOOK_METRICS,
  WEBHOOK_PATH_PREFIX,
} from '../../contracts/webhooks';
import { BulwarkFunction } from '../shared/function';

/** The carriers with a route under `/webhooks/` (the function's own list). */
export const WEBHOOK_PROVIDERS = PROVIDERS;

/** Maximum body accepted by default (carrier events are a few KiB); the function's own default. */
export const DEFAULT_WEBHOOK_MAX_BODY_BYTES = DEFAULT_MAX_BODY_BYTES;

export interface WebhookIngressProps {
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
  /**
   * Database for replay deduplication (the data tier's access as `bulwark_webhooks`, its own role; never a superuser
   * or BYPASSRLS role); the function runs where it says.
   */
  readonly database: DatabaseAccess;
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

    const key =
      props.encryptionKey ?? customerKey(this, 'Key', 'Encrypts the webhook ingress logs and function environment');
    // Logs may use it only for this account's log groups in this region (encryption context).
    allowLogsToUseKey(key);

    const fn = new BulwarkFunction(this, 'Function', {
      entry: path.join(__dirname, '..', '..', 'lambda', 'webhooks', 'index.ts'),
      description: 'Webhook ingress: verifies carrier signatures over the raw body, deduplicates, records',
      // A failed request returns 5xx and the carrier retries it (dedup makes that safe).
      invocation: { kind: 'synchronous', caller: 'API Gateway' },
      reservedConcurrentExecutions: props.reservedConcurrentExecutions ?? 50,
      encryptionKey: key,
      memorySize: 512,
      timeout: Duration.seconds(10),
      logRetention: props.logRetention,
      network: props.database.network,
      environment: {
        BULWARK_ENVIRONMENT: props.environment,
        WEBHOOK_VERIFICATION: verification,
        WEBHOOK_MAX_BODY_BYTES: String(maxBodyBytes),
        ...(props.telnyxPublicKey ? { TELNYX_PUBLIC_KEY: props.telnyxPublicKey } : {}),
        ...(props.telnyxPreviousPublicKey ? { TELNYX_PREVIOUS_PUBLIC_KEY: props.telnyxPreviousPublicKey } : {}),
        // The Lambda runtime's CA bundle includes the RDS CAs; pg verifies the proxy's certificate.
        NODE_EXTRA_CA_CERTS: '/var/runtime/ca-cert.pem',
      },
    });
    props.database.connect(fn);
    this.function = fn.function;
    this.policy = fn.policy;
    this.role = fn.role;

    const resource = props.api.root.addResource(WEBHOOK_PATH_PREFIX.slice(1, -1));
    // No test-invoke permission: console tests would reach the function outside the deployed stage.
    const integration = new apigateway.LambdaIntegration(this.function, { proxy: true, allowTestInvoke: false });
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

    this.logGroup = fn.logGroup;
    this.alarms = this.createAlarms(props);
  }

  private createAlarms(props: WebhookIngressProps): cloudwatch.Alarm[] {
    const outcome = (code: string) =>
      new cloudwatch.Metric({
        namespace: WEBHOOK_METRICS.namespace,
        metricName: WEBHOOK_METRICS.requests,
        dimensionsMap: { [WEBHOOK_METRICS.outcome]: code },
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
