import { Duration, RemovalPolicy, Tags } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as kms from 'aws-cdk-lib/aws-kms';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { Construct } from 'constructs';
import { acknowledge } from '../compliance/acknowledge';
import { AUDIT_BUCKET_TAG, AUDIT_BUCKET_TAG_VALUE } from '../compliance/rules/ObjectLockCompliance';

/** Calendar months as days, assuming every year is a leap year, so the days never fall short. */
export function retentionDays(months: number): number {
  return Math.ceil((months * 366) / 12);
}

export const REPLICATION_RULES = [
  'HIPAA.Security-S3BucketReplicationEnabled',
  'NIST.800.53.R5-S3BucketReplicationEnabled',
  'PCI.DSS.321-S3BucketReplicationEnabled',
] as const;

export interface LockedBucketProps {
  /** Dedicated key for SSE-KMS (bucket keys on). */
  readonly encryptionKey: kms.IKey;
  /** Default COMPLIANCE retention in months; objects may carry a longer retention of their own. */
  readonly retentionMonths: number;
  /** Receives the bucket's server access logs; must be a different bucket. */
  readonly accessLogsBucket: s3.IBucket;
  /** Prefix for this bucket's access logs in `accessLogsBucket`. */
  readonly accessLogsPrefix: string;
  /**
   * Transitions to colder storage classes. Object Lock keeps protecting objects in every class.
   * @default Glacier Instant Retrieval after 90 days, Deep Archive after 365 days
   */
  readonly transitions?: readonly s3.Transition[];
}

/**
 * An S3 bucket for records nobody may alter or delete: Object Lock in COMPLIANCE mode (not even the
 * root user can shorten it), versioning, SSE-KMS with a dedicated key and bucket keys, all public
 * access blocked, TLS 1.2+ only, a bucket policy that denies every deletion to every principal, server
 * access logging, and lifecycle transitions to colder storage (never expiration).
 */
export class LockedBucket extends Construct {
  public readonly bucket: s3.Bucket;

  constructor(scope: Construct, id: string, props: LockedBucketProps) {
    super(scope, id);
    const transitions = props.transitions ?? [
      { storageClass: s3.StorageClass.GLACIER_INSTANT_RETRIEVAL, transitionAfter: Duration.days(90) },
      { storageClass: s3.StorageClass.DEEP_ARCHIVE, transitionAfter: Duration.days(365) },
    ];
    this.bucket = new s3.Bucket(this, 'Bucket', {
      objectLockEnabled: true,
      objectLockDefaultRetention: s3.ObjectLockRetention.compliance(
        Duration.days(retentionDays(props.retentionMonths)),
      ),
      versioned: true,
      encryption: s3.BucketEncryption.KMS,
      encryptionKey: props.encryptionKey,
      bucketKeyEnabled: true,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
      enforceSSL: true,
      minimumTLSVersion: 1.2,
      serverAccessLogsBucket: props.accessLogsBucket,
      serverAccessLogsPrefix: props.accessLogsPrefix,
      lifecycleRules: [
        {
          id: 'colder-storage',
          transitions: [...transitions],
          noncurrentVersionTransitions: transitions.map((t) => ({
            storageClass: t.storageClass,
            transitionAfter: t.transitionAfter ?? Duration.days(90),
          })),
          abortIncompleteMultipartUploadAfter: Duration.days(7),
        },
      ],
      removalPolicy: RemovalPolicy.RETAIN,
    });
    Tags.of(this.bucket).add(AUDIT_BUCKET_TAG, AUDIT_BUCKET_TAG_VALUE);

    for (const rule of REPLICATION_RULES) {
      acknowledge(
        this.bucket,
        rule,
        'Cross-region replication into the backup region is not built yet (docs/audit.md, open items); ' +
          'Object Lock COMPLIANCE with versioning already makes every object undeletable until its retention ends.',
      );
    }

    // Object Lock already refuses deleting locked versions; this also refuses delete markers (which
    // would hide records) and deleting the bucket, for every principal including root.
    this.bucket.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: 'DenyDeletion',
        effect: iam.Effect.DENY,
        principals: [new iam.AnyPrincipal()],
        actions: ['s3:DeleteObject', 's3:DeleteObjectVersion', 's3:DeleteBucket', 's3:BypassGovernanceRetention'],
        resources: [this.bucket.bucketArn, this.bucket.arnForObjects('*')],
      }),
    );
  }
}
