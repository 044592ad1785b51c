/**
 * System audit events (migration 0301, lambda/audit/pg-system-sink.ts) against a real PostgreSQL 17,
 * connected as the application role with no tenant context, exactly as the tenant-keys functions run.
 * The superuser and the migrator appear only for setup and for the owner-side checks.
 */
import { randomUUID } from 'node:crypto';
import type { Client, Pool } from 'pg';
import { buildChain, link, type AuditRecord } from '../../lambda/audit/chain';
import { encodeCsv } from '../../lambda/audit/formats';
import { AUDIT_COLUMNS, AuditError, PgAuditSink, recordValues, rowToRecord } from '../../lambda/audit/pg-sink';
import { PgSystemAuditSink, appendSystemAuditEvent } from '../../lambda/audit/pg-system-sink';
import { verifyFiles } from '../../lambda/audit/verify';
import type { AuditEvent } from '../../lambda/shared/audit';
import { MIGRATOR_ROLE, startPostgres, type TestPostgres } from '../support/postgres';
import { asTenant, buildWorld, proving, type World } from '../tenant-guard/fixtures';
import { defined } from '../support/defined';
import { DATABASE_ROLES } from '../../contracts/database';

let pg: TestPostgres;
let w: World;
let pool: Pool;
let systemPool: Pool;

beforeAll(async () => {
  pg = await startPostgres();
  w = await buildWorld(pg);
  pool = pg.pool();
  pool.on('error', () => undefined); // connections closed by the server at teardown
  // System events come from the tenant-keys functions, each with its own role (migrations/0401).
  systemPool = pg.pool(DATABASE_ROLES.lifecycle);
  systemPool.on('error', () => undefined);
});
afterAll(async () => pg?.stop());

const FUNCTIONS = ['append_system_audit_event', 'system_audit_head'];

function systemEvent(org: string, overrides: Partial<AuditEvent> = {}): AuditEvent {
  return {
    orgId: org,
    actorType: 'system',
    actorUserId: null,
    actorEmail: null,
    event: 'tenant.grace_started',
    entityType: 'organisation',
    entityId: org,
    ip: null,
    userAgent: null,
    supportGrantId: null,
    metadata: { graceEndsAt: '2026-12-22T00:00:00.000Z', note: 'ünïcödé, "quoted"' },
    occurredAt: new Date(),
    ...overrides,
  };
}

function userEvent(org: string, user: string, overrides: Partial<AuditEvent> = {}): AuditEvent {
  return {
    ...systemEvent(org),
    actorType: 'user',
    actorUserId: user,
    actorEmail: 'owner@dealer.example',
    event: 'lead.updated',
    entityType: 'lead',
    entityId: randomUUID(),
    ip: '203.0.113.7',
    userAgent: 'Mozilla/5.0',
    ...overrides,
  };
}

/** The organisation's chain as its Owner reads it through RLS. */
async function readChain(org: string, owner: string): Promise<AuditRecord[]> {
  const c = await pg.client();
  try {
    return await asTenant(c, owner, org, async () =>
      (await c.query(`SELECT ${AUDIT_COLUMNS} FROM audit_log WHERE org_id = $1 ORDER BY seq`, [org])).rows.map(
        rowToRecord,
      ),
    );
  } finally {
    await c.end();
  }
}

function verify(chain: readonly AuditRecord[]) {
  return verifyFiles([{ name: 'chain.csv', bytes: Buffer.from(encodeCsv(chain)) }]);
}

async function failure(p: Promise<unknown>): Promise<{ code?: string; message?: string; cause?: { code?: string } }> {
  return p.then(
    () => ({ code: 'RESOLVED' }),
    (e: unknown) => e as { code?: string; message?: string },
  );
}

/** Calls the append function directly (as a compromised application would), bypassing the sink. */
async function appendDirect(c: Client, r: AuditRecord): Promise<unknown> {
  return c.query(
    'SELECT app.append_system_audit_event($2, $1, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)',
    recordValues(r),
  );
}

/** A correctly linked record for `org`'s current head, with `overrides` hashed in. */
async function nextRecord(c: Client, org: string, overrides: Partial<AuditEvent> = {}): Promise<AuditRecord> {
  const head = defined((await c.query('SELECT seq, hash FROM app.system_audit_head($1)', [org])).rows[0]);
  return link({ seq: Number(head['seq']), hash: String(head['hash']) }, systemEvent(org, overrides));
}

describe('system audit events in PostgreSQL', () => {
  it('a system event extends the organisation’s one chain, between user events, and the whole chain verifies', async () => {
    const user = proving(new PgAuditSink({ pool }));
    const system = new PgSystemAuditSink({ pool: systemPool });
    await user.record(userEvent(w.storeA, w.ownerA));
    await system.record(systemEvent(w.storeA));
    await user.record(userEvent(w.storeA, w.ownerA, { event: 'lead.deleted' }));
    await system.record(systemEvent(w.storeA, { event: 'tenant.rows_deleted', metadata: { rows: 6 } }));
    await system.record(systemEvent(w.storeA, { event: 'tenant_key.deletion_scheduled', entityType: 'tenant_key' }));

    const chain = await readChain(w.storeA, w.ownerA);
    expect(chain.map((r) => [r.seq, r.actorType, r.event])).toEqual([
      [1, 'user', 'lead.updated'],
      [2, 'system', 'tenant.grace_started'],
      [3, 'user', 'lead.deleted'],
      [4, 'system', 'tenant.rows_deleted'],
      [5, 'system', 'tenant_key.deletion_scheduled'],
    ]);
    chain.forEach((r, i) => expect(r.prevHash).toBe(i === 0 ? '0'.repeat(64) : defined(chain[i - 1]).hash));
    const report = verify(chain);
    expect(report.problems).toEqual([]);
    expect(report.chains.map((c) => c.records)).toEqual([5]);
    // The verifier would notice a forged system row: change one byte of one system record.
    const forged = chain.map((r) => (r.seq === 4 ? { ...r, metadata: { rows: 7 } } : r));
    expect(verify(forged).problems.length).toBeGreaterThan(0);
  });

  it('needs no tenant context, and commits or rolls back with the caller’s transaction', async () => {
    const before = (await readChain(w.storeC, w.ownerC)).length;
    const c = await pg.client(DATABASE_ROLES.lifecycle);
    try {
      await c.query('BEGIN');
      await new PgSystemAuditSink({ pool: systemPool }).record(systemEvent(w.storeC), c);
      await c.query('ROLLBACK');
      expect(await readChain(w.storeC, w.ownerC)).toHaveLength(before);
      await c.query('BEGIN');
      const r = await appendSystemAuditEvent(c, systemEvent(w.storeC, { event: 'tenant.export_completed' }));
      await c.query('COMMIT');
      const chain = await readChain(w.storeC, w.ownerC);
      expect(chain).toHaveLength(before + 1);
      expect(chain[chain.length - 1]).toEqual(r);
    } finally {
      await c.end();
    }
  });

  it('the sink refuses non-system events before taking a connection', async () => {
    const connect = jest.fn();
    const sink = new PgSystemAuditSink({ pool: { connect } });
    for (const bad of [
      systemEvent(w.storeA, { actorType: 'user' }),
      systemEvent(w.storeA, { actorType: 'support_grant', supportGrantId: randomUUID() }),
      systemEvent(w.storeA, { actorUserId: w.ownerA }),
      systemEvent(w.storeA, { actorEmail: 'a@b.example' }),
      systemEvent(w.storeA, { ip: '203.0.113.1' }),
      systemEvent(w.storeA, { userAgent: 'curl' }),
      systemEvent('not-a-uuid'),
    ]) {
      await expect(sink.record(bad)).rejects.toMatchObject({ name: 'AuditError', code: 'AUDIT_EVENT_INVALID' });
    }
    expect(connect).not.toHaveBeenCalled();
  });

  it('the database refuses, whoever calls: a non-system actor, a person, a name outside the namespace, a back-dated event', async () => {
    const before = await readChain(w.storeB, w.ownerB);
    const c = await pg.client(DATABASE_ROLES.lifecycle);
    try {
      const cases: Partial<AuditEvent>[] = [
        { actorType: 'user' },
        { actorType: 'api_key' },
        { actorUserId: w.ownerB },
        { actorEmail: 'owner@dealer.example' },
        { supportGrantId: randomUUID() },
        { ip: '203.0.113.9' },
        { userAgent: 'Mozilla/5.0' },
        { event: 'lead.deleted' }, // not a system event at all
        { event: 'tenant.cancelled' }, // an Owner's action: never by a system actor
        { event: 'tenant.restored' },
        { event: 'tenant.shredded_extra' }, // a list, not a prefix
        { occurredAt: new Date(Date.now() - 2 * 3_600_000) },
        { occurredAt: new Date(Date.now() + 3_600_000) },
      ];
      for (const overrides of cases) {
        await c.query('BEGIN');
        const e = await failure(appendDirect(c, await nextRecord(c, w.storeB, overrides)));
        await c.query('ROLLBACK');
        expect({ overrides, code: e.code, message: e.message }).toEqual({
          overrides,
          code: 'BW104',
          message: 'SYSTEM_AUDIT_REFUSED',
        });
      }
      // A correctly linked record whose hash is not the canonical hash of its columns (0404).
      for (const forge of [
        (r: AuditRecord) => ({ ...r, hash: 'f'.repeat(64) }),
        (r: AuditRecord) => ({ ...r, entityId: 'tampered' }),
        (r: AuditRecord) => ({ ...r, metadata: { ...r.metadata, extra: 1 } }),
      ]) {
        await c.query('BEGIN');
        const e = await failure(appendDirect(c, forge(await nextRecord(c, w.storeB))));
        await c.query('ROLLBACK');
        expect({ code: e.code, message: e.message }).toEqual({ code: 'BW104', message: 'SYSTEM_AUDIT_REFUSED' });
      }
      // Through the sink the same refusals surface as AuditError codes.
      const sink = new PgSystemAuditSink({ pool: systemPool });
      const outside = await failure(sink.record(systemEvent(w.storeB, { event: 'lead.deleted' })));
      expect(outside).toMatchObject({ code: 'AUDIT_EVENT_INVALID', cause: { code: 'BW104' } });
      expect(outside).toBeInstanceOf(AuditError);
    } finally {
      await c.end();
    }
    expect(await readChain(w.storeB, w.ownerB)).toEqual(before);
  });

  it('refuses a fork: a wrong seq or prev_hash, a replayed position; and an unknown organisation', async () => {
    const sink = new PgSystemAuditSink({ pool: systemPool });
    await sink.record(systemEvent(w.storeB));
    await sink.record(systemEvent(w.storeB, { event: 'tenant.objects_deleted' }));
    const before = await readChain(w.storeB, w.ownerB);
    const head = defined(before[before.length - 1]);
    const c = await pg.client(DATABASE_ROLES.lifecycle);
    try {
      const attempts: AuditRecord[] = [
        link({ seq: head.seq, hash: 'f'.repeat(64) }, systemEvent(w.storeB)), // right seq, wrong predecessor
        link({ seq: head.seq + 1, hash: head.hash }, systemEvent(w.storeB)), // skips a position
        link(defined(before[before.length - 2]), systemEvent(w.storeB)), // forks at the head's position
        link({ seq: 0, hash: '0'.repeat(64) }, systemEvent(w.storeB)), // re-starts the chain
      ];
      for (const r of attempts) {
        await c.query('BEGIN');
        const e = await failure(appendDirect(c, r));
        await c.query('ROLLBACK');
        expect({ seq: r.seq, code: e.code, message: e.message }).toEqual({
          seq: r.seq,
          code: 'BW101',
          message: 'AUDIT_CHAIN_BROKEN',
        });
      }
      const unknown = randomUUID();
      expect(await failure(c.query('SELECT * FROM app.system_audit_head($1)', [unknown]))).toMatchObject({
        code: 'BW105',
        message: 'AUDIT_ORG_UNKNOWN',
      });
      await c.query('BEGIN');
      const e = await failure(appendDirect(c, link({ seq: 0, hash: '0'.repeat(64) }, systemEvent(unknown))));
      await c.query('ROLLBACK');
      expect(e).toMatchObject({ code: 'BW105' });
      await expect(sink.record(systemEvent(unknown))).rejects.toMatchObject({ code: 'AUDIT_EVENT_INVALID' });
    } finally {
      await c.end();
    }
    expect(await readChain(w.storeB, w.ownerB)).toEqual(before);
  });

  it('concurrent system and user appends for one organisation serialise: no fork, every event lands', async () => {
    const system = new PgSystemAuditSink({ pool: systemPool });
    const user = proving(new PgAuditSink({ pool }));
    const before = (await readChain(w.storeB, w.ownerB)).length;
    await Promise.all([
      ...Array.from({ length: 30 }, (_, i) =>
        system.record(systemEvent(w.storeB, { event: 'tenant.export_failed', entityId: `s-${i}` })),
      ),
      ...Array.from({ length: 10 }, (_, i) => user.record(userEvent(w.storeB, w.ownerB, { entityId: `u-${i}` }))),
    ]);
    const chain = await readChain(w.storeB, w.ownerB);
    expect(chain.map((r) => r.seq)).toEqual(Array.from({ length: before + 40 }, (_, i) => i + 1));
    expect(new Set(chain.slice(before).map((r) => r.entityId)).size).toBe(40);
    expect(verify(chain).problems).toEqual([]);
  });

  it('UPDATE and DELETE of system rows stay refused, to the application and to the owner', async () => {
    await new PgSystemAuditSink({ pool: systemPool }).record(systemEvent(w.storeC));
    const app = await pg.client();
    const owner = await pg.client(MIGRATOR_ROLE);
    try {
      for (const sql of [
        "UPDATE audit_log SET event = 'tenant.restored' WHERE actor_type = 'system'",
        "DELETE FROM audit_log WHERE actor_type = 'system'",
      ]) {
        expect(await failure(app.query(sql))).toMatchObject({ code: '42501' });
        expect(await failure(owner.query(sql))).toMatchObject({ code: 'BW100', message: 'AUDIT_LOG_APPEND_ONLY' });
      }
    } finally {
      await app.end();
      await owner.end();
    }
  });

  it('the application role cannot INSERT a system row into audit_log itself (no INSERT privilege since 0404)', async () => {
    const c = await pg.client();
    const sys = await pg.client(DATABASE_ROLES.lifecycle);
    try {
      const r = await nextRecord(sys, w.storeC);
      await sys.end();
      await c.query('BEGIN');
      const e = await failure(
        c.query(
          `INSERT INTO audit_log (${AUDIT_COLUMNS}) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15)`,
          [
            r.seq,
            r.orgId,
            r.occurredAt,
            r.actorType,
            null,
            null,
            r.event,
            r.entityType,
            r.entityId,
            null,
            null,
            null,
            JSON.stringify(r.metadata),
            r.prevHash,
            r.hash,
          ],
        ),
      );
      await c.query('ROLLBACK');
      expect(e).toMatchObject({ code: '42501' });
      expect(e.message).toMatch(/permission denied for table audit_log/);
    } finally {
      await c.end();
    }
  });

  // Since 0411 the hash is the inserting definer code's to compute (the link trigger) or check
  // (append_system_audit_event); the owner could drop any policy on its own table, so a policy that
  // recomputed it guarded against nothing but those two paths' bugs, at twice the hashing cost.
  it('the owner’s insert policies admit only person rows, or person-less listed system rows', async () => {
    const owner = await pg.client(MIGRATOR_ROLE);
    try {
      const [user] = buildChain([userEvent(w.group, w.groupOwner)]);
      const [other] = buildChain([systemEvent(w.group, { event: 'lead.deleted' })]);
      const e = await failure(
        owner.query(
          `INSERT INTO audit_log (${AUDIT_COLUMNS}) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15)`,
          recordValues(defined(other)),
        ),
      );
      expect({ event: defined(other).event, code: e.code }).toEqual({ event: 'lead.deleted', code: '42501' });
      // A person row is admitted (what app_private.audit_link_pending inserts).
      await owner.query(
        `INSERT INTO audit_log (${AUDIT_COLUMNS}) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15)`,
        recordValues(defined(user)),
      );
      const policies = await owner.query(
        "SELECT policyname, cmd, roles::text[] AS roles FROM pg_policies WHERE tablename = 'audit_log' AND policyname = 'system_owner_append'",
      );
      expect(policies.rows).toEqual([{ policyname: 'system_owner_append', cmd: 'INSERT', roles: [MIGRATOR_ROLE] }]);
    } finally {
      await owner.end();
    }
  });

  it('catalog: owner-only SECURITY DEFINER with a pinned search_path; EXECUTE for bulwark_app, never PUBLIC', async () => {
    const c = await pg.client();
    try {
      const fns = await c.query(
        `SELECT p.proname, p.prosecdef, p.proconfig, pg_get_userbyid(p.proowner) AS owner,
                ARRAY(SELECT CASE a.grantee WHEN 0 THEN 'PUBLIC' ELSE pg_get_userbyid(a.grantee)::text END
                        FROM aclexplode(p.proacl) a WHERE a.privilege_type = 'EXECUTE' ORDER BY 1) AS executors
           FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
          WHERE n.nspname = 'app' AND p.proname = ANY ($1) ORDER BY p.proname`,
        [FUNCTIONS],
      );
      expect(fns.rows).toEqual(
        FUNCTIONS.map((proname) => ({
          proname,
          prosecdef: true,
          proconfig: ['search_path=pg_catalog, pg_temp'],
          owner: MIGRATOR_ROLE,
          executors: [DATABASE_ROLES.keyProvisioner, DATABASE_ROLES.lifecycle, MIGRATOR_ROLE].sort(),
        })),
      );
      // The namespace itself is the owner's: the application can neither read nor extend it.
      expect(await failure(c.query('SELECT * FROM app.system_audit_events'))).toMatchObject({ code: '42501' });
      expect(
        await failure(c.query("INSERT INTO app.system_audit_events VALUES ('lead.deleted', 'forged')")),
      ).toMatchObject({ code: '42501' });
    } finally {
      await c.end();
    }
    // A role granted nothing (what PUBLIC would give everyone) cannot call them.
    await pg.superuser('CREATE ROLE audit_probe_nobody NOLOGIN');
    const rows = (await pg.superuser(
      `SELECT p.proname, has_function_privilege('audit_probe_nobody', p.oid, 'EXECUTE') AS can
         FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
        WHERE n.nspname = 'app' AND p.proname = ANY ($1) ORDER BY p.proname`,
      [FUNCTIONS],
    )) as { proname: string; can: boolean }[];
    expect(rows).toEqual(FUNCTIONS.map((proname) => ({ proname, can: false })));
  });
});
