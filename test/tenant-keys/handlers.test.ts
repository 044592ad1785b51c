import {
  CreateAliasCommand,
  CreateKeyCommand,
  DescribeKeyCommand,
  EnableKeyRotationCommand,
  KMSClient,
} from '@aws-sdk/client-kms';
import { mockClient } from 'aws-sdk-client-mock';
import type { AuditEvent } from '../../lambda/shared/audit';
import type { AndThen } from '../../lambda/tenant-keys/and-then';
import { ExportService } from '../../lambda/tenant-keys/export';
import { makeLifecycleHandler, LifecycleRunFailed } from '../../lambda/tenant-keys/lifecycle-handler';
import { RecordingLog } from '../support/observability';
import type { LifecycleProcessor } from '../../lambda/tenant-keys/lifecycle-processor';
import { makeProvisionerHandler, provisionerFromEnv } from '../../lambda/tenant-keys/provisioner-handler';
import type { TenantKeyRecord, TenantKeyStore } from '../../lambda/tenant-keys/provisioner';
import { ConfigurationError } from '../../lambda/tenant-keys/runtime';
import { KEY_A, ORG_A } from './fake-kms';

const ENV = {
  AWS_REGION: 'eu-west-1',
  DEPLOYMENT: 'prod-eu',
  ACCOUNT_ID: '111122223333',
  DB_HOST: 'proxy.example',
  DB_PORT: '5432',
  DB_NAME: 'bulwark',
  DB_USER: 'bulwark_app',
};

function named(name: string): Error {
  return Object.assign(new Error(name), { name });
}

class MemoryStore implements TenantKeyStore {
  rows = new Map<string, TenantKeyRecord>();
  async get(o: string) {
    return this.rows.get(o) ?? null;
  }
  async record(o: string, k: TenantKeyRecord, andThen: AndThen<TenantKeyRecord>) {
    const stored = this.rows.get(o) ?? k;
    await andThen(stored, undefined);
    this.rows.set(o, stored);
    return stored;
  }
}

describe('provisioner handler', () => {
  function setup() {
    const kms = new KMSClient({ region: 'eu-west-1' });
    const mock = mockClient(kms);
    const events: AuditEvent[] = [];
    const provisioner = provisionerFromEnv(ENV, {
      kms,
      store: new MemoryStore(),
      audit: { record: async (e) => void events.push(e) },
    });
    return { mock, events, handler: makeProvisionerHandler(provisioner) };
  }

  it('provisions and returns the key, with a system audit event', async () => {
    const { mock, events, handler } = setup();
    mock.on(DescribeKeyCommand).rejects(named('NotFoundException'));
    mock.on(CreateKeyCommand).resolves({ KeyMetadata: { KeyId: 'k', Arn: KEY_A, KeyState: 'Enabled' } });
    mock.on(CreateAliasCommand).resolves({});
    mock.on(EnableKeyRotationCommand).resolves({});
    await expect(handler({ orgId: ORG_A })).resolves.toEqual({
      ok: true,
      keyArn: KEY_A,
      source: 'managed',
      created: true,
    });
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({
      event: 'tenant_key.created',
      orgId: ORG_A,
      actorType: 'system',
      actorUserId: null,
    });
  });

  it('maps refusals to stable codes and statuses; unexpected errors fail the invocation', async () => {
    const { mock, handler } = setup();
    await expect(handler({ orgId: 'nope' })).resolves.toEqual({ ok: false, code: 'INVALID_REQUEST', status: 400 });
    await expect(handler({ orgId: ORG_A, extra: 1 })).resolves.toMatchObject({ code: 'INVALID_REQUEST' });
    await expect(handler({ orgId: ORG_A, externalKeyArn: 'alias/x' })).resolves.toMatchObject({
      code: 'INVALID_REQUEST',
      status: 400,
    });
    mock.on(DescribeKeyCommand).resolves({ KeyMetadata: { KeyId: 'k', Arn: KEY_A, KeyState: 'PendingDeletion' } });
    await expect(handler({ orgId: ORG_A })).resolves.toEqual({ ok: false, code: 'KEY_PENDING_DELETION', status: 409 });
    mock.on(DescribeKeyCommand).rejects(named('AccessDeniedException'));
    await expect(handler({ orgId: ORG_A })).rejects.toThrow('AccessDeniedException');
  });

  it('validates the environment at cold start, naming variables, never values', () => {
    expect(() => provisionerFromEnv({ ...ENV, ACCOUNT_ID: 'secret-ish' })).toThrow(ConfigurationError);
    expect(() => provisionerFromEnv({ ...ENV, ACCOUNT_ID: 'secret-ish' })).not.toThrow(/secret-ish/);
    expect(() => provisionerFromEnv({ ...ENV, DB_HOST: undefined })).toThrow(/DB_HOST/);
  });
});

describe('lifecycle handler', () => {
  const exportsWith = (r: { done: number; failed: number }) =>
    ({ processPending: async () => r }) as unknown as ExportService;
  const processorWith = (failed: number) =>
    ({
      run: async () => ({
        advanced: [{ orgId: ORG_A, to: 'grace' }],
        failed: Array.from({ length: failed }, () => ({ orgId: ORG_A, error: 'S3ServiceException' })),
      }),
    }) as unknown as LifecycleProcessor;

  it('returns counts when everything succeeded', async () => {
    const log = new RecordingLog();
    await expect(makeLifecycleHandler(processorWith(0), exportsWith({ done: 2, failed: 0 }), log)()).resolves.toEqual({
      advanced: 1,
      lifecycleFailures: 0,
      exported: 2,
      exportFailures: 0,
    });
    expect(log.entries).toEqual([
      {
        level: 'info',
        message: 'lifecycle run',
        fields: { advanced: 1, lifecycleFailures: 0, exported: 2, exportFailures: 0, errors: '' },
      },
    ]);
    expect(JSON.stringify(log.entries)).not.toContain(ORG_A);
  });

  it('fails the invocation (so the alarm fires) when any tenant or export failed', async () => {
    const log = new RecordingLog();
    await expect(makeLifecycleHandler(processorWith(1), exportsWith({ done: 0, failed: 0 }), log)()).rejects.toThrow(
      LifecycleRunFailed,
    );
    await expect(makeLifecycleHandler(processorWith(0), exportsWith({ done: 0, failed: 1 }), log)()).rejects.toThrow(
      /LIFECYCLE_RUN_FAILED/,
    );
    // Error names only, at error level; never the tenant.
    expect(log.entries.map((e) => [e.level, e.fields['errors']])).toEqual([
      ['error', 'S3ServiceException'],
      ['error', ''],
    ]);
    expect(JSON.stringify(log.entries)).not.toContain(ORG_A);
  });
});
