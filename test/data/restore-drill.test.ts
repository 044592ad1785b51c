import {
  DBInstanceNotFoundFault,
  DeleteDBInstanceCommand,
  DescribeDBInstancesCommand,
  InvalidDBInstanceStateFault,
  RDSClient,
  RestoreDBInstanceToPointInTimeCommand,
} from '@aws-sdk/client-rds';
import { mockClient } from 'aws-sdk-client-mock';
import * as fc from 'fast-check';
import {
  abortDrill,
  checkDrill,
  DrillError,
  powertoolsReporter,
  finishDrill,
  startDrill,
  targetIdFor,
  type DrillConfig,
  type DrillDeps,
  type DrillOutcome,
  type DrillState,
} from '../../lambda/restore-drill/drill';
import { configFromEnv, createHandler } from '../../lambda/restore-drill/handler';
import { defined } from '../support/defined';
import { runLikeStateMachine } from '../support/restore-drill';
import { RecordingLog, RecordingMetrics } from '../support/observability';

const config: DrillConfig = {
  deployment: 'prod-eu',
  sourceInstanceId: 'bulwark-prod-eu',
  targetPrefix: 'bulwark-prod-eu-drill',
  subnetGroupName: 'data-subnets',
  securityGroupId: 'sg-0123456789abcdef0',
  parameterGroupName: 'bulwark-pg17',
  restoreFrom: { kind: 'point-in-time' },
  rtoSeconds: 3600,
  timeoutSeconds: 7200,
};

const T0 = new Date('2026-11-22T04:00:00.000Z');
const LATEST = new Date('2026-11-22T03:58:12.000Z');

/** A controllable clock and a recording reporter around a mocked RDS client. */
const rdsMock = mockClient(RDSClient);

function harness() {
  rdsMock.reset();
  const rds = rdsMock;
  let now = T0.getTime();
  const metrics: { outcome: DrillOutcome; at: Date }[] = [];
  const audits: { event: string; detail: Readonly<Record<string, unknown>> }[] = [];
  const deps: DrillDeps = {
    rds: new RDSClient({ region: 'eu-west-1' }),
    clock: { now: () => new Date(now) },
    reporter: {
      metric: (outcome, _c, at) => metrics.push({ outcome, at }),
      audit: (event, detail) => audits.push({ event, detail }),
    },
    config,
  };
  return {
    rds,
    deps,
    metrics,
    audits,
    advance: (seconds: number) => {
      now += seconds * 1000;
    },
  };
}

/** The account-wide listing (leftover sweep) finds nothing unless a test says otherwise. */
function noLeftovers(rds: typeof rdsMock) {
  rds.on(DescribeDBInstancesCommand, { MaxRecords: 100 }).resolves({ DBInstances: [] });
}

function sourceAvailable(rds: typeof rdsMock) {
  noLeftovers(rds);
  rds
    .on(DescribeDBInstancesCommand, { DBInstanceIdentifier: config.sourceInstanceId })
    .resolves({ DBInstances: [{ DBInstanceIdentifier: config.sourceInstanceId, LatestRestorableTime: LATEST }] });
}

function targetStatus(rds: typeof rdsMock, id: string, status: string) {
  rds
    .on(DescribeDBInstancesCommand, { DBInstanceIdentifier: id })
    .resolves({ DBInstances: [{ DBInstanceIdentifier: id, DBInstanceStatus: status }] });
}

const notFound = () => new DBInstanceNotFoundFault({ message: 'not found', $metadata: {} });

const stateAt = (startedAt: Date): DrillState => ({
  targetInstanceId: targetIdFor(config.targetPrefix, startedAt),
  startedAt: startedAt.toISOString(),
  restoreTime: LATEST.toISOString(),
});

describe('restore drill: start', () => {
  it('restores the latest restorable time into a private, single-AZ, tagged instance under the drill prefix', async () => {
    const h = harness();
    sourceAvailable(h.rds);
    h.rds.on(RestoreDBInstanceToPointInTimeCommand).resolves({});

    const state = await startDrill(h.deps);

    expect(state).toEqual({
      targetInstanceId: 'bulwark-prod-eu-drill-20261122040000',
      startedAt: T0.toISOString(),
      restoreTime: LATEST.toISOString(),
    });
    const calls = h.rds.commandCalls(RestoreDBInstanceToPointInTimeCommand);
    expect(calls).toHaveLength(1);
    expect(defined(calls[0]).args[0].input).toEqual({
      SourceDBInstanceIdentifier: 'bulwark-prod-eu',
      TargetDBInstanceIdentifier: 'bulwark-prod-eu-drill-20261122040000',
      UseLatestRestorableTime: true,
      DBSubnetGroupName: 'data-subnets',
      VpcSecurityGroupIds: ['sg-0123456789abcdef0'],
      DBParameterGroupName: 'bulwark-pg17',
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
    expect(h.audits.map((a) => a.event)).toEqual(['restore_drill.started']);
  });

  it('maps a refused restore to RESTORE_REFUSED', async () => {
    const h = harness();
    sourceAvailable(h.rds);
    h.rds
      .on(RestoreDBInstanceToPointInTimeCommand)
      .rejects(Object.assign(new Error('quota'), { name: 'InstanceQuotaExceededFault' }));
    await expect(startDrill(h.deps)).rejects.toMatchObject({ code: 'RESTORE_REFUSED' });
  });

  it('fails with SOURCE_NOT_FOUND and NO_RESTORABLE_TIME before restoring anything', async () => {
    const h = harness();
    h.rds.on(DescribeDBInstancesCommand).rejects(notFound());
    noLeftovers(h.rds);
    await expect(startDrill(h.deps)).rejects.toMatchObject({ code: 'SOURCE_NOT_FOUND' });
    h.rds.reset();
    h.rds.on(DescribeDBInstancesCommand).resolves({ DBInstances: [{ DBInstanceIdentifier: config.sourceInstanceId }] });
    noLeftovers(h.rds);
    await expect(startDrill(h.deps)).rejects.toMatchObject({ code: 'NO_RESTORABLE_TIME' });
    expect(h.rds.commandCalls(RestoreDBInstanceToPointInTimeCommand)).toHaveLength(0);
  });
});

describe('restore drill: leftover sweep', () => {
  it('deletes drill instances left by earlier runs (all pages), and nothing else, before restoring', async () => {
    const h = harness();
    sourceAvailable(h.rds);
    h.rds
      .on(DescribeDBInstancesCommand, { MaxRecords: 100, Marker: undefined })
      .resolves({
        DBInstances: [
          { DBInstanceIdentifier: config.sourceInstanceId, DBInstanceStatus: 'available' },
          { DBInstanceIdentifier: 'bulwark-prod-eu-drill-20261115040000', DBInstanceStatus: 'available' },
          { DBInstanceIdentifier: 'bulwark-prod-eu-drill-20261108040000', DBInstanceStatus: 'deleting' },
        ],
        Marker: 'page-2',
      })
      .on(DescribeDBInstancesCommand, { MaxRecords: 100, Marker: 'page-2' })
      .resolves({
        DBInstances: [
          { DBInstanceIdentifier: 'bulwark-prod-eu-drill-20261101040000', DBInstanceStatus: 'stopped' },
          { DBInstanceIdentifier: 'bulwark-prod-eu-drillx', DBInstanceStatus: 'available' },
          { DBInstanceIdentifier: 'someone-elses-db', DBInstanceStatus: 'available' },
        ],
      });
    h.rds.on(DeleteDBInstanceCommand).resolves({});
    h.rds.on(RestoreDBInstanceToPointInTimeCommand).resolves({});

    await startDrill(h.deps);

    expect(h.rds.commandCalls(DeleteDBInstanceCommand).map((c) => c.args[0].input.DBInstanceIdentifier)).toEqual([
      'bulwark-prod-eu-drill-20261115040000',
      'bulwark-prod-eu-drill-20261101040000',
    ]);
    expect(h.audits.filter((a) => a.event === 'restore_drill.leftover_deleted')).toHaveLength(2);
    expect(h.rds.commandCalls(RestoreDBInstanceToPointInTimeCommand)).toHaveLength(1);
  });

  it('does not restore while a leftover cannot be deleted', async () => {
    const h = harness();
    sourceAvailable(h.rds);
    h.rds.on(DescribeDBInstancesCommand, { MaxRecords: 100 }).resolves({
      DBInstances: [{ DBInstanceIdentifier: 'bulwark-prod-eu-drill-20261115040000', DBInstanceStatus: 'available' }],
    });
    h.rds.on(DeleteDBInstanceCommand).rejects(Object.assign(new Error('denied'), { name: 'AccessDenied' }));
    await expect(startDrill(h.deps)).rejects.toMatchObject({ code: 'DELETE_FAILED' });
    expect(h.rds.commandCalls(RestoreDBInstanceToPointInTimeCommand)).toHaveLength(0);
  });
});

describe('restore drill: check', () => {
  it('reports pending until available, and times out after timeoutSeconds', async () => {
    const h = harness();
    const state = stateAt(T0);
    targetStatus(h.rds, state.targetInstanceId, 'creating');
    h.advance(600);
    await expect(checkDrill(h.deps, state)).resolves.toMatchObject({ available: false, status: 'creating' });
    h.advance(config.timeoutSeconds);
    await expect(checkDrill(h.deps, state)).rejects.toMatchObject({ code: 'TIMEOUT' });
  });

  it('reports available', async () => {
    const h = harness();
    const state = stateAt(T0);
    targetStatus(h.rds, state.targetInstanceId, 'available');
    await expect(checkDrill(h.deps, state)).resolves.toMatchObject({ available: true });
  });

  it.each(['failed', 'incompatible-restore', 'inaccessible-encryption-credentials'])(
    'treats status %s as RESTORE_FAILED',
    async (status) => {
      const h = harness();
      const state = stateAt(T0);
      targetStatus(h.rds, state.targetInstanceId, status);
      await expect(checkDrill(h.deps, state)).rejects.toMatchObject({ code: 'RESTORE_FAILED' });
    },
  );

  it('treats a vanished instance as RESTORE_FAILED', async () => {
    const h = harness();
    h.rds.on(DescribeDBInstancesCommand).rejects(notFound());
    await expect(checkDrill(h.deps, stateAt(T0))).rejects.toMatchObject({ code: 'RESTORE_FAILED' });
  });
});

describe('restore drill: finish', () => {
  it('measures the restore time, deletes the instance without a final snapshot, and reports success', async () => {
    const h = harness();
    const state = stateAt(T0);
    h.rds.on(DeleteDBInstanceCommand).resolves({});
    h.advance(1500);

    const outcome = await finishDrill(h.deps, state);

    expect(outcome).toEqual({
      succeeded: true,
      targetInstanceId: state.targetInstanceId,
      restoreSeconds: 1500,
      // The latest restorable time was 108 s old when the restore was requested.
      recoveryPointAgeSeconds: 108,
      withinRto: true,
      errorCode: null,
      cleanedUp: true,
    });
    expect(defined(h.rds.commandCalls(DeleteDBInstanceCommand)[0]).args[0].input).toEqual({
      DBInstanceIdentifier: state.targetInstanceId,
      SkipFinalSnapshot: true,
      DeleteAutomatedBackups: true,
    });
    expect(h.metrics).toHaveLength(1);
    expect(h.audits.at(-1)).toMatchObject({
      event: 'restore_drill.succeeded',
      detail: {
        restoreFrom: 'point-in-time',
        restoreSeconds: 1500,
        recoveryPointAgeSeconds: 108,
        rtoSeconds: 3600,
        withinRto: true,
        restoreTime: LATEST.toISOString(),
      },
    });
  });

  it('reports a restore slower than the RTO as a failed drill, still deleting the instance', async () => {
    const h = harness();
    h.rds.on(DeleteDBInstanceCommand).resolves({});
    h.advance(3601);
    const outcome = await finishDrill(h.deps, stateAt(T0));
    expect(outcome).toMatchObject({ succeeded: false, withinRto: false, restoreSeconds: 3601, cleanedUp: true });
    expect(h.rds.commandCalls(DeleteDBInstanceCommand)).toHaveLength(1);
    expect(h.audits.at(-1)?.event).toBe('restore_drill.failed');
  });

  it('turns a failed delete into DELETE_FAILED after reporting it', async () => {
    const h = harness();
    h.rds.on(DeleteDBInstanceCommand).rejects(Object.assign(new Error('denied'), { name: 'AccessDenied' }));
    h.advance(900);
    await expect(finishDrill(h.deps, stateAt(T0))).rejects.toMatchObject({ code: 'DELETE_FAILED' });
    expect(h.metrics[0]?.outcome).toMatchObject({ succeeded: false, cleanedUp: false, errorCode: 'DELETE_FAILED' });
  });
});

describe('restore drill: abort', () => {
  it('deletes the temporary instance and reports the original error code', async () => {
    const h = harness();
    h.rds.on(DeleteDBInstanceCommand).resolves({});
    const state = stateAt(T0);
    const outcome = await abortDrill(h.deps, state, { code: 'TIMEOUT' });
    expect(outcome).toMatchObject({ succeeded: false, errorCode: 'TIMEOUT', cleanedUp: true });
    expect(defined(h.rds.commandCalls(DeleteDBInstanceCommand)[0]).args[0].input.DBInstanceIdentifier).toBe(
      state.targetInstanceId,
    );
  });

  it('calls nothing when no instance was started', async () => {
    const h = harness();
    const outcome = await abortDrill(h.deps, null, { code: 'RESTORE_REFUSED' });
    expect(outcome).toMatchObject({ errorCode: 'RESTORE_REFUSED', cleanedUp: true, targetInstanceId: null });
    expect(h.rds.calls()).toHaveLength(0);
  });

  it('counts an instance that is already gone or already deleting as cleaned up', async () => {
    const h = harness();
    const state = stateAt(T0);
    h.rds.on(DeleteDBInstanceCommand).rejects(notFound());
    await expect(abortDrill(h.deps, state, { code: null })).resolves.toMatchObject({ cleanedUp: true });
    h.rds.reset();
    h.rds.on(DeleteDBInstanceCommand).rejects(new InvalidDBInstanceStateFault({ message: 'deleting', $metadata: {} }));
    targetStatus(h.rds, state.targetInstanceId, 'deleting');
    await expect(abortDrill(h.deps, state, { code: null })).resolves.toMatchObject({ cleanedUp: true });
  });

  it('throws DELETE_FAILED when the instance cannot be deleted, so the state machine retries', async () => {
    const h = harness();
    h.rds
      .on(DeleteDBInstanceCommand)
      .rejects(new InvalidDBInstanceStateFault({ message: 'backing-up', $metadata: {} }));
    targetStatus(h.rds, stateAt(T0).targetInstanceId, 'backing-up');
    await expect(abortDrill(h.deps, stateAt(T0), { code: 'TIMEOUT' })).rejects.toMatchObject({
      code: 'DELETE_FAILED',
    });
    expect(h.metrics[0]?.outcome.errorCode).toBe('DELETE_FAILED');
  });

  it('never deletes an instance outside the drill prefix, least of all the source', async () => {
    const h = harness();
    h.rds.on(DeleteDBInstanceCommand).resolves({});
    for (const id of [config.sourceInstanceId, 'bulwark-prod-eu-drillx-1', 'other-db']) {
      const state = { ...stateAt(T0), targetInstanceId: id };
      await expect(abortDrill(h.deps, state, { code: null })).rejects.toBeInstanceOf(DrillError);
    }
    expect(h.rds.commandCalls(DeleteDBInstanceCommand)).toHaveLength(0);
  });
});

describe('restore drill: whole run through the handler', () => {
  it('always deletes the temporary instance, whichever step fails (property)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.record({
          restoreRefused: fc.boolean(),
          minutesToAvailable: fc.integer({ min: 1, max: 200 }),
          terminalStatus: fc.constantFrom(null, 'failed', 'incompatible-restore'),
          deleteFailures: fc.integer({ min: 0, max: 3 }),
        }),
        async (scenario) => {
          const h = harness();
          sourceAvailable(h.rds);
          if (scenario.restoreRefused) {
            h.rds
              .on(RestoreDBInstanceToPointInTimeCommand)
              .rejects(Object.assign(new Error('x'), { name: 'StorageQuotaExceeded' }));
          } else {
            h.rds.on(RestoreDBInstanceToPointInTimeCommand).resolves({});
          }
          const target = targetIdFor(config.targetPrefix, T0);
          const startMs = T0.getTime();
          h.rds.on(DescribeDBInstancesCommand, { DBInstanceIdentifier: target }).callsFake(() => {
            const minutes = (h.deps.clock.now().getTime() - startMs) / 60000;
            const status =
              minutes >= scenario.minutesToAvailable ? 'available' : (scenario.terminalStatus ?? 'creating');
            return { DBInstances: [{ DBInstanceIdentifier: target, DBInstanceStatus: status }] };
          });
          let deleteAttempts = 0;
          h.rds.on(DeleteDBInstanceCommand).callsFake(() => {
            deleteAttempts++;
            if (deleteAttempts <= scenario.deleteFailures) throw Object.assign(new Error('x'), { name: 'Throttled' });
            return {};
          });

          const result = await runLikeStateMachine(createHandler(h.deps), h.advance);

          const deletes = h.rds.commandCalls(DeleteDBInstanceCommand);
          if (scenario.restoreRefused) {
            expect(deletes).toHaveLength(0);
          } else {
            expect(deletes.length).toBeGreaterThan(0);
            expect(deletes.every((c) => c.args[0].input.DBInstanceIdentifier === target)).toBe(true);
          }
          // Exactly one terminal report per successful cleanup, and success only when in time and clean.
          const last = h.metrics.at(-1)?.outcome;
          expect(last).toBeDefined();
          const inTime = scenario.minutesToAvailable * 60 <= config.rtoSeconds;
          // Checked once a minute; a terminal status fails the first check, a slow restore times out
          // once it has been pending for more than the 2-hour timeout.
          const reachedAvailable =
            !scenario.restoreRefused &&
            (scenario.terminalStatus === null
              ? scenario.minutesToAvailable <= config.timeoutSeconds / 60 + 1
              : scenario.minutesToAvailable <= 1);
          expect(defined(last).succeeded).toBe(reachedAvailable && inTime && scenario.deleteFailures === 0);
          expect(result.failed).toBe(!reachedAvailable || scenario.deleteFailures > 0);
        },
      ),
      { numRuns: 60 },
    );
  });

  it('times out a restore that never completes and deletes it', async () => {
    const h = harness();
    sourceAvailable(h.rds);
    h.rds.on(RestoreDBInstanceToPointInTimeCommand).resolves({});
    targetStatus(h.rds, targetIdFor(config.targetPrefix, T0), 'creating');
    h.rds.on(DeleteDBInstanceCommand).resolves({});
    const result = await runLikeStateMachine(createHandler(h.deps), h.advance);
    expect(result.failed).toBe(true);
    expect(h.metrics.at(-1)?.outcome).toMatchObject({ errorCode: 'TIMEOUT', cleanedUp: true });
    expect(h.rds.commandCalls(DeleteDBInstanceCommand)).toHaveLength(1);
    // Checked once a minute until the 2-hour timeout.
    expect(h.rds.commandCalls(DescribeDBInstancesCommand).length).toBeGreaterThan(config.timeoutSeconds / 60 - 1);
  });

  it('rejects malformed step input with INVALID_STATE', async () => {
    const h = harness();
    await expect(createHandler(h.deps)({ step: 'explode' })).rejects.toMatchObject({ name: 'INVALID_STATE' });
    expect(h.rds.calls()).toHaveLength(0);
  });
});

describe('restore drill: outputs and configuration', () => {
  it('reports the result as the metrics the alarms watch and an audit line without secrets', () => {
    const metrics = new RecordingMetrics();
    const log = new RecordingLog();
    const reporter = powertoolsReporter(metrics, log);
    const outcome: DrillOutcome = {
      succeeded: true,
      targetInstanceId: 'bulwark-prod-eu-drill-20261122040000',
      restoreSeconds: 1234,
      recoveryPointAgeSeconds: 300,
      withinRto: true,
      errorCode: null,
      cleanedUp: true,
    };
    reporter.metric(outcome, config, T0);
    reporter.audit('restore_drill.succeeded', { restoreSeconds: 1234 });
    expect(metrics.published).toEqual([
      {
        dimensions: { Deployment: 'prod-eu' },
        values: { RestoreDrillFailed: 0, RestoreDrillSeconds: 1234, RestoreDrillRecoveryPointAgeSeconds: 300 },
        units: {
          RestoreDrillFailed: 'Count',
          RestoreDrillSeconds: 'Seconds',
          RestoreDrillRecoveryPointAgeSeconds: 'Seconds',
        },
        timestamp: T0.getTime(),
      },
    ]);
    expect(log.entries).toEqual([
      { level: 'info', message: 'restore_drill.succeeded', fields: { audit: true, restoreSeconds: 1234 } },
    ]);
  });

  it('omits the seconds metric when the instance never became available', () => {
    const metrics = new RecordingMetrics();
    powertoolsReporter(metrics, new RecordingLog()).metric(
      {
        succeeded: false,
        targetInstanceId: null,
        restoreSeconds: null,
        recoveryPointAgeSeconds: null,
        withinRto: false,
        errorCode: 'RESTORE_REFUSED',
        cleanedUp: true,
      },
      config,
      T0,
    );
    expect(metrics.published).toHaveLength(1);
    expect(metrics.published[0]?.values).toEqual({ RestoreDrillFailed: 1 });
  });

  it('validates the environment, naming bad fields but never echoing values', () => {
    const env = {
      DEPLOYMENT: 'prod-eu',
      SOURCE_INSTANCE_ID: 'bulwark-prod-eu',
      TARGET_PREFIX: 'bulwark-prod-eu-drill',
      SUBNET_GROUP_NAME: 'data-subnets',
      SECURITY_GROUP_ID: 'sg-0123456789abcdef0',
      PARAMETER_GROUP_NAME: 'bulwark-pg17',
      RTO_SECONDS: '3600',
      TIMEOUT_SECONDS: '7200',
    };
    expect(configFromEnv(env)).toEqual(config);
    expect(() => configFromEnv({ ...env, SECURITY_GROUP_ID: 'not-a-group-secretvalue' })).toThrow(/SECURITY_GROUP_ID/);
    expect(() => configFromEnv({ ...env, SECURITY_GROUP_ID: 'not-a-group-secretvalue' })).not.toThrow(/secretvalue/);
    expect(() => configFromEnv({ ...env, TIMEOUT_SECONDS: '60' })).toThrow(/invalid environment/);
  });

  it('derives valid, prefixed, time-stamped instance identifiers', () => {
    expect(targetIdFor('bulwark-prod-eu-drill', T0)).toBe('bulwark-prod-eu-drill-20261122040000');
    expect(() => targetIdFor('x'.repeat(60), T0)).toThrow(DrillError);
  });
});
