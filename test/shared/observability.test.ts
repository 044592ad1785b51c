/**
 * The shared observability module with the real Powertools Logger and Metrics, capturing what they
 * write: the Embedded Metric Format documents the alarms depend on, the log level from the
 * environment, and correlation ids that never leak from one invocation into the next.
 */
import { DRILL_METRICS } from '../../contracts/restore-drill';
import { powertoolsReporter } from '../../lambda/restore-drill/drill';
import { createObservability, logLevelFrom, observed } from '../../lambda/shared/observability';
import { lambdaContext } from '../support/observability';

/** Runs `fn` and returns the JSON lines written to stdout and stderr meanwhile. */
async function captured(fn: () => Promise<void> | void): Promise<Record<string, unknown>[]> {
  const writes: string[] = [];
  const spies = [process.stdout, process.stderr].map((stream) =>
    jest.spyOn(stream, 'write').mockImplementation((s) => {
      writes.push(String(s));
      return true;
    }),
  );
  try {
    await fn();
  } finally {
    for (const spy of spies) spy.mockRestore();
  }
  return writes.filter((w) => w.startsWith('{')).map((w) => JSON.parse(w) as Record<string, unknown>);
}

describe('createObservability', () => {
  it('emits the restore drill metrics exactly as the alarms watch them (no service dimension)', async () => {
    const { metrics, logger } = createObservability({ service: 'restore-drill', namespace: DRILL_METRICS.namespace });
    const at = new Date('2026-11-22T04:00:00Z');
    const lines = await captured(() =>
      powertoolsReporter(metrics, logger).metric(
        {
          succeeded: false,
          targetInstanceId: 'bulwark-prod-eu-drill-1',
          restoreSeconds: 4000,
          recoveryPointAgeSeconds: 86400,
          withinRto: false,
          errorCode: 'RESTORE_REFUSED',
          cleanedUp: true,
        },
        {
          deployment: 'prod-eu',
          sourceInstanceId: 'db',
          targetPrefix: 'bulwark-prod-eu-drill',
          subnetGroupName: 'g',
          securityGroupId: 'sg-1',
          parameterGroupName: 'p',
          restoreFrom: { kind: 'point-in-time' },
          rtoSeconds: 3600,
          timeoutSeconds: 7200,
        },
        at,
      ),
    );
    expect(lines).toEqual([
      {
        _aws: {
          Timestamp: at.getTime(),
          CloudWatchMetrics: [
            {
              Namespace: 'Bulwark/DataTier',
              Dimensions: [['Deployment']],
              Metrics: [
                { Name: 'RestoreDrillFailed', Unit: 'Count' },
                { Name: 'RestoreDrillSeconds', Unit: 'Seconds' },
                { Name: 'RestoreDrillRecoveryPointAgeSeconds', Unit: 'Seconds' },
              ],
            },
          ],
        },
        Deployment: 'prod-eu',
        RestoreDrillFailed: 1,
        RestoreDrillSeconds: 4000,
        RestoreDrillRecoveryPointAgeSeconds: 86400,
      },
    ]);
  });

  it('takes the log level from POWERTOOLS_LOG_LEVEL, then LOG_LEVEL, and refuses an unknown one', async () => {
    expect(logLevelFrom({})).toBe('INFO');
    expect(logLevelFrom({ LOG_LEVEL: 'debug' })).toBe('DEBUG');
    expect(logLevelFrom({ POWERTOOLS_LOG_LEVEL: 'ERROR', LOG_LEVEL: 'DEBUG' })).toBe('ERROR');
    expect(() => logLevelFrom({ LOG_LEVEL: 'loud' })).toThrow(/invalid log level/);

    const { logger } = createObservability({ service: 'probe', env: { LOG_LEVEL: 'WARN' } });
    const lines = await captured(() => {
      logger.info('not at WARN');
      logger.warn('at WARN');
    });
    expect(lines.map((l) => l['message'])).toEqual(['at WARN']);
  });
});

describe('observed', () => {
  it('adds the request and correlation ids to every line of an invocation, and only of that one', async () => {
    const { logger } = createObservability({ service: 'probe', env: {} });
    const handler = observed(
      logger,
      async (event: { orgId?: string }) => {
        logger.info('working', { step: 1 });
        if (!event.orgId) throw new Error('boom');
        return 'done';
      },
      (event) => ({ orgId: event.orgId }),
    );
    const lines = await captured(async () => {
      await handler({ orgId: '0e4c3d7e-1b0a-4c6b-9f3e-2a1b5c6d7e8f' }, lambdaContext('request-1'));
      await expect(handler({}, lambdaContext('request-2'))).rejects.toThrow('boom');
    });
    expect(lines).toEqual([
      expect.objectContaining({
        message: 'working',
        service: 'probe',
        function_request_id: 'request-1',
        orgId: '0e4c3d7e-1b0a-4c6b-9f3e-2a1b5c6d7e8f',
        step: 1,
      }),
      expect.objectContaining({ message: 'working', function_request_id: 'request-2' }),
    ]);
    expect(lines[1]).not.toHaveProperty('orgId');
  });
});
