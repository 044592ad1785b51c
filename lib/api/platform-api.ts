import { RemovalPolicy } from 'aws-cdk-lib';
import * as apigateway from 'aws-cdk-lib/aws-apigateway';
import type * as acm from 'aws-cdk-lib/aws-certificatemanager';
import type * as kms from 'aws-cdk-lib/aws-kms';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { acknowledge } from '../compliance/acknowledge';
import { LogKey } from '../observability/keys';
import { RATE_LIMITED_BODY, RATE_LIMITED_STATUS } from '../../contracts/rate-limits';
import { DEFAULT_CONTENT_SECURITY_POLICY, securityHeaders } from '../../contracts/security-headers';

/**
 * One JSON object per request. Holds the client IP (so it stays in the deployment's region) but never
 * headers, bodies or query strings. TLS version and cipher show which clients would break if the
 * security policy were tightened; the WAF fields show what the web ACL decided.
 */
export const ACCESS_LOG_FIELDS: Readonly<Record<string, string>> = {
  requestId: apigateway.AccessLogField.contextRequestId(),
  extendedRequestId: apigateway.AccessLogField.contextExtendedRequestId(),
  requestTime: apigateway.AccessLogField.contextRequestTime(),
  ip: apigateway.AccessLogField.contextIdentitySourceIp(),
  domainName: apigateway.AccessLogField.contextDomainName(),
  httpMethod: apigateway.AccessLogField.contextHttpMethod(),
  resourcePath: apigateway.AccessLogField.contextResourcePath(),
  protocol: apigateway.AccessLogField.contextProtocol(),
  status: apigateway.AccessLogField.contextStatus(),
  responseLength: apigateway.AccessLogField.contextResponseLength(),
  responseLatency: apigateway.AccessLogField.contextResponseLatency(),
  integrationStatus: apigateway.AccessLogField.contextIntegrationStatus(),
  integrationLatency: apigateway.AccessLogField.contextIntegrationLatency(),
  wafStatus: apigateway.AccessLogField.contextWafStatus(),
  wafResponseCode: apigateway.AccessLogField.contextWafResponseCode(),
  errorMessage: apigateway.AccessLogField.contextErrorMessage(),
  tlsVersion: '$context.tlsVersion',
  cipherSuite: '$context.cipherSuite',
};

/** Regional security policies with a TLS 1.2 minimum. */
const ALLOWED_SECURITY_POLICIES: readonly apigateway.SecurityPolicy[] = [
  apigateway.SecurityPolicy.TLS_1_2,
  apigateway.SecurityPolicy.TLS13_1_2_PFS_PQ_2025_09,
  apigateway.SecurityPolicy.TLS13_1_2_PQ_2025_09,
  apigateway.SecurityPolicy.TLS13_1_3_2025_09,
  apigateway.SecurityPolicy.TLS13_1_3_FIPS_2025_09,
];

export interface PlatformApiProps {
  /** Custom domain the API answers on, e.g. api.eu.example.com. */
  readonly domainName: string;
  /** ACM certificate for `domainName`, in the stack's region. */
  readonly certificate: acm.ICertificate;
  /** Stage throttling: steady-state requests per second and burst. */
  readonly throttle: { readonly rateLimit: number; readonly burstLimit: number };
  /** Largest request body the API accepts, in bytes; the web ACL in front enforces it. */
  readonly maxRequestBodyBytes: number;
  /**
   * TLS security policy of both the API and its custom domain. API Gateway negotiates TLS on a custom
   * domain with the policy of the API mapped to it, and a regional API defaults to TLS_1_0, so both are set.
   * @default apigateway.SecurityPolicy.TLS13_1_2_PFS_PQ_2025_09
   */
  readonly securityPolicy?: apigateway.SecurityPolicy;
  /**
   * Endpoint access mode for enhanced (`SecurityPolicy_*`) policies. STRICT also refuses requests whose
   * SNI does not match the host they address.
   * @default apigateway.EndpointAccessMode.STRICT
   */
  readonly endpointAccessMode?: apigateway.EndpointAccessMode;
  /** Content-Security-Policy on every response. @default "default-src 'none'; frame-ancestors 'none'" */
  readonly contentSecurityPolicy?: string;
  /** Stage name; the custom domain maps to this stage at its root, so it never appears in URLs. @default 'v1' */
  readonly stageName?: string;
  /** Retention of access and execution logs. @default logs.RetentionDays.ONE_YEAR */
  readonly logRetention?: logs.RetentionDays;
  /** Key for the API's log groups. @default - a new key in this stack */
  readonly logKey?: kms.IKey;
}

/** Options for a route added through `PlatformApi.addRoute`. */
export interface RouteOptions extends apigateway.MethodOptions {
  /** Lambda proxy integration options. @default - proxy integration, no extra options */
  readonly integration?: apigateway.LambdaIntegrationOptions;
}

/**
 * The regional API Gateway REST API every capability adds its routes to ("front door").
 *
 * - Reached only through its custom domain (TLS 1.2+ security policy on domain and API); execute-api is off.
 * - Stage throttling from config, access logs (JSON) and execution logs (errors) in KMS-encrypted log
 *   groups with retention, X-Ray tracing, no response cache (responses are per tenant).
 * - A request validator (body and parameters) that `addRoute` applies to every method.
 * - Security headers on every response API Gateway itself produces (gateway responses, mock
 *   integrations). Lambda proxy responses carry whatever the handler returns, so handlers return
 *   `withSecurityHeaders(response)` from `contracts/security-headers.ts`.
 * - `GET /health`: a public mock returning `{"status":"ok"}`, so the API deploys with a real method.
 */
export class PlatformApi extends Construct {
  public readonly restApi: apigateway.RestApi;
  public readonly domain: apigateway.DomainName;
  public readonly requestValidator: apigateway.RequestValidator;
  public readonly accessLogs: logs.LogGroup;
  public readonly executionLogs: logs.LogGroup;
  public readonly maxRequestBodyBytes: number;
  /** The custom domain name clients use. */
  public readonly domainName: string;
  /** Headers (name to value) every response of this API carries. */
  public readonly responseHeaders: Readonly<Record<string, string>>;

  constructor(scope: Construct, id: string, props: PlatformApiProps) {
    super(scope, id);
    const stageName = props.stageName ?? 'v1';
    const retention = props.logRetention ?? logs.RetentionDays.ONE_YEAR;
    const key =
      props.logKey ?? new LogKey(this, 'LogKey', { description: 'Encrypts the API access and execution logs' }).key;
    this.maxRequestBodyBytes = props.maxRequestBodyBytes;
    this.domainName = props.domainName;
    this.responseHeaders = securityHeaders(props.contentSecurityPolicy ?? DEFAULT_CONTENT_SECURITY_POLICY);

    this.accessLogs = new logs.LogGroup(this, 'AccessLogs', {
      encryptionKey: key,
      retention,
      removalPolicy: RemovalPolicy.RETAIN,
    });

    this.restApi = new apigateway.RestApi(this, 'Api', {
      description: 'Bulwark platform API',
      endpointConfiguration: { types: [apigateway.EndpointType.REGIONAL] },
      // The custom domain, behind the web ACL, is the only way in.
      disableExecuteApiEndpoint: true,
      // Execution logging needs the account-level CloudWatch role; see the acknowledgement below.
      cloudWatchRole: true,
      cloudWatchRoleRemovalPolicy: RemovalPolicy.RETAIN,
      deployOptions: {
        stageName,
        throttlingRateLimit: props.throttle.rateLimit,
        throttlingBurstLimit: props.throttle.burstLimit,
        accessLogDestination: new apigateway.LogGroupLogDestination(this.accessLogs),
        accessLogFormat: apigateway.AccessLogFormat.custom(JSON.stringify(ACCESS_LOG_FIELDS)),
        loggingLevel: apigateway.MethodLoggingLevel.ERROR,
        // Request and response bodies never reach the logs.
        dataTraceEnabled: false,
        metricsEnabled: true,
        tracingEnabled: true,
        cachingEnabled: false,
      },
    });
    const stage = this.restApi.deploymentStage;

    // API Gateway writes execution logs to this fixed name; creating it first makes it encrypted and
    // bounded instead of a plain, never-expiring group API Gateway would create on first use.
    this.executionLogs = new logs.LogGroup(this, 'ExecutionLogs', {
      logGroupName: `API-Gateway-Execution-Logs_${this.restApi.restApiId}/${stageName}`,
      encryptionKey: key,
      retention,
      removalPolicy: RemovalPolicy.RETAIN,
    });
    stage.node.addDependency(this.executionLogs);

    this.requestValidator = this.restApi.addRequestValidator('RequestValidator', {
      validateRequestBody: true,
      validateRequestParameters: true,
    });

    const staticHeaders = staticHeaderValues(this.responseHeaders);
    for (const [gid, type] of [
      ['Default4xx', apigateway.ResponseType.DEFAULT_4XX],
      ['Default5xx', apigateway.ResponseType.DEFAULT_5XX],
    ] as const) {
      this.restApi.addGatewayResponse(gid, { type, responseHeaders: staticHeaders });
    }
    // Over the stage throttle: the same 429 body as the web ACL's per-credential limits (docs/rate-limits.md).
    this.restApi.addGatewayResponse('Throttled', {
      type: apigateway.ResponseType.THROTTLED,
      statusCode: String(RATE_LIMITED_STATUS),
      responseHeaders: staticHeaders,
      templates: { 'application/json': JSON.stringify(RATE_LIMITED_BODY) },
    });

    const securityPolicy = props.securityPolicy ?? apigateway.SecurityPolicy.TLS13_1_2_PFS_PQ_2025_09;
    if (!ALLOWED_SECURITY_POLICIES.includes(securityPolicy)) {
      throw new Error(`${this.node.path}: security policy ${securityPolicy} allows less than TLS 1.2 or is edge-only`);
    }
    const enhanced = securityPolicy.startsWith('SecurityPolicy_');
    const endpointAccessMode = enhanced
      ? (props.endpointAccessMode ?? apigateway.EndpointAccessMode.STRICT)
      : undefined;
    // The RestApi L2 has no security policy props yet; the L1 has them.
    const cfnApi = this.restApi.node.defaultChild as apigateway.CfnRestApi;
    cfnApi.securityPolicy = securityPolicy;
    cfnApi.endpointAccessMode = endpointAccessMode;
    this.domain = new apigateway.DomainName(this, 'Domain', {
      domainName: props.domainName,
      certificate: props.certificate,
      endpointType: apigateway.EndpointType.REGIONAL,
      securityPolicy,
      endpointAccessMode,
      mapping: this.restApi,
    });

    this.addHealthCheck();

    const cloudWatchRole = this.restApi.node.findChild('CloudWatchRole');
    acknowledge(
      cloudWatchRole,
      'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs]',
      'Account-level role API Gateway assumes to write execution logs; AWS documents this managed policy for it ' +
        'and keeps it current as API Gateway logging changes.',
    );
    const noCache =
      'Responses are tenant- and user-specific and must never be served from a shared cache; ' +
      'the stage has no cache cluster, so there is no cached data to encrypt.';
    acknowledge(stage, 'HIPAA.Security-APIGWCacheEnabledAndEncrypted', noCache);
    acknowledge(stage, 'NIST.800.53.R5-APIGWCacheEnabledAndEncrypted', noCache);
    acknowledge(stage, 'PCI.DSS.321-APIGWCacheEnabledAndEncrypted', noCache);
    const noBackendCert =
      'A stage client certificate authenticates API Gateway to HTTP backends; Bulwark integrates only Lambda ' +
      '(invoked through the AWS API, SigV4) and mock integrations, which never see a client certificate.';
    acknowledge(stage, 'HIPAA.Security-APIGWSSLEnabled', noBackendCert);
    acknowledge(stage, 'NIST.800.53.R5-APIGWSSLEnabled', noBackendCert);
    acknowledge(stage, 'PCI.DSS.321-APIGWSSLEnabled', noBackendCert);
  }

  /** Invoke URL through the custom domain. */
  public get url(): string {
    return `https://${this.domainName}/`;
  }

  /**
   * Adds a Lambda proxy route with the request validator applied. Methods without an authorizer must be
   * acknowledged (AwsSolutions-APIG4/COG4) by the caller with the reason they are public.
   */
  public addRoute(
    path: string,
    httpMethod: string,
    handler: lambda.IFunction,
    options: RouteOptions = {},
  ): apigateway.Method {
    const { integration, ...methodOptions } = options;
    const resource = this.restApi.root.resourceForPath(path);
    // No test-invoke permission unless a caller asks: console tests bypass the stage's authorizers and WAF.
    const lambdaIntegration = new apigateway.LambdaIntegration(handler, { allowTestInvoke: false, ...integration });
    return resource.addMethod(httpMethod, lambdaIntegration, {
      requestValidator: this.requestValidator,
      ...methodOptions,
    });
  }

  private addHealthCheck(): void {
    const headerParams = (v: (value: string) => string | boolean) =>
      Object.fromEntries(
        Object.entries({ ...this.responseHeaders, 'Content-Type': 'application/json' }).map(([n, value]) => [
          `method.response.header.${n}`,
          v(value),
        ]),
      );
    const health = this.restApi.root.addResource('health');
    const method = health.addMethod(
      'GET',
      new apigateway.MockIntegration({
        passthroughBehavior: apigateway.PassthroughBehavior.NEVER,
        requestTemplates: { 'application/json': '{"statusCode": 200}' },
        integrationResponses: [
          {
            statusCode: '200',
            responseTemplates: { 'application/json': '{"status":"ok"}' },
            responseParameters: headerParams((value) => `'${value}'`) as Record<string, string>,
          },
        ],
      }),
      {
        authorizationType: apigateway.AuthorizationType.NONE,
        requestValidator: this.requestValidator,
        methodResponses: [
          {
            statusCode: '200',
            responseModels: { 'application/json': apigateway.Model.EMPTY_MODEL },
            responseParameters: headerParams(() => true) as Record<string, boolean>,
          },
        ],
      },
    );
    const publicHealth =
      'GET /health is the unauthenticated liveness probe for load checks and status pages; it is a mock ' +
      'integration that returns {"status":"ok"} and touches no tenant data.';
    acknowledge(method, 'AwsSolutions-APIG4', publicHealth);
    acknowledge(method, 'AwsSolutions-COG4', publicHealth);
  }
}

/** Headers as API Gateway static values (gateway responses): wrapped in single quotes, which it strips. */
export function staticHeaderValues(headers: Readonly<Record<string, string>>): Record<string, string> {
  return Object.fromEntries(Object.entries(headers).map(([name, value]) => [name, `'${value}'`]));
}
