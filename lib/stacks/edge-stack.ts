import { CfnOutput, RemovalPolicy, Stack, type StackProps } from 'aws-cdk-lib';
import * as apigateway from 'aws-cdk-lib/aws-apigateway';
import * as acm from 'aws-cdk-lib/aws-certificatemanager';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import * as wafv2 from 'aws-cdk-lib/aws-wafv2';
import type { Construct } from 'constructs';
import { PlatformApi } from '../api/platform-api';
import { acknowledge } from '../compliance/acknowledge';
import type { DeploymentConfig } from '../config';
import { EdgeDistribution } from '../edge/distribution';
import { LogKey, customerKey } from '../observability/keys';
import { EdgeWebAcl, type EntryProtection, type PathRateLimit } from '../edge/web-acl';
import { WEBHOOK_PATH_PREFIX } from '../../contracts/webhooks';

/** Carriers post webhooks from few cloud addresses, many per second: their paths get their own limit. */
function webhookRateLimit(deployment: DeploymentConfig): PathRateLimit[] {
  return [
    {
      name: 'Webhooks',
      pathPrefixes: [WEBHOOK_PATH_PREFIX],
      rateLimitPerFiveMinutes: deployment.edge.webhookRateLimitPerFiveMinutes,
    },
  ];
}

/** The entry's per-IP limit, body caps (the webhook paths their own) and hosting-provider exemptions. */
function entryProtection(deployment: DeploymentConfig): EntryProtection {
  const { edge } = deployment;
  return {
    rateLimitPerFiveMinutes: edge.rateLimitPerFiveMinutes,
    maxRequestBodyBytes: edge.maxRequestBodyBytes,
    pathBodyLimits: [
      { name: 'Webhooks', pathPrefixes: [WEBHOOK_PATH_PREFIX], maxRequestBodyBytes: edge.webhookMaxRequestBodyBytes },
    ],
    hostingProviderExemptPathPrefixes: edge.hostingProviderExemptPathPrefixes,
  };
}

/** Header CloudFront adds to every origin request; the regional web ACL blocks requests without it. */
export const ORIGIN_SECRET_HEADER = 'x-bulwark-origin-verify';

export interface EdgeGlobalStackProps extends StackProps {
  readonly deployment: DeploymentConfig;
}

/**
 * The CLOUDFRONT-scope web ACL and its logs, which AWS only allows in us-east-1. Exists only for
 * deployments with `edge.entry: cloudfront`, which the schema allows only for residency zones that
 * contain us-east-1.
 */
export class EdgeGlobalStack extends Stack {
  public readonly webAcl: EdgeWebAcl;

  constructor(scope: Construct, id: string, props: EdgeGlobalStackProps) {
    super(scope, id, { ...props, crossRegionReferences: true });
    this.webAcl = new EdgeWebAcl(this, 'WebAcl', {
      scope: 'CLOUDFRONT',
      pathRateLimits: webhookRateLimit(props.deployment),
      protection: entryProtection(props.deployment),
    });
  }
}

export interface EdgeStackProps extends StackProps {
  readonly deployment: DeploymentConfig;
  /** The us-east-1 web ACL; required when `edge.entry` is cloudfront. @default - none */
  readonly globalWebAcl?: EdgeWebAcl;
}

/**
 * The deployment's public entry, in its own region: the platform API behind a regional web ACL and,
 * for `edge.entry: cloudfront`, the CloudFront distribution in front of it with the origin locked.
 */
export class EdgeStack extends Stack {
  public readonly api: PlatformApi;
  public readonly regionalWebAcl: EdgeWebAcl;
  public readonly distribution?: EdgeDistribution;
  public readonly originSecret?: secretsmanager.Secret;

  constructor(scope: Construct, id: string, props: EdgeStackProps) {
    const { deployment } = props;
    const cloudFront = deployment.edge.entry === 'cloudfront';
    super(scope, id, { ...props, crossRegionReferences: cloudFront });
    const { edge } = deployment;
    if (cloudFront && !props.globalWebAcl) {
      throw new Error(`${deployment.name}: edge.entry cloudfront needs the us-east-1 web ACL (EdgeGlobalStack)`);
    }
    if (cloudFront && !edge.cloudFrontCertificateArn) {
      // The schema already refuses this; constructs built from unvalidated input must not fall back to
      // the default *.cloudfront.net certificate, which cannot enforce TLS 1.2.
      throw new Error(`${deployment.name}: edge.entry cloudfront needs edge.cloudFrontCertificateArn`);
    }

    const logKey = new LogKey(this, 'LogKey', { description: 'Encrypts the API and regional WAF logs' }).key;
    this.api = new PlatformApi(this, 'PlatformApi', {
      domainName: edge.domainName,
      certificate: acm.Certificate.fromCertificateArn(this, 'Certificate', edge.certificateArn),
      throttle: edge.throttle,
      maxRequestBodyBytes: edge.maxRequestBodyBytes,
      contentSecurityPolicy: edge.contentSecurityPolicy,
      securityPolicy: edge.apiTlsPolicy as apigateway.SecurityPolicy,
      // CloudFront is the client in a cloudfront entry; STRICT's SNI host matching is only relied on
      // where clients connect directly.
      endpointAccessMode: cloudFront ? apigateway.EndpointAccessMode.BASIC : apigateway.EndpointAccessMode.STRICT,
      logKey,
    });

    if (cloudFront && props.globalWebAcl) {
      const secretKey = customerKey(this, 'OriginSecretKey', 'Encrypts the CloudFront origin-lock secret');
      this.originSecret = new secretsmanager.Secret(this, 'OriginSecret', {
        description: 'Value CloudFront sends in the origin-lock header; the regional web ACL requires it',
        encryptionKey: secretKey,
        generateSecretString: { passwordLength: 64, excludePunctuation: true, includeSpace: false },
        removalPolicy: RemovalPolicy.RETAIN,
      });
      const rotation =
        'The value lives in both the CloudFront origin header and the regional web ACL rule; both read it through ' +
        'a CloudFormation dynamic reference, so it is rotated by changing it and redeploying this stack ' +
        '(docs/edge.md "Rotating the origin secret"); a rotation Lambda would break the lock between deploys.';
      acknowledge(this.originSecret, 'AwsSolutions-SMG4', rotation);
      acknowledge(this.originSecret, 'HIPAA.Security-SecretsManagerRotationEnabled', rotation);
      acknowledge(this.originSecret, 'NIST.800.53.R5-SecretsManagerRotationEnabled', rotation);

      this.regionalWebAcl = new EdgeWebAcl(this, 'OriginWebAcl', {
        scope: 'REGIONAL',
        pathRateLimits: webhookRateLimit(deployment),
        originLock: {
          headerName: ORIGIN_SECRET_HEADER,
          secret: this.originSecret,
          rateLimitPerFiveMinutes: edge.rateLimitPerFiveMinutes,
        },
        logKey,
      });
      this.distribution = new EdgeDistribution(this, 'Cdn', {
        domainName: edge.domainName,
        certificate: acm.Certificate.fromCertificateArn(
          this,
          'CloudFrontCertificate',
          edge.cloudFrontCertificateArn as string,
        ),
        originDomainName: this.api.domain.domainNameAliasDomainName,
        webAclArn: props.globalWebAcl.webAclArn,
        originSecretHeader: ORIGIN_SECRET_HEADER,
        originSecret: this.originSecret,
        contentSecurityPolicy: edge.contentSecurityPolicy,
      });
    } else {
      this.regionalWebAcl = new EdgeWebAcl(this, 'WebAcl', {
        scope: 'REGIONAL',
        pathRateLimits: webhookRateLimit(deployment),
        protection: entryProtection(deployment),
        logKey,
      });
    }

    new wafv2.CfnWebACLAssociation(this, 'ApiWebAclAssociation', {
      resourceArn: this.api.restApi.deploymentStage.stageArn,
      webAclArn: this.regionalWebAcl.webAclArn,
    });

    // The DNS record users create for edge.domainName (README "What you supply").
    new CfnOutput(this, 'DnsTarget', {
      description: `Point ${edge.domainName} (CNAME or alias) here`,
      value: this.distribution
        ? this.distribution.distribution.distributionDomainName
        : this.api.domain.domainNameAliasDomainName,
    });
  }
}
