import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { Construct } from 'constructs';
import { acknowledge } from '../compliance/acknowledge';
import { LockedBucket, REPLICATION_RULES } from './locked-bucket';
import { customerKey } from '../observability/keys';

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
  public readonly key: kms.IKey;
  public readonly accessLogsBucket: s3.IBucket;

  constructor(scope: Construct, id: string, props: AuditArchiveProps) {
    super(scope, id);
    if (props.defaultRetentionMonths < 12) {
      throw new Error(`AuditArchive: default retention ${props.defaultRetentionMonths} months is below 12`);
    }

    // S3 server access logs can only be delivered with SSE-S3, hence not the KMS key here.
    const logs = new s3.Bucket(this, 'AccessLogs', {
      encryption: s3.BucketEncryption.S3_MANAGED,
      versioned: true,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
      enforceSSL: true,
      minimumTLSVersion: 1.2,
      lifecycleRules: [
        {
          id: 'colder-storage',
          transitions: [
            { storageClass: s3.StorageClass.GLACIER_INSTANT_RETRIEVAL, transitionAfter: Duration.days(90) },
          ],
        },
      ],
      removalPolicy: RemovalPolicy.RETAIN,
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

    for (const rule of REPLICATION_RULES) {
      acknowledge(
        logs,
        rule,
        'Server access logs of the audit buckets are operational evidence kept in-region; the audit records ' +
          'themselves live in the Object Locked buckets and CloudTrail.',
      );
    }

    const key = customerKey(this, 'Key', 'Encrypts the audit archive (dedicated key)');
    const archive = new LockedBucket(this, 'Archive', {
      encryptionKey: key,
      retentionMonths: props.defaultRetentionMonths,
      accessLogsBucket: logs,
      accessLogsPrefix: 'audit-archive/',
    });

    this.bucket = archive.bucket;
    this.key = key;
    this.accessLogsBucket = logs;
  }
}
