import { ArnFormat, Stack } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import { Construct } from 'constructs';
import { acknowledge } from '../compliance/acknowledge';
import { ServiceRole } from '../data/roles';
import { customerKey, denyKeyLossExceptBreakGlass } from '../observability/keys';
import { accessLogsBucket } from './audit-archive';
import { LockedBucket } from './locked-bucket';

/**
 * Where the audit buckets replicate to, by name: the replicas live in the backup region, and a
 * stack in the primary region cannot reference them (no cross-region references), so both sides
 * derive the same literal names from the deployment.
 */
export interface AuditReplicaTargets {
  readonly region: string;
  readonly account: string;
  readonly archiveBucketName: string;
  readonly trailBucketName: string;
  /** Alias of the replicas' key; replication names the key by its alias ARN. */
  readonly keyAlias: string;
}

/** The replica names of a deployment (bucket names are global: the account makes them unique). */
export function auditReplicaTargets(deployment: string, account: string, backupRegion: string): AuditReplicaTargets {
  return {
    region: backupRegion,
    account,
    archiveBucketName: `bulwark-${deployment}-${account}-audit-archive-replica`,
    trailBucketName: `bulwark-${deployment}-${account}-cloudtrail-replica`,
    keyAlias: `alias/bulwark-${deployment}-audit-replicas`,
  };
}

const bucketArn = (name: string): string => `arn:aws:s3:::${name}`;
const keyAliasArn = (t: AuditReplicaTargets): string => `arn:aws:kms:${t.region}:${t.account}:${t.keyAlias}`;

export interface AuditReplicasProps {
  readonly targets: AuditReplicaTargets;
  /** Default COMPLIANCE retention (the shortest plan); replicated objects keep their own. */
  readonly retentionMonths: number;
  /** The longest plan retention: replicas expire after it (plus the margin) like their sources. */
  readonly longestRetentionMonths: number;
}

/**
 * The backup-region copies of the audit archive and the CloudTrail bucket: Object Lock (COMPLIANCE)
 * buckets like their sources, under a key that exists only in the backup region, which nobody but
 * the break-glass role may delete or disable. Losing the primary region or one of its keys loses no
 * audit record.
 */
export class AuditReplicas extends Construct {
  public readonly key: kms.IKey;
  public readonly archive: s3.IBucket;
  public readonly trail: s3.IBucket;

  constructor(scope: Construct, id: string, props: AuditReplicasProps) {
    super(scope, id);
    const { targets } = props;
    if (Stack.of(this).region !== targets.region) {
      throw new Error(`AuditReplicas: belongs in ${targets.region}, not ${Stack.of(this).region}`);
    }
    const key = customerKey(this, 'Key', 'Encrypts the backup-region replicas of the audit archive and CloudTrail');
    new kms.Alias(this, 'Alias', { aliasName: targets.keyAlias, targetKey: key });
    denyKeyLossExceptBreakGlass(key);

    const logs = accessLogsBucket(
      this,
      'AccessLogs',
      'Server access logs of the replica buckets are operational evidence kept in the backup region; the ' +
        'records themselves are the replicas of the primary region audit buckets.',
    );
    const replica = (name: string, bucketName: string, of: string, prefix: string): LockedBucket => {
      const locked = new LockedBucket(this, name, {
        encryptionKey: key,
        retentionMonths: props.retentionMonths,
        accessLogsBucket: logs,
        accessLogsPrefix: prefix,
        bucketName,
        replicaOf: of,
      });
      locked.expireAfterLongestRetention(props.longestRetentionMonths);
      return locked;
    };
    this.key = key;
    this.archive = replica('Archive', targets.archiveBucketName, 'the audit archive', 'audit-archive-replica/').bucket;
    this.trail = replica('CloudTrail', targets.trailBucketName, 'the CloudTrail bucket', 'cloudtrail-replica/').bucket;
  }
}

/** One source of the replication: a locked bucket and the key its objects are encrypted under. */
export interface ReplicationSource {
  readonly bucket: LockedBucket;
  readonly key: kms.IKey;
  /** Name of the replica bucket in the backup region. */
  readonly replicaBucketName: string;
}

export interface AuditReplicationProps {
  readonly sources: readonly ReplicationSource[];
  readonly targets: AuditReplicaTargets;
}

/**
 * The role S3 assumes to replicate the audit buckets, and the replication rules on them. The role
 * may read object versions (with retention and legal hold) of the sources only, decrypt them only
 * through S3 for those buckets, write replicas (never delete) into the named replica buckets, and
 * encrypt them only through S3 in the backup region under the key with the replicas' alias.
 */
export class AuditReplication extends Construct {
  public readonly role: iam.IRole;

  constructor(scope: Construct, id: string, props: AuditReplicationProps) {
    super(scope, id);
    const stack = Stack.of(this);
    const { targets } = props;
    const contextFor = (arn: string) => ({ 'kms:EncryptionContext:aws:s3:arn': [arn, `${arn}/*`] });
    const replicaKeys = stack.formatArn({
      service: 'kms',
      region: targets.region,
      resource: 'key',
      resourceName: '*',
      arnFormat: ArnFormat.SLASH_RESOURCE_NAME,
    });

    const statements: iam.PolicyStatement[] = [];
    for (const [i, source] of props.sources.entries()) {
      const bucket = source.bucket.bucket;
      const replica = bucketArn(source.replicaBucketName);
      statements.push(
        new iam.PolicyStatement({
          sid: `ReadReplicationConfiguration${i}`,
          actions: ['s3:GetReplicationConfiguration', 's3:ListBucket'],
          resources: [bucket.bucketArn],
        }),
        new iam.PolicyStatement({
          sid: `ReadSourceVersions${i}`,
          actions: [
            's3:GetObjectVersionForReplication',
            's3:GetObjectVersionAcl',
            's3:GetObjectVersionTagging',
            's3:GetObjectRetention',
            's3:GetObjectLegalHold',
          ],
          resources: [bucket.arnForObjects('*')],
        }),
        new iam.PolicyStatement({
          sid: `WriteReplicas${i}`,
          actions: ['s3:ReplicateObject', 's3:ReplicateTags'],
          resources: [`${replica}/*`],
        }),
        new iam.PolicyStatement({
          sid: `DecryptSource${i}`,
          actions: ['kms:Decrypt'],
          resources: [source.key.keyArn],
          conditions: {
            StringEquals: { 'kms:ViaService': `s3.${stack.region}.amazonaws.com` },
            StringLike: contextFor(bucket.bucketArn),
          },
        }),
        new iam.PolicyStatement({
          sid: `EncryptReplica${i}`,
          actions: ['kms:Encrypt', 'kms:GenerateDataKey'],
          resources: [replicaKeys],
          conditions: {
            StringEquals: { 'kms:ViaService': `s3.${targets.region}.amazonaws.com` },
            StringLike: contextFor(replica),
            'ForAnyValue:StringEquals': { 'kms:ResourceAliases': targets.keyAlias },
          },
        }),
      );
    }
    const role = new ServiceRole(this, 'Role', {
      assumedBy: new iam.ServicePrincipal('s3.amazonaws.com').withConditions({
        StringEquals: { 'aws:SourceAccount': stack.account },
      }),
      description: 'S3 replication of the audit archive and CloudTrail buckets into the backup region',
      statements,
    });
    for (const source of props.sources) {
      source.bucket.replicateTo({
        role: role.role,
        destinationBucketArn: bucketArn(source.replicaBucketName),
        destinationKeyArn: keyAliasArn(targets),
      });
      acknowledge(
        role.policy,
        `AwsSolutions-IAM5[Resource::<${stack.getLogicalId(source.bucket.bucket.node.defaultChild as s3.CfnBucket)}.Arn>/*]`,
        'Replication reads every object version of this source bucket (keys are only known when written); read-only, this bucket only.',
      );
      acknowledge(
        role.policy,
        `AwsSolutions-IAM5[Resource::${bucketArn(source.replicaBucketName)}/*]`,
        'Replication writes every new object version into its replica bucket (keys are only known when written); no deletions.',
      );
    }
    acknowledge(
      role.policy,
      `AwsSolutions-IAM5[Resource::${replicaKeys}]`,
      "The replicas' key lives in the backup region and cannot be referenced from here; kms:ResourceAliases limits the grant to the key carrying the replicas' alias, through S3 only.",
    );
    acknowledge(
      role.policy,
      'Bulwark-TenantKeyEncryptionContext',
      "The key/* grant is in the backup region, where no tenant key is ever created, and only for the key carrying the replicas' alias (kms:ResourceAliases), through S3 only: it cannot reach a tenant key.",
    );
    this.role = role.role;
  }
}
