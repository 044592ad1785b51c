import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import * as backup from 'aws-cdk-lib/aws-backup';
import * as actions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as events from 'aws-cdk-lib/aws-events';
import type * as kms from 'aws-cdk-lib/aws-kms';
import type * as rds from 'aws-cdk-lib/aws-rds';
import type * as sns from 'aws-cdk-lib/aws-sns';
import { Construct } from 'constructs';
import { acknowledge } from '../compliance/acknowledge';
import { AlarmTopicTarget } from '../observability/alarm-topic';
import { deadLetterQueue, undeliveredAlarm } from '../observability/dead-letter-queue';
import { allowEventsToUseKey } from '../observability/keys';

/** Daily backups start at 02:00 UTC, the same hour as the RDS automated backup window. */
export const BACKUP_SCHEDULE = events.Schedule.cron({ minute: '0', hour: '2' });
export const BACKUP_RETENTION = Duration.days(30);
/**
 * The longest retention a locked vault accepts: AWS Backup keeps continuous (PITR) recovery points
 * at most 35 days, and nothing of Bulwark's plan asks for more. A job asking for longer fails (and alarms).
 */
export const BACKUP_MAX_RETENTION = Duration.days(35);
/** Grace period before a vault lock becomes immutable (compliance mode); AWS's minimum is 3 days. */
export const VAULT_LOCK_GRACE = Duration.days(3);

/** Job states of AWS Backup that mean a recovery point (or its copy) is missing. */
export const FAILED_JOB_STATES = ['FAILED', 'ABORTED', 'EXPIRED', 'PARTIAL'] as const;

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
  /** Copies asking for a longer retention are refused. @default 35 days (BACKUP_MAX_RETENTION) */
  readonly maxRetention?: Duration;
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
        maxRetention: props.maxRetention ?? BACKUP_MAX_RETENTION,
        changeableFor: props.lockChangeableFor ?? VAULT_LOCK_GRACE,
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
  /** Receives failed, aborted, expired and partial backup and copy jobs. */
  readonly alarmTopic: sns.ITopic;
  /** Encrypts the dead-letter queue of the job-failure rule. */
  readonly deadLetterKey: kms.IKey;
  /** @default 30 days */
  readonly retention?: Duration;
}

/**
 * AWS Backup for the database: a daily snapshot at 02:00 UTC plus continuous backup (point-in-time
 * recovery to any second in the retention window, RPO ~5 minutes), both kept 30 days, each
 * recovery point copied to the backup region's locked vault. The primary vault is locked too
 * (compliance mode after the grace period), and every failed backup or copy job reaches the alarm
 * topic through an EventBridge rule.
 */
export class DatabaseBackup extends Construct {
  public readonly vault: backup.BackupVault;
  public readonly plan: backup.BackupPlan;
  /** Backup and copy jobs that ended FAILED, ABORTED, EXPIRED or PARTIAL, to the alarm topic. */
  public readonly jobFailures: events.Rule;

  constructor(scope: Construct, id: string, props: DatabaseBackupProps) {
    super(scope, id);
    const retention = props.retention ?? BACKUP_RETENTION;

    if (retention.toDays() < BACKUP_RETENTION.toDays() || retention.toDays() > BACKUP_MAX_RETENTION.toDays()) {
      throw new Error(
        `DatabaseBackup: retention ${retention.toDays()} days is outside the vault lock (${BACKUP_RETENTION.toDays()}-${BACKUP_MAX_RETENTION.toDays()} days)`,
      );
    }

    // Locked like the copy vault: nobody, root included, deletes a recovery point before the
    // minimum once the grace period is over; the range admits the plan's snapshots and PITR.
    const vault = new backup.BackupVault(this, 'Vault', {
      encryptionKey: props.key,
      removalPolicy: RemovalPolicy.RETAIN,
      blockRecoveryPointDeletion: true,
      lockConfiguration: {
        minRetention: BACKUP_RETENTION,
        maxRetention: BACKUP_MAX_RETENTION,
        changeableFor: VAULT_LOCK_GRACE,
      },
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

    // Cross-region copy jobs run (and report) in the source region, so one rule here sees both.
    allowEventsToUseKey(props.deadLetterKey);
    const undelivered = deadLetterQueue(this, 'JobFailureDeadLetters', {
      encryptionKey: props.deadLetterKey,
      deadLetterOf: 'the backup job-failure rule (an alarm watches it)',
    });
    const jobFailures = new events.Rule(this, 'JobFailures', {
      description: 'AWS Backup: a backup or copy job failed, was aborted, expired or is partial',
      eventPattern: {
        source: ['aws.backup'],
        detailType: ['Backup Job State Change', 'Copy Job State Change'],
        detail: { state: [...FAILED_JOB_STATES] },
      },
      targets: [
        new AlarmTopicTarget(props.alarmTopic, {
          deadLetterQueue: undelivered,
          retryAttempts: 8,
          maxEventAge: Duration.hours(24),
        }),
      ],
    });
    const undeliveredJobFailure = undeliveredAlarm(
      this,
      'JobFailureUndeliveredAlarm',
      undelivered,
      'A failed AWS Backup job could not be reported to the alarm topic (see the dead-letter queue)',
    );
    undeliveredJobFailure.addAlarmAction(new actions.SnsAction(props.alarmTopic));
    undeliveredJobFailure.addOkAction(new actions.SnsAction(props.alarmTopic));

    this.vault = vault;
    this.plan = plan;
    this.jobFailures = jobFailures;
  }
}
