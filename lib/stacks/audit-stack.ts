import { Stack, type StackProps } from 'aws-cdk-lib';
import type * as iam from 'aws-cdk-lib/aws-iam';
import type * as kms from 'aws-cdk-lib/aws-kms';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import type * as sns from 'aws-cdk-lib/aws-sns';
import type { Construct } from 'constructs';
import { ArchiveShipper } from '../audit/archive-shipper';
import type { DatabaseAccess } from '../data/database-access';
import { AuditArchive } from '../audit/audit-archive';
import { AuditReplication, auditReplicaTargets } from '../audit/audit-replicas';
import { AuditTrail } from '../audit/audit-trail';
import { TrailAlarms } from '../audit/trail-alarms';
import type { LockedBucket } from '../audit/locked-bucket';
import { longestAuditRetentionMonths, shortestAuditRetentionMonths, type DeploymentConfig } from '../config';
import { denyKeyLossExceptBreakGlass } from '../observability/keys';

export interface AuditStackProps extends StackProps {
  readonly deployment: DeploymentConfig;
  /** The deployment's alarm channel (OperationsStack). */
  readonly alarmTopic: sns.ITopic;
  /**
   * The shipper's database connection. The shipper (function, schedule, alarms) is added once the
   * data tier provides it; until then records stay in PostgreSQL, append-only and hash-chained.
   * @default - no shipper
   */
  readonly shipperDatabase?: DatabaseAccess;
  /**
   * Other capabilities' buckets whose object-level events the trail records too (the tenant export
   * bucket). The audit buckets' are always recorded.
   * @default - none
   */
  readonly dataEventBuckets?: readonly s3.IBucket[];
  /**
   * Roles that change tenant keys as their job (provisioner, lifecycle): the platform-key alarm
   * ignores their successful calls. @default - none
   */
  readonly tenantKeyOperators?: readonly iam.IRole[];
}

/**
 * Immutable audit trail: the Object Lock archive, the account's multi-region CloudTrail homed in this
 * region, and the alarms on what the trail records.
 */
export class AuditStack extends Stack {
  public readonly archiveBucket: s3.IBucket;
  public readonly archiveKey: kms.IKey;
  /** The archive shipper, when the data tier provides its database. */
  public readonly shipper?: ArchiveShipper;
  public readonly trailAlarms: TrailAlarms;

  constructor(scope: Construct, id: string, props: AuditStackProps) {
    super(scope, id, props);
    // The bucket default is the shortest plan promise; longer plans get per-object retention.
    const defaultRetentionMonths = shortestAuditRetentionMonths(props.deployment.auditRetentionMonths);
    const archive = new AuditArchive(this, 'Archive', { defaultRetentionMonths });
    const trail = new AuditTrail(this, 'CloudTrail', {
      dataEventBuckets: [archive.bucket, ...(props.dataEventBuckets ?? [])],
      accessLogsBucket: archive.accessLogsBucket,
      retentionMonths: defaultRetentionMonths,
    });
    this.trailAlarms = new TrailAlarms(this, 'TrailAlarms', {
      logGroup: trail.logGroup,
      alarmTopic: props.alarmTopic,
      deployment: props.deployment.name,
      auditBuckets: [archive.bucket, trail.bucket, archive.accessLogsBucket],
      tenantKeyOperators: props.tenantKeyOperators,
    });

    // Recovery (issue 15): both audit buckets expire after the longest plan retention (plus a
    // margin), replicate into Object Lock buckets of the backup region, and their keys cannot be
    // deleted or disabled by anyone but break-glass.
    const { deployment } = props;
    const trailBucket = trail.node.findChild('Logs') as LockedBucket;
    const longest = longestAuditRetentionMonths(deployment.auditRetentionMonths);
    archive.locked.expireAfterLongestRetention(longest);
    trailBucket.expireAfterLongestRetention(longest);
    denyKeyLossExceptBreakGlass(trail.key);
    const targets = auditReplicaTargets(deployment.name, deployment.account, deployment.backupRegion);
    new AuditReplication(this, 'Replication', {
      targets,
      sources: [
        { bucket: archive.locked, key: archive.key, replicaBucketName: targets.archiveBucketName },
        { bucket: trailBucket, key: trail.key, replicaBucketName: targets.trailBucketName },
      ],
    });
    if (props.shipperDatabase) {
      this.shipper = new ArchiveShipper(this, 'Shipper', {
        bucket: archive.bucket,
        key: archive.key,
        retentionMonths: props.deployment.auditRetentionMonths,
        database: props.shipperDatabase,
        alarmTopic: props.alarmTopic,
        deployment: props.deployment.name,
      });
    }
    this.archiveBucket = archive.bucket;
    this.archiveKey = archive.key;
  }
}
