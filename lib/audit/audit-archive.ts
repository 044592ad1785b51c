import { Duration } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as kms from 'aws-cdk-lib/aws-kms';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { Construct } from 'constructs';
import { acknowledge } from '../compliance/acknowledge';
import { LockedBucket, REPLICATION_RULES } from './locked-bucket';
import { customerKey, denyKeyLossExceptBreakGlass } from '../observability/keys';
import { SECURE_BUCKET_DEFAULTS } from '../shared/bucket';

export interface AuditArchiveProps {
  /**
   * Default retention in months: the shortest plan promise (Pro). The shipper sets each object's
   * own retention from its organisation's plan, which may be longer.
   */
  readonly defaultRetentionMonths: number;
}

/**
 * The audit archive: an Object Lock (COMPLIANCE) bucket under a dedicated KMS key, and the separate
 * bucket that receives its (and the CloudTrail bucket's) server access logs.
 */
export class AuditArchive extends Construct {
  public readonly bucket: s3.IBucket;
  /** The archive as a locked bucket (expiration, replication). */
  public readonly locked: LockedBucket;
  public readonly key: kms.IKey;
  public readonly accessLogsBucket: s3.IBucket;

  constructor(scope: Construct, id: string, props: AuditArchiveProps) {
    super(scope, id);
    if (props.defaultRetentionMonths < 12) {
      throw new Error(`AuditArchive: default retention ${props.defaultRetentionMonths} months is below 12`);
    }

    const logs = accessLogsBucket(
      this,
      'AccessLogs',
      'Server access logs of the audit buckets are operational evidence kept in-region; the audit records ' +
        'themselves live in the Object Locked buckets and CloudTrail.',
    );

    const key = customerKey(this, 'Key', 'Encrypts the audit archive (dedicated key)');
    const archive = new LockedBucket(this, 'Archive', {
      encryptionKey: key,
      retentionMonths: props.defaultRetentionMonths,
      accessLogsBucket: logs,
      accessLogsPrefix: 'audit-archive/',
    });

    denyKeyLossExceptBreakGlass(key);

    this.locked = archive;
    this.bucket = archive.bucket;
    this.key = key;
    this.accessLogsBucket = logs;
  }
}

/**
 * The bucket that receives the audit buckets' server access logs: SSE-S3 (S3 delivers access logs
 * to nothing else), versioned, deletion denied to every principal, kept in its own region
 * (`notReplicated` says why, for the acknowledgement).
 */
export function accessLogsBucket(scope: Construct, id: string, notReplicated: string): s3.Bucket {
  // S3 server access logs can only be delivered with SSE-S3, hence not a KMS key here.
  const logs = new s3.Bucket(scope, id, {
    ...SECURE_BUCKET_DEFAULTS,
    encryption: s3.BucketEncryption.S3_MANAGED,
    lifecycleRules: [
      {
        id: 'colder-storage',
        transitions: [{ storageClass: s3.StorageClass.GLACIER_INSTANT_RETRIEVAL, transitionAfter: Duration.days(90) }],
      },
    ],
  });
  logs.addToResourcePolicy(
    new iam.PolicyStatement({
      sid: 'DenyDeletion',
      effect: iam.Effect.DENY,
      principals: [new iam.AnyPrincipal()],
      actions: ['s3:DeleteObject', 's3:DeleteObjectVersion', 's3:DeleteBucket'],
      resources: [logs.bucketArn, logs.arnForObjects('*')],
    }),
  );
  for (const rule of [
    'HIPAA.Security-S3DefaultEncryptionKMS',
    'NIST.800.53.R5-S3DefaultEncryptionKMS',
    'PCI.DSS.321-S3DefaultEncryptionKMS',
  ]) {
    acknowledge(logs, rule, 'S3 server access logging only delivers to buckets encrypted with SSE-S3, not SSE-KMS.');
  }
  for (const rule of REPLICATION_RULES) acknowledge(logs, rule, notReplicated);
  return logs;
}
