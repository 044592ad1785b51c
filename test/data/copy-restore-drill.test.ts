/**
 * The monthly drill from the backup-region copy: the same steps as the weekly drill
 * (lambda/restore-drill/drill.ts), restoring from the newest AWS Backup copy instead of PITR.
 */
import {
  DeleteDBInstanceCommand,
  DescribeDBInstancesCommand,
  DescribeDBSnapshotsCommand,
  RDSClient,
  RestoreDBInstanceFromDBSnapshotCommand,
  RestoreDBInstanceToPointInTimeCommand,
  type DBSnapshot,
} from '@aws-sdk/client-rds';
import { mockClient } from 'aws-sdk-client-mock';
import {
  abortDrill,
  startDrill,
  targetIdFor,
  type DrillConfig,
  type DrillDeps,
  type DrillOutcome,
} from '../../lambda/restore-drill/drill';
import { configFromEnv, createHandler } from '../../lambda/restore-drill/handler';
import { defined } from '../support/defined';
import { runLikeStateMachine } from '../support/restore-drill';

const COPY_KEY = 'arn:aws:kms:eu-central-1:000000000000:key/11111111-2222-4333-8444-555555555555';
const OTHER_KEY = 'arn:aws:kms:eu-west-1:000000000000:key/99999999-2222-4333-8444-555555555555';

const config: DrillConfig = {
  deployment: 'prod-eu',
  sourceInstanceId: 'bulwark-prod-eu',
  targetPrefix: 'bulwark-prod-eu-copy-drill',
  subnetGroupName: 'copy-drill-subnets',
  securityGroupId: 'sg-0fedcba9876543210',
  parameterGroupName: 'copy-drill-pg17',
  restoreFrom: { kind: 'backup-copy', copyKeyArn: COPY_KEY },
  rtoSeconds: 7200,
  timeoutSeconds: 14400,
};

const T0 = new Date('2026-12-01T05:00:00.000Z');
const TARGET = targetIdFor(config.targetPrefix, T0);

function snapshot(id: string, databaseTime: string, extra: Partial<DBSnapshot> = {}): DBSnapshot {
  return {
    DBSnapshotIdentifier: `awsbackup:copyjob-${id}`,
    DBSnapshotArn: `arn:aws:rds:eu-central-1:000000000000:snapshot:awsbackup:copyjob-${id}`,
    DBInstanceIdentifier: config.sourceInstanceId,
    SnapshotType: 'awsbackup',
    Status: 'available',
    KmsKeyId: COPY_KEY,
    SnapshotDatabaseTime: new Date(databaseTime),
    // The copy itself is made later than the data it holds.
    SnapshotCreateTime: new Date(new Date(databaseTime).getTime() + 3 * 3600_000),
    ...extra,
  };
}

const rdsMock = mockClient(RDSClient);

function harness() {
  rdsMock.reset();
  let now = T0.getTime();
  const metrics: DrillOutcome[] = [];
  const audits: { event: string; detail: Readonly<Record<string, unknown>> }[] = [];
  const deps: DrillDeps = {
    rds: new RDSClient({ region: 'eu-central-1' }),
    clock: { now: () => new Date(now) },
    reporter: { metric: (o) => metrics.push(o), audit: (event, detail) => audits.push({ event, detail }) },
    config,
  };
  // No leftovers of earlier drills unless a test says otherwise.
  rdsMock.on(DescribeDBInstancesCommand, { MaxRecords: 100 }).resolves({ DBInstances: [] });
  return {
    rds: rdsMock,
    deps,
    metrics,
    audits,
    advance: (s: number) => {
      now += s * 1000;
    },
  };
}

function copies(rds: typeof rdsMock, ...pages: DBSnapshot[][]) {
  pages.forEach((page, i) => {
    rds
      .on(DescribeDBSnapshotsCommand, { Marker: i === 0 ? undefined : `page-${i + 1}` })
      .resolves({ DBSnapshots: page, Marker: i + 1 < pages.length ? `page-${i + 2}` : undefined });
  });
}

/** The restored instance is `creating` until `minutes` after T0, then `status`. */
function restoredAfter(h: ReturnType<typeof harness>, minutes: number, status = 'available') {
  h.rds.on(DescribeDBInstancesCommand, { DBInstanceIdentifier: TARGET }).callsFake(() => {
    const elapsed = (h.deps.clock.now().getTime() - T0.getTime()) / 60000;
    return {
      DBInstances: [{ DBInstanceIdentifier: TARGET, DBInstanceStatus: elapsed >= minutes ? status : 'creating' }],
    };
  });
}

describe('backup-copy drill: choosing the recovery point', () => {
  it('restores the newest available copy (across pages) into the isolated network, under the drill prefix', async () => {
    const h = harness();
    copies(
      h.rds,
      [
        snapshot('a', '2026-11-29T02:00:00Z'),
        // Newer but not yet usable.
        snapshot('b', '2026-12-01T02:00:00Z', { Status: 'creating' }),
      ],
      [snapshot('c', '2026-11-30T02:00:00Z'), snapshot('d', '2026-11-28T02:00:00Z')],
    );
    h.rds.on(RestoreDBInstanceFromDBSnapshotCommand).resolves({});

    const state = await startDrill(h.deps);

    expect(state).toEqual({
      targetInstanceId: 'bulwark-prod-eu-copy-drill-20261201050000',
      startedAt: T0.toISOString(),
      restoreTime: '2026-11-30T02:00:00.000Z',
      recoveryPoint: 'arn:aws:rds:eu-central-1:000000000000:snapshot:awsbackup:copyjob-c',
    });
    expect(h.rds.commandCalls(DescribeDBSnapshotsCommand).map((c) => c.args[0].input)).toEqual([
      { DBInstanceIdentifier: 'bulwark-prod-eu', SnapshotType: 'awsbackup', Marker: undefined, MaxRecords: 100 },
      { DBInstanceIdentifier: 'bulwark-prod-eu', SnapshotType: 'awsbackup', Marker: 'page-2', MaxRecords: 100 },
    ]);
    const restores = h.rds.commandCalls(RestoreDBInstanceFromDBSnapshotCommand);
    expect(restores).toHaveLength(1);
    expect(defined(restores[0]).args[0].input).toEqual({
      DBSnapshotIdentifier: 'arn:aws:rds:eu-central-1:000000000000:snapshot:awsbackup:copyjob-c',
      DBInstanceIdentifier: 'bulwark-prod-eu-copy-drill-20261201050000',
      DBSubnetGroupName: 'copy-drill-subnets',
      VpcSecurityGroupIds: ['sg-0fedcba9876543210'],
      DBParameterGroupName: 'copy-drill-pg17',
      MultiAZ: false,
      PubliclyAccessible: false,
      DeletionProtection: false,
      AutoMinorVersionUpgrade: false,
      CopyTagsToSnapshot: false,
      BackupRetentionPeriod: 0,
      Tags: [
        { Key: 'bulwark:restore-drill', Value: 'true' },
        { Key: 'bulwark:deployment', Value: 'prod-eu' },
      ],
    });
    expect(h.rds.commandCalls(RestoreDBInstanceToPointInTimeCommand)).toHaveLength(0);
    expect(h.audits.at(-1)).toMatchObject({
      event: 'restore_drill.started',
      detail: { restoreFrom: 'backup-copy', recoveryPoint: state.recoveryPoint },
    });
  });

  it('restores nothing when the vault holds no available copy, and reports NO_RECOVERY_POINT', async () => {
    const h = harness();
    copies(h.rds, [snapshot('a', '2026-11-30T02:00:00Z', { Status: 'copying' })]);
    h.rds.on(RestoreDBInstanceFromDBSnapshotCommand).resolves({});
    h.rds.on(DeleteDBInstanceCommand).resolves({});

    const result = await runLikeStateMachine(createHandler(h.deps), h.advance);

    expect(result.failed).toBe(true);
    expect(h.rds.commandCalls(RestoreDBInstanceFromDBSnapshotCommand)).toHaveLength(0);
    expect(h.rds.commandCalls(DeleteDBInstanceCommand)).toHaveLength(0);
    expect(h.metrics).toEqual([
      {
        succeeded: false,
        targetInstanceId: null,
        restoreSeconds: null,
        recoveryPointAgeSeconds: null,
        withinRto: false,
        errorCode: 'NO_RECOVERY_POINT',
        cleanedUp: true,
      },
    ]);
  });

  it('refuses a newest copy that is not under the backup region key (FOREIGN_KEY), restoring nothing', async () => {
    const h = harness();
    copies(h.rds, [
      snapshot('a', '2026-11-29T02:00:00Z'),
      snapshot('b', '2026-11-30T02:00:00Z', { KmsKeyId: OTHER_KEY }),
    ]);
    await expect(startDrill(h.deps)).rejects.toMatchObject({ code: 'FOREIGN_KEY' });
    expect(h.rds.commandCalls(RestoreDBInstanceFromDBSnapshotCommand)).toHaveLength(0);
  });
});

describe('backup-copy drill: whole run through the handler', () => {
  it('measures time to available and the recovery point age, then deletes the instance', async () => {
    const h = harness();
    copies(h.rds, [snapshot('a', '2026-11-30T02:00:00Z')]);
    h.rds.on(RestoreDBInstanceFromDBSnapshotCommand).resolves({});
    restoredAfter(h, 41);
    h.rds.on(DeleteDBInstanceCommand).resolves({});

    const result = await runLikeStateMachine(createHandler(h.deps), h.advance);

    expect(result.failed).toBe(false);
    // Checked once a minute: available at the 41st check; the copy's data was 27 h old at T0.
    expect(h.metrics).toEqual([
      {
        succeeded: true,
        targetInstanceId: TARGET,
        restoreSeconds: 41 * 60,
        recoveryPointAgeSeconds: 27 * 3600,
        withinRto: true,
        errorCode: null,
        cleanedUp: true,
      },
    ]);
    expect(h.rds.commandCalls(DeleteDBInstanceCommand).map((c) => c.args[0].input)).toEqual([
      { DBInstanceIdentifier: TARGET, SkipFinalSnapshot: true, DeleteAutomatedBackups: true },
    ]);
  });

  it('still deletes the restored instance when the restore fails', async () => {
    const h = harness();
    copies(h.rds, [snapshot('a', '2026-11-30T02:00:00Z')]);
    h.rds.on(RestoreDBInstanceFromDBSnapshotCommand).resolves({});
    restoredAfter(h, 12, 'inaccessible-encryption-credentials');
    h.rds.on(DeleteDBInstanceCommand).resolves({});

    const result = await runLikeStateMachine(createHandler(h.deps), h.advance);

    expect(result.failed).toBe(true);
    expect(h.metrics.at(-1)).toMatchObject({
      succeeded: false,
      errorCode: 'RESTORE_FAILED',
      cleanedUp: true,
      recoveryPointAgeSeconds: 27 * 3600,
    });
    expect(h.rds.commandCalls(DeleteDBInstanceCommand).map((c) => c.args[0].input.DBInstanceIdentifier)).toEqual([
      TARGET,
    ]);
  });

  it('fails a restore that does not complete within its window (TIMEOUT, the failed metric), deleting it', async () => {
    const h = harness();
    copies(h.rds, [snapshot('a', '2026-11-30T02:00:00Z')]);
    h.rds.on(RestoreDBInstanceFromDBSnapshotCommand).resolves({});
    restoredAfter(h, Number.POSITIVE_INFINITY);
    h.rds.on(DeleteDBInstanceCommand).resolves({});

    const result = await runLikeStateMachine(createHandler(h.deps), h.advance);

    expect(result.failed).toBe(true);
    expect(h.metrics).toHaveLength(1);
    expect(h.metrics[0]).toMatchObject({ succeeded: false, errorCode: 'TIMEOUT', cleanedUp: true });
    expect(h.rds.commandCalls(DeleteDBInstanceCommand)).toHaveLength(1);
    // Given up after the window (timeoutSeconds), not before.
    const checks = h.rds.commandCalls(DescribeDBInstancesCommand, { DBInstanceIdentifier: TARGET }).length;
    expect(checks).toBe(config.timeoutSeconds / 60 + 1);
  });

  it('counts a restore slower than the RTO as failed, after deleting it', async () => {
    const h = harness();
    copies(h.rds, [snapshot('a', '2026-11-30T02:00:00Z')]);
    h.rds.on(RestoreDBInstanceFromDBSnapshotCommand).resolves({});
    restoredAfter(h, 121);
    h.rds.on(DeleteDBInstanceCommand).resolves({});
    await runLikeStateMachine(createHandler(h.deps), h.advance);
    expect(h.metrics.at(-1)).toMatchObject({ succeeded: false, withinRto: false, restoreSeconds: 121 * 60 });
    expect(h.rds.commandCalls(DeleteDBInstanceCommand)).toHaveLength(1);
  });

  it('deletes a leftover of an earlier monthly drill before restoring, and never another instance', async () => {
    const h = harness();
    h.rds.on(DescribeDBInstancesCommand, { MaxRecords: 100 }).resolves({
      DBInstances: [
        { DBInstanceIdentifier: 'bulwark-prod-eu-copy-drill-20261101050000', DBInstanceStatus: 'available' },
        { DBInstanceIdentifier: 'bulwark-prod-eu', DBInstanceStatus: 'available' },
        { DBInstanceIdentifier: 'bulwark-prod-eu-drill-20261129040000', DBInstanceStatus: 'available' },
      ],
    });
    copies(h.rds, [snapshot('a', '2026-11-30T02:00:00Z')]);
    h.rds.on(RestoreDBInstanceFromDBSnapshotCommand).resolves({});
    h.rds.on(DeleteDBInstanceCommand).resolves({});
    await startDrill(h.deps);
    expect(h.rds.commandCalls(DeleteDBInstanceCommand).map((c) => c.args[0].input.DBInstanceIdentifier)).toEqual([
      'bulwark-prod-eu-copy-drill-20261101050000',
    ]);
  });

  it('abort reports the age of the copy it tried to restore', async () => {
    const h = harness();
    h.rds.on(DeleteDBInstanceCommand).resolves({});
    const outcome = await abortDrill(
      h.deps,
      { targetInstanceId: TARGET, startedAt: T0.toISOString(), restoreTime: '2026-11-30T02:00:00.000Z' },
      { code: 'TIMEOUT' },
    );
    expect(outcome).toMatchObject({ errorCode: 'TIMEOUT', recoveryPointAgeSeconds: 27 * 3600, cleanedUp: true });
  });
});

describe('backup-copy drill: configuration', () => {
  const env = {
    DEPLOYMENT: 'prod-eu',
    SOURCE_INSTANCE_ID: 'bulwark-prod-eu',
    TARGET_PREFIX: 'bulwark-prod-eu-copy-drill',
    SUBNET_GROUP_NAME: 'copy-drill-subnets',
    SECURITY_GROUP_ID: 'sg-0fedcba9876543210',
    PARAMETER_GROUP_NAME: 'copy-drill-pg17',
    RTO_SECONDS: '7200',
    TIMEOUT_SECONDS: '14400',
    RESTORE_FROM: 'backup-copy',
    COPY_KEY_ARN: COPY_KEY,
  };

  it('reads the copy source and its key from the environment', () => {
    expect(configFromEnv(env)).toEqual(config);
  });

  it('requires the copy key for a backup-copy drill and refuses it for a point-in-time drill', () => {
    expect(() => configFromEnv({ ...env, COPY_KEY_ARN: undefined })).toThrow(/invalid environment/);
    expect(() => configFromEnv({ ...env, RESTORE_FROM: 'point-in-time' })).toThrow(/invalid environment/);
    expect(() => configFromEnv({ ...env, COPY_KEY_ARN: 'alias/copies' })).toThrow(/COPY_KEY_ARN/);
    expect(() => configFromEnv({ ...env, RESTORE_FROM: 'snapshot' })).toThrow(/RESTORE_FROM/);
  });
});
