/**
 * The tenant API through its handler entry point: API Gateway proxy events, real JWTs signed with
 * locally generated keys against a local JWKS, and a real PostgreSQL as the application role.
 */
import { Logger } from '@aws-lambda-powertools/logger';
import type { APIGatewayProxyEvent } from 'aws-lambda';
import type { Pool } from 'pg';
import type { AuditEvent, AuditSink } from '../../lambda/shared/audit';
import { createApi, type ApiLogger } from '../../lambda/tenant-guard/api';
import { ROUTES } from '../../lambda/tenant-guard/routes';
import { ERROR_STATUS, GuardError } from '../../lambda/tenant-guard/errors';
import { ACTIONS, MODULES, requirePermission } from '../../lambda/tenant-guard/permissions';
import { startPostgres, type TestPostgres } from '../support/postgres';
import { RecordingLog } from '../support/observability';
import { buildWorld, createOrg, createUser, type World } from './fixtures';
import { securityHeaders } from '../../contracts/security-headers';
import { proxyEvent, SOURCE_IP, testIdentity, type TestIdentity } from './http';
import { defined } from '../support/defined';

/** Log entries as the API wrote them. */
class RecordingLogger implements ApiLogger {
  public readonly entries: { level: 'error' | 'warn'; message: string; attributes: Record<string, unknown>[] }[] = [];
  error(message: string, ...attributes: Record<string, unknown>[]): void {
    this.entries.push({ level: 'error', message, attributes });
  }
  warn(message: string, ...attributes: Record<string, unknown>[]): void {
    this.entries.push({ level: 'warn', message, attributes });
  }
}

class MemoryAuditSink implements AuditSink {
  public readonly events: AuditEvent[] = [];
  async record(event: AuditEvent): Promise<void> {
    this.events.push(event);
  }
}

describe('tenant API handler', () => {
  let pg: TestPostgres;
  let w: World;
  let pool: Pool;
  let audit: MemoryAuditSink;
  let api: ReturnType<typeof createApi>;
  let id: TestIdentity;

  beforeAll(async () => {
    pg = await startPostgres();
    w = await buildWorld(pg);
    pool = pg.pool();
    pool.on('error', () => undefined); // idle clients are terminated when the server stops
    audit = new MemoryAuditSink();
    id = await testIdentity(pg);
    api = createApi({ db: pool, verify: id.verify, audit, logger: new RecordingLog() });
  });
  afterAll(async () => pg?.stop());

  const token = (userId: string, org: string | null, o?: Parameters<TestIdentity['token']>[2]) =>
    id.token(userId, org, o);
  const event = (method: string, path: string, auth?: string, body?: unknown, headers?: Record<string, string>) =>
    proxyEvent(method, path, { auth, body, headers });

  async function call(method: string, path: string, auth?: string, body?: unknown, headers?: Record<string, string>) {
    const r = await api(event(method, path, auth, body, headers));
    // Every answer, success or refusal, carries the exact security headers (HSTS preload and friends).
    expect(r.headers).toMatchObject(securityHeaders());
    return { status: r.statusCode, body: JSON.parse(r.body) as Record<string, unknown> };
  }
  const bearer = (user: string, org: string | null, o?: Parameters<TestIdentity['token']>[2]) =>
    id.bearer(user, org, o);

  describe('JWT verification', () => {
    it('accepts a valid token and refuses a missing one', async () => {
      expect(await call('GET', '/leads', await bearer(w.ownerA, w.storeA))).toMatchObject({ status: 200 });
      expect(await call('GET', '/leads')).toEqual({
        status: 401,
        body: { error: 'TOKEN_MISSING', header: 'authorization' },
      });
      expect(await call('GET', '/leads', 'Basic abc')).toEqual({
        status: 401,
        body: { error: 'TOKEN_INVALID', header: 'authorization' },
      });
    });

    it('refuses expired, forged, wrong-audience, wrong-issuer and missing-claim tokens', async () => {
      const past = Math.floor(Date.now() / 1000) - 3600;
      expect(await call('GET', '/leads', await bearer(w.ownerA, w.storeA, { exp: past }))).toEqual({
        status: 401,
        body: { error: 'TOKEN_EXPIRED', header: 'authorization' },
      });
      expect(await call('GET', '/leads', await bearer(w.ownerA, w.storeA, { key: id.foreignKey }))).toEqual({
        status: 401,
        body: { error: 'TOKEN_INVALID', header: 'authorization' },
      });
      expect(await call('GET', '/leads', await bearer(w.ownerA, w.storeA, { aud: 'someone-else' }))).toEqual({
        status: 401,
        body: { error: 'TOKEN_INVALID', header: 'authorization' },
      });
      expect(await call('GET', '/leads', await bearer(w.ownerA, w.storeA, { iss: 'https://evil.example' }))).toEqual({
        status: 401,
        body: { error: 'TOKEN_INVALID', header: 'authorization' },
      });
      expect(await call('GET', '/leads', await bearer(w.ownerA, null))).toEqual({
        status: 401,
        body: { error: 'TENANT_CONTEXT_MISSING' },
      });
      expect(
        await call('GET', '/leads', await bearer(w.ownerA, null, { claims: { 'custom:org_id': 'not-a-uuid' } })),
      ).toEqual({ status: 401, body: { error: 'TENANT_CONTEXT_MISSING' } });
      // An unsigned token ("alg": "none") with valid claims.
      const [, payload] = (await token(w.ownerA, w.storeA)).split('.');
      const none = `${Buffer.from('{"alg":"none"}').toString('base64url')}.${payload}.`;
      expect(await call('GET', '/leads', `Bearer ${none}`)).toEqual({
        status: 401,
        body: { error: 'TOKEN_INVALID', header: 'authorization' },
      });
    });
  });

  describe('membership is re-checked on every request', () => {
    it('refuses an org claim the user is not a member of, and audits the refusal', async () => {
      const before = audit.events.length;
      expect(await call('GET', '/leads', await bearer(w.ownerA, w.storeB))).toEqual({
        status: 403,
        body: { error: 'MEMBERSHIP_REVOKED' },
      });
      expect(audit.events.slice(before)).toEqual([
        expect.objectContaining({
          event: 'access.refused',
          orgId: w.storeB,
          actorUserId: w.ownerA,
          ip: SOURCE_IP,
          userAgent: 'jest/30',
          metadata: expect.objectContaining({ code: 'MEMBERSHIP_REVOKED' }),
        }),
      ]);
    });

    it('a revoked membership is refused immediately, with the same still-valid token', async () => {
      const u = await createUser(pg);
      await pg.superuser("INSERT INTO memberships (org_id, user_id, role) VALUES ($1, $2, 'member')", [w.storeA, u]);
      const auth = await bearer(u, w.storeA);
      expect((await call('GET', '/leads', auth)).status).toBe(200);
      await pg.superuser("UPDATE memberships SET status = 'revoked', revoked_at = now() WHERE user_id = $1", [u]);
      expect(await call('GET', '/leads', auth)).toEqual({ status: 403, body: { error: 'MEMBERSHIP_REVOKED' } });
    });
  });

  describe('RBAC', () => {
    it('require(module, action) is strict: unknown module, action or role is refused', () => {
      const owner = { role: 'owner', permissions: ['leads:view', 'nonsense:view'] };
      expect(() => requirePermission(owner, 'leads', 'view')).not.toThrow();
      expect(() => requirePermission(owner, 'nonsense', 'view')).toThrow(GuardError);
      expect(() => requirePermission(owner, 'leads', 'approve')).toThrow(GuardError);
      expect(() => requirePermission({ role: 'superadmin', permissions: ['leads:view'] }, 'leads', 'view')).toThrow(
        GuardError,
      );
      expect(() => requirePermission(owner, 'leads', 'delete')).toThrow(GuardError);
    });

    it('the TypeScript grid vocabulary matches the database', async () => {
      const r = (await pg.superuser('SELECT app.modules() AS m, app.actions() AS a')) as { m: string[]; a: string[] }[];
      expect(r[0]).toEqual({ m: [...MODULES], a: [...ACTIONS] });
    });

    it('a Viewer reads leads but cannot create them', async () => {
      const v = await createUser(pg);
      await pg.superuser("INSERT INTO memberships (org_id, user_id, role) VALUES ($1, $2, 'viewer')", [w.storeA, v]);
      const auth = await bearer(v, w.storeA);
      expect((await call('GET', '/leads', auth)).status).toBe(200);
      expect(await call('POST', '/leads', auth, { name: 'Nope' })).toEqual({
        status: 403,
        body: { error: 'PERMISSION_DENIED' },
      });
    });

    it('an Admin cannot make an Owner nor grant more than they hold', async () => {
      const a = await createUser(pg);
      await pg.superuser("INSERT INTO memberships (org_id, user_id, role) VALUES ($1, $2, 'admin')", [w.storeA, a]);
      const auth = await bearer(a, w.storeA);
      expect(
        await call('POST', '/memberships', auth, { subject: 'new-sub-1', email: 'n1@example.test', role: 'owner' }),
      ).toEqual({ status: 403, body: { error: 'PERMISSION_DENIED' } });
      expect(await call('POST', '/roles', auth, { name: 'billing-boss', permissions: ['billing:delete'] })).toEqual({
        status: 403,
        body: { error: 'PERMISSION_DENIED' },
      });
      const ok = await call('POST', '/memberships', auth, {
        subject: 'new-sub-2',
        email: 'n2@example.test',
        role: 'member',
      });
      expect(ok.status).toBe(201);
      const list = await call('GET', '/memberships', auth);
      expect((list.body['memberships'] as { email: string }[]).map((m) => m.email)).toContain('n2@example.test');
    });
  });

  describe('custom roles', () => {
    it('are edited and deleted only within the editor’s own grid, take effect at once, and are audited', async () => {
      const owner = await bearer(w.ownerA, w.storeA);
      const created = await call('POST', '/roles', owner, {
        name: 'sales desk',
        permissions: ['leads:view', 'leads:create'],
      });
      expect(created.status).toBe(201);
      const roleId = String((created.body['role'] as { id: string }).id);
      const rep = await createUser(pg);
      await pg.superuser(
        "INSERT INTO memberships (org_id, user_id, role, custom_role_id) VALUES ($1, $2, 'custom', $3)",
        [w.storeA, rep, roleId],
      );
      expect((await call('POST', '/leads', await bearer(rep, w.storeA), { name: 'walk-in' })).status).toBe(201);

      const admin = await createUser(pg);
      await pg.superuser("INSERT INTO memberships (org_id, user_id, role) VALUES ($1, $2, 'admin')", [w.storeA, admin]);
      const adminAuth = await bearer(admin, w.storeA);
      // An Admin cannot widen a role beyond what they hold...
      expect(
        await call('PATCH', `/roles/${roleId}`, adminAuth, { permissions: ['leads:view', 'billing:edit'] }),
      ).toEqual({
        status: 403,
        body: { error: 'PERMISSION_DENIED' },
      });
      // ...nor touch a role that already holds more than they do.
      const billing = await call('POST', '/roles', owner, { name: 'billing', permissions: ['billing:edit'] });
      const billingId = String((billing.body['role'] as { id: string }).id);
      expect(await call('PATCH', `/roles/${billingId}`, adminAuth, { name: 'renamed' })).toEqual({
        status: 403,
        body: { error: 'PERMISSION_DENIED' },
      });
      expect(await call('DELETE', `/roles/${billingId}`, adminAuth)).toEqual({
        status: 403,
        body: { error: 'PERMISSION_DENIED' },
      });

      // Narrowing applies to the role's members on their next request.
      const narrowed = await call('PATCH', `/roles/${roleId}`, adminAuth, { permissions: ['leads:view'] });
      expect(narrowed).toMatchObject({ status: 200, body: { role: { permissions: ['leads:view'] } } });
      expect(await call('POST', '/leads', await bearer(rep, w.storeA), { name: 'x' })).toEqual({
        status: 403,
        body: { error: 'PERMISSION_DENIED' },
      });
      expect(await call('PATCH', `/roles/${roleId}`, adminAuth, {})).toEqual({
        status: 400,
        body: { error: 'VALIDATION_FAILED', field: 'body' },
      });
      expect(await call('PATCH', '/roles/00000000-0000-4000-8000-000000000000', adminAuth, { name: 'x' })).toEqual({
        status: 404,
        body: { error: 'NOT_FOUND' },
      });

      // An assigned role is not deleted; once nobody holds it, it is.
      expect(await call('DELETE', `/roles/${roleId}`, adminAuth)).toEqual({ status: 409, body: { error: 'CONFLICT' } });
      await pg.superuser("UPDATE memberships SET role = 'viewer', custom_role_id = NULL WHERE user_id = $1", [rep]);
      expect(await call('DELETE', `/roles/${roleId}`, adminAuth)).toEqual({ status: 200, body: { deleted: roleId } });
      expect(await pg.superuser('SELECT 1 FROM custom_roles WHERE id = $1', [roleId])).toEqual([]);

      const events = audit.events.filter((e) => e.entityId === roleId).map((e) => [e.event, e.actorUserId]);
      expect(events).toEqual([
        ['role.created', w.ownerA],
        ['role.updated', admin],
        ['role.deleted', admin],
      ]);
    });
  });

  describe('leads', () => {
    it('CRUD in the caller’s organisation, each change audited with actor, org, target, IP and user agent', async () => {
      const auth = await bearer(w.ownerA, w.storeA);
      const created = await call('POST', '/leads', auth, { name: 'Ada', email: 'ada@example.test', source: 'web' });
      expect(created.status).toBe(201);
      const id = (created.body['lead'] as { id: string; org_id: string }).id;
      expect((created.body['lead'] as { org_id: string }).org_id).toBe(w.storeA);
      expect((await call('GET', `/leads/${id}`, auth)).status).toBe(200);
      expect((await call('PATCH', `/leads/${id}`, auth, { status: 'contacted' })).body).toMatchObject({
        lead: { status: 'contacted' },
      });
      // Another tenant cannot see, change or delete it.
      const other = await bearer(w.ownerB, w.storeB);
      expect((await call('GET', `/leads/${id}`, other)).status).toBe(404);
      expect((await call('PATCH', `/leads/${id}`, other, { status: 'lost' })).status).toBe(404);
      expect((await call('DELETE', `/leads/${id}`, other)).status).toBe(404);
      expect((await call('DELETE', `/leads/${id}`, auth)).status).toBe(200);
      expect((await call('GET', `/leads/${id}`, auth)).status).toBe(404);
      const mine = audit.events.filter((e) => e.entityId === id);
      expect(mine.map((e) => e.event)).toEqual(['lead.created', 'lead.updated', 'lead.deleted']);
      for (const e of mine) {
        expect(e).toMatchObject({
          orgId: w.storeA,
          actorType: 'user',
          actorUserId: w.ownerA,
          entityType: 'lead',
          ip: SOURCE_IP,
          userAgent: 'jest/30',
          supportGrantId: null,
        });
        expect(e.occurredAt).toBeInstanceOf(Date);
      }
    });

    it('validation failures are explicit', async () => {
      const auth = await bearer(w.ownerA, w.storeA);
      expect(await call('POST', '/leads', auth, { name: '' })).toEqual({
        status: 400,
        body: { error: 'VALIDATION_FAILED', field: 'name' },
      });
      expect(await call('GET', '/leads/not-a-uuid', auth)).toEqual({
        status: 400,
        body: { error: 'VALIDATION_FAILED', field: 'id' },
      });
      expect(await call('GET', '/nowhere', auth)).toEqual({ status: 404, body: { error: 'NOT_FOUND' } });
    });

    it('bulk delete scopes the list to the caller’s organisation: out-of-org ids dropped, counted, untouched', async () => {
      const a = await bearer(w.ownerA, w.storeA);
      const b = await bearer(w.ownerB, w.storeB);
      const mine = [
        ((await call('POST', '/leads', a, { name: 'A1' })).body['lead'] as { id: string }).id,
        ((await call('POST', '/leads', a, { name: 'A2' })).body['lead'] as { id: string }).id,
      ];
      const theirs = ((await call('POST', '/leads', b, { name: 'B1' })).body['lead'] as { id: string }).id;
      const ghost = '00000000-0000-4000-8000-000000000000';
      const r = await call('POST', '/leads/bulk-delete', a, { ids: [...mine, theirs, ghost] });
      expect(r.status).toBe(200);
      expect((r.body['deleted'] as string[]).sort()).toEqual([...mine].sort());
      expect(r.body['dropped']).toBe(2);
      const left = (await pg.superuser('SELECT id FROM leads WHERE id = $1', [theirs])) as unknown[];
      expect(left).toHaveLength(1);
      expect(audit.events.at(-1)).toMatchObject({
        event: 'lead.bulk_deleted',
        metadata: { requested: 4, deleted: 2, dropped: 2 },
      });
    });

    it('a dealer group reads a member store’s lead but cannot change it; a sibling store cannot read it', async () => {
      const a = await bearer(w.ownerA, w.storeA);
      const id = ((await call('POST', '/leads', a, { name: 'Oversight' })).body['lead'] as { id: string }).id;
      const group = await bearer(w.groupOwner, w.group);
      const inA = { 'X-Bulwark-Org': w.storeA };
      expect((await call('GET', `/leads/${id}`, group, undefined, inA)).status).toBe(200);
      expect((await call('GET', '/leads', group, undefined, inA)).status).toBe(200);
      // Read-only: the oversight grid holds only view permissions, and the database refuses writes.
      expect(await call('PATCH', `/leads/${id}`, group, { status: 'lost' }, inA)).toEqual({
        status: 403,
        body: { error: 'PERMISSION_DENIED' },
      });
      expect((await call('DELETE', `/leads/${id}`, group, undefined, inA)).status).toBe(403);
      // From the group's own context the store's lead is not visible.
      expect((await call('GET', `/leads/${id}`, group)).status).toBe(404);
      // A sibling store can neither read it nor enter store A.
      const b = await bearer(w.ownerB, w.storeB);
      expect((await call('GET', `/leads/${id}`, b)).status).toBe(404);
      expect(await call('GET', `/leads/${id}`, b, undefined, inA)).toEqual({
        status: 403,
        body: { error: 'MEMBERSHIP_REVOKED' },
      });
      // A Member of the group has no oversight.
      const m = await createUser(pg);
      await pg.superuser("INSERT INTO memberships (org_id, user_id, role) VALUES ($1, $2, 'member')", [w.group, m]);
      expect((await call('GET', '/leads', await bearer(m, w.group), undefined, inA)).status).toBe(403);
    });
  });

  describe('API keys', () => {
    it('mints keys whose grid can only narrow the minter’s role; the key works within it', async () => {
      const m = await createUser(pg);
      await pg.superuser("INSERT INTO memberships (org_id, user_id, role) VALUES ($1, $2, 'admin')", [w.storeA, m]);
      const auth = await bearer(m, w.storeA);
      expect(await call('POST', '/api-keys', auth, { name: 'too wide', permissions: ['billing:edit'] })).toEqual({
        status: 403,
        body: { error: 'API_KEY_EXCEEDS_ROLE' },
      });
      const minted = await call('POST', '/api-keys', auth, { name: 'crm sync', permissions: ['leads:view'] });
      expect(minted.status).toBe(201);
      const key = `ApiKey ${String(minted.body['key'])}`;
      const stored = (await pg.superuser('SELECT secret_hash FROM api_keys WHERE id = $1', [minted.body['id']])) as {
        secret_hash: Buffer;
      }[];
      // The secret is everything after `bwk_<id>_`; base64url secrets may themselves contain '_'.
      const secret = /^bwk_[0-9a-f]{32}_([A-Za-z0-9_-]{43})$/.exec(String(minted.body['key']))?.[1];
      expect(secret).toHaveLength(43);
      expect(defined(stored[0]).secret_hash.toString('base64url')).not.toContain(secret);
      expect((await call('GET', '/leads', key)).status).toBe(200);
      expect(await call('POST', '/leads', key, { name: 'x' })).toEqual({
        status: 403,
        body: { error: 'PERMISSION_DENIED' },
      });
      expect((await call('GET', '/leads', `ApiKey ${String(minted.body['key']).slice(0, -2)}xx`)).status).toBe(401);
      // The key dies with its minter's membership.
      await pg.superuser("UPDATE memberships SET status = 'revoked', revoked_at = now() WHERE user_id = $1", [m]);
      expect(await call('GET', '/leads', key)).toEqual({ status: 403, body: { error: 'MEMBERSHIP_REVOKED' } });
    });
  });

  describe('support mode', () => {
    const open = async (body: Record<string, unknown>) =>
      call('POST', '/support-grants', await bearer(w.support, w.storeA), body);

    it('opens a reasoned grant of at most 4 hours; only platform_support may', async () => {
      expect(await open({ orgId: w.storeA, reason: 'ticket 7: import', durationMinutes: 241 })).toEqual({
        status: 400,
        body: { error: 'SUPPORT_GRANT_TOO_LONG' },
      });
      expect(await open({ orgId: w.storeA, durationMinutes: 60 })).toEqual({
        status: 400,
        body: { error: 'VALIDATION_FAILED', field: 'reason' },
      });
      expect(
        await call('POST', '/support-grants', await bearer(w.ownerA, w.storeA), {
          orgId: w.storeB,
          reason: 'I would like to look',
          durationMinutes: 60,
        }),
      ).toEqual({ status: 403, body: { error: 'PERMISSION_DENIED' } });
      expect(await call('GET', '/leads', await bearer(w.support, w.storeA))).toEqual({
        status: 403,
        body: { error: 'MEMBERSHIP_REVOKED' },
      });
    });

    it('every action under a grant carries its id; expired and revoked grants are refused; the Owner lists and revokes', async () => {
      const opened = await open({ orgId: w.storeA, reason: 'ticket 8: missing leads', durationMinutes: 60 });
      expect(opened.status).toBe(201);
      const grant = (opened.body['grant'] as { id: string }).id;
      expect(audit.events.at(-1)).toMatchObject({
        event: 'support_grant.opened',
        orgId: w.storeA,
        supportGrantId: grant,
      });
      const auth = await bearer(w.support, w.storeA);
      const h = { 'X-Bulwark-Support-Grant': grant };
      expect((await call('GET', '/leads', auth, undefined, h)).status).toBe(200);
      // A read grant cannot write.
      expect(await call('POST', '/leads', auth, { name: 'x' }, h)).toEqual({
        status: 403,
        body: { error: 'PERMISSION_DENIED' },
      });
      // Only for the organisation it names.
      expect(await call('GET', '/leads', await bearer(w.support, w.storeB), undefined, h)).toEqual({
        status: 403,
        body: { error: 'SUPPORT_GRANT_INVALID', header: 'x-bulwark-support-grant' },
      });

      const rw = await open({
        orgId: w.storeA,
        reason: 'ticket 9: fix a lead',
        durationMinutes: 30,
        scope: 'read_write',
      });
      const rwId = (rw.body['grant'] as { id: string }).id;
      const lead = (
        (await call('POST', '/leads', await bearer(w.ownerA, w.storeA), { name: 'Fix me' })).body['lead'] as {
          id: string;
        }
      ).id;
      expect(
        (await call('PATCH', `/leads/${lead}`, auth, { status: 'qualified' }, { 'x-bulwark-support-grant': rwId }))
          .status,
      ).toBe(200);
      expect(audit.events.at(-1)).toMatchObject({
        event: 'lead.updated',
        actorType: 'support_grant',
        actorUserId: w.support,
        supportGrantId: rwId,
      });

      // The Owner lists grants on their organisation; an Admin may not.
      const listed = await call('GET', '/support-grants', await bearer(w.ownerA, w.storeA));
      expect((listed.body['grants'] as { id: string }[]).map((g) => g.id)).toEqual(
        expect.arrayContaining([grant, rwId]),
      );
      const admin = await createUser(pg);
      await pg.superuser("INSERT INTO memberships (org_id, user_id, role) VALUES ($1, $2, 'admin')", [w.storeA, admin]);
      expect(await call('GET', '/support-grants', await bearer(admin, w.storeA))).toEqual({
        status: 403,
        body: { error: 'PERMISSION_DENIED' },
      });
      // An API key minted by the Owner is not the Owner: it neither lists nor revokes grants.
      const minted = await call('POST', '/api-keys', await bearer(w.ownerA, w.storeA), {
        name: 'crm sync',
        permissions: ['leads:view'],
      });
      const ownerKey = `ApiKey ${String(minted.body['key'])}`;
      expect(await call('GET', '/support-grants', ownerKey)).toEqual({
        status: 403,
        body: { error: 'PERMISSION_DENIED' },
      });
      expect(await call('DELETE', `/support-grants/${rwId}`, ownerKey)).toEqual({
        status: 403,
        body: { error: 'PERMISSION_DENIED' },
      });
      // Owner B never sees A's grants.
      const listedB = await call('GET', '/support-grants', await bearer(w.ownerB, w.storeB));
      expect((listedB.body['grants'] as { id: string }[]).map((g) => g.id)).not.toContain(grant);

      expect((await call('DELETE', `/support-grants/${rwId}`, await bearer(w.ownerA, w.storeA))).status).toBe(200);
      expect(await call('GET', '/leads', auth, undefined, { 'x-bulwark-support-grant': rwId })).toEqual({
        status: 403,
        body: { error: 'SUPPORT_GRANT_REVOKED' },
      });

      await pg.superuser(
        "UPDATE support_grants SET opened_at = now() - interval '3 hours', expires_at = now() - interval '1 minute' WHERE id = $1",
        [grant],
      );
      expect(await call('GET', '/leads', auth, undefined, h)).toEqual({
        status: 403,
        body: { error: 'SUPPORT_GRANT_EXPIRED' },
      });
    });
  });

  describe('audit export', () => {
    const exportAs = async (auth: string, query: Record<string, string> = {}) =>
      api({ ...event('GET', '/audit/export', auth), queryStringParameters: query });

    it('exports the organisation audit log as CSV with filters, only with audit:view, and audits the export', async () => {
      const owner = await bearer(w.ownerA, w.storeA);
      const first = await exportAs(owner);
      expect(first.statusCode).toBe(200);
      expect(first.headers).toMatchObject({ 'content-type': 'text/csv; charset=utf-8', ...securityHeaders() });
      expect(String(first.headers?.['content-disposition'])).toMatch(/^attachment; filename="audit-[0-9a-f-]+\.csv"$/);

      // The export recorded itself: a filtered export by event finds it, with its filters and actor.
      const second = await exportAs(owner, { event: 'audit.exported' });
      expect(second.statusCode).toBe(200);
      const lines = second.body.trim().split('\n');
      expect(lines.length).toBeGreaterThanOrEqual(2);
      expect(lines.slice(1).every((l) => l.includes('audit.exported') && l.includes(w.ownerA))).toBe(true);
      expect(String(second.headers?.['content-disposition'])).toMatch(/-filtered\.csv"$/);

      // Only this organisation's rows, ever.
      expect(second.body).not.toContain(w.storeB);

      // A Viewer's grid has no audit:view.
      const v = await createUser(pg);
      await pg.superuser("INSERT INTO memberships (org_id, user_id, role) VALUES ($1, $2, 'viewer')", [w.storeA, v]);
      expect(await call('GET', '/audit/export', await bearer(v, w.storeA))).toEqual({
        status: 403,
        body: { error: 'PERMISSION_DENIED' },
      });

      // Bad filters are refused with an explicit code.
      const bad = await exportAs(owner, { from: '2026-02-01T00:00:00Z', to: '2026-01-01T00:00:00Z' });
      expect(bad.statusCode).toBe(400);
      expect(JSON.parse(bad.body)).toEqual({ error: 'VALIDATION_FAILED', field: 'from' });
    });
  });

  describe('POST /memberships never changes an existing membership the way PATCH would refuse', () => {
    /** A fresh store with its Owner and an Admin. */
    async function store() {
      const owner = await createUser(pg);
      const admin = await createUser(pg);
      const c = await pg.client();
      let org: string;
      try {
        org = await createOrg(c, w.platformOwner, 'store', owner, w.group);
      } finally {
        await c.end();
      }
      await pg.superuser("INSERT INTO memberships (org_id, user_id, role) VALUES ($1, $2, 'admin')", [org, admin]);
      return { org, owner, admin };
    }
    const person = async (userId: string) =>
      defined(
        (
          (await pg.superuser('SELECT subject, email FROM users WHERE id = $1', [userId])) as {
            subject: string;
            email: string;
          }[]
        )[0],
      );
    const roles = async (auth: string) =>
      Object.fromEntries(
        (
          (await call('GET', '/memberships', auth)).body['memberships'] as {
            user_id: string;
            role: string;
            status: string;
          }[]
        ).map((m) => [m.user_id, `${m.role}/${m.status}`]),
      );

    it('an Admin cannot demote the Owner by granting them a membership again; nobody re-grants an active member', async () => {
      const t = await store();
      const admin = await bearer(t.admin, t.org);
      const owner = await bearer(t.owner, t.org);
      const before = audit.events.length;
      // PATCH refuses the Admin this change ...
      const ownerRow = (
        (await call('GET', '/memberships', admin)).body['memberships'] as { id: string; user_id: string }[]
      ).find((m) => m.user_id === t.owner);
      const ownerMembership = defined(ownerRow).id;
      expect(await call('PATCH', `/memberships/${ownerMembership}`, admin, { role: 'member' })).toEqual({
        status: 403,
        body: { error: 'PERMISSION_DENIED' },
      });
      // ... and POST may not make it either.
      expect(await call('POST', '/memberships', admin, { ...(await person(t.owner)), role: 'member' })).toEqual({
        status: 409,
        body: { error: 'MEMBERSHIP_EXISTS' },
      });
      // A role changes through PATCH only, for the Owner too (one path, one audit event).
      expect(await call('POST', '/memberships', owner, { ...(await person(t.admin)), role: 'viewer' })).toEqual({
        status: 409,
        body: { error: 'MEMBERSHIP_EXISTS' },
      });
      expect(await roles(owner)).toEqual({ [t.owner]: 'owner/active', [t.admin]: 'admin/active' });
      expect(audit.events.slice(before).filter((e) => e.event.startsWith('membership.'))).toEqual([]);
    });

    it('reinstates a revoked membership under PATCH’s rules: only an Owner reinstates an Owner', async () => {
      const t = await store();
      const second = await createUser(pg);
      await pg.superuser("INSERT INTO memberships (org_id, user_id, role) VALUES ($1, $2, 'owner')", [t.org, second]);
      const member = await createUser(pg);
      await pg.superuser("INSERT INTO memberships (org_id, user_id, role) VALUES ($1, $2, 'member')", [t.org, member]);
      const admin = await bearer(t.admin, t.org);
      const owner = await bearer(t.owner, t.org);
      const ids = Object.fromEntries(
        ((await call('GET', '/memberships', owner)).body['memberships'] as { id: string; user_id: string }[]).map(
          (m) => [m.user_id, m.id],
        ),
      );
      expect((await call('DELETE', `/memberships/${ids[second]}`, owner)).status).toBe(200);
      expect((await call('DELETE', `/memberships/${ids[member]}`, admin)).status).toBe(200);

      expect(await call('POST', '/memberships', admin, { ...(await person(second)), role: 'viewer' })).toEqual({
        status: 403,
        body: { error: 'PERMISSION_DENIED' },
      });
      const back = await call('POST', '/memberships', admin, { ...(await person(member)), role: 'viewer' });
      expect(back).toMatchObject({ status: 201, body: { membership: { id: ids[member], role: 'viewer' } } });
      expect(audit.events.at(-1)).toMatchObject({
        event: 'membership.granted',
        orgId: t.org,
        actorUserId: t.admin,
        entityId: ids[member],
        metadata: { role: 'viewer' },
      });
      expect((await call('POST', '/memberships', owner, { ...(await person(second)), role: 'member' })).status).toBe(
        201,
      );
      expect(await roles(owner)).toEqual({
        [t.owner]: 'owner/active',
        [t.admin]: 'admin/active',
        [second]: 'member/active',
        [member]: 'viewer/active',
      });
    });
  });

  describe('routing', () => {
    it('a malformed percent-escape in a path parameter is a 400 naming the parameter, with the security headers', async () => {
      const auth = await bearer(w.ownerA, w.storeA);
      for (const [method, path, field] of [
        ['GET', '/leads/%E0%A4%A', 'id'],
        ['DELETE', '/leads/%', 'id'],
        ['PUT', '/webhook-secrets/%ZZ', 'provider'],
        ['GET', '/tenant/exports/%E0%A4%A', 'id'],
      ] as const) {
        // call() checks the security headers on every answer.
        expect(await call(method, path, auth, method === 'PUT' ? { secret: 'x'.repeat(32) } : undefined)).toEqual({
          status: 400,
          body: { error: 'VALIDATION_FAILED', field },
        });
      }
      // Well-formed escapes are decoded before the route sees them.
      expect(await call('GET', '/leads/%6E%6F%74-a-uuid', auth)).toEqual({
        status: 400,
        body: { error: 'VALIDATION_FAILED', field: 'id' },
      });
      expect(await call('PUT', '/webhook-secrets/%6Eone', auth, { secret: 'x'.repeat(32) })).toEqual({
        status: 404,
        body: { error: 'NOT_FOUND' },
      });
    });

    it('no two routes share a method and path', () => {
      const keys = ROUTES.map((r) => `${r.method} ${r.path.replace(/\{\w+\}/g, '{}')}`);
      expect(keys.length).toBeGreaterThan(20);
      expect(new Set(keys).size).toBe(keys.length);
    });
  });

  describe('unexpected errors', () => {
    it('are INTERNAL, rolled back, and logged with the request and organisation but no body, header or secret', async () => {
      const logger = new RecordingLogger();
      // The audit store failing mid-request: nothing the route can map to a code.
      const failing: AuditSink = {
        record: async (e) => {
          if (e.event === 'lead.created') throw new TypeError('audit store exploded');
          return audit.record(e);
        },
      };
      const logged = createApi({ db: pool, verify: id.verify, audit: failing, logger });
      const auth = await bearer(w.ownerA, w.storeA);
      const secretNote = 'body-secret-7f3a9c';
      const ev = proxyEvent('POST', '/leads', {
        auth,
        body: { name: 'Logged Lead', email: 'logged.lead@example.test', notes: secretNote },
        headers: { 'X-Api-Secret': 'header-secret-b41d' },
      });
      const withId = { ...ev, requestContext: { ...ev.requestContext, requestId: 'req-7d1e' } } as APIGatewayProxyEvent;
      const r = await logged(withId);
      expect(r.statusCode).toBe(500);
      expect(JSON.parse(r.body)).toEqual({ error: 'INTERNAL' });
      expect(r.headers).toMatchObject(securityHeaders());
      // Rolled back: the lead is not there.
      const leads = (await call('GET', '/leads', auth)).body['leads'] as { name: string }[];
      expect(leads.map((l) => l.name)).not.toContain('Logged Lead');

      expect(logger.entries).toEqual([
        {
          level: 'error',
          message: 'tenant API: unexpected error',
          attributes: [
            {
              requestId: 'req-7d1e',
              method: 'POST',
              route: '/leads',
              orgId: w.storeA,
              error: {
                name: 'TypeError',
                message: 'audit store exploded',
                stack: expect.stringContaining('audit store exploded'),
              },
            },
          ],
        },
      ]);
      const line = JSON.stringify(logger.entries);
      for (const leak of [secretNote, 'logged.lead@example.test', 'Logged Lead', 'header-secret-b41d', auth.slice(7)]) {
        expect(line).not.toContain(leak);
      }
    });

    it('go through the handler’s Powertools Logger as one JSON line', async () => {
      const failing: AuditSink = {
        record: async (e) => {
          if (e.event === 'lead.created') throw new Error('audit store down');
          return audit.record(e);
        },
      };
      const logger = new Logger({ serviceName: 'tenant-api', logLevel: 'WARN' });
      const logged = createApi({ db: pool, verify: id.verify, audit: failing, logger });
      const written: string[] = [];
      const spy = jest.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
        written.push(String(chunk));
        return true;
      });
      let status: number;
      try {
        const ev = proxyEvent('POST', '/leads', {
          auth: await bearer(w.ownerA, w.storeA),
          body: { name: 'Powertools Lead', notes: 'body-secret-91c2' },
        });
        status = (await logged({ ...ev, requestContext: { ...ev.requestContext, requestId: 'req-pt' } })).statusCode;
      } finally {
        spy.mockRestore();
      }
      expect(status).toBe(500);
      const lines = written
        .join('')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as Record<string, unknown>);
      expect(lines).toEqual([
        expect.objectContaining({
          level: 'ERROR',
          message: 'tenant API: unexpected error',
          service: 'tenant-api',
          requestId: 'req-pt',
          orgId: w.storeA,
          route: '/leads',
          error: expect.objectContaining({ name: 'Error', message: 'audit store down' }),
        }),
      ]);
      expect(written.join('')).not.toContain('body-secret-91c2');
      expect(written.join('')).not.toContain('Powertools Lead');
    });

    it('an event the API cannot read is INTERNAL with the security headers, and logged', async () => {
      const logger = new RecordingLogger();
      const strict = createApi({ db: pool, verify: id.verify, audit, logger });
      const ev = proxyEvent('GET', '/leads', { auth: await bearer(w.ownerA, w.storeA) });
      const r = await strict({ ...ev, httpMethod: undefined } as unknown as APIGatewayProxyEvent);
      expect(r.statusCode).toBe(500);
      expect(JSON.parse(r.body)).toEqual({ error: 'INTERNAL' });
      expect(r.headers).toMatchObject(securityHeaders());
      expect(logger.entries).toEqual([
        {
          level: 'error',
          message: 'tenant API: unreadable request',
          attributes: [{ requestId: null, error: expect.objectContaining({ name: 'TypeError' }) }],
        },
      ]);
    });

    it('refusals with an explicit code are not logged as errors', async () => {
      const logger = new RecordingLogger();
      const quiet = createApi({ db: pool, verify: id.verify, audit, logger });
      const r = await quiet(proxyEvent('GET', '/leads/%E0%A4%A', { auth: await bearer(w.ownerA, w.storeA) }));
      expect(r.statusCode).toBe(400);
      expect((await quiet(proxyEvent('GET', '/leads', { auth: 'Basic abc' }))).statusCode).toBe(401);
      expect(logger.entries).toEqual([]);
    });
  });

  it('every error code has a stable status', () => {
    expect(ERROR_STATUS).toMatchObject({
      TENANT_CONTEXT_MISSING: 401,
      MEMBERSHIP_REVOKED: 403,
      PERMISSION_DENIED: 403,
      SUPPORT_GRANT_EXPIRED: 403,
      TOKEN_EXPIRED: 401,
      TOKEN_INVALID: 401,
    });
  });
});
