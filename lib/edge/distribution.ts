import { Duration } from 'aws-cdk-lib';
import type * as acm from 'aws-cdk-lib/aws-certificatemanager';
import * as cloudfront from 'aws-cdk-lib/aws-cloudfront';
import * as origins from 'aws-cdk-lib/aws-cloudfront-origins';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as s3 from 'aws-cdk-lib/aws-s3';
import type * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { Construct } from 'constructs';
import { acknowledge } from '../compliance/acknowledge';
import { allowOutsideResidency } from '../residency/guard';
import { HSTS_MAX_AGE_SECONDS, securityHeaders } from '../../contracts/security-headers';
import { customerKey } from '../observability/keys';
import { SECURE_BUCKET_DEFAULTS } from '../shared/bucket';

export interface EdgeDistributionProps {
  /** Public domain name (CNAME) of the distribution. */
  readonly domainName: string;
  /** ACM certificate for `domainName` in us-east-1. Without one CloudFront cannot enforce TLS 1.2. */
  readonly certificate: acm.ICertificate;
  /** Host name of the regional API custom domain's endpoint (`DomainName.domainNameAliasDomainName`). */
  readonly originDomainName: string;
  /** ARN of a CLOUDFRONT-scope web ACL (us-east-1). */
  readonly webAclArn: string;
  /** Header CloudFront adds to every origin request, checked by the regional web ACL. */
  readonly originSecretHeader: string;
  /** Secret whose value CloudFront sends in `originSecretHeader`. */
  readonly originSecret: secretsmanager.ISecret;
  /** Content-Security-Policy for every response. */
  readonly contentSecurityPolicy: string;
  /** Days access logs are kept. @default 365 */
  readonly accessLogRetentionDays?: number;
}

/**
 * CloudFront in front of the regional API: TLSv1.2_2021 minimum with the deployment's certificate,
 * HTTP redirected to HTTPS, nothing cached, security headers on every response (overriding the
 * origin's), the CLOUDFRONT web ACL attached, and access logs in a KMS-encrypted bucket in the
 * deployment's own region with lifecycle expiry.
 */
export class EdgeDistribution extends Construct {
  public readonly distribution: cloudfront.Distribution;
  public readonly responseHeadersPolicy: cloudfront.ResponseHeadersPolicy;
  public readonly logBucket: s3.Bucket;

  constructor(scope: Construct, id: string, props: EdgeDistributionProps) {
    super(scope, id);
    const headers = securityHeaders(props.contentSecurityPolicy);

    const logKey = customerKey(this, 'LogKey', 'Encrypts CloudFront access logs');
    // CloudFront standard logs are written by the log delivery service, which needs a data key.
    logKey.addToResourcePolicy(
      new iam.PolicyStatement({
        principals: [new iam.ServicePrincipal('delivery.logs.amazonaws.com')],
        actions: ['kms:GenerateDataKey*', 'kms:Decrypt'],
        resources: ['*'],
      }),
    );
    this.logBucket = new s3.Bucket(this, 'AccessLogs', {
      ...SECURE_BUCKET_DEFAULTS,
      encryption: s3.BucketEncryption.KMS,
      encryptionKey: logKey,
      bucketKeyEnabled: true,
      // CloudFront standard logging writes with an ACL grant; the bucket owner still owns every object.
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_PREFERRED,
      lifecycleRules: [
        {
          id: 'expire-access-logs',
          expiration: Duration.days(props.accessLogRetentionDays ?? 365),
          noncurrentVersionExpiration: Duration.days(1),
          abortIncompleteMultipartUploadAfter: Duration.days(1),
        },
      ],
    });
    const logBucketResource = this.logBucket.node.defaultChild as s3.CfnBucket;
    acknowledge(
      logBucketResource,
      'AwsSolutions-S1',
      'This bucket is the destination of CloudFront access logs; logging its own access to itself would loop.',
    );
    for (const pack of ['HIPAA.Security', 'NIST.800.53.R5', 'PCI.DSS.321']) {
      acknowledge(
        logBucketResource,
        `${pack}-S3BucketLoggingEnabled`,
        'This bucket is the destination of CloudFront access logs; logging its own access to itself would loop.',
      );
      acknowledge(
        logBucketResource,
        `${pack}-S3BucketReplicationEnabled`,
        'Edge access logs are diagnostic records with a fixed lifetime; a second copy would double the client-IP ' +
          'data held without adding recoverability anyone depends on.',
      );
    }

    this.responseHeadersPolicy = new cloudfront.ResponseHeadersPolicy(this, 'SecurityHeaders', {
      comment: 'Bulwark API security headers',
      securityHeadersBehavior: {
        strictTransportSecurity: {
          accessControlMaxAge: Duration.seconds(HSTS_MAX_AGE_SECONDS),
          includeSubdomains: true,
          preload: true,
          override: true,
        },
        contentTypeOptions: { override: true },
        frameOptions: { frameOption: cloudfront.HeadersFrameOption.DENY, override: true },
        referrerPolicy: { referrerPolicy: cloudfront.HeadersReferrerPolicy.NO_REFERRER, override: true },
        contentSecurityPolicy: { contentSecurityPolicy: props.contentSecurityPolicy, override: true },
      },
      customHeadersBehavior: {
        customHeaders: [{ header: 'Cache-Control', value: headers['Cache-Control'] ?? 'no-store', override: true }],
      },
      // Clients must not learn which origin served them.
      removeHeaders: ['Server'],
    });

    const origin = new origins.HttpOrigin(props.originDomainName, {
      protocolPolicy: cloudfront.OriginProtocolPolicy.HTTPS_ONLY,
      originSslProtocols: [cloudfront.OriginSslPolicy.TLS_V1_2],
      customHeaders: { [props.originSecretHeader]: props.originSecret.secretValue.unsafeUnwrap() },
    });

    this.distribution = new cloudfront.Distribution(this, 'Distribution', {
      comment: `Bulwark API ${props.domainName}`,
      domainNames: [props.domainName],
      certificate: props.certificate,
      minimumProtocolVersion: cloudfront.SecurityPolicyProtocol.TLS_V1_2_2021,
      sslSupportMethod: cloudfront.SSLMethod.SNI,
      httpVersion: cloudfront.HttpVersion.HTTP2_AND_3,
      webAclId: props.webAclArn,
      enableLogging: true,
      logBucket: this.logBucket,
      logIncludesCookies: false,
      defaultBehavior: {
        origin,
        viewerProtocolPolicy: cloudfront.ViewerProtocolPolicy.REDIRECT_TO_HTTPS,
        allowedMethods: cloudfront.AllowedMethods.ALLOW_ALL,
        cachePolicy: cloudfront.CachePolicy.CACHING_DISABLED,
        // Forwards Host so API Gateway routes to the custom domain (same name as the distribution) and
        // CloudFront validates the origin certificate against it.
        originRequestPolicy: cloudfront.OriginRequestPolicy.ALL_VIEWER,
        responseHeadersPolicy: this.responseHeadersPolicy,
        compress: true,
      },
    });
    acknowledge(
      this.distribution,
      'AwsSolutions-CFR1',
      'The API serves dealerships wherever they operate; access is restricted by tenant authentication and the ' +
        'web ACL (IP reputation, anonymous IPs, rate limit), not by viewer country.',
    );
    // CloudFront is global by nature; it is only offered where the residency zone contains us-east-1.
    allowOutsideResidency(
      this.distribution,
      'Global CloudFront entry, offered only for zones containing us-east-1: caches nothing (CachingDisabled) and ' +
        'writes its access logs to a bucket in the deployment region.',
    );
    allowOutsideResidency(
      this.responseHeadersPolicy,
      'Response headers policy: static header configuration (HSTS, CSP, ...), holds no customer data or logs.',
    );
  }
}
