/**
 * Own-calls scoping (issue 16, migrations/0410) against a real PostgreSQL, connected as the tenant
 * API's own role: Members and Viewers reach only the calls they handled (and those calls'
 * recordings), Owners, Admins, support grants, oversight and the export all of the organisation's,
 * another tenant none; the same through the real API handler, with 404 for another agent's call
 * exactly as for a call that never existed. The last block weakens the policy and watches the
 * checks fail.
 */
import type { APIGatewayProxyEvent } from 'aws-lambda';
import type { Client, Pool } from 'pg';
import { randomUUID } from 'node:crypto';
import type { AuditEvent, AuditSink } from '../../lambda/shared/audit';
import { createApi } from '../../lambda/tenant-guard/api';
import { ROLES_READING_ALL_AGENTS } from '../../contracts/calls';
import { DATABASE_ROLES } from '../../contracts/database';
import { MIGRATOR_ROLE, startPostgres, type TestPostgres } from '../support/postgres';
import { RecordingLog } from '../support/observability';
import { defined } from '../support/defined';
import { agentScopedTables, catalogProblems } from './catalog';
import { asTenant, buildWorld, createUser, type World } from './fixtures';
import { proxyEvent, testIdentity, type TestIdentity } from './http';

class MemoryAuditSink implements AuditSink {
  public readonly events: AuditEvent[] = [];
  async record(event: AuditEvent): Promise<void> {
    this.events.push(event);
  }
}

let pg: TestPostgres;
let w: World;
let app: Client;
let migrator: Client;
let pool: Pool;
let audit: MemoryAuditSink;
let api: ReturnType<typeof createApi>;
let id: TestIdentity;

/** Store A's people and calls. */
const A = {
  admin: '',
  member: '',
  member2: '',
  viewer: '',
  clerk: '', // custom role holding calls:view only
  grant: '', // a `read` support grant on store A
  calls: {} as Record<'member' | 'member2' | 'viewer' | 'unassigned', string>,
  recordings: {} as Record<'member' | 'member2', string>,
  files: {} as Record<'member' | 'member2', string>,
};
let callOfB = '';

async function su<T>(sql: string, params: unknown[] = []): Promise<T[]> {
  return (await pg.superuser(sql, params)) as T[];
}

async function call(org: string, agent: string | null, carrier: string): Promise<string> {
  const r = await su<{ id: string }>(
    "INSERT INTO calls (org_id, agent_user_id, direction, from_number, to_number, started_at, carrier_call_id) VALUES ($1, $2, 'inbound', '+15550111', '+15550112', now() - interval '1 hour', $3) RETURNING id",
    [org, agent, carrier],
  );
  return defined(r[0]).id;
}

async function recording(org: string, callId: string, file: string | null): Promise<string> {
  const r = await su<{ id: string }>(
    "INSERT INTO call_recordings (org_id, call_id, file_id, content_type) VALUES ($1, $2, $3, 'audio/mpeg') RETURNING id",
    [org, callId, file],
  );
  return defined(r[0]).id;
}

beforeAll(async () => {
  pg = await startPostgres();
  w = await buildWorld(pg);
  app = await pg.client();
  migrator = await pg.client(MIGRATOR_ROLE);
  pool = pg.pool();
  pool.on('error', () => undefined);
  audit = new MemoryAuditSink();
  id = await testIdentity(pg);
  api = createApi({ db: pool, verify: id.verify, audit, logger: new RecordingLog() });

  A.admin = await createUser(pg);
  A.member = await createUser(pg);
  A.member2 = await createUser(pg);
  A.viewer = await createUser(pg);
  A.clerk = await createUser(pg);
  const role = await su<{ id: string }>(
    "INSERT INTO custom_roles (org_id, name, permissions) VALUES ($1, 'call clerk', ARRAY['calls:view']) RETURNING id",
    [w.storeA],
  );
  await su(
    `INSERT INTO memberships (org_id, user_id, role, custom_role_id) VALUES
       ($1, $2, 'admin', NULL), ($1, $3, 'member', NULL), ($1, $4, 'member', NULL), ($1, $5, 'viewer', NULL),
       ($1, $6, 'custom', $7)`,
    [w.storeA, A.admin, A.member, A.member2, A.viewer, A.clerk, defined(role[0]).id],
  );
  A.calls = {
    member: await call(w.storeA, A.member, 'a-1'),
    member2: await call(w.storeA, A.member2, 'a-2'),
    viewer: await call(w.storeA, A.viewer, 'a-3'),
    unassigned: await call(w.storeA, null, 'a-4'),
  };
  A.files = { member: randomUUID(), member2: randomUUID() };
  A.recordings = {
    member: await recording(w.storeA, A.calls.member, A.files.member),
    member2: await recording(w.storeA, A.calls.member2, A.files.member2),
  };
  callOfB = await call(w.storeB, w.ownerB, 'a-1');
  await recording(w.storeB, callOfB, randomUUID());
  const grant = await su<{ id: string }>(
    "INSERT INTO support_grants (org_id, granted_to, reason, scope, expires_at) VALUES ($1, $2, 'ticket 7: call quality', 'read', now() + interval '1 hour') RETURNING id",
    [w.storeA, w.support],
  );
  A.grant = defined(grant[0]).id;
});
afterAll(async () => {
  await app?.end();
  await migrator?.end();
  await pg?.stop();
});

const sorted = (ids: readonly string[]) => [...ids].sort();
const allOfA = () => sorted(Object.values(A.calls));

/** The call ids and recording ids `user` sees in `org`, as the API's role, rolled back. */
async function seen(user: string, org: string, grant: string | null = null) {
  return asTenant(
    app,
    user,
    org,
    async () => ({
      calls: sorted((await app.query<{ id: string }>('SELECT id FROM calls')).rows.map((r) => r.id)),
      recordings: sorted((await app.query<{ id: string }>('SELECT id FROM call_recordings')).rows.map((r) => r.id)),
    }),
    grant,
  );
}

/** Runs `sql` as `user` in store A, rolled back: rows affected or the SQLSTATE. */
async function attempt(user: string, sql: string, params: unknown[] = []): Promise<string> {
  return asTenant(app, user, w.storeA, () =>
    app.query(sql, params).then(
      (r) => `rows:${r.rowCount}`,
      (e: { code?: string }) => String(e.code),
    ),
  );
}

/**
 * Every way the own-calls rule can fail, as data: empty when the database holds it. The suite-bites
 * block runs it against weakened policies.
 */
async function ownCallsProblems(): Promise<string[]> {
  const problems: string[] = [];
  const check = (what: string, got: unknown, want: unknown) => {
    if (JSON.stringify(got) !== JSON.stringify(want)) problems.push(`${what}: ${JSON.stringify(got)}`);
  };
  const own = (callId: string, rec: string | null) => ({
    calls: [callId],
    recordings: rec ? [rec] : [],
  });
  check('member', await seen(A.member, w.storeA), own(A.calls.member, A.recordings.member));
  check('member2', await seen(A.member2, w.storeA), own(A.calls.member2, A.recordings.member2));
  check('viewer', await seen(A.viewer, w.storeA), own(A.calls.viewer, null));
  check('custom role', await seen(A.clerk, w.storeA), { calls: [], recordings: [] });
  const all = { calls: allOfA(), recordings: sorted(Object.values(A.recordings)) };
  check('owner', await seen(w.ownerA, w.storeA), all);
  check('admin', await seen(A.admin, w.storeA), all);
  check('read grant', await seen(w.support, w.storeA, A.grant), all);
  check('oversight (group Owner)', await seen(w.groupOwner, w.storeA), all);
  check('other tenant', (await seen(w.ownerB, w.storeB)).calls.includes(A.calls.member), false);
  // Writes: no stealing, no giving away, no attributing, no attaching to another agent's call.
  check(
    'member takes another agent’s call',
    await attempt(A.member, 'UPDATE calls SET agent_user_id = $1 WHERE id = $2', [A.member, A.calls.member2]),
    'rows:0',
  );
  check(
    'member takes an unassigned call',
    await attempt(A.member, 'UPDATE calls SET agent_user_id = $1 WHERE id = $2', [A.member, A.calls.unassigned]),
    'rows:0',
  );
  check(
    'member hands its call to another agent',
    await attempt(A.member, 'UPDATE calls SET agent_user_id = $1 WHERE id = $2', [A.member2, A.calls.member]),
    '42501',
  );
  check(
    'member logs a call as another agent',
    await attempt(
      A.member,
      "INSERT INTO calls (org_id, agent_user_id, direction, from_number, to_number) VALUES ($1, $2, 'outbound', '1', '2')",
      [w.storeA, A.member2],
    ),
    '42501',
  );
  check(
    'member attaches a recording to another agent’s call',
    await attempt(A.member, 'INSERT INTO call_recordings (org_id, call_id) VALUES ($1, $2)', [
      w.storeA,
      A.calls.member2,
    ]),
    '42501',
  );
  // Without a WHERE clause no SELECT policy joins in: the UPDATE policy alone must hold.
  check('member updates every call it can', await attempt(A.member, "UPDATE calls SET status = 'failed'"), 'rows:1');
  check(
    'member gives all its calls away',
    await attempt(A.member, 'UPDATE calls SET agent_user_id = $1', [A.member2]),
    '42501',
  );
  check(
    'member re-points another agent’s recording',
    await attempt(A.member, 'UPDATE call_recordings SET file_id = $1 WHERE id = $2', [
      randomUUID(),
      A.recordings.member2,
    ]),
    'rows:0',
  );
  return problems;
}

describe('own calls in the database, as the API role', () => {
  it('Members and Viewers see their own calls and recordings; Owners, Admins, support and oversight all; another tenant none', async () => {
    expect(await ownCallsProblems()).toEqual([]);
  });

  it('the rule is not vacuous: a Member logs, edits and records its own calls; the Admin reassigns any', async () => {
    expect(
      await attempt(
        A.member,
        "INSERT INTO calls (org_id, agent_user_id, direction, from_number, to_number) VALUES ($1, $2, 'outbound', '1', '2')",
        [w.storeA, A.member],
      ),
    ).toBe('rows:1');
    expect(await attempt(A.member, "UPDATE calls SET status = 'missed' WHERE id = $1", [A.calls.member])).toBe(
      'rows:1',
    );
    expect(
      await attempt(A.member, 'INSERT INTO call_recordings (org_id, call_id) VALUES ($1, $2)', [
        w.storeA,
        A.calls.member,
      ]),
    ).toBe('rows:1');
    expect(
      await attempt(A.admin, 'UPDATE calls SET agent_user_id = $1 WHERE id = $2', [A.member, A.calls.member2]),
    ).toBe('rows:1');
    // The Viewer's grid holds calls:view only: it logs nothing, not even its own.
    expect(
      await attempt(
        A.viewer,
        "INSERT INTO calls (org_id, agent_user_id, direction, from_number, to_number) VALUES ($1, $2, 'outbound', '1', '2')",
        [w.storeA, A.viewer],
      ),
    ).toBe('42501');
    // An agent is a member of the call's organisation (composite foreign key), never another tenant's user.
    expect(
      await attempt(w.ownerA, 'UPDATE calls SET agent_user_id = $1 WHERE id = $2', [w.ownerB, A.calls.unassigned]),
    ).toBe('23503');
  });

  it('the export reads every agent’s calls (an export is the whole tenant)', async () => {
    const exp = await su<{ id: string }>(
      'INSERT INTO tenant_exports (org_id, requested_by) VALUES ($1, $2) RETURNING id',
      [w.storeA, w.ownerA],
    );
    const lifecycle = await pg.client(DATABASE_ROLES.lifecycle);
    try {
      await lifecycle.query('BEGIN');
      await lifecycle.query('SELECT app.enter_export_context($1)', [defined(exp[0]).id]);
      const r = await lifecycle.query<{ id: string }>('SELECT id FROM calls');
      await lifecycle.query('ROLLBACK');
      expect(sorted(r.rows.map((x) => x.id))).toEqual(allOfA());
    } finally {
      await lifecycle.end();
    }
  });

  it('the roles reading every agent are one list, in TypeScript and in the database', async () => {
    const roles = ['owner', 'admin', 'member', 'viewer', 'custom', 'platform_support', 'export', 'nobody'];
    const r = await migrator.query<{ role: string; all: boolean }>(
      'SELECT r AS role, app.role_reads_all_agents(r) AS all FROM unnest($1::text[]) r',
      [roles],
    );
    expect(r.rows.filter((x) => x.all).map((x) => x.role)).toEqual([...ROLES_READING_ALL_AGENTS]);
  });

  it('the catalog finds the agent-scoped tables, calls and their recordings', async () => {
    expect(await agentScopedTables(app)).toEqual([
      { table: 'call_recordings', parent: 'calls' },
      { table: 'calls', parent: null },
    ]);
    expect(await catalogProblems(app)).toEqual([]);
  });
});

describe('own calls through the tenant API', () => {
  const event = (method: string, path: string, auth: string, body?: unknown, query?: Record<string, string>) =>
    ({
      ...proxyEvent(method, path, { auth, body }),
      queryStringParameters: query ?? null,
    }) as APIGatewayProxyEvent;
  async function send(
    user: string,
    method: string,
    path: string,
    o: { body?: unknown; query?: Record<string, string>; org?: string } = {},
  ) {
    const r = await api(event(method, path, await id.bearer(user, o.org ?? w.storeA), o.body, o.query));
    return { status: r.statusCode, body: JSON.parse(r.body) as Record<string, unknown> };
  }
  const ids = (body: Record<string, unknown>) => sorted((body['calls'] as { id: string }[]).map((c) => c.id));

  it('GET /calls: a Member and a Viewer list their own calls, the Owner and an Admin all, another tenant none', async () => {
    expect(ids((await send(A.member, 'GET', '/calls')).body)).toEqual([A.calls.member]);
    expect(ids((await send(A.viewer, 'GET', '/calls')).body)).toEqual([A.calls.viewer]);
    expect(ids((await send(A.admin, 'GET', '/calls')).body)).toEqual(allOfA());
    expect(ids((await send(w.ownerA, 'GET', '/calls')).body)).toEqual(allOfA());
    expect(ids((await send(w.ownerB, 'GET', '/calls', { org: w.storeB })).body)).toEqual([callOfB]);
  });

  it('GET /calls pages with an opaque cursor and refuses a forged one', async () => {
    const first = await send(w.ownerA, 'GET', '/calls', { query: { limit: '3' } });
    expect(first.status).toBe(200);
    expect((first.body['calls'] as unknown[]).length).toBe(3);
    const cursor = String(first.body['next_cursor']);
    const second = await send(w.ownerA, 'GET', '/calls', { query: { limit: '3', cursor } });
    expect(second.body['next_cursor']).toBeNull();
    expect(sorted([...ids(first.body), ...ids(second.body)])).toEqual(allOfA());
    expect(await send(w.ownerA, 'GET', '/calls', { query: { cursor: 'bm90LWEtY3Vyc29y' } })).toEqual({
      status: 400,
      body: { error: 'VALIDATION_FAILED', field: 'cursor' },
    });
    expect((await send(w.ownerA, 'GET', '/calls', { query: { limit: '0' } })).status).toBe(400);
  });

  it('GET /calls/{id}: another agent’s call answers exactly as a call that does not exist (404, no oracle)', async () => {
    const mine = await send(A.member, 'GET', `/calls/${A.calls.member}`);
    expect(mine.status).toBe(200);
    expect((mine.body['call'] as Record<string, unknown>)['agent_user_id']).toBe(A.member);
    const theirs = await send(A.member, 'GET', `/calls/${A.calls.member2}`);
    const none = await send(A.member, 'GET', `/calls/${randomUUID()}`);
    expect(theirs).toEqual({ status: 404, body: { error: 'NOT_FOUND' } });
    expect(theirs).toEqual(none);
    expect(await send(A.viewer, 'GET', `/calls/${A.calls.member}`)).toEqual(none);
    expect(await send(w.ownerB, 'GET', `/calls/${A.calls.member}`, { org: w.storeB })).toEqual(none);
    expect((await send(A.admin, 'GET', `/calls/${A.calls.member2}`)).status).toBe(200);
  });

  it('GET /calls/{id}/recording: the file id of one’s own call’s recording; RECORDING_MISSING only for a visible call', async () => {
    const mine = await send(A.member, 'GET', `/calls/${A.calls.member}/recording`);
    expect(mine.status).toBe(200);
    expect(mine.body['recording']).toMatchObject({ id: A.recordings.member, file_id: A.files.member });
    expect(
      audit.events.find((e) => e.event === 'call.recording_viewed' && e.entityId === A.calls.member),
    ).toBeDefined();
    expect(await send(A.member, 'GET', `/calls/${A.calls.member2}/recording`)).toEqual({
      status: 404,
      body: { error: 'NOT_FOUND' },
    });
    expect(await send(A.viewer, 'GET', `/calls/${A.calls.viewer}/recording`)).toEqual({
      status: 404,
      body: { error: 'RECORDING_MISSING' },
    });
    expect((await send(A.admin, 'GET', `/calls/${A.calls.member2}/recording`)).body['recording']).toMatchObject({
      file_id: A.files.member2,
    });
  });

  it('POST /calls: a Member logs its own call (audited), never another agent’s; an Admin any; a Viewer none', async () => {
    const body = {
      direction: 'outbound',
      from_number: '+15550199',
      to_number: '+15550198',
      started_at: new Date(Date.now() - 60_000).toISOString(),
      duration_seconds: 55,
    };
    const logged = await send(A.member, 'POST', '/calls', { body: { ...body, carrier_call_id: 'post-1' } });
    expect(logged.status).toBe(201);
    const created = logged.body['call'] as Record<string, unknown>;
    expect(created).toMatchObject({ agent_user_id: A.member, org_id: w.storeA, status: 'completed' });
    expect(audit.events.find((e) => e.event === 'call.created' && e.entityId === created['id'])).toMatchObject({
      orgId: w.storeA,
      actorUserId: A.member,
    });
    expect(await send(A.member, 'POST', '/calls', { body: { ...body, carrier_call_id: 'post-1' } })).toEqual({
      status: 409,
      body: { error: 'CALL_EXISTS', field: 'carrier_call_id' },
    });
    expect(await send(A.member, 'POST', '/calls', { body: { ...body, agent_user_id: A.member2 } })).toEqual({
      status: 403,
      body: { error: 'PERMISSION_DENIED' },
    });
    const forOther = await send(A.admin, 'POST', '/calls', { body: { ...body, agent_user_id: A.member2 } });
    expect(forOther.status).toBe(201);
    expect(
      (await send(A.member2, 'GET', `/calls/${String((forOther.body['call'] as { id: string }).id)}`)).status,
    ).toBe(200);
    expect(await send(A.viewer, 'POST', '/calls', { body })).toEqual({
      status: 403,
      body: { error: 'PERMISSION_DENIED' },
    });
    // Back to the calls the other tests expect.
    await su('DELETE FROM calls WHERE org_id = $1 AND NOT (id = ANY ($2::uuid[]))', [w.storeA, allOfA()]);
    expect((await send(A.member, 'POST', '/calls', { body: { ...body, started_at: 'yesterday' } })).body).toEqual({
      error: 'VALIDATION_FAILED',
      field: 'started_at',
    });
  });
});

describe('own calls for integrations', () => {
  it('an Admin’s API key records any agent’s call and reads all; the call is audited as the key', async () => {
    const send = async (method: string, path: string, auth: string, body?: unknown) => {
      const r = await api(proxyEvent(method, path, { auth, body }));
      return { status: r.statusCode, body: JSON.parse(r.body) as Record<string, unknown> };
    };
    const minted = await send('POST', '/api-keys', await id.bearer(A.admin, w.storeA), {
      name: 'telephony',
      permissions: ['calls:view', 'calls:create'],
    });
    expect(minted.status).toBe(201);
    const key = `ApiKey ${String(minted.body['key'])}`;
    const posted = await send('POST', '/calls', key, {
      direction: 'inbound',
      from_number: '+15550177',
      to_number: '+15550176',
      started_at: new Date(Date.now() - 120_000).toISOString(),
      ended_at: new Date(Date.now() - 60_000).toISOString(),
      duration_seconds: 60,
      agent_user_id: A.member2,
      carrier_call_id: 'telnyx-v3:abc',
    });
    expect(posted.status).toBe(201);
    const callId = String((posted.body['call'] as { id: string }).id);
    expect(audit.events.find((e) => e.event === 'call.created' && e.entityId === callId)).toMatchObject({
      actorType: 'api_key',
    });
    const listed = await send('GET', '/calls', key);
    expect((listed.body['calls'] as { id: string }[]).map((c) => c.id)).toEqual(
      expect.arrayContaining([...allOfA(), callId]),
    );
    // It does no more than it was minted for.
    expect(await send('GET', '/leads', key)).toEqual({ status: 403, body: { error: 'PERMISSION_DENIED' } });
    await su('DELETE FROM calls WHERE id = $1', [callId]);
  });
});

describe('the suite bites', () => {
  it('a calls SELECT policy that forgets the agent makes the checks fail', async () => {
    await migrator.query("ALTER POLICY tenant_select ON calls USING (org_id = (SELECT app.grid_org_id('calls:view')))");
    try {
      const problems = await ownCallsProblems();
      expect(problems).toEqual(
        expect.arrayContaining([
          expect.stringMatching(/^member: /),
          expect.stringMatching(/^viewer: /),
          expect.stringMatching(/^custom role: /),
          // Recordings follow their call's visibility, so they leak with it.
          expect.stringMatching(/^member attaches a recording to another agent’s call: /),
        ]),
      );
      expect(await catalogProblems(app)).toContain('calls: policy tenant_select does not scope rows to their agent');
    } finally {
      await migrator.query(
        "ALTER POLICY tenant_select ON calls USING (org_id = (SELECT app.grid_org_id('calls:view')) AND ((SELECT app.context_reads_all_agents()) OR agent_user_id = (SELECT app.current_user_id())))",
      );
    }
    expect(await ownCallsProblems()).toEqual([]);
  });

  it('an UPDATE policy that forgets the agent lets a Member change and give away calls, and the checks see it', async () => {
    await migrator.query(
      "ALTER POLICY tenant_update ON calls USING (org_id = (SELECT app.grid_writable_org_id('calls:edit'))) WITH CHECK (org_id = (SELECT app.grid_writable_org_id('calls:edit')))",
    );
    try {
      expect(await ownCallsProblems()).toEqual([
        expect.stringMatching(/^member updates every call it can: "rows:4"/),
        expect.stringMatching(/^member gives all its calls away: "rows:4"/),
      ]);
      expect(await catalogProblems(app)).toContain('calls: policy tenant_update does not scope rows to their agent');
    } finally {
      await migrator.query(
        "ALTER POLICY tenant_update ON calls USING (org_id = (SELECT app.grid_writable_org_id('calls:edit')) AND ((SELECT app.context_reads_all_agents()) OR agent_user_id = (SELECT app.current_user_id()))) WITH CHECK (org_id = (SELECT app.grid_writable_org_id('calls:edit')) AND ((SELECT app.context_reads_all_agents()) OR agent_user_id = (SELECT app.current_user_id())))",
      );
    }
    expect(await ownCallsProblems()).toEqual([]);
  });

  it('a recordings policy that no longer follows its call makes the checks fail', async () => {
    await migrator.query(
      "ALTER POLICY tenant_select ON call_recordings USING (org_id = (SELECT app.grid_org_id('calls:view')))",
    );
    try {
      expect(await ownCallsProblems()).toEqual(
        expect.arrayContaining([expect.stringMatching(/^member: /), expect.stringMatching(/^viewer: /)]),
      );
      expect(await catalogProblems(app)).toContain(
        'call_recordings: policy tenant_select does not scope rows to their agent',
      );
    } finally {
      await migrator.query(
        "ALTER POLICY tenant_select ON call_recordings USING (org_id = (SELECT app.grid_org_id('calls:view')) AND EXISTS (SELECT 1 FROM public.calls c WHERE c.org_id = call_recordings.org_id AND c.id = call_recordings.call_id))",
      );
    }
    expect(await ownCallsProblems()).toEqual([]);
  });
});
