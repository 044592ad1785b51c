/**
 * Fair, scaled-out archiving against real PostgreSQL (migrations/0405), connected as the shipper's
 * own role: more organisations than one run's budget are all archived within a bounded number of
 * runs, longest-waiting first; concurrent workers never share a chain; the age the alarm watches is
 * the oldest unshipped record's.
 */
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { mockClient } from 'aws-sdk-client-mock';
import type { Pool } from 'pg';
import { buildChain, type AuditRecord } from '../../lambda/audit/chain';
import { PgShipperSource } from '../../lambda/audit/pg-shipper-source';
import { shipAuditLog, type ShipperConfig } from '../../lambda/audit/shipper';
import { DATABASE_ROLES } from '../../contracts/database';
import { startPostgres, type TestPostgres } from '../support/postgres';
import { defined } from '../support/defined';
import { sampleEvents } from './fixtures';

let pg: TestPostgres;
let shipper: Pool;
const s3 = mockClient(S3Client);
const CONFIG: ShipperConfig = {
  bucket: 'archive',
  kmsKeyArn: 'arn:aws:kms:eu-west-1:000000000000:key/k',
  retentionMonths: { pro: 12, business: 24, enterprise: 84 },
  batchSize: 100,
};

beforeAll(async () => {
  pg = await startPostgres();
  shipper = pg.pool(DATABASE_ROLES.auditShipper);
});
afterAll(async () => {
  s3.restore();
  await pg?.stop();
});
beforeEach(async () => {
  s3.reset();
  s3.on(PutObjectCommand).resolves({});
  // Each test starts from an empty archive and audit log (setup as the superuser only).
  await pg.superuser('ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_truncate');
  await pg.superuser('TRUNCATE app.audit_archive_lease, app.audit_archive_state, audit_log');
  await pg.superuser('ALTER TABLE audit_log ENABLE TRIGGER audit_log_no_truncate');
});

/** Creates `count` organisations, organisation i with `records` audit records recorded `oldest - i` minutes ago. */
async function organisations(count: number, records: number, oldest = count): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < count; i++) {
    const [row] = (await pg.superuser(
      "INSERT INTO organisations (kind, name, plan) VALUES ('store', $1, 'pro') RETURNING id",
      [`fair-${i}`],
    )) as { id: string }[];
    const id = defined(row).id;
    ids.push(id);
    await insertChain(buildChain(sampleEvents(id, records, i + 1)), `${oldest - i} minutes`);
  }
  return ids;
}

async function insertChain(chain: readonly AuditRecord[], ago: string): Promise<void> {
  await pg.superuser(
    `INSERT INTO audit_log (org_id, seq, occurred_at, actor_type, actor_user_id, actor_email, event, entity_type,
       entity_id, ip, user_agent, support_grant_id, metadata, prev_hash, hash, recorded_at)
     SELECT x.org_id, x.seq, x.occurred_at, x.actor_type, x.actor_user_id, x.actor_email, x.event, x.entity_type,
       x.entity_id, x.ip, x.user_agent, x.support_grant_id, x.metadata, x.prev_hash, x.hash, now() - $2::interval
       FROM jsonb_to_recordset($1::jsonb) AS x(org_id uuid, seq bigint, occurred_at timestamptz, actor_type text,
         actor_user_id text, actor_email text, event text, entity_type text, entity_id text, ip text,
         user_agent text, support_grant_id text, metadata jsonb, prev_hash text, hash text)`,
    [
      JSON.stringify(
        chain.map((r) => ({
          org_id: r.orgId,
          seq: r.seq,
          occurred_at: r.occurredAt.toISOString(),
          actor_type: r.actorType,
          actor_user_id: r.actorUserId,
          actor_email: r.actorEmail,
          event: r.event,
          entity_type: r.entityType,
          entity_id: r.entityId,
          ip: r.ip,
          user_agent: r.userAgent,
          support_grant_id: r.supportGrantId,
          metadata: r.metadata,
          prev_hash: r.prevHash,
          hash: r.hash,
        })),
      ),
      ago,
    ],
  );
}

function shippedOrganisations(): string[] {
  return s3.commandCalls(PutObjectCommand).map((c) => defined(defined(c.args[0].input.Metadata)['org-id']));
}

describe('fair archiving as bulwark_audit_shipper', () => {
  it('archives every organisation within a bounded number of runs, longest-waiting first', async () => {
    // 30 organisations with 3 records each; a run ships at most 4 batches (one organisation each).
    const ids = await organisations(30, 3);
    const source = new PgShipperSource(shipper);
    const config = { ...CONFIG, maxBatches: 4, claimSize: 3 };
    const served: string[][] = [];
    const ages: number[] = [];
    for (let run = 1; run <= 8; run++) {
      s3.resetHistory();
      const result = await shipAuditLog(new S3Client({}), source, config, { worker: `run-${run}` });
      expect(result.failed).toEqual([]);
      served.push(shippedOrganisations());
      ages.push(result.owed.oldestAgeSeconds);
      expect(result.owed.organisations).toBe(Math.max(0, 30 - 4 * run));
    }
    // Oldest first: run k ships organisations 4(k-1) .. 4k-1, each exactly once; after 8 runs, all.
    expect(served).toEqual(Array.from({ length: 8 }, (_, k) => ids.slice(4 * k, 4 * k + 4)));
    expect(new Set(served.flat()).size).toBe(30);
    // The age after run k is that of organisation 4k's records: (30 - 4k) minutes, by the database's clock.
    for (const [k, age] of ages.slice(0, 7).entries()) {
      const minutes = 30 - 4 * (k + 1);
      expect(age).toBeGreaterThanOrEqual(minutes * 60);
      expect(age).toBeLessThan(minutes * 60 + 60);
    }
    expect(ages[7]).toBe(0);
    expect(await source.backlog()).toMatchObject({ organisations: 0, oldestAt: null });
  });

  it('an organisation with a large backlog is shipped over several runs without holding up the others', async () => {
    const [big] = await organisations(1, 450, 60);
    const others = await organisations(6, 2);
    const source = new PgShipperSource(shipper);
    // 100 records a batch, 2 batches per organisation per run, 6 batches a run.
    const config = { ...CONFIG, maxBatches: 6, maxBatchesPerOrganisation: 2 };
    const first = await shipAuditLog(new S3Client({}), source, config, { worker: 'run-1' });
    expect(first).toMatchObject({ batches: 6, records: 200 + 4 * 2, organisations: 5 });
    expect(shippedOrganisations()).toEqual([big, big, ...others.slice(0, 4)]);
    s3.resetHistory();
    const second = await shipAuditLog(new S3Client({}), source, config, { worker: 'run-2' });
    // The big organisation is still the longest waiting; the last two small ones follow it.
    expect(shippedOrganisations()).toEqual([big, big, ...others.slice(4)]);
    expect(second.owed.organisations).toBe(1);
  });

  it('leases a chain to one worker at a time, so concurrent runs share nothing', async () => {
    const ids = await organisations(40, 2);
    const a = new PgShipperSource(pg.pool(DATABASE_ROLES.auditShipper));
    const b = new PgShipperSource(pg.pool(DATABASE_ROLES.auditShipper));
    // Worker A's claim still in flight (its transaction open) while worker B claims: B passes over
    // the organisations A is taking instead of waiting for them or colliding.
    const inFlight = await pg.client(DATABASE_ROLES.auditShipper);
    await inFlight.query('BEGIN');
    const claimedA = (await new PgShipperSource(inFlight).claim('worker-a', 25)).map((c) => c.orgId);
    // Locks on exactly the organisations it leases, not on every candidate.
    expect(
      await pg.superuser("SELECT count(*)::int AS n FROM pg_locks WHERE locktype = 'advisory' AND classid = 405"),
    ).toEqual([{ n: 25 }]);
    const claimedB = (await b.claim('worker-b', 25)).map((c) => c.orgId);
    await inFlight.query('COMMIT');
    await inFlight.end();
    expect(claimedA).toEqual(ids.slice(0, 25));
    expect(claimedB).toEqual(ids.slice(25));
    // A worker's own live leases are skipped too (one lease per run), and released ones come back.
    expect(await a.claim('worker-a', 25)).toEqual([]);
    await a.release('worker-a');
    expect((await b.claim('worker-b', 100)).map((c) => c.orgId).sort()).toEqual([...claimedA].sort());
    // An expired lease (a crashed worker's) can be taken over.
    await pg.superuser("UPDATE app.audit_archive_lease SET leased_until = now() - interval '1 second'");
    expect(await a.claim('worker-c', 100)).toHaveLength(40);
    await a.release('worker-c');

    // Two whole runs at once ship every chain exactly once.
    s3.resetHistory();
    const runs = await Promise.all([
      shipAuditLog(new S3Client({}), a, CONFIG, { worker: 'run-a' }),
      shipAuditLog(new S3Client({}), b, CONFIG, { worker: 'run-b' }),
    ]);
    expect(runs.map((r) => r.failed)).toEqual([[], []]);
    expect(shippedOrganisations().sort()).toEqual([...ids].sort());
    expect(runs[0].organisations + runs[1].organisations).toBe(40);
  });

  it('the lease table and the backlog helper stay out of reach of every role but the owner', async () => {
    await expect(shipper.query('SELECT * FROM app.audit_archive_lease')).rejects.toMatchObject({ code: '42501' });
    await expect(shipper.query('SELECT * FROM app.audit_archive_backlog()')).rejects.toMatchObject({ code: '42501' });
    const app = pg.pool(DATABASE_ROLES.app);
    await expect(app.query("SELECT * FROM app.audit_archive_claim('x', 10, 60)")).rejects.toMatchObject({
      code: '42501',
    });
    await expect(app.query('SELECT * FROM app.audit_archive_owed()')).rejects.toMatchObject({ code: '42501' });
  });
});
