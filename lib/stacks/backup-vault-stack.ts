import { ArnFormat, Stack, type StackProps } from 'aws-cdk-lib';
import * as backup from 'aws-cdk-lib/aws-backup';
import type * as kms from 'aws-cdk-lib/aws-kms';
import type * as sns from 'aws-cdk-lib/aws-sns';
import type { Construct } from 'constructs';
import { AuditReplicas, auditReplicaTargets } from '../audit/audit-replicas';
import { longestAuditRetentionMonths, shortestAuditRetentionMonths, type DeploymentConfig } from '../config';
import { regionFacts } from '../config/regions';
import { CopyVault } from '../data/backup';
import { CopyRestoreDrill, IsolatedRestoreNetwork } from '../data/copy-restore-drill';
import { databaseInstanceIdentifier } from '../data/database';
import { AlarmTopic } from '../observability/alarm-topic';
import { customerKey } from '../observability/keys';

export interface BackupVaultStackProps extends StackProps {
  readonly deployment: DeploymentConfig;
}

/**
 * Lives in the deployment's backup region (same residency zone): the locked vault that receives a
 * copy of every database recovery point, encrypted with a key that exists only in that region, the
 * Object Lock replicas of the audit archive and CloudTrail buckets under a key of that region, and
 * the monthly drill that restores the newest copy here, with the alarm topic it reports to.
 */
export class BackupVaultStack extends Stack {
  /**
   * The copy vault, referenced by its deterministic ARN (literal region, account and name), so a
   * stack in the primary region can use it without cross-region exports or synth-time lookups.
   */
  public readonly vault: backup.IBackupVault;
  public readonly key: kms.IKey;
  /** Replicas of the audit archive and CloudTrail buckets. */
  public readonly auditReplicas: AuditReplicas;
  /**
   * The backup region's alarm topic, with the deployment's alarm contact subscribed: CloudWatch
   * alarms publish only to topics of their own region, and this one works without the primary region.
   */
  public readonly alarmTopic: sns.ITopic;
  /** The monthly restore drill from the copy vault. */
  public readonly restoreDrill: CopyRestoreDrill;

  private readonly zones: readonly string[];

  constructor(scope: Construct, id: string, props: BackupVaultStackProps) {
    super(scope, id, props);
    const zones = regionFacts(props.deployment.backupRegion)?.availabilityZones;
    if (!zones) throw new Error(`BackupVaultStack: no availability zones listed for ${props.deployment.backupRegion}`);
    this.zones = zones;
    const key = customerKey(this, 'Key', `Encrypts ${props.deployment.name} database backup copies`);
    const vaultName = `bulwark-${props.deployment.name}-copies`;
    new CopyVault(this, 'Copies', { key, vaultName });
    this.vault = backup.BackupVault.fromBackupVaultArn(
      this,
      'CopiesByArn',
      this.formatArn({
        service: 'backup',
        resource: 'backup-vault',
        resourceName: vaultName,
        arnFormat: ArnFormat.COLON_RESOURCE_NAME,
      }),
    );
    this.key = key;

    const { deployment } = props;
    this.auditReplicas = new AuditReplicas(this, 'AuditReplicas', {
      targets: auditReplicaTargets(deployment.name, deployment.account, deployment.backupRegion),
      retentionMonths: shortestAuditRetentionMonths(deployment.auditRetentionMonths),
      longestRetentionMonths: longestAuditRetentionMonths(deployment.auditRetentionMonths),
    });

    // The monthly drill runs here, not from the primary region: it proves recovery when that region
    // is gone, so nothing it needs at run time (restore, network, keys, alarms) may live there.
    const alarms = new AlarmTopic(this, 'Alarms', { email: deployment.alarms.email });
    const drillLogKey = customerKey(this, 'DrillLogKey', `Encrypts ${deployment.name} backup-region drill logs`);
    const network = new IsolatedRestoreNetwork(this, 'RestoreNetwork', {
      availabilityZones: this.zones,
      logKey: drillLogKey,
    });
    this.restoreDrill = new CopyRestoreDrill(this, 'RestoreDrill', {
      deployment: deployment.name,
      sourceInstanceId: databaseInstanceIdentifier(deployment.name),
      copyKey: key,
      network,
      logKey: drillLogKey,
      alarmTopic: alarms.topic,
      targetPrefix: `bulwark-${deployment.name}-copy-drill`,
    });
    this.alarmTopic = alarms.topic;
  }

  /** The backup region's listed zones (the default would be a context lookup, needing credentials). */
  public override get availabilityZones(): string[] {
    return [...this.zones];
  }
}
