/**
 * Restore drill: proves the database can be restored within the RTO, and measures how old the data
 * it restores is (the achieved RPO). Two drills share these steps, differing only in what they
 * restore from (`DrillConfig.restoreFrom`):
 *
 * - `point-in-time` (weekly, primary region): the source instance's latest restorable time (PITR);
 * - `backup-copy` (monthly, backup region): the newest AWS Backup copy of the source's snapshots,
 *   encrypted with the backup region's key, into an isolated network of that region.
 *
 * The drill is a sequence of steps (start → check … check → finish, or abort from anywhere) driven
 * by a Step Functions state machine, because a restore takes longer than a Lambda invocation may
 * run. Each step is pure apart from the injected RDS client, clock and output sinks, and carries
 * its state explicitly. `abort` is the catch-all: whatever failed, the temporary instance is deleted.
 */
import { DRILL_METRICS } from '../../contracts/restore-drill';
import { MetricUnit, type Log, type LogFields, type MetricsRecorder } from '../shared/observability';
import {
  DBInstanceNotFoundFault,
  DeleteDBInstanceCommand,
  DescribeDBInstancesCommand,
  DescribeDBSnapshotsCommand,
  RestoreDBInstanceFromDBSnapshotCommand,
  RestoreDBInstanceToPointInTimeCommand,
  type DBInstance,
  type DBSnapshot,
  type RDSClient,
} from '@aws-sdk/client-rds';

/** What a drill restores from. */
export type RestoreFrom =
  /** The source instance's latest restorable time (continuous backup), in the source's region. */
  | { readonly kind: 'point-in-time' }
  /**
   * The newest AWS Backup snapshot of the source in this region, i.e. the copy in the backup
   * region's vault. It must be encrypted with `copyKeyArn`, the key that lives in this region.
   */
  | { readonly kind: 'backup-copy'; readonly copyKeyArn: string };

export interface DrillConfig {
  /** Deployment name, the metric dimension. */
  readonly deployment: string;
  readonly sourceInstanceId: string;
  /** Every temporary instance's identifier starts with this; the drill deletes nothing else. */
  readonly targetPrefix: string;
  readonly subnetGroupName: string;
  readonly securityGroupId: string;
  readonly parameterGroupName: string;
  readonly restoreFrom: RestoreFrom;
  /** Recovery time objective, seconds. */
  readonly rtoSeconds: number;
  /** Give up (and delete) after this many seconds. Must be at least the RTO. */
  readonly timeoutSeconds: number;
}

export interface Clock {
  now(): Date;
}

/** State carried between steps (it travels through Step Functions as JSON). */
export interface DrillState {
  readonly targetInstanceId: string;
  /** ISO time the restore was requested. */
  readonly startedAt: string;
  /** ISO time of the data restored: the latest restorable time, or the copied snapshot's database time. */
  readonly restoreTime: string;
  /** The snapshot restored (ARN), for a `backup-copy` drill. */
  readonly recoveryPoint?: string;
}

export type DrillErrorCode =
  | 'SOURCE_NOT_FOUND'
  | 'NO_RESTORABLE_TIME'
  | 'NO_RECOVERY_POINT'
  | 'FOREIGN_KEY'
  | 'RESTORE_REFUSED'
  | 'RESTORE_FAILED'
  | 'TIMEOUT'
  | 'DELETE_FAILED'
  | 'UNSAFE_TARGET'
  | 'INVALID_STATE';

export class DrillError extends Error {
  constructor(
    readonly code: DrillErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'DrillError';
  }
}

export interface DrillOutcome {
  readonly succeeded: boolean;
  readonly targetInstanceId: string | null;
  /** Seconds from the restore request to the instance being available; null when it never was. */
  readonly restoreSeconds: number | null;
  /**
   * Seconds from the data restored (restoreTime) to the restore request: the RPO the drill
   * achieved. Null when nothing was chosen to restore.
   */
  readonly recoveryPointAgeSeconds: number | null;
  readonly withinRto: boolean;
  readonly errorCode: DrillErrorCode | null;
  /** Whether the temporary instance is known to be gone (or deleting). */
  readonly cleanedUp: boolean;
}

/** Where results go: a metric and an audit-worthy log line. */
export interface DrillReporter {
  metric(outcome: DrillOutcome, config: DrillConfig, at: Date): void;
  audit(event: string, detail: LogFields): void;
}

export interface DrillDeps {
  readonly rds: Pick<RDSClient, 'send'>;
  readonly clock: Clock;
  readonly reporter: DrillReporter;
  readonly config: DrillConfig;
}

/** RDS statuses from which a restoring instance will never become available. */
const TERMINAL_STATUSES = new Set([
  'failed',
  'incompatible-restore',
  'incompatible-parameters',
  'incompatible-network',
  'inaccessible-encryption-credentials',
  'inaccessible-encryption-credentials-recoverable',
  'storage-full',
  'deleting',
]);

/** A fresh, valid RDS identifier: `<prefix>-<yyyymmddhhmmss>` (at most 63 chars). */
export function targetIdFor(prefix: string, at: Date): string {
  const stamp = at.toISOString().replace(/[-:T]/g, '').slice(0, 14);
  const id = `${prefix}-${stamp}`;
  if (!/^[a-z][a-z0-9-]{0,62}$/.test(id) || id.includes('--') || id.length > 63) {
    throw new DrillError('UNSAFE_TARGET', `cannot derive a valid instance identifier from prefix ${prefix}`);
  }
  return id;
}

/** The drill only ever touches instances it created: identifier under its prefix and never the source. */
export function assertDrillTarget(config: DrillConfig, id: string): void {
  if (id === config.sourceInstanceId || !id.startsWith(`${config.targetPrefix}-`)) {
    throw new DrillError('UNSAFE_TARGET', `refusing to operate on ${id}: not a restore-drill instance`);
  }
}

function errorName(e: unknown): string {
  return e instanceof Error ? e.name : 'Unknown';
}

async function describe(deps: DrillDeps, id: string): Promise<DBInstance | null> {
  try {
    const out = await deps.rds.send(new DescribeDBInstancesCommand({ DBInstanceIdentifier: id }));
    return out.DBInstances?.[0] ?? null;
  } catch (e) {
    if (e instanceof DBInstanceNotFoundFault || errorName(e) === 'DBInstanceNotFoundFault') return null;
    throw e;
  }
}

/**
 * Deletes drill instances left behind by an earlier run whose cleanup ran out of retries, so a
 * leak lasts at most one drill interval. Returns the identifiers it deleted.
 */
export async function sweepLeftovers(deps: DrillDeps): Promise<string[]> {
  const leftovers: string[] = [];
  let marker: string | undefined;
  do {
    const page = await deps.rds.send(new DescribeDBInstancesCommand({ Marker: marker, MaxRecords: 100 }));
    for (const db of page.DBInstances ?? []) {
      const id = db.DBInstanceIdentifier;
      if (id && id.startsWith(`${deps.config.targetPrefix}-`) && db.DBInstanceStatus !== 'deleting') leftovers.push(id);
    }
    marker = page.Marker;
  } while (marker);
  for (const id of leftovers) {
    if (!(await deleteTarget(deps, id))) {
      throw new DrillError('DELETE_FAILED', `could not delete leftover drill instance ${id}`);
    }
    deps.reporter.audit('restore_drill.leftover_deleted', { deployment: deps.config.deployment, targetInstanceId: id });
  }
  return leftovers;
}

/** What a drill restores: the time of its data and, for a copy, the snapshot. */
interface RestorePoint {
  readonly restoreTime: Date;
  readonly recoveryPoint?: string;
}

const DRILL_TAGS = (config: DrillConfig) => [
  { Key: 'bulwark:restore-drill', Value: 'true' },
  { Key: 'bulwark:deployment', Value: config.deployment },
];

/** The source instance's latest restorable time. */
async function latestRestorableTime(deps: DrillDeps): Promise<RestorePoint> {
  const { config } = deps;
  const source = await describe(deps, config.sourceInstanceId);
  if (!source) throw new DrillError('SOURCE_NOT_FOUND', `source instance ${config.sourceInstanceId} not found`);
  if (!source.LatestRestorableTime) {
    throw new DrillError('NO_RESTORABLE_TIME', `source ${config.sourceInstanceId} has no restorable time`);
  }
  return { restoreTime: source.LatestRestorableTime };
}

/** When a snapshot's data was current: its database time, else when the original was taken. */
function snapshotTime(s: DBSnapshot): Date | undefined {
  return s.SnapshotDatabaseTime ?? s.OriginalSnapshotCreateTime ?? s.SnapshotCreateTime;
}

/**
 * The newest available AWS Backup snapshot of the source in this region (every page). In the backup
 * region these are the copies AWS Backup made into the copy vault. The newest must be encrypted with
 * the region's own copy key: a copy under any other key would not survive the primary region.
 */
export async function newestCopy(deps: DrillDeps, copyKeyArn: string): Promise<RestorePoint> {
  const { config } = deps;
  let newest: { snapshot: DBSnapshot; at: Date } | undefined;
  let marker: string | undefined;
  do {
    const page = await deps.rds.send(
      new DescribeDBSnapshotsCommand({
        DBInstanceIdentifier: config.sourceInstanceId,
        SnapshotType: 'awsbackup',
        Marker: marker,
        MaxRecords: 100,
      }),
    );
    for (const snapshot of page.DBSnapshots ?? []) {
      const at = snapshotTime(snapshot);
      if (snapshot.Status !== 'available' || !snapshot.DBSnapshotArn || !at) continue;
      if (!newest || at.getTime() > newest.at.getTime()) newest = { snapshot, at };
    }
    marker = page.Marker;
  } while (marker);
  if (!newest) {
    throw new DrillError('NO_RECOVERY_POINT', `no available backup copy of ${config.sourceInstanceId} in this region`);
  }
  if (newest.snapshot.KmsKeyId !== copyKeyArn) {
    throw new DrillError('FOREIGN_KEY', `the newest copy ${newest.snapshot.DBSnapshotArn} is not under the copy key`);
  }
  return { restoreTime: newest.at, recoveryPoint: newest.snapshot.DBSnapshotArn };
}

async function restore(deps: DrillDeps, point: RestorePoint, targetInstanceId: string): Promise<void> {
  const { config } = deps;
  // Both forms: private, single-AZ, no automated backups, deletable, behind the drill's security group.
  const common = {
    DBSubnetGroupName: config.subnetGroupName,
    VpcSecurityGroupIds: [config.securityGroupId],
    DBParameterGroupName: config.parameterGroupName,
    MultiAZ: false,
    PubliclyAccessible: false,
    DeletionProtection: false,
    AutoMinorVersionUpgrade: false,
    CopyTagsToSnapshot: false,
    BackupRetentionPeriod: 0,
    Tags: DRILL_TAGS(config),
  };
  if (config.restoreFrom.kind === 'point-in-time') {
    await deps.rds.send(
      new RestoreDBInstanceToPointInTimeCommand({
        SourceDBInstanceIdentifier: config.sourceInstanceId,
        TargetDBInstanceIdentifier: targetInstanceId,
        UseLatestRestorableTime: true,
        ...common,
      }),
    );
  } else {
    // A restored snapshot keeps the snapshot's key: the backup region's copy key.
    await deps.rds.send(
      new RestoreDBInstanceFromDBSnapshotCommand({
        DBSnapshotIdentifier: point.recoveryPoint,
        DBInstanceIdentifier: targetInstanceId,
        ...common,
      }),
    );
  }
}

/**
 * Step 1: remove leftovers of earlier drills, then restore the newest data (the source's latest
 * restorable time, or the newest backup copy) into a new single-AZ instance.
 */
export async function startDrill(deps: DrillDeps): Promise<DrillState> {
  const { config } = deps;
  await sweepLeftovers(deps);
  const point =
    config.restoreFrom.kind === 'point-in-time'
      ? await latestRestorableTime(deps)
      : await newestCopy(deps, config.restoreFrom.copyKeyArn);
  const startedAt = deps.clock.now();
  const targetInstanceId = targetIdFor(config.targetPrefix, startedAt);
  assertDrillTarget(config, targetInstanceId);
  try {
    await restore(deps, point, targetInstanceId);
  } catch (e) {
    throw new DrillError('RESTORE_REFUSED', `RDS refused the restore: ${errorName(e)}`);
  }
  deps.reporter.audit('restore_drill.started', {
    deployment: config.deployment,
    restoreFrom: config.restoreFrom.kind,
    sourceInstanceId: config.sourceInstanceId,
    targetInstanceId,
    restoreTime: point.restoreTime.toISOString(),
    ...(point.recoveryPoint ? { recoveryPoint: point.recoveryPoint } : {}),
  });
  return {
    targetInstanceId,
    startedAt: startedAt.toISOString(),
    restoreTime: point.restoreTime.toISOString(),
    ...(point.recoveryPoint ? { recoveryPoint: point.recoveryPoint } : {}),
  };
}

/** Seconds from the data restored to the restore request: the achieved RPO. */
function recoveryPointAge(state: DrillState | null): number | null {
  if (!state) return null;
  const age = (new Date(state.startedAt).getTime() - new Date(state.restoreTime).getTime()) / 1000;
  return Number.isFinite(age) ? Math.max(0, Math.round(age)) : null;
}

export interface CheckResult {
  readonly state: DrillState;
  readonly available: boolean;
  readonly status: string;
}

function parseState(state: DrillState): Date {
  const started = new Date(state.startedAt);
  if (Number.isNaN(started.getTime()) || typeof state.targetInstanceId !== 'string') {
    throw new DrillError('INVALID_STATE', 'drill state is malformed');
  }
  return started;
}

/** Step 2 (repeated): is the temporary instance available yet? Throws once the drill has timed out. */
export async function checkDrill(deps: DrillDeps, state: DrillState): Promise<CheckResult> {
  const started = parseState(state);
  assertDrillTarget(deps.config, state.targetInstanceId);
  const instance = await describe(deps, state.targetInstanceId);
  const status = instance?.DBInstanceStatus ?? 'missing';
  if (status === 'available') return { state, available: true, status };
  if (status === 'missing' || TERMINAL_STATUSES.has(status)) {
    throw new DrillError('RESTORE_FAILED', `temporary instance is ${status}`);
  }
  const elapsed = (deps.clock.now().getTime() - started.getTime()) / 1000;
  if (elapsed > deps.config.timeoutSeconds) {
    throw new DrillError('TIMEOUT', `not available after ${Math.round(elapsed)}s (status ${status})`);
  }
  return { state, available: false, status };
}

/**
 * Deletes the temporary instance, skipping the final snapshot. Already gone counts as deleted.
 * Returns false (never throws) so callers can report a leak rather than lose the outcome.
 */
async function deleteTarget(deps: DrillDeps, id: string): Promise<boolean> {
  assertDrillTarget(deps.config, id);
  try {
    await deps.rds.send(
      new DeleteDBInstanceCommand({ DBInstanceIdentifier: id, SkipFinalSnapshot: true, DeleteAutomatedBackups: true }),
    );
    return true;
  } catch (e) {
    if (e instanceof DBInstanceNotFoundFault || errorName(e) === 'DBInstanceNotFoundFault') return true;
    if (errorName(e) === 'InvalidDBInstanceStateFault') {
      // Already deleting is fine; any other state means it is still there.
      const current = await describe(deps, id).catch(() => undefined);
      return current === null || current?.DBInstanceStatus === 'deleting';
    }
    return false;
  }
}

function report(deps: DrillDeps, outcome: DrillOutcome, state: DrillState | null): DrillOutcome {
  const at = deps.clock.now();
  deps.reporter.metric(outcome, deps.config, at);
  deps.reporter.audit(outcome.succeeded ? 'restore_drill.succeeded' : 'restore_drill.failed', {
    deployment: deps.config.deployment,
    restoreFrom: deps.config.restoreFrom.kind,
    sourceInstanceId: deps.config.sourceInstanceId,
    targetInstanceId: outcome.targetInstanceId,
    restoreTime: state?.restoreTime ?? null,
    recoveryPoint: state?.recoveryPoint ?? null,
    recoveryPointAgeSeconds: outcome.recoveryPointAgeSeconds,
    restoreSeconds: outcome.restoreSeconds,
    rtoSeconds: deps.config.rtoSeconds,
    withinRto: outcome.withinRto,
    errorCode: outcome.errorCode,
    cleanedUp: outcome.cleanedUp,
  });
  return outcome;
}

/**
 * Step 3: the instance is available. Measures the restore time against the RTO, deletes the
 * instance and reports. A failed delete turns the drill into a failure (DELETE_FAILED) so that
 * the state machine retries the cleanup through `abortDrill` and the alarm fires.
 */
export async function finishDrill(deps: DrillDeps, state: DrillState): Promise<DrillOutcome> {
  const started = parseState(state);
  const restoreSeconds = Math.max(0, Math.round((deps.clock.now().getTime() - started.getTime()) / 1000));
  const withinRto = restoreSeconds <= deps.config.rtoSeconds;
  const cleanedUp = await deleteTarget(deps, state.targetInstanceId);
  const outcome: DrillOutcome = {
    succeeded: cleanedUp && withinRto,
    targetInstanceId: state.targetInstanceId,
    restoreSeconds,
    recoveryPointAgeSeconds: recoveryPointAge(state),
    withinRto,
    errorCode: cleanedUp ? null : 'DELETE_FAILED',
    cleanedUp,
  };
  report(deps, outcome, state);
  if (!cleanedUp) {
    throw new DrillError('DELETE_FAILED', `could not delete ${state.targetInstanceId}; the state machine retries`);
  }
  return outcome;
}

/**
 * The catch-all: a step failed. Deletes the temporary instance if one was started, reports the
 * failure, and throws DELETE_FAILED when the instance could not be deleted (so it is retried).
 */
export async function abortDrill(
  deps: DrillDeps,
  state: DrillState | null,
  cause: { readonly code: string | null },
): Promise<DrillOutcome> {
  const targetInstanceId = state?.targetInstanceId ?? null;
  const cleanedUp = targetInstanceId === null ? true : await deleteTarget(deps, targetInstanceId);
  const known = (code: string | null): DrillErrorCode | null =>
    code !== null && (DRILL_ERROR_CODES as readonly string[]).includes(code) ? (code as DrillErrorCode) : null;
  const outcome: DrillOutcome = {
    succeeded: false,
    targetInstanceId,
    restoreSeconds: null,
    recoveryPointAgeSeconds: recoveryPointAge(state),
    withinRto: false,
    errorCode: cleanedUp ? (known(cause.code) ?? 'RESTORE_FAILED') : 'DELETE_FAILED',
    cleanedUp,
  };
  report(deps, outcome, state);
  if (!cleanedUp) {
    throw new DrillError('DELETE_FAILED', `could not delete ${targetInstanceId}; the state machine retries`);
  }
  return outcome;
}

export const DRILL_ERROR_CODES: readonly DrillErrorCode[] = [
  'SOURCE_NOT_FOUND',
  'NO_RESTORABLE_TIME',
  'NO_RECOVERY_POINT',
  'FOREIGN_KEY',
  'RESTORE_REFUSED',
  'RESTORE_FAILED',
  'TIMEOUT',
  'DELETE_FAILED',
  'UNSAFE_TARGET',
  'INVALID_STATE',
];

/**
 * The reporter the function uses: the metrics through Powertools Metrics (Embedded Metric Format:
 * one JSON line, no CloudWatch API call and so no endpoint needed), the audit lines through its logger.
 */
export function powertoolsReporter(metrics: MetricsRecorder, log: Log): DrillReporter {
  return {
    metric(outcome, config, at) {
      metrics.addDimension(DRILL_METRICS.dimension, config.deployment);
      metrics.addMetric(DRILL_METRICS.failed, MetricUnit.Count, outcome.succeeded ? 0 : 1);
      if (outcome.restoreSeconds !== null) {
        metrics.addMetric(DRILL_METRICS.restoreSeconds, MetricUnit.Seconds, outcome.restoreSeconds);
      }
      if (outcome.recoveryPointAgeSeconds !== null) {
        metrics.addMetric(DRILL_METRICS.recoveryPointAgeSeconds, MetricUnit.Seconds, outcome.recoveryPointAgeSeconds);
      }
      metrics.setTimestamp(at);
      metrics.publishStoredMetrics();
    },
    audit(event, detail) {
      log.info(event, { audit: true, ...detail });
    },
  };
}
