import { ArnFormat, Stack, type StackProps } from 'aws-cdk-lib';
import * as backup from 'aws-cdk-lib/aws-backup';
import type * as kms from 'aws-cdk-lib/aws-kms';
import type { Construct } from 'constructs';
import { AuditReplicas, auditReplicaTargets } from '../audit/audit-replicas';
import { longestAuditRetentionMonths, shortestAuditRetentionMonths, type DeploymentConfig } from '../config';
import { CopyVault } from '../data/backup';
import { customerKey } from '../observability/keys';

export interface BackupVaultStackProps extends StackProps {
  readonly deployment: DeploymentConfig;
}

/**
 * Lives in the deployment's backup region (same residency zone): the locked vault that receives a
 * copy of every database recovery point, encrypted with a key that exists only in that region, and
 * the Object Lock replicas of the audit archive and CloudTrail buckets under a key of that region.
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

  constructor(scope: Construct, id: string, props: BackupVaultStackProps) {
    super(scope, id, props);
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
  }
}
