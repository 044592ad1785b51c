/**
 * The keyless-tenant sweep heals a backlog in bounded time: page after page while the invocation
 * has time, backing off with jitter when KMS throttles beyond the client's retries. KMS is
 * aws-sdk-client-mock; time and sleep are injected (no real waiting).
 */
import {
  CreateAliasCommand,
  CreateKeyCommand,
  DescribeKeyCommand,
  EnableKeyRotationCommand,
  KMSClient,
} from '@aws-sdk/client-kms';
import { mockClient } from 'aws-sdk-client-mock';
import type { AuditEvent, AuditSink } from '../../lambda/shared/audit';
import type { AndThen } from '../../lambda/tenant-keys/and-then';
import { TenantKeyProvisioner, type TenantKeyRecord, type TenantKeyStore } from '../../lambda/tenant-keys/provisioner';
import { sweepKeyless, type KeylessTenantSource } from '../../lambda/tenant-keys/reconcile';

const ACCOUNT = '111122223333';
const uuid = (n: number) => `00000000-0000-4000-8000-${n.toString(16).padStart(12, '0')}`;

function named(name: string): Error {
  const e = new Error(name);
  e.name = name;
  return e;
}

/** Tenants and their keys, with app.keyless_tenants' order (oldest first) and page limit. */
class Tenants implements TenantKeyStore, KeylessTenantSource {
  readonly rows = new Map<string, TenantKeyRecord | null>();
  pages = 0;
  constructor(count: number) {
    for (let i = 1; i <= count; i++) this.rows.set(uuid(i), null);
  }
  async keyless(limit: number): Promise<string[]> {
    this.pages++;
    return [...this.rows]
      .filter(([, k]) => k === null)
      .map(([id]) => id)
      .slice(0, Math.min(limit, 100));
  }
  async get(orgId: string) {
    return this.rows.get(orgId) ?? null;
  }
  async record(orgId: string, key: TenantKeyRecord, andThen: AndThen<TenantKeyRecord>) {
    await andThen(key, undefined);
    this.rows.set(orgId, key);
    return key;
  }
  get keyed(): number {
    return [...this.rows.values()].filter((k) => k !== null).length;
  }
}

const audit: AuditSink = { record: async (_e: AuditEvent) => undefined };

/** A provisioner over mocked KMS where every KMS call costs `msPerCall` of the invocation's time. */
function world(tenants: number, msPerCall = 50) {
  const client = new KMSClient({ region: 'eu-west-1' });
  const kms = mockClient(client);
  const store = new Tenants(tenants);
  let remaining = 300_000;
  const spend = () => (remaining -= msPerCall);
  let keys = 0;
  kms.on(DescribeKeyCommand).callsFake(() => {
    spend();
    throw named('NotFoundException');
  });
  kms.on(CreateKeyCommand).callsFake(() => {
    spend();
    const id = uuid(1_000_000 + ++keys);
    return {
      KeyMetadata: {
        KeyId: id,
        Arn: `arn:aws:kms:eu-west-1:${ACCOUNT}:key/${id}`,
        KeyState: 'Enabled',
        KeyManager: 'CUSTOMER',
      },
    };
  });
  kms.on(CreateAliasCommand).callsFake(() => (spend(), {}));
  kms.on(EnableKeyRotationCommand).callsFake(() => (spend(), {}));
  const provisioner = new TenantKeyProvisioner(
    { kms: client, store, audit, clock: () => new Date('2026-12-01T00:00:00Z') },
    { deployment: 'prod-eu', account: ACCOUNT, region: 'eu-west-1' },
  );
  const sleeps: number[] = [];
  const sleep = async (ms: number) => {
    sleeps.push(ms);
    remaining -= ms;
  };
  return { kms, store, provisioner, sleeps, sleep, remainingMs: () => remaining };
}

describe('keyless sweep', () => {
  it('heals a backlog of 250 tenants in one run, page after page, while time remains', async () => {
    const w = world(250);
    const summary = await sweepKeyless(w.provisioner, w.store, {
      remainingMs: w.remainingMs,
      sleep: w.sleep,
    });
    expect(summary).toEqual({ type: 'keyless_sweep', found: 250, provisioned: 250, throttled: 0, failed: [] });
    expect(w.store.keyed).toBe(250);
    // Three pages of at most 100, then an empty one that ends the run.
    expect(w.store.pages).toBe(4);
    expect(w.kms.commandCalls(CreateKeyCommand)).toHaveLength(250);
  });

  it('stops starting tenants before the invocation runs out, leaving the rest for the next run', async () => {
    // 4 KMS calls a tenant at 1 s each: 4 s a tenant; 300 s with 30 s in reserve gives 68 tenants.
    const w = world(250, 1000);
    const summary = await sweepKeyless(w.provisioner, w.store, { remainingMs: w.remainingMs, sleep: w.sleep });
    expect(summary).toMatchObject({ provisioned: 68, failed: [] });
    expect(w.store.keyed).toBe(68);
    const next = world(0);
    expect(await sweepKeyless(next.provisioner, next.store, { remainingMs: next.remainingMs })).toMatchObject({
      found: 0,
    });
  });

  it('backs off exponentially with full jitter when KMS throttles, then provisions the tenant', async () => {
    const w = world(3);
    let throttles = 3;
    w.kms.on(CreateKeyCommand).callsFake(() => {
      if (throttles-- > 0) throw named('ThrottlingException');
      const id = uuid(2_000_000 + throttles + 10);
      return {
        KeyMetadata: {
          KeyId: id,
          Arn: `arn:aws:kms:eu-west-1:${ACCOUNT}:key/${id}`,
          KeyState: 'Enabled',
          KeyManager: 'CUSTOMER',
        },
      };
    });
    const summary = await sweepKeyless(w.provisioner, w.store, {
      remainingMs: w.remainingMs,
      sleep: w.sleep,
      random: () => 0.5,
    });
    expect(summary).toEqual({ type: 'keyless_sweep', found: 3, provisioned: 3, throttled: 3, failed: [] });
    // Half of 1 s, 2 s, 4 s: the ceiling doubles per consecutive throttle.
    expect(w.sleeps).toEqual([500, 1000, 2000]);
  });

  it('gives up on a tenant still throttled after its backoffs, caps the wait, and goes on', async () => {
    const w = world(2);
    w.kms.on(CreateKeyCommand).rejects(named('ThrottlingException'));
    const summary = await sweepKeyless(w.provisioner, w.store, {
      remainingMs: w.remainingMs,
      sleep: w.sleep,
      random: () => 0.999,
      maxBackoffs: 6,
      backoffMaxMs: 8000,
    });
    expect(summary.failed).toEqual([
      { orgId: uuid(1), error: 'ThrottlingException' },
      { orgId: uuid(2), error: 'ThrottlingException' },
    ]);
    expect(summary.throttled).toBe(12);
    expect(Math.max(...w.sleeps)).toBeLessThan(8000);
    expect(w.sleeps.slice(0, 4)).toEqual([999, 1998, 3996, 7992]);
  });

  it('fails a refused tenant once without retrying it, and still heals the others', async () => {
    const w = world(150);
    const refused = uuid(7);
    w.kms.on(CreateKeyCommand).callsFake((input: { Tags?: { TagKey?: string; TagValue?: string }[] }) => {
      const org = input.Tags?.find((t) => t.TagKey === 'bulwark:org-id')?.TagValue;
      if (org === refused) throw named('AccessDeniedException');
      const id = uuid(3_000_000 + Number.parseInt(String(org).slice(-12), 16));
      return {
        KeyMetadata: {
          KeyId: id,
          Arn: `arn:aws:kms:eu-west-1:${ACCOUNT}:key/${id}`,
          KeyState: 'Enabled',
          KeyManager: 'CUSTOMER',
        },
      };
    });
    const summary = await sweepKeyless(w.provisioner, w.store, { remainingMs: w.remainingMs, sleep: w.sleep });
    expect(summary).toMatchObject({ found: 150, provisioned: 149, throttled: 0 });
    expect(summary.failed).toEqual([{ orgId: refused, error: 'AccessDeniedException' }]);
    expect(w.sleeps).toEqual([]);
    expect(
      w.kms.commandCalls(CreateKeyCommand).filter((c) => c.args[0].input.Tags?.some((t) => t.TagValue === refused)),
    ).toHaveLength(1);
  });

  it('without a clock, sweeps one page', async () => {
    const w = world(150);
    const summary = await sweepKeyless(w.provisioner, w.store);
    expect(summary).toMatchObject({ found: 100, provisioned: 100 });
    expect(w.store.pages).toBe(1);
  });
});
