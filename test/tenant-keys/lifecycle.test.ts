import fc from 'fast-check';
import { KMSClient, ListResourceTagsCommand, ScheduleKeyDeletionCommand, type Tag } from '@aws-sdk/client-kms';
import { mockClient } from 'aws-sdk-client-mock';
import type { AuditEvent, AuditSink } from '../../lambda/shared/audit';
import {
  GRACE_PERIOD_DAYS,
  LifecycleError,
  activeTenant,
  advance,
  cancel,
  hasAccess,
  restore,
  type Actor,
  type TenantLifecycle,
  type Transition,
} from '../../lambda/tenant-keys/lifecycle';
import { LifecycleProcessor, type LifecycleStore } from '../../lambda/tenant-keys/lifecycle-processor';
import { tenantKeyTags } from '../../lambda/tenant-keys/key-policy';
import type { TenantKeyRecord } from '../../lambda/tenant-keys/provisioner';
import { KEY_A, KEY_B, ORG_A, ORG_B } from './fake-kms';
import { defined } from '../support/defined';

const DAY = 86_400_000;
const T0 = new Date('2026-11-01T00:00:00Z');
const at = (days: number): Date => new Date(T0.getTime() + days * DAY);
const OWNER: Actor = { type: 'user', userId: '9f1c2d3e-4b5a-4c6d-8e7f-0a1b2c3d4e5f', email: 'owner@example.test' };

describe('lifecycle state machine (fake clock)', () => {
  it('active -> cancelled (access to the end of the billing period) -> grace (30 days) -> shredded', () => {
    const t0 = activeTenant(ORG_A);
    const c = cancel(t0, at(0), at(10), OWNER);
    expect(c.next).toMatchObject({ state: 'cancelled', accessUntil: at(10), cancelledAt: at(0) });
    expect(c.events.map((e) => [e.event, e.actorUserId, e.orgId])).toEqual([['tenant.cancelled', OWNER.userId, ORG_A]]);

    expect(hasAccess(c.next, at(9.99))).toBe(true);
    expect(advance(c.next, at(9.99))).toBeNull();

    const g = advance(c.next, at(10));
    expect(g?.next).toMatchObject({ state: 'grace', graceEndsAt: at(10 + GRACE_PERIOD_DAYS) });
    expect(g?.events.map((e) => e.event)).toEqual(['tenant.grace_started']);
    expect(g?.effects).toEqual([]);
    expect(hasAccess(defined(g).next, at(10))).toBe(false);

    expect(advance(defined(g).next, at(39.99))).toBeNull();
    const s = advance(defined(g).next, at(40));
    expect(s?.next).toMatchObject({ state: 'shredded', shreddedAt: at(40) });
    expect(s?.events.map((e) => [e.event, e.actorType])).toEqual([['tenant.shredded', 'system']]);
    expect(s?.effects.map((e) => e.kind)).toEqual(['delete_rows', 'delete_objects', 'schedule_key_deletion']);
    expect(advance(defined(s).next, at(1000))).toBeNull();
  });

  it('restores from cancelled and from grace; restoring cancels the shred', () => {
    const c = cancel(activeTenant(ORG_A), at(0), at(10), OWNER).next;
    expect(restore(c, at(5), OWNER).next).toEqual(activeTenant(ORG_A));
    const g = defined(advance(c, at(12))).next;
    const r = restore(g, at(39), OWNER);
    expect(r.next.state).toBe('active');
    expect(r.events.map((e) => [e.event, e.metadata])).toEqual([['tenant.restored', { from: 'grace' }]]);
    expect(advance(r.next, at(400))).toBeNull();
  });

  it('steps one at a time even when late; a grace period that has run out cannot be restored', () => {
    const c = cancel(activeTenant(ORG_A), at(0), at(10), OWNER).next;
    const first = advance(c, at(100));
    expect(first?.next).toMatchObject({ state: 'grace', graceEndsAt: at(40) });
    const second = advance(defined(first).next, at(100));
    expect(second?.next.state).toBe('shredded');
    expect([...defined(first).events, ...defined(second).events].map((e) => e.event)).toEqual([
      'tenant.grace_started',
      'tenant.shredded',
    ]);
    expect(() => restore(defined(first).next, at(40), OWNER)).toThrow(/grace period has ended/);
    expect(() => restore(defined(second).next, at(100), OWNER)).toThrow(
      expect.objectContaining({ code: 'ALREADY_SHREDDED' }),
    );
  });

  it('refuses invalid transitions', () => {
    const c = cancel(activeTenant(ORG_A), at(0), at(10), OWNER).next;
    expect(() => cancel(c, at(1), at(10), OWNER)).toThrow(LifecycleError);
    expect(() => cancel(activeTenant(ORG_A), at(5), at(4), OWNER)).toThrow(/in the past/);
    expect(() => restore(activeTenant(ORG_A), at(0), OWNER)).toThrow(/is active/);
  });

  it('never shreds before access end + 30 days, and shredded is terminal (property)', () => {
    type Op =
      { kind: 'cancel'; dt: number; period: number } | { kind: 'restore'; dt: number } | { kind: 'tick'; dt: number };
    const op = fc.oneof(
      fc.record({
        kind: fc.constant('cancel' as const),
        dt: fc.double({ min: 0, max: 20, noNaN: true }),
        period: fc.double({ min: 0, max: 31, noNaN: true }),
      }),
      fc.record({ kind: fc.constant('restore' as const), dt: fc.double({ min: 0, max: 20, noNaN: true }) }),
      fc.record({ kind: fc.constant('tick' as const), dt: fc.double({ min: 0, max: 40, noNaN: true }) }),
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 40 }), (ops: Op[]) => {
        let t: TenantLifecycle = activeTenant(ORG_A);
        let now = 0;
        let lastAccessEnd: number | null = null;
        for (const o of ops) {
          now += o.dt;
          const before = t.state;
          let tr: Transition | null = null;
          try {
            if (o.kind === 'cancel') tr = cancel(t, at(now), at(now + o.period), OWNER);
            else if (o.kind === 'restore') tr = restore(t, at(now), OWNER);
            else tr = advance(t, at(now));
          } catch (e) {
            expect(e).toBeInstanceOf(LifecycleError);
          }
          if (!tr) continue;
          expect(before).not.toBe('shredded');
          if (tr.next.state === 'cancelled') lastAccessEnd = defined(tr.next.accessUntil).getTime();
          if (tr.next.state === 'shredded') {
            expect(lastAccessEnd).not.toBeNull();
            expect(at(now).getTime()).toBeGreaterThanOrEqual(defined(lastAccessEnd) + GRACE_PERIOD_DAYS * DAY);
            expect(tr.effects).toHaveLength(3);
          } else {
            expect(tr.effects).toHaveLength(0);
          }
          // Every transition is audited.
          expect(tr.events.length).toBeGreaterThan(0);
          t = tr.next;
        }
      }),
      { numRuns: 300 },
    );
  });
});

class MemoryAudit implements AuditSink {
  readonly events: AuditEvent[] = [];
  async record(e: AuditEvent) {
    this.events.push(e);
  }
}

class MemoryLifecycleStore implements LifecycleStore {
  readonly tenants = new Map<string, TenantLifecycle>();
  readonly keys = new Map<string, TenantKeyRecord>();
  constructor(private readonly audit: AuditSink) {}
  async due(now: Date) {
    return [...this.tenants.values()].filter((t) => advance(t, now) !== null);
  }
  async commit(from: TenantLifecycle, tr: Transition) {
    if (this.tenants.get(from.orgId) !== from) return false;
    this.tenants.set(from.orgId, tr.next);
    for (const e of tr.events) await this.audit.record(e);
    return true;
  }
  async keyOf(orgId: string) {
    return this.keys.get(orgId) ?? null;
  }
}

function processorSetup() {
  let now = at(0);
  const audit = new MemoryAudit();
  const store = new MemoryLifecycleStore(audit);
  const client = new KMSClient({ region: 'eu-west-1' });
  const kms = mockClient(client);
  // Tags by key ARN, as KMS holds them; a key this role may not read (IAM matches the deployment and
  // tenant-class tags) answers AccessDeniedException, as IAM would.
  const tags = new Map<string, Tag[]>([[KEY_A, tenantKeyTags('prod-eu', ORG_A)]]);
  kms.on(ListResourceTagsCommand).callsFake((input: { KeyId: string }) => {
    const t = tags.get(input.KeyId);
    if (!t) throw Object.assign(new Error('denied'), { name: 'AccessDeniedException' });
    return { Tags: t, Truncated: false };
  });
  const erased: string[] = [];
  let failObjects = false;
  const processor = new LifecycleProcessor({
    deployment: 'prod-eu',
    store,
    kms: client,
    audit,
    clock: () => now,
    rows: {
      deleteRows: async (org, andThen) => {
        erased.push(`rows:${org}`);
        await andThen(42, undefined);
        return 42;
      },
    },
    objects: {
      deleteObjects: async (org) => {
        if (failObjects) throw Object.assign(new Error('boom'), { name: 'S3ServiceException' });
        erased.push(`objects:${org}`);
        return 3;
      },
    },
  });
  return {
    audit,
    store,
    kms,
    tags,
    erased,
    processor,
    setNow: (d: Date) => (now = d),
    failObjects: (v: boolean) => (failObjects = v),
  };
}

describe('LifecycleProcessor', () => {
  it('moves due tenants, shreds after the grace period and schedules the key for deletion, auditing each step', async () => {
    const p = processorSetup();
    p.kms.on(ScheduleKeyDeletionCommand).resolves({ DeletionDate: at(47), KeyState: 'PendingDeletion' });
    p.store.tenants.set(ORG_A, cancel(activeTenant(ORG_A), at(0), at(10), OWNER).next);
    p.store.tenants.set(ORG_B, activeTenant(ORG_B));
    p.store.keys.set(ORG_A, { keyArn: KEY_A, source: 'managed' });

    p.setNow(at(5));
    expect(await p.processor.run()).toEqual({ advanced: [], failed: [] });
    p.setNow(at(10));
    expect(await p.processor.run()).toEqual({ advanced: [{ orgId: ORG_A, to: 'grace' }], failed: [] });
    expect(p.erased).toEqual([]);
    p.setNow(at(40));
    expect(await p.processor.run()).toEqual({ advanced: [{ orgId: ORG_A, to: 'shredded' }], failed: [] });
    expect(p.erased).toEqual([`rows:${ORG_A}`, `objects:${ORG_A}`]);
    expect(p.kms.commandCalls(ListResourceTagsCommand)[0]?.args[0].input).toEqual({ KeyId: KEY_A });
    expect(p.kms.commandCalls(ScheduleKeyDeletionCommand)[0]?.args[0].input).toEqual({
      KeyId: KEY_A,
      PendingWindowInDays: 7,
    });
    expect(p.audit.events.map((e) => e.event)).toEqual([
      'tenant.grace_started',
      'tenant.rows_deleted',
      'tenant.objects_deleted',
      'tenant_key.deletion_scheduled',
      'tenant.shredded',
    ]);
    expect(p.audit.events.every((e) => e.orgId === ORG_A)).toBe(true);
    expect(p.store.tenants.get(ORG_B)?.state).toBe('active');
  });

  it('a failed step leaves the tenant in grace; the next run completes the shred idempotently', async () => {
    const p = processorSetup();
    p.store.tenants.set(ORG_A, defined(advance(cancel(activeTenant(ORG_A), at(0), at(0), OWNER).next, at(0))).next);
    p.store.keys.set(ORG_A, { keyArn: KEY_A, source: 'managed' });
    p.setNow(at(31));
    p.failObjects(true);
    expect(await p.processor.run()).toEqual({ advanced: [], failed: [{ orgId: ORG_A, error: 'S3ServiceException' }] });
    expect(p.store.tenants.get(ORG_A)?.state).toBe('grace');
    expect(p.kms.commandCalls(ScheduleKeyDeletionCommand)).toHaveLength(0);

    p.failObjects(false);
    // The key was already scheduled by an earlier attempt that died before committing.
    p.kms
      .on(ScheduleKeyDeletionCommand)
      .rejects(Object.assign(new Error('pending'), { name: 'KMSInvalidStateException' }));
    expect(await p.processor.run()).toEqual({ advanced: [{ orgId: ORG_A, to: 'shredded' }], failed: [] });
    expect(p.store.tenants.get(ORG_A)?.state).toBe('shredded');
  });

  it('a late run commits both owed steps, one after the other', async () => {
    const p = processorSetup();
    p.kms.on(ScheduleKeyDeletionCommand).resolves({});
    p.store.tenants.set(ORG_A, cancel(activeTenant(ORG_A), at(0), at(10), OWNER).next);
    p.setNow(at(45));
    expect(await p.processor.run()).toEqual({
      advanced: [
        { orgId: ORG_A, to: 'grace' },
        { orgId: ORG_A, to: 'shredded' },
      ],
      failed: [],
    });
    // No key recorded: nothing to schedule, and that too is on the record.
    expect(p.kms.commandCalls(ScheduleKeyDeletionCommand)).toHaveLength(0);
    expect(p.audit.events.map((e) => e.event)).toContain('tenant_key.none_to_delete');
  });

  it('schedules deletion of a bring-your-own key like any other, once its tags name the tenant', async () => {
    const p = processorSetup();
    p.kms.on(ScheduleKeyDeletionCommand).resolves({ KeyState: 'PendingDeletion' });
    p.store.tenants.set(ORG_A, defined(advance(cancel(activeTenant(ORG_A), at(0), at(0), OWNER).next, at(0))).next);
    p.store.keys.set(ORG_A, { keyArn: KEY_A, source: 'byok' });
    p.setNow(at(30));
    expect(await p.processor.run()).toEqual({ advanced: [{ orgId: ORG_A, to: 'shredded' }], failed: [] });
    expect(p.kms.commandCalls(ScheduleKeyDeletionCommand).map((c) => c.args[0].input.KeyId)).toEqual([KEY_A]);
    expect(p.audit.events.find((e) => e.event === 'tenant_key.deletion_scheduled')?.metadata).toMatchObject({
      keyArn: KEY_A,
      source: 'byok',
    });
    expect(p.audit.events.map((e) => e.event)).not.toContain('tenant_key.byok_released');
  });

  describe('refuses to delete a recorded key that is not the tenant key of this tenant', () => {
    const cases: [string, Tag[] | undefined][] = [
      ["another tenant's key", tenantKeyTags('prod-eu', ORG_B)],
      [
        'a platform key',
        [
          { TagKey: 'bulwark:deployment', TagValue: 'prod-eu' },
          { TagKey: 'bulwark:key-class', TagValue: 'platform' },
        ],
      ],
      ["another deployment's key", tenantKeyTags('prod-ap-south-1', ORG_A)],
      ['a key with no tags', []],
      ['a key whose tags IAM does not let the lifecycle read', undefined],
    ];
    it.each(cases)('%s', async (_name, keyTags) => {
      const p = processorSetup();
      p.kms.on(ScheduleKeyDeletionCommand).resolves({});
      if (keyTags) p.tags.set(KEY_B, keyTags);
      p.store.tenants.set(ORG_A, advance(cancel(activeTenant(ORG_A), at(0), at(0), OWNER).next, at(0))!.next);
      p.store.keys.set(ORG_A, { keyArn: KEY_B, source: 'managed' });
      p.setNow(at(30));
      expect(await p.processor.run()).toEqual({
        advanced: [],
        failed: [{ orgId: ORG_A, error: 'KEY_OWNERSHIP_MISMATCH' }],
      });
      expect(p.kms.commandCalls(ScheduleKeyDeletionCommand)).toHaveLength(0);
      // Not shredded: the tenant stays in grace, and every run refuses again (and alarms) until fixed.
      expect(p.store.tenants.get(ORG_A)?.state).toBe('grace');
      const refused = p.audit.events.find((e) => e.event === 'tenant_key.deletion_refused');
      expect(refused).toMatchObject({ orgId: ORG_A, metadata: { keyArn: KEY_B, code: 'KEY_OWNERSHIP_MISMATCH' } });
      // Tag keys named, never their values.
      expect(JSON.stringify(refused?.metadata)).not.toContain(ORG_B);
    });
  });

  it('refuses a KMS pending window outside 7-30 days', () => {
    const client = new KMSClient({ region: 'eu-west-1' });
    const deps = {
      deployment: 'prod-eu',
      store: new MemoryLifecycleStore(new MemoryAudit()),
      kms: client,
      audit: new MemoryAudit(),
      clock: () => T0,
      rows: { deleteRows: async () => 0 },
      objects: { deleteObjects: async () => 0 },
    };
    expect(() => new LifecycleProcessor({ ...deps, keyPendingWindowDays: 6 })).toThrow(RangeError);
    expect(() => new LifecycleProcessor({ ...deps, keyPendingWindowDays: 31 })).toThrow(RangeError);
  });
});
