import { Aspects, Duration, Tags, type IAspect } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as kms from 'aws-cdk-lib/aws-kms';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { Construct, type IConstruct } from 'constructs';
import { acknowledge } from '../compliance/acknowledge';
import { AUDIT_BUCKET_TAG, AUDIT_BUCKET_TAG_VALUE } from '../compliance/rules/ObjectLockCompliance';
import { SECURE_BUCKET_DEFAULTS } from '../shared/bucket';

/** Calendar months as days, assuming every year is a leap year, so the days never fall short. */
export function retentionDays(months: number): number {
  return Math.ceil((months * 366) / 12);
}

/**
 * Margin past the longest retention before the expiration rule removes a record: covers objects
 * whose retention was set a little after they were written, and leaves time to notice a misconfiguration.
 */
export const EXPIRATION_MARGIN_DAYS = 30;

/** The age (days) at which records kept at most `longestRetentionMonths` expire. */
export function expirationDays(longestRetentionMonths: number): number {
  return retentionDays(longestRetentionMonths) + EXPIRATION_MARGIN_DAYS;
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
  /** Physical name, for a bucket another region's replication names. @default - generated */
  readonly bucketName?: string;
  /** This bucket is the replica of another bucket (named for the acknowledgement). @default - not a replica */
  readonly replicaOf?: string;
}

/** Where a locked bucket replicates to. */
export interface LockedBucketReplication {
  /** The role S3 assumes to replicate (s3.amazonaws.com). */
  readonly role: iam.IRole;
  /** The replica bucket's ARN (another region: named, not referenced). */
  readonly destinationBucketArn: string;
  /** The replica's key, as its alias ARN in the replica's region (key ids are not known here). */
  readonly destinationKeyArn: string;
}

/**
 * An S3 bucket for records nobody may alter or delete: Object Lock in COMPLIANCE mode (not even the
 * root user can shorten it), versioning, SSE-KMS with a dedicated key and bucket keys, all public
 * access blocked, TLS 1.2+ only, a bucket policy that denies every deletion to every principal, server
 * access logging, and lifecycle transitions to colder storage (never expiration).
 */
export class LockedBucket extends Construct {
  public readonly bucket: s3.Bucket;
  private replicated = false;

  constructor(scope: Construct, id: string, props: LockedBucketProps) {
    super(scope, id);
    const transitions = props.transitions ?? [
      { storageClass: s3.StorageClass.GLACIER_INSTANT_RETRIEVAL, transitionAfter: Duration.days(90) },
      { storageClass: s3.StorageClass.DEEP_ARCHIVE, transitionAfter: Duration.days(365) },
    ];
    this.bucket = new s3.Bucket(this, 'Bucket', {
      ...SECURE_BUCKET_DEFAULTS,
      objectLockEnabled: true,
      objectLockDefaultRetention: s3.ObjectLockRetention.compliance(
        Duration.days(retentionDays(props.retentionMonths)),
      ),
      encryption: s3.BucketEncryption.KMS,
      encryptionKey: props.encryptionKey,
      bucketKeyEnabled: true,
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
      bucketName: props.bucketName,
    });
    Tags.of(this.bucket).add(AUDIT_BUCKET_TAG, AUDIT_BUCKET_TAG_VALUE);

    if (props.replicaOf) {
      for (const rule of REPLICATION_RULES) {
        acknowledge(
          this.bucket,
          rule,
          `This bucket is the backup-region replica of ${props.replicaOf}; replicating the replica back would only loop.`,
        );
      }
    } else {
      // Decided at synth: a bucket given replicateTo() needs no acknowledgement (and must not have one).
      const bucket = this.bucket;
      const replicated = (): boolean => this.replicated;
      const aspect: IAspect = {
        visit(node: IConstruct) {
          if (node !== bucket || replicated()) return;
          for (const rule of REPLICATION_RULES) {
            acknowledge(
              bucket,
              rule,
              'This locked bucket is not replicated (replicateTo was not called); Object Lock COMPLIANCE with ' +
                'versioning makes every object undeletable until its retention ends.',
            );
          }
        },
      };
      Aspects.of(this.bucket).add(aspect);
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

  /**
   * Expires records after the longest retention any plan promises plus a margin, so personal data
   * is not kept forever. Nothing locked expires early: S3 lifecycle never removes a version under
   * Object Lock retention, and the age used here is never shorter than any plan's retention.
   */
  public expireAfterLongestRetention(longestRetentionMonths: number): void {
    const days = expirationDays(longestRetentionMonths);
    this.bucket.addLifecycleRule({
      id: 'expire-after-longest-retention',
      expiration: Duration.days(days),
      noncurrentVersionExpiration: Duration.days(1),
    });
    this.bucket.addLifecycleRule({ id: 'remove-expired-delete-markers', expiredObjectDeleteMarker: true });
  }

  /**
   * Replicates every new object version (with its Object Lock retention) into a locked bucket of
   * the backup region, re-encrypted there under that region's key. Deletions are not replicated.
   */
  public replicateTo(replication: LockedBucketReplication): void {
    this.replicated = true;
    const cfn = this.bucket.node.defaultChild as s3.CfnBucket;
    cfn.replicationConfiguration = {
      role: replication.role.roleArn,
      rules: [
        {
          id: 'backup-region',
          status: 'Enabled',
          priority: 1,
          filter: { prefix: '' },
          deleteMarkerReplication: { status: 'Disabled' },
          sourceSelectionCriteria: { sseKmsEncryptedObjects: { status: 'Enabled' } },
          destination: {
            bucket: replication.destinationBucketArn,
            encryptionConfiguration: { replicaKmsKeyId: replication.destinationKeyArn },
          },
        },
      ],
    };
  }
}
