import { Stack, type App } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { collectAcknowledgements } from '../../lib/compliance';
import { regionInZone } from '../../lib/config';
import type { BulwarkStage } from '../../lib/bulwark-stage';
import { ORIGIN_SECRET_HEADER } from '../../lib/stacks/edge-stack';
import { HSTS_MAX_AGE_SECONDS } from '../../contracts/security-headers';
import { MANAGED_RULE_GROUPS } from '../../lib/edge/web-acl';
import { buildTestStages, deployment, stacksOf } from '../support/cdk';
import { appWithOutdir, cloudFrontDeployment, gateFindings, stageFor } from './helpers';
import { defined } from '../support/defined';
import { CATALOGUE_NAMES, EU, INDIA } from '../support/catalogue';

// Edge findings that must be satisfied by configuration, never acknowledged away.
const MUST_BE_SATISFIED =
  /APIG1|APIG2|APIG3|APIG6|CFR2|CFR3|CFR4|CFR5|APIGWAssociatedWithWAF|APIGWExecutionLoggingEnabled|WAFv2LoggingEnabled|CloudWatchLogGroupEncrypted|CloudWatchLogGroupRetentionPeriod|CloudFrontDistribution/;

function templates(stage: BulwarkStage): Template[] {
  return stacksOf(stage).map((s) => Template.fromStack(s));
}

describe('catalogue deployments with the regional entry', () => {
  let app: App;
  let stages: BulwarkStage[];
  beforeAll(() => {
    // CloudFront entries are covered below; the regional assertions hold for every regional deployment.
    const regional = CATALOGUE_NAMES.filter((n) => deployment(n).edge.entry === 'regional');
    ({ app, stages } = buildTestStages(regional));
  });

  it('include the pinned ones, and pass the compliance gate', () => {
    expect(stages.map((s) => s.deployment.name)).toEqual(expect.arrayContaining([EU.name, INDIA.name]));
    expect(gateFindings(app)).toEqual([]);
  });

  it('satisfy the API and edge rules instead of acknowledging them', () => {
    const edgeAcks = collectAcknowledgements(app).filter((a) => a.path.startsWith('Edge'));
    expect(edgeAcks.filter((a) => MUST_BE_SATISFIED.test(a.finding))).toEqual([]);
    // The only authorization exemptions are the public health check and the carrier webhooks, whose
    // handler authenticates every request by its signature before reading it (docs/webhooks.md).
    const unauthorized = new Set([
      'Edge/PlatformApi/Api/Default/health/GET/Resource',
      ...['didlogic', 'frejun', 'telnyx'].map((p) => `Edge/PlatformApi/Api/Default/webhooks/${p}/POST/Resource`),
    ]);
    const authAcks = edgeAcks.filter((a) => /APIG4|COG4/.test(a.finding));
    expect(new Set(authAcks.filter((a) => /APIG4/.test(a.finding)).map((a) => a.path))).toEqual(unauthorized);
    // Every other COG4 ("not a Cognito authorizer") is a tenant route behind the REQUEST authorizer.
    const custom = authAcks.filter((a) => !unauthorized.has(a.path));
    expect(custom.length).toBeGreaterThanOrEqual(12);
    for (const a of custom) {
      expect(a.finding).toBe('AwsSolutions-COG4');
      expect(a.reason).toMatch(/REQUEST authorizer/);
    }
  });

  it('hold the webhook paths to the body cap the webhook function enforces, and inspect every byte of it', () => {
    for (const stage of stages) {
      const t = Template.fromStack(stage.edge);
      const { edge } = stage.deployment;
      const webhookFunctions = Object.values(
        t.findResources('AWS::Lambda::Function', {
          Properties: { Environment: { Variables: { WEBHOOK_MAX_BODY_BYTES: Match.anyValue() } } },
        }),
      );
      expect(webhookFunctions.length).toBeGreaterThan(0);
      for (const fn of webhookFunctions) {
        expect(fn['Properties'].Environment.Variables.WEBHOOK_MAX_BODY_BYTES).toBe(
          String(edge.webhookMaxRequestBodyBytes),
        );
      }
      const [acl] = Object.values(t.findResources('AWS::WAFv2::WebACL'));
      const rules = defined(acl)['Properties'].Rules as { Name: string; Statement: Record<string, any> }[]; // eslint-disable-line @typescript-eslint/no-explicit-any
      const webhookRule = rules.find((r) => r.Name === 'BodySizeLimitWebhooks');
      expect(webhookRule?.Statement.AndStatement.Statements[0].SizeConstraintStatement.Size).toBe(
        edge.webhookMaxRequestBodyBytes,
      );
      const inspected = { KB_16: 16_384, KB_32: 32_768, KB_48: 49_152, KB_64: 65_536 }[
        defined(acl)['Properties'].AssociationConfig.RequestBody.API_GATEWAY.DefaultSizeInspectionLimit as string
      ];
      expect(inspected).toBeGreaterThanOrEqual(Math.max(edge.webhookMaxRequestBodyBytes, edge.maxRequestBodyBytes));
    }
  });

  it('make exactly the tenant API, tenant files and webhook roles tenant-key users, each granted with an org_id context only', () => {
    for (const stage of stages) {
      const t = Template.fromStack(stage.edge);
      const users = t.findResources('AWS::IAM::Role', {
        Properties: { Tags: Match.arrayWith([{ Key: 'bulwark:tenant-key-user', Value: stage.deployment.name }]) },
      });
      const ids = Object.keys(users).sort();
      expect(ids).toHaveLength(3);
      expect(ids.some((id) => id.startsWith('TenantGuardApiRole'))).toBe(true);
      expect(ids.some((id) => id.startsWith('TenantGuardFilesRole'))).toBe(true);
      expect(ids.some((id) => id.startsWith('WebhooksFunctionRole'))).toBe(true);
      const inline = Object.values(t.findResources('AWS::IAM::Policy'));
      // The files role's session policy lives with the file bucket, in the TenantKeys stack.
      const managed = {
        ...t.findResources('AWS::IAM::ManagedPolicy'),
        ...Template.fromStack(stage.tenantKeys).findResources('AWS::IAM::ManagedPolicy'),
      };
      for (const id of ids) {
        const arns = JSON.stringify(defined(users[id])['Properties']['ManagedPolicyArns'] ?? []);
        const attached = [
          ...inline.filter((p) => JSON.stringify(p['Properties']['Roles'] ?? []).includes(`"${id}"`)),
          ...Object.entries(managed)
            .filter(
              ([mid, p]) => arns.includes(mid) || JSON.stringify(p['Properties']['Roles'] ?? []).includes(`"${id}"`),
            )
            .map(([, p]) => p),
        ];
        const use = attached
          .flatMap((p) => p['Properties']['PolicyDocument']['Statement'] as Record<string, unknown>[])
          .filter((st) => JSON.stringify(st['Action']).includes('kms:GenerateDataKey'));
        expect(use).toHaveLength(1);
        // Any organisation's context (the function then holds the key of each tenant it serves), or
        // exactly the organisation the files session is tagged with.
        const condition = defined(use[0])['Condition'] as Record<string, Record<string, unknown>>;
        if (id.startsWith('TenantGuardFilesRole')) {
          expect(condition['StringEquals']?.['kms:EncryptionContext:org_id']).toBe('${aws:PrincipalTag/org_id}');
        } else {
          expect(condition).toMatchObject({ Null: { 'kms:EncryptionContext:org_id': 'false' } });
        }
      }
    }
  });

  it('keep every stack, and so every log holding client IPs, in the deployment region inside its zone', () => {
    for (const stage of stages) {
      const { region, residency } = stage.deployment;
      // The entry and its logs are in the deployment region; only the backup region's stacks (copy
      // vault, its drill, its baseline) are elsewhere, in-zone.
      expect(stage.edge.region).toBe(region);
      for (const stack of stacksOf(stage)) {
        if (stack !== stage.backupVault && stack !== stage.backupRegionBaseline)
          expect(`${stack.stackName}@${stack.region}`).toBe(`${stack.stackName}@${region}`);
        expect(regionInZone(stack.region, residency)).toBe(true);
      }
      expect(stage.edgeGlobal).toBeUndefined();
      for (const t of templates(stage)) t.resourceCountIs('AWS::CloudFront::Distribution', 0);
    }
  });

  it('put the full web ACL on the API stage and keep its logs in-region, redacted', () => {
    for (const stage of stages) {
      const t = Template.fromStack(stage.edge);
      t.hasResourceProperties('AWS::WAFv2::WebACL', {
        Scope: 'REGIONAL',
        Rules: Match.arrayWith(
          MANAGED_RULE_GROUPS.map((name) =>
            Match.objectLike({ Statement: { ManagedRuleGroupStatement: Match.objectLike({ Name: name }) } }),
          ),
        ),
      });
      t.hasResourceProperties('AWS::WAFv2::WebACL', {
        Rules: Match.arrayWith([
          Match.objectLike({
            Name: 'RateLimitPerIp',
            Statement: {
              RateBasedStatement: Match.objectLike({ Limit: stage.deployment.edge.rateLimitPerFiveMinutes }),
            },
          }),
        ]),
      });
      // Per credential (bearer token, API key), with the deployment's limits (docs/rate-limits.md).
      const limits = stage.deployment.edge.credentialRateLimits;
      t.hasResourceProperties('AWS::WAFv2::WebACL', {
        Rules: Match.arrayWith(
          [
            ['RateLimitPerBearerToken', limits.bearerTokenPerFiveMinutes],
            ['RateLimitPerApiKey', limits.apiKeyPerFiveMinutes],
          ].map(([name, limit]) =>
            Match.objectLike({
              Name: name,
              Statement: { RateBasedStatement: Match.objectLike({ Limit: limit, AggregateKeyType: 'CUSTOM_KEYS' }) },
            }),
          ),
        ),
      });
      t.hasResourceProperties('AWS::WAFv2::WebACLAssociation', {
        ResourceArn: {
          'Fn::Join': ['', Match.arrayWith([{ Ref: Match.stringLikeRegexp('PlatformApiDeploymentStage') }])],
        },
        WebACLArn: { 'Fn::GetAtt': [Match.stringLikeRegexp('^WebAcl'), 'Arn'] },
      });
      t.hasResourceProperties('AWS::WAFv2::LoggingConfiguration', {
        RedactedFields: Match.arrayWith([
          { SingleHeader: { Name: 'authorization' } },
          { SingleHeader: { Name: 'cookie' } },
        ]),
      });
      t.hasResourceProperties('AWS::ApiGateway::Stage', {
        MethodSettings: [
          Match.objectLike({
            ThrottlingRateLimit: stage.deployment.edge.throttle.rateLimit,
            ThrottlingBurstLimit: stage.deployment.edge.throttle.burstLimit,
          }),
        ],
      });
      t.hasResourceProperties('AWS::ApiGateway::DomainName', {
        DomainName: stage.deployment.edge.domainName,
        RegionalCertificateArn: stage.deployment.edge.certificateArn,
        SecurityPolicy: 'SecurityPolicy_TLS13_1_2_PFS_PQ_2025_09',
        EndpointAccessMode: 'STRICT',
      });
      t.hasResourceProperties('AWS::ApiGateway::RestApi', {
        SecurityPolicy: 'SecurityPolicy_TLS13_1_2_PFS_PQ_2025_09',
        DisableExecuteApiEndpoint: true,
      });
    }
  });
});

describe('the gate fails when the API stage loses its web ACL', () => {
  it('reports APIG3 (and the WAF association rules of the other packs)', () => {
    const app = appWithOutdir();
    const stage = stageFor(app, deployment(EU.name));
    expect(stage.edge.node.tryRemoveChild('ApiWebAclAssociation')).toBe(true);
    const findings = gateFindings(app);
    expect(findings).toEqual(
      expect.arrayContaining([
        expect.stringMatching(new RegExp(`^AwsSolutions-APIG3 ${EU.name}/Edge/PlatformApi/Api/DeploymentStage`)),
        expect.stringMatching(/^NIST\.800\.53\.R5-APIGWAssociatedWithWAF /),
      ]),
    );
  });
});

describe('a CloudFront entry (residency zone containing us-east-1)', () => {
  let app: App;
  let stage: BulwarkStage;
  beforeAll(() => {
    app = appWithOutdir();
    // With a webhook exemption, so the gate's template validation also covers the label-based rule.
    stage = stageFor(app, cloudFrontDeployment({ hostingProviderExemptPathPrefixes: ['/webhooks/'] }));
  });

  it('passes the compliance gate', () => {
    expect(gateFindings(app)).toEqual([]);
    expect(collectAcknowledgements(stage).filter((a) => MUST_BE_SATISFIED.test(a.finding))).toEqual([]);
  });

  it('keeps every stack inside the us residency zone', () => {
    expect(stage.edgeGlobal?.region).toBe('us-east-1');
    expect(stage.edge.region).toBe('us-east-2');
    for (const s of stacksOf(stage)) expect(regionInZone(s.region, 'us')).toBe(true);
  });

  it('keeps the CLOUDFRONT web ACL and its logs in a us-east-1 stack with full protection', () => {
    const global = stage.edgeGlobal;
    expect(global).toBeDefined();
    expect(Stack.of(defined(global)).region).toBe('us-east-1');
    const t = Template.fromStack(defined(global));
    t.hasResourceProperties('AWS::WAFv2::WebACL', {
      Scope: 'CLOUDFRONT',
      Rules: Match.arrayWith([
        Match.objectLike({ Name: 'RateLimitPerIp' }),
        // CloudFront's web ACL sees every request first: the per-credential limits live there.
        Match.objectLike({ Name: 'AuthorizationNotCanonical' }),
        Match.objectLike({ Name: 'RateLimitPerBearerToken' }),
        Match.objectLike({ Name: 'RateLimitPerApiKey' }),
        Match.objectLike({ Name: 'BodySizeLimit' }),
        Match.objectLike({ Name: 'HostingProviderOutsideExemptPaths' }),
      ]),
    });
    t.resourceCountIs('AWS::WAFv2::LoggingConfiguration', 1);
    // Deployed first: the distribution reads the web ACL ARN from its outputs.
    expect(stage.edge.dependencies).toContain(global);
  });

  it('serves TLSv1.2_2021+ with the us-east-1 certificate, redirects HTTP, caches nothing, logs in-region', () => {
    const t = Template.fromStack(stage.edge);
    t.hasResourceProperties('AWS::CloudFront::Distribution', {
      DistributionConfig: Match.objectLike({
        Aliases: ['api.us.bulwark.example.com'],
        ViewerCertificate: {
          AcmCertificateArn: stage.deployment.edge.cloudFrontCertificateArn,
          MinimumProtocolVersion: 'TLSv1.2_2021',
          SslSupportMethod: 'sni-only',
        },
        WebACLId: {
          'Fn::GetStackOutput': Match.objectLike({
            StackName: defined(stage.edgeGlobal).stackName,
            Region: 'us-east-1',
          }),
        },
        Logging: Match.objectLike({
          Bucket: { 'Fn::GetAtt': [Match.stringLikeRegexp('^CdnAccessLogs'), 'RegionalDomainName'] },
        }),
        DefaultCacheBehavior: Match.objectLike({
          ViewerProtocolPolicy: 'redirect-to-https',
          // Managed CachingDisabled policy.
          CachePolicyId: '4135ea2d-6df8-44a3-9df3-4b5a84be39ad',
        }),
        Origins: [
          Match.objectLike({
            CustomOriginConfig: Match.objectLike({
              OriginProtocolPolicy: 'https-only',
              OriginSSLProtocols: ['TLSv1.2'],
            }),
            OriginCustomHeaders: [
              {
                HeaderName: ORIGIN_SECRET_HEADER,
                HeaderValue: {
                  'Fn::Join': [
                    '',
                    [
                      '{{resolve:secretsmanager:',
                      { Ref: Match.stringLikeRegexp('^OriginSecret') },
                      ':SecretString:::}}',
                    ],
                  ],
                },
              },
            ],
          }),
        ],
      }),
    });
    t.hasResourceProperties('AWS::S3::Bucket', {
      BucketEncryption: {
        ServerSideEncryptionConfiguration: [
          Match.objectLike({ ServerSideEncryptionByDefault: Match.objectLike({ SSEAlgorithm: 'aws:kms' }) }),
        ],
      },
      OwnershipControls: { Rules: [{ ObjectOwnership: 'BucketOwnerPreferred' }] },
      LifecycleConfiguration: {
        Rules: Match.arrayWith([Match.objectLike({ Status: 'Enabled', ExpirationInDays: 365 })]),
      },
    });
  });

  it('sends the exact security headers, overriding anything the origin says', () => {
    const t = Template.fromStack(stage.edge);
    t.hasResourceProperties('AWS::CloudFront::ResponseHeadersPolicy', {
      ResponseHeadersPolicyConfig: Match.objectLike({
        SecurityHeadersConfig: {
          StrictTransportSecurity: {
            AccessControlMaxAgeSec: HSTS_MAX_AGE_SECONDS,
            IncludeSubdomains: true,
            Preload: true,
            Override: true,
          },
          ContentTypeOptions: { Override: true },
          FrameOptions: { FrameOption: 'DENY', Override: true },
          ReferrerPolicy: { ReferrerPolicy: 'no-referrer', Override: true },
          ContentSecurityPolicy: {
            ContentSecurityPolicy: "default-src 'none'; frame-ancestors 'none'",
            Override: true,
          },
        },
      }),
    });
    // CloudFront renders these three settings as exactly this header value.
    expect(`max-age=${HSTS_MAX_AGE_SECONDS}; includeSubDomains; preload`).toBe(
      'max-age=63072000; includeSubDomains; preload',
    );
  });

  it('locks the origin: the API stage only admits requests carrying the secret header', () => {
    const t = Template.fromStack(stage.edge);
    // CloudFront is the API's only client here: BASIC access mode, TLS 1.2 with forward secrecy to the origin.
    t.hasResourceProperties('AWS::ApiGateway::RestApi', {
      DisableExecuteApiEndpoint: true,
      SecurityPolicy: 'SecurityPolicy_TLS13_1_2_PFS_PQ_2025_09',
      EndpointAccessMode: 'BASIC',
    });
    t.hasResourceProperties('AWS::WAFv2::WebACL', {
      Scope: 'REGIONAL',
      Rules: [
        Match.objectLike({
          Name: 'OriginLock',
          Action: { Block: {} },
          Statement: {
            NotStatement: {
              Statement: {
                ByteMatchStatement: Match.objectLike({
                  FieldToMatch: { SingleHeader: { Name: ORIGIN_SECRET_HEADER } },
                  PositionalConstraint: 'EXACTLY',
                }),
              },
            },
          },
        }),
        Match.objectLike({ Name: 'RateLimitPerForwardedIp' }),
        Match.objectLike({ Name: 'RateLimitWebhooksPerForwardedIp' }),
      ],
    });
    t.hasResourceProperties('AWS::WAFv2::WebACLAssociation', {
      WebACLArn: { 'Fn::GetAtt': [Match.stringLikeRegexp('^OriginWebAcl'), 'Arn'] },
    });
    t.hasResourceProperties('AWS::SecretsManager::Secret', {
      KmsKeyId: Match.anyValue(),
      GenerateSecretString: Match.objectLike({ PasswordLength: 64, ExcludePunctuation: true }),
    });
    t.hasResourceProperties('AWS::WAFv2::LoggingConfiguration', {
      RedactedFields: Match.arrayWith([{ SingleHeader: { Name: ORIGIN_SECRET_HEADER } }]),
    });
  });
});

describe('DNS target output', () => {
  it('tells users where to point the domain: the regional domain, or CloudFront when it is the entry', () => {
    const { stages } = buildTestStages([EU.name]);
    Template.fromStack(defined(stages[0]).edge).hasOutput('DnsTarget', {
      Value: { 'Fn::GetAtt': [Match.stringLikeRegexp('^PlatformApiDomain'), 'RegionalDomainName'] },
    });
    const cf = stageFor(appWithOutdir(), cloudFrontDeployment());
    Template.fromStack(cf.edge).hasOutput('DnsTarget', {
      Value: { 'Fn::GetAtt': [Match.stringLikeRegexp('^CdnDistribution'), 'DomainName'] },
    });
  });
});
