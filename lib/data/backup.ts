import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import * as backup from 'aws-cdk-lib/aws-backup';
import * as events from 'aws-cdk-lib/aws-events';
import type * as kms from 'aws-cdk-lib/aws-kms';
import type * as rds from 'aws-cdk-lib/aws-rds';
import { Construct } from 'constructs';
import { acknowledge } from '../compliance/acknowledge';

/** Daily backups start at 02:00 UTC, the same hour as the RDS automated backup window. */
export const BACKUP_SCHEDULE = events.Schedule.cron({ minute: '0', hour: '2' });
export const BACKUP_RETENTION = Duration.days(30);

export interface CopyVaultProps {
  /**
   * Vault name, unique per account and region. Explicit (not generated) so that the primary
   * region's backup plan can name the vault's ARN at synth without cross-region exports.
   */
  readonly vaultName: string;
  /** Key in the backup region; never the primary region's key. */
  readonly key: kms.IKey;
  /** Recovery points cannot be deleted before this. @default 30 days */
  readonly minRetention?: Duration;
  /**
   * Grace period before the lock becomes immutable (compliance mode). At least 3 days.
   * @default 3 days
   */
  readonly lockChangeableFor?: Duration;
}

/**
 * The vault in the backup region that receives a copy of every recovery point. Vault Lock in
 * compliance mode (after the grace period) means nobody, including the account root, can delete a
 * copy before `minRetention`.
 */
export class CopyVault extends Construct {
  public readonly vault: backup.IBackupVault;

  constructor(scope: Construct, id: string, props: CopyVaultProps) {
    super(scope, id);
    this.vault = new backup.BackupVault(this, 'Vault', {
      backupVaultName: props.vaultName,
      encryptionKey: props.key,
      removalPolicy: RemovalPolicy.RETAIN,
      blockRecoveryPointDeletion: true,
      lockConfiguration: {
        minRetention: props.minRetention ?? BACKUP_RETENTION,
        changeableFor: props.lockChangeableFor ?? Duration.days(3),
      },
    });
  }
}

export interface DatabaseBackupProps {
  readonly database: rds.IDatabaseInstance;
  /** Key of the primary-region vault. */
  readonly key: kms.IKey;
  /** Vault in the backup region (same residency zone) that receives a copy of every recovery point. */
  readonly copyVault: backup.IBackupVault;
  /** @default 30 days */
  readonly retention?: Duration;
}

/**
 * AWS Backup for the database: a daily snapshot at 02:00 UTC plus continuous backup (point-in-time
 * recovery to any second in the retention window, RPO ~5 minutes), both kept 30 days, each
 * recovery point copied to the backup region's locked vault.
 */
export class DatabaseBackup extends Construct {
  public readonly vault: backup.BackupVault;
  public readonly plan: backup.BackupPlan;

  constructor(scope: Construct, id: string, props: DatabaseBackupProps) {
    super(scope, id);
    const retention = props.retention ?? BACKUP_RETENTION;

    const vault = new backup.BackupVault(this, 'Vault', {
      encryptionKey: props.key,
      removalPolicy: RemovalPolicy.RETAIN,
      blockRecoveryPointDeletion: true,
    });
    const plan = new backup.BackupPlan(this, 'Plan', { backupVault: vault });
    plan.addRule(
      new backup.BackupPlanRule({
        ruleName: 'DailyWithPitr',
        scheduleExpression: BACKUP_SCHEDULE,
        startWindow: Duration.hours(1),
        completionWindow: Duration.hours(8),
        enableContinuousBackup: true,
        deleteAfter: retention,
        copyActions: [{ destinationBackupVault: props.copyVault, deleteAfter: retention }],
      }),
    );
    const selection = plan.addSelection('Database', {
      resources: [backup.BackupResource.fromRdsDatabaseInstance(props.database)],
    });
    const role = selection.node.tryFindChild('Role');
    if (role) {
      // The selection role carries only the backup policy; restores use their own role.
      const policy = 'AWSBackupServiceRolePolicyForBackup';
      acknowledge(
        role,
        `AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/${policy}]`,
        `AWS Backup assumes this role for the database selection only; ${policy} is the AWS-maintained policy for that job type and tracks new RDS APIs.`,
      );
    }

    this.vault = vault;
    this.plan = plan;
  }
}
