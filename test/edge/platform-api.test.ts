import * as apigateway from 'aws-cdk-lib/aws-apigateway';
import * as acm from 'aws-cdk-lib/aws-certificatemanager';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { PlatformApi } from '../../lib/api/platform-api';
import { HSTS_VALUE } from '../../contracts/security-headers';
import { bareStack } from './helpers';

const CERT = 'arn:aws:acm:eu-west-1:000000000000:certificate/00000000-0000-4000-8000-000000000000';

function build(csp?: string, securityPolicy?: apigateway.SecurityPolicy) {
  const stack = bareStack();
  const api = new PlatformApi(stack, 'Api', {
    domainName: 'api.eu.example.com',
    certificate: acm.Certificate.fromCertificateArn(stack, 'Cert', CERT),
    throttle: { rateLimit: 50, burstLimit: 75 },
    maxRequestBodyBytes: 16_384,
    contentSecurityPolicy: csp,
    securityPolicy,
  });
  return { stack, api };
}

const EXPECTED_HEADERS = {
  'Strict-Transport-Security': 'max-age=63072000; includeSubDomains; preload',
  'X-Content-Type-Options': 'nosniff',
  'X-Frame-Options': 'DENY',
  'Referrer-Policy': 'no-referrer',
  'Content-Security-Policy': "default-src 'none'; frame-ancestors 'none'",
  'Cache-Control': 'no-store',
};

describe('PlatformApi', () => {
  const { stack, api } = build();
  const template = Template.fromStack(stack);

  it('is regional and reachable only through its custom domain', () => {
    template.hasResourceProperties('AWS::ApiGateway::RestApi', {
      EndpointConfiguration: { Types: ['REGIONAL'] },
      DisableExecuteApiEndpoint: true,
    });
  });

  it('serves the custom domain with the regional certificate and a TLS 1.2+ forward-secret policy, API included', () => {
    template.hasResourceProperties('AWS::ApiGateway::DomainName', {
      DomainName: 'api.eu.example.com',
      EndpointConfiguration: { Types: ['REGIONAL'] },
      RegionalCertificateArn: CERT,
      SecurityPolicy: 'SecurityPolicy_TLS13_1_2_PFS_PQ_2025_09',
      EndpointAccessMode: 'STRICT',
    });
    // API Gateway negotiates with the API's own policy, which would otherwise default to TLS_1_0.
    template.hasResourceProperties('AWS::ApiGateway::RestApi', {
      SecurityPolicy: 'SecurityPolicy_TLS13_1_2_PFS_PQ_2025_09',
      EndpointAccessMode: 'STRICT',
    });
    template.hasResourceProperties('AWS::ApiGateway::BasePathMapping', {
      DomainName: { Ref: Match.stringLikeRegexp('^ApiDomain') },
      RestApiId: { Ref: Match.stringLikeRegexp('^Api') },
      Stage: { Ref: Match.stringLikeRegexp('^ApiDeploymentStage') },
    });
  });

  it('throttles the stage from config, logs errors without bodies, traces, and never caches', () => {
    template.hasResourceProperties('AWS::ApiGateway::Stage', {
      StageName: 'v1',
      TracingEnabled: true,
      CacheClusterEnabled: Match.absent(),
      MethodSettings: [
        {
          HttpMethod: '*',
          ResourcePath: '/*',
          ThrottlingRateLimit: 50,
          ThrottlingBurstLimit: 75,
          LoggingLevel: 'ERROR',
          DataTraceEnabled: false,
          MetricsEnabled: true,
          CachingEnabled: false,
        },
      ],
    });
  });

  it('writes JSON access logs to a KMS-encrypted log group with retention', () => {
    const stage = Object.values(template.findResources('AWS::ApiGateway::Stage'))[0] as {
      Properties: { AccessLogSetting: { DestinationArn: unknown; Format: string } };
    };
    expect(JSON.stringify(stage.Properties.AccessLogSetting.DestinationArn)).toMatch(/"Ref":"ApiAccessLogs/);
    const format = JSON.parse(stage.Properties.AccessLogSetting.Format) as Record<string, string>;
    expect(format).toMatchObject({
      requestId: '$context.requestId',
      ip: '$context.identity.sourceIp',
      status: '$context.status',
      wafResponseCode: '$context.wafResponseCode',
      tlsVersion: '$context.tlsVersion',
      cipherSuite: '$context.cipherSuite',
    });
    // Never request or response content.
    expect(Object.values(format).join(' ')).not.toMatch(/requestOverride|input\.body|\$input|header/i);
    const logGroups = template.findResources('AWS::Logs::LogGroup');
    expect(Object.keys(logGroups)).toHaveLength(2);
    for (const lg of Object.values(logGroups) as { Properties: Record<string, unknown>; DeletionPolicy: string }[]) {
      expect(lg.Properties.KmsKeyId).toBeDefined();
      expect(lg.Properties.RetentionInDays).toBe(365);
      expect(lg.DeletionPolicy).toBe('Retain');
    }
  });

  it('pre-creates the execution log group (encrypted) before the stage can write to it', () => {
    template.hasResourceProperties('AWS::Logs::LogGroup', {
      LogGroupName: {
        'Fn::Join': ['', ['API-Gateway-Execution-Logs_', { Ref: Match.stringLikeRegexp('^Api') }, '/v1']],
      },
      KmsKeyId: Match.anyValue(),
    });
    const stage = Object.values(template.findResources('AWS::ApiGateway::Stage'))[0] as { DependsOn: string[] };
    expect(stage.DependsOn.some((d) => d.startsWith('ApiExecutionLogs'))).toBe(true);
  });

  it('validates request bodies and parameters', () => {
    template.hasResourceProperties('AWS::ApiGateway::RequestValidator', {
      ValidateRequestBody: true,
      ValidateRequestParameters: true,
    });
  });

  it('answers GET /health with {"status":"ok"} as JSON, with every security header, from a mock', () => {
    const headers = Object.fromEntries(
      Object.entries({ ...EXPECTED_HEADERS, 'Content-Type': 'application/json' }).map(([n, v]) => [
        `method.response.header.${n}`,
        `'${v}'`,
      ]),
    );
    template.hasResourceProperties('AWS::ApiGateway::Resource', { PathPart: 'health' });
    template.hasResourceProperties('AWS::ApiGateway::Method', {
      HttpMethod: 'GET',
      AuthorizationType: 'NONE',
      RequestValidatorId: { Ref: Match.stringLikeRegexp('^ApiRequestValidator') },
      Integration: {
        Type: 'MOCK',
        PassthroughBehavior: 'NEVER',
        IntegrationResponses: [
          {
            StatusCode: '200',
            ResponseTemplates: { 'application/json': '{"status":"ok"}' },
            ResponseParameters: headers,
          },
        ],
      },
    });
  });

  it('adds the security headers, with the exact HSTS value, to every 4XX and 5XX API Gateway produces', () => {
    for (const type of ['DEFAULT_4XX', 'DEFAULT_5XX']) {
      template.hasResourceProperties('AWS::ApiGateway::GatewayResponse', {
        ResponseType: type,
        ResponseParameters: Object.fromEntries(
          Object.entries(EXPECTED_HEADERS).map(([n, v]) => [`gatewayresponse.header.${n}`, `'${v}'`]),
        ),
      });
    }
    expect(api.responseHeaders['Strict-Transport-Security']).toBe(HSTS_VALUE);
    expect(HSTS_VALUE).toBe('max-age=63072000; includeSubDomains; preload');
  });

  it('answers the stage throttle with 429 {"error":"RATE_LIMITED"} and the security headers', () => {
    template.hasResourceProperties('AWS::ApiGateway::GatewayResponse', {
      ResponseType: 'THROTTLED',
      StatusCode: '429',
      ResponseTemplates: { 'application/json': '{"error":"RATE_LIMITED"}' },
      ResponseParameters: Object.fromEntries(
        Object.entries(EXPECTED_HEADERS).map(([n, v]) => [`gatewayresponse.header.${n}`, `'${v}'`]),
      ),
    });
  });

  it('exposes the RestApi and the body limit for other capabilities', () => {
    expect(api.restApi.root.path).toBe('/');
    expect(api.maxRequestBodyBytes).toBe(16_384);
    expect(api.url).toBe('https://api.eu.example.com/');
  });
});

describe('PlatformApi.addRoute', () => {
  it('adds a Lambda proxy method under the path with the request validator applied', () => {
    const { stack, api } = build();
    const fn = new lambda.Function(stack, 'Fn', {
      runtime: lambda.Runtime.NODEJS_22_X,
      handler: 'index.handler',
      code: lambda.Code.fromInline('exports.handler = async () => ({ statusCode: 200 })'),
    });
    api.addRoute('/webhooks/sms', 'POST', fn);
    const template = Template.fromStack(stack);
    template.hasResourceProperties('AWS::ApiGateway::Resource', { PathPart: 'sms' });
    template.hasResourceProperties('AWS::ApiGateway::Method', {
      HttpMethod: 'POST',
      RequestValidatorId: { Ref: Match.stringLikeRegexp('^ApiRequestValidator') },
      Integration: { Type: 'AWS_PROXY', IntegrationHttpMethod: 'POST' },
    });
    template.hasResourceProperties('AWS::Lambda::Permission', {
      Action: 'lambda:InvokeFunction',
      Principal: 'apigateway.amazonaws.com',
    });
  });
});

describe('PlatformApi CSP', () => {
  it('sends the configured Content-Security-Policy', () => {
    const { stack } = build("default-src 'none'; frame-ancestors 'none'; sandbox");
    Template.fromStack(stack).hasResourceProperties('AWS::ApiGateway::GatewayResponse', {
      ResponseParameters: Match.objectLike({
        'gatewayresponse.header.Content-Security-Policy': "'default-src 'none'; frame-ancestors 'none'; sandbox'",
      }),
    });
  });
});

describe('PlatformApi TLS policy', () => {
  it('applies the legacy TLS_1_2 policy to both API and domain when asked, without an access mode', () => {
    const { stack } = build(undefined, apigateway.SecurityPolicy.TLS_1_2);
    const t = Template.fromStack(stack);
    t.hasResourceProperties('AWS::ApiGateway::DomainName', {
      SecurityPolicy: 'TLS_1_2',
      EndpointAccessMode: Match.absent(),
    });
    t.hasResourceProperties('AWS::ApiGateway::RestApi', {
      SecurityPolicy: 'TLS_1_2',
      EndpointAccessMode: Match.absent(),
    });
  });

  it('refuses policies that admit TLS 1.0', () => {
    expect(() => build(undefined, apigateway.SecurityPolicy.TLS_1_0)).toThrow(/less than TLS 1.2/);
  });
});
