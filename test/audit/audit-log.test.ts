import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { mockClient } from 'aws-sdk-client-mock';
import { Pool, type Client } from 'pg';
import { PgShipperSource } from '../../lambda/audit/pg-shipper-source';
import { shipAuditLog } from '../../lambda/audit/shipper';
import { buildChain, hashRecord } from '../../lambda/audit/chain';
import { exportAuditCsv, ExportError } from '../../lambda/audit/export';
import { encodeCsv } from '../../lambda/audit/formats';
import { AUDIT_COLUMNS, AuditError, PgAuditSink, appendAuditEvent, rowToRecord } from '../../lambda/audit/pg-sink';
import { verifyFiles } from '../../lambda/audit/verify';
import type { AuditEvent } from '../../lambda/shared/audit';
import { MIGRATOR_ROLE, startPostgres, type TestPostgres } from '../support/postgres';
import {
  asTenant,
  authenticateAs,
  buildWorld,
  createUser,
  emailOf,
  proving,
  ticketFor,
  type World,
} from '../tenant-guard/fixtures';
import { prng, sampleEvents } from './fixtures';
import { defined } from '../support/defined';

let pg: TestPostgres;
let w: World;
let member: string;

beforeAll(async () => {
  pg = await startPostgres();
  w = await buildWorld(pg);
  member = await createUser(pg);
  await pg.superuser("INSERT INTO memberships (org_id, user_id, role) VALUES ($1, $2, 'member')", [w.storeA, member]);
});
afterAll(async () => pg?.stop());

/**
 * A pool as the application role. At teardown the harness ends pools and then stops the server;
 * a pooled connection still closing then receives 57P01, which an unhandled pool 'error' event would
 * pin on whichever test happens to own that pool.
 */
function appPool(): Pool {
  const p = pg.pool();
  p.on('error', () => undefined);
  return p;
}

function event(org: string, user: string, overrides: Partial<AuditEvent> = {}): AuditEvent {
  return {
    ...defined(sampleEvents(org, 1)[0]),
    actorType: 'user',
    actorUserId: user,
    supportGrantId: null,
    ...overrides,
  };
}

async function readChain(org: string, user: string) {
  const c = await pg.client();
  try {
    return await asTenant(c, user, org, async () =>
      (await c.query(`SELECT ${AUDIT_COLUMNS} FROM audit_log WHERE org_id = $1 ORDER BY seq`, [org])).rows.map(
        rowToRecord,
      ),
    );
  } finally {
    await c.end();
  }
}

async function expectError(p: Promise<unknown>, code: string, message?: RegExp): Promise<void> {
  const e = (await p.then(
    () => undefined,
    (err: unknown) => err,
  )) as { code?: string; message?: string } | undefined;
  expect({ code: e?.code, message: e?.message }).toMatchObject({ code });
  if (message) expect(e?.message).toMatch(message);
}

describe('audit_log in PostgreSQL', () => {
  const sink = () => proving(new PgAuditSink({ pool: appPool() }));

  it('keeps one unbroken chain per organisation under concurrent writers', async () => {
    const s = sink();
    await Promise.all([
      ...Array.from({ length: 40 }, (_, i) => s.record(event(w.storeA, w.ownerA, { entityId: `a-${i}` }))),
      ...Array.from({ length: 20 }, (_, i) => s.record(event(w.storeB, w.ownerB, { entityId: `b-${i}` }))),
    ]);
    const a = await readChain(w.storeA, w.ownerA);
    const b = await readChain(w.storeB, w.ownerB);
    expect(a.map((r) => r.seq)).toEqual(Array.from({ length: 40 }, (_, i) => i + 1));
    expect(b).toHaveLength(20);
    // Read back from PostgreSQL, every row still hashes to what was computed before the insert.
    const report = verifyFiles([
      { name: 'a.csv', bytes: Buffer.from(encodeCsv(a)) },
      { name: 'b.csv', bytes: Buffer.from(encodeCsv(b)) },
    ]);
    expect(report.problems).toEqual([]);
    expect(report.chains.map((c) => c.records).sort()).toEqual([20, 40]);
  });

  it('records in the caller transaction, and rolls back with it', async () => {
    const c = await pg.client();
    try {
      const before = (await readChain(w.storeC, w.ownerC)).length;
      await asTenant(c, w.ownerC, w.storeC, () => sink().record(event(w.storeC, w.ownerC), c)); // rolled back
      expect(await readChain(w.storeC, w.ownerC)).toHaveLength(before);
      await c.query('BEGIN');
      await authenticateAs(c, w.ownerC, w.storeC);
      await c.query('SELECT 1 FROM app.set_tenant_context($1, $2)', [w.ownerC, w.storeC]);
      await sink().record(event(w.storeC, w.ownerC, { metadata: { when: new Date(0), skip: undefined } }), c);
      await c.query('COMMIT');
      const chain = await readChain(w.storeC, w.ownerC);
      expect(chain).toHaveLength(before + 1);
      expect(chain[chain.length - 1]?.metadata).toEqual({ when: '1970-01-01T00:00:00.000Z' });
    } finally {
      await c.end();
    }
  });

  it('refuses UPDATE, DELETE and TRUNCATE to the application role, inside a tenant context too', async () => {
    await sink().record(event(w.storeA, w.ownerA));
    const c = await pg.client();
    try {
      for (const sql of ["UPDATE audit_log SET event = 'lead.viewed'", 'DELETE FROM audit_log', 'TRUNCATE audit_log']) {
        await expectError(
          asTenant(c, w.ownerA, w.storeA, () => c.query(sql)),
          '42501',
          /permission denied/,
        );
      }
      const grants = await c.query(
        "SELECT privilege_type FROM information_schema.role_table_grants WHERE table_name = 'audit_log' AND grantee = 'bulwark_app' ORDER BY 1",
      );
      // Rows are appended only through app.append_audit_event (migrations/0404), never inserted directly.
      expect(grants.rows.map((r) => r['privilege_type'])).toEqual(['SELECT']);
    } finally {
      await c.end();
    }
  });

  it('refuses UPDATE, DELETE and TRUNCATE to the owner and even the superuser (trigger)', async () => {
    const owner: Client = await pg.client(MIGRATOR_ROLE);
    try {
      for (const sql of ["UPDATE audit_log SET event = 'lead.viewed'", 'DELETE FROM audit_log', 'TRUNCATE audit_log']) {
        await expectError(owner.query(sql), 'BW100', /AUDIT_LOG_APPEND_ONLY/);
        await expectError(pg.superuser(sql), 'BW100', /AUDIT_LOG_APPEND_ONLY/);
      }
    } finally {
      await owner.end();
    }
    expect((await readChain(w.storeA, w.ownerA)).length).toBeGreaterThan(0);
  });

  it('shows nothing across tenants, nothing without a context, and refuses writes into another tenant', async () => {
    const c = await pg.client();
    try {
      const seenByB = await asTenant(c, w.ownerB, w.storeB, async () =>
        (await c.query('SELECT org_id FROM audit_log')).rows.map((r) => r['org_id']),
      );
      expect(seenByB.length).toBeGreaterThan(0);
      expect(new Set(seenByB)).toEqual(new Set([w.storeB]));
      expect(
        await asTenant(
          c,
          w.ownerB,
          w.storeB,
          async () => (await c.query('SELECT count(*)::int AS n FROM audit_log WHERE org_id = $1', [w.storeA])).rows[0],
        ),
      ).toEqual({ n: 0 });
      expect((await c.query('SELECT count(*)::int AS n FROM audit_log')).rows[0]).toEqual({ n: 0 });
      await expectError(
        asTenant(c, w.ownerB, w.storeB, () => appendAuditEvent(c, event(w.storeA, w.ownerB))),
        'BW106',
        /AUDIT_EVENT_REFUSED/,
      );
      await expectError(appendAuditEvent(c, event(w.storeA, w.ownerA)), 'BW106');
    } finally {
      await c.end();
    }
  });

  it('refuses rows the API writes itself, and stamps the context’s support grant on what it appends', async () => {
    await sink().record(event(w.storeB, w.ownerB));
    const c = await pg.client();
    try {
      const [first] = buildChain([event(w.storeB, w.ownerB)]);
      for (const seq of [1, 999]) {
        await expectError(
          asTenant(c, w.ownerB, w.storeB, () =>
            c.query(
              `INSERT INTO audit_log (${AUDIT_COLUMNS}) VALUES ($4,$1,now(),'user',null,null,'lead.forged',null,null,null,null,null,'{}',$2,$3)`,
              [w.storeB, defined(first).prevHash, defined(first).hash, seq],
            ),
          ),
          '42501',
        );
      }

      // A read-only support grant cannot write tenant data, but its actions are still audited, and
      // the database stamps the grant and the engineer on them whatever the event claims.
      await c.query('BEGIN');
      await authenticateAs(c, w.support);
      const grant = defined(
        (
          await c.query(
            "SELECT id FROM app.open_support_grant($1, $2, 'customer ticket 42', interval '1 hour', 'read')",
            [w.support, w.storeB],
          )
        ).rows[0],
      )['id'] as string;
      await c.query('COMMIT');
      const viewed = event(w.storeB, w.ownerB, { actorType: 'user', actorEmail: 'owner@b.test', event: 'lead.viewed' });
      await c.query('BEGIN');
      await authenticateAs(c, w.support, w.storeB);
      await c.query('SELECT 1 FROM app.set_tenant_context($1, $2, $3)', [w.support, w.storeB, grant]);
      await appendAuditEvent(c, viewed);
      await c.query('COMMIT');
      const chain = await readChain(w.storeB, w.ownerB);
      expect(chain[chain.length - 1]).toMatchObject({
        event: 'lead.viewed',
        actorType: 'support_grant',
        actorUserId: w.support,
        actorEmail: emailOf(w.support),
        supportGrantId: grant,
      });
      expect(verifyFiles([{ name: 'b.csv', bytes: Buffer.from(encodeCsv(chain)) }]).problems).toEqual([]);
    } finally {
      await c.end();
    }
  });

  it('names the context’s actor and hashes in the database, so a forged actor, organisation or hash never lands', async () => {
    const c = await pg.client();
    try {
      await c.query('BEGIN');
      await authenticateAs(c, member, w.storeA);
      await c.query('SELECT 1 FROM app.set_tenant_context($1, $2)', [member, w.storeA]);
      // The function takes no actor and no hash at all; the event's claims are ignored.
      await appendAuditEvent(
        c,
        event(w.storeA, w.ownerA, { actorType: 'system', actorEmail: 'ceo@a.test', supportGrantId: w.storeB }),
      );
      for (const org of [w.storeB, w.storeC]) {
        await c.query('SAVEPOINT s');
        await expectError(
          c.query("SELECT app.append_audit_event($1, now(), 'lead.forged', null, null, null, null, '{}')", [org]),
          'BW106',
        );
        await c.query('ROLLBACK TO SAVEPOINT s');
      }
      await c.query('SAVEPOINT s');
      await expectError(
        c.query("SELECT app.append_audit_event($1, now(), 'lead.forged', null, null, null, null, '{\"n\": 1e400}')", [
          w.storeA,
        ]),
        'BW106',
      );
      await c.query('ROLLBACK TO SAVEPOINT s');
      // Neither the chain's lock row, the queue nor the canonical functions are reachable.
      for (const sql of [
        'SELECT * FROM app_private.audit_chain_locks FOR UPDATE',
        'SELECT * FROM app_private.audit_pending',
        `SELECT app_private.audit_hash($1, 1, $2, now(), 'user', null, null, 'lead.x', null, null, null, null, null, '{}')`,
      ]) {
        await c.query('SAVEPOINT s');
        await expectError(c.query(sql, sql.includes('$1') ? [w.storeA, '0'.repeat(64)] : []), '42501');
        await c.query('ROLLBACK TO SAVEPOINT s');
      }
      await c.query('COMMIT');
    } finally {
      await c.end();
    }
    const chain = await readChain(w.storeA, w.ownerA);
    expect(chain[chain.length - 1]).toMatchObject({
      actorType: 'user',
      actorUserId: member,
      actorEmail: emailOf(member),
      supportGrantId: null,
    });
    expect(verifyFiles([{ name: 'a.csv', bytes: Buffer.from(encodeCsv(chain)) }]).problems).toEqual([]);
  });

  it('hashes exactly as lambda/audit/chain.ts over any metadata, so the real verifier accepts every row', async () => {
    const [org, user] = [w.storeC, w.ownerC];
    const rnd = prng(14);
    const doubles = [0, -0, 1, -1, 0.1 + 0.2, 1e21, 1e-7, 123456789012345680000, 5e-324, Number.MAX_VALUE, 1e-6, 1e20];
    for (let i = 0; i < 40; i++) doubles.push((rnd() - 0.5) * 10 ** Math.floor(rnd() * 40 - 20));
    const strings = ['', 'a"b\\c', '\u2028\u2029', 'tab\tnew\nline\u0001\u001f\u007f', 'Zoë ✓ 🚗', '\ue000', '😀'];
    const metadata: Record<string, unknown>[] = [
      {},
      { numbers: doubles },
      { strings },
      // Keys sorted by UTF-16 code unit: U+E000 after an astral character's surrogates, unlike code points.
      { '\ue000': 1, '😀': 2, b: 3, B: 4, '': 5, aa: 6, a: 7 },
      { nested: { z: [1, { y: null, x: true }], a: { '\u0001x': false } }, deep: [[[]], {}] },
      ...doubles.map((d, i) => ({ [`k${i}`]: d })),
    ];
    const s = sink();
    for (const m of metadata) await s.record(event(org, user, { metadata: m }));
    const chain = await readChain(org, user);
    expect(chain.length).toBeGreaterThanOrEqual(metadata.length);
    for (const r of chain) expect(r.hash).toBe(hashRecord(r));
    expect(verifyFiles([{ name: 'c.csv', bytes: Buffer.from(encodeCsv(chain)) }]).problems).toEqual([]);
  });

  it('refuses an event without an acting user outside a transaction, with a stable code', async () => {
    await expect(sink().record(event(w.storeA, w.ownerA, { actorUserId: null, actorType: 'system' }))).rejects.toEqual(
      expect.objectContaining({ code: 'AUDIT_CONTEXT_REQUIRED' }),
    );
    await expect(sink().record(event('not-a-uuid', w.ownerA))).rejects.toBeInstanceOf(AuditError);
  });
});

describe('CSV export', () => {
  it('exports one organisation with filters, verifiably, and audits the export itself', async () => {
    const s = proving(new PgAuditSink({ pool: appPool() }));
    const t0 = Date.UTC(2026, 5, 1);
    for (let i = 0; i < 12; i++) {
      await s.record(
        event(w.storeC, w.ownerC, {
          event: i % 3 === 0 ? 'booking.state_changed' : 'lead.created',
          occurredAt: new Date(t0 + i * 60_000),
        }),
      );
    }
    const full = await exportAuditCsv(appPool(), { orgId: w.storeC, userId: w.ownerC, proof: ticketFor(w.ownerC) });
    expect(full.filtered).toBe(false);
    expect(verifyFiles([{ name: 'full.csv', bytes: Buffer.from(full.csv) }]).problems).toEqual([]);

    const filtered = await exportAuditCsv(appPool(), {
      orgId: w.storeC,
      userId: w.ownerC,
      proof: ticketFor(w.ownerC),
      from: new Date(t0 + 60_000),
      to: new Date(t0 + 10 * 60_000),
      events: ['booking.state_changed'],
      actorUserId: w.ownerC,
    });
    expect(filtered).toMatchObject({ rows: 3, filtered: true }); // minutes 3, 6, 9
    const bytes = Buffer.from(filtered.csv);
    expect(verifyFiles([{ name: 'f.csv', bytes }], { allowGaps: true }).problems).toEqual([]);

    const chain = await readChain(w.storeC, w.ownerC);
    const last = defined(chain[chain.length - 1]);
    expect(last).toMatchObject({ event: 'audit.exported', actorUserId: w.ownerC, entityType: 'audit_log' });
    expect(last.metadata).toMatchObject({ rows: 3, filters: { events: ['booking.state_changed'] } });
    expect(chain[chain.length - 2]).toMatchObject({ event: 'audit.exported', metadata: { rows: full.rows } });
  });

  it('refuses roles without the audit permission, and records nothing for them', async () => {
    const before = (await readChain(w.storeA, w.ownerA)).length;
    await expect(
      exportAuditCsv(appPool(), { orgId: w.storeA, userId: member, proof: ticketFor(member) }),
    ).rejects.toEqual(expect.objectContaining({ code: 'PERMISSION_DENIED', status: 403 }));
    await expect(
      exportAuditCsv(appPool(), { orgId: w.storeA, userId: w.ownerB, proof: ticketFor(w.ownerB) }),
    ).rejects.toMatchObject({
      code: 'BW002',
    });
    await expect(
      exportAuditCsv(appPool(), {
        orgId: w.storeA,
        userId: w.ownerA,
        proof: ticketFor(w.ownerA),
        from: new Date(2),
        to: new Date(1),
      }),
    ).rejects.toBeInstanceOf(ExportError);
    expect(await readChain(w.storeA, w.ownerA)).toHaveLength(before);
  });
});

describe('shipper database role', () => {
  it('ships every chain from PostgreSQL through owner-only functions the application role cannot call', async () => {
    const s = proving(new PgAuditSink({ pool: appPool() }));
    for (const [org, user] of [
      [w.storeA, w.ownerA],
      [w.storeB, w.ownerB],
      [w.storeC, w.ownerC],
    ] as const) {
      for (let i = 0; i < 9; i++) await s.record(event(org, user, { entityId: `ship-${i}` }));
    }
    await pg.superuser("ALTER ROLE bulwark_audit_shipper PASSWORD 'shipper-test-only'");
    await pg.superuser('GRANT USAGE ON SCHEMA app TO bulwark_audit_shipper');
    await pg.superuser(
      'GRANT EXECUTE ON FUNCTION app.audit_archive_read(uuid, bigint, integer), ' +
        'app.audit_archive_mark(uuid, bigint, text) TO bulwark_audit_shipper',
    );
    const pool = new Pool({
      host: '127.0.0.1',
      port: pg.port,
      database: pg.database,
      user: 'bulwark_audit_shipper',
      password: 'shipper-test-only',
    });
    pool.on('error', () => undefined);
    const s3 = mockClient(S3Client);
    s3.on(PutObjectCommand).resolves({});
    try {
      // The shipper role reads audit rows only through the functions, never the table itself.
      await expectError(pool.query('SELECT * FROM public.audit_log'), '42501');
      const source = new PgShipperSource(pool);
      const config = {
        bucket: 'archive',
        kmsKeyArn: 'arn:aws:kms:eu-west-1:000000000000:key/k',
        retentionMonths: { pro: 12, business: 24, enterprise: 84 },
        batchSize: 7,
        // One run ships every chain whole; fairness across runs is test/audit/archive-fairness.test.ts.
        maxBatchesPerOrganisation: 1000,
      };
      const result = await shipAuditLog(new S3Client({}), source, config, { worker: 'audit-log-test' });
      expect(result.failed).toEqual([]);
      const files = s3
        .commandCalls(PutObjectCommand)
        .map((c) => ({ name: defined(c.args[0].input.Key), bytes: Buffer.from(c.args[0].input.Body as string) }));
      const report = verifyFiles(files);
      expect(report.problems).toEqual([]);
      for (const [org, user] of [
        [w.storeA, w.ownerA],
        [w.storeB, w.ownerB],
        [w.storeC, w.ownerC],
      ] as const) {
        const chain = await readChain(org, user);
        expect(report.chains.find((c) => c.orgId === org)).toMatchObject({ records: chain.length });
      }
      // Pro store C gets 12 months, the business stores 24.
      const retention = Object.fromEntries(
        s3
          .commandCalls(PutObjectCommand)
          .map((c) => [defined(c.args[0].input.Metadata)['org-id'], defined(c.args[0].input.Metadata)['plan']]),
      );
      expect(retention).toMatchObject({ [w.storeC]: 'pro', [w.storeA]: 'business' });
      expect(await source.backlog()).toMatchObject({ organisations: 0, oldestAt: null });
      await expectError(source.markShipped(w.storeA, { seq: 1, hash: 'f'.repeat(64) }), 'BW103');

      const app = await pg.client();
      try {
        await expectError(app.query('SELECT * FROM app.audit_archive_owed()'), '42501');
      } finally {
        await app.end();
      }
    } finally {
      await pool.end();
      s3.restore();
    }
  });
});
