/**
 * A context needs proof, not a claim (migrations/0400): the database acts as a user only after
 * app.authenticate verified a gate ticket signed with the gate key (which no application role can
 * read) or an API key's secret, and only for the transaction that presented it. Against a real
 * PostgreSQL, as the application role.
 */
import { createHash, createHmac, randomBytes } from 'node:crypto';
import type { Client } from 'pg';
import { issueTicket, parseGateKeySecret, MAX_TICKET_SECONDS, type GateKey } from '../../lambda/tenant-guard/ticket';
import { startPostgres, TEST_GATE_KEY, MIGRATOR_ROLE, type TestPostgres } from '../support/postgres';
import { authenticateAs, buildWorld, emailOf, subjectOf, ticketFor, type World } from './fixtures';

const codeOf = async (p: Promise<unknown>): Promise<string | null> =>
  p.then(
    () => null,
    (e: unknown) => (e as { code?: string }).code ?? 'unknown',
  );

describe('ticket signing (pure)', () => {
  const now = 1_800_000_000;
  const claims = { subject: 's', email: 'e@example.test', orgId: '11111111-1111-4111-8111-111111111111' };

  it('caps the lifetime at MAX_TICKET_SECONDS and at the identity’s own expiry', () => {
    const exp = (t: string) => JSON.parse(Buffer.from(t.split('.')[2]!, 'base64url').toString()).exp as number;
    expect(exp(issueTicket(TEST_GATE_KEY, { ...claims, notAfter: now + 3600 }, now))).toBe(now + MAX_TICKET_SECONDS);
    expect(exp(issueTicket(TEST_GATE_KEY, { ...claims, notAfter: now + 42 }, now))).toBe(now + 42);
    expect(() => issueTicket(TEST_GATE_KEY, { ...claims, notAfter: now }, now)).toThrow('TICKET_EXPIRED');
  });

  it('signs HMAC-SHA256 over version, kid and payload with the injected key', () => {
    const t = issueTicket(TEST_GATE_KEY, { ...claims, notAfter: now + 60, requestId: 'r1' }, now);
    const [v, kid, payload, mac] = t.split('.');
    expect([v, kid]).toEqual(['bwt1', TEST_GATE_KEY.kid]);
    expect(mac).toBe(createHmac('sha256', TEST_GATE_KEY.secret).update(`${v}.${kid}.${payload}`).digest('base64url'));
  });

  it('refuses short keys and odd kids; derives the kid of a secret from its key', () => {
    expect(() => issueTicket({ kid: 'k', secret: Buffer.alloc(16) }, { ...claims, notAfter: now + 1 }, now)).toThrow(
      'GATE_KEY_INVALID',
    );
    expect(() => issueTicket({ kid: 'a.b', secret: Buffer.alloc(32) }, { ...claims, notAfter: now + 1 }, now)).toThrow(
      'GATE_KEY_INVALID',
    );
    const key = 'k'.repeat(64);
    expect(parseGateKeySecret(JSON.stringify({ key }))).toEqual({
      kid: createHash('sha256').update(key).digest('hex').slice(0, 16),
      secret: Buffer.from(key),
    });
    expect(() => parseGateKeySecret('{"key": "short"}')).toThrow('GATE_KEY_INVALID');
    expect(() => parseGateKeySecret('not json')).toThrow('GATE_KEY_INVALID');
  });
});

describe('the database gate asks for proof', () => {
  let pg: TestPostgres;
  let w: World;
  let c: Client;
  beforeAll(async () => {
    pg = await startPostgres();
    w = await buildWorld(pg);
    c = await pg.client();
  });
  afterAll(async () => {
    await c?.end();
    await pg?.stop();
  });

  /** Runs `fn` in a transaction that is rolled back. */
  async function inTx<T>(fn: () => Promise<T>): Promise<T> {
    await c.query('BEGIN');
    try {
      return await fn();
    } finally {
      await c.query('ROLLBACK');
    }
  }
  const enter = (user: string, org: string, grant: string | null = null) =>
    c.query('SELECT * FROM app.set_tenant_context($1, $2, $3)', [user, org, grant]);
  const authenticate = (proof: string | null) => c.query('SELECT * FROM app.authenticate($1)', [proof]);

  it('a bare user id enters nothing: no proof, or proof for someone else, is refused', async () => {
    expect(await inTx(() => codeOf(enter(w.ownerA, w.storeA)))).toBe('BW011');
    expect(
      await inTx(async () => {
        await authenticateAs(c, w.ownerB, w.storeB);
        return codeOf(enter(w.ownerA, w.storeA));
      }),
    ).toBe('BW011');
    // The same for every gate function that names an acting user.
    for (const [sql, params] of [
      ["SELECT app.open_support_grant($1, $2, 'ticket 42: lead import', interval '1 hour')", [w.support, w.storeA]],
      ['SELECT app.close_support_grant($1, $2)', [w.support, w.storeA]],
      ["SELECT app.create_organisation($1, 'store', 'x', 'pro', $2, $1)", [w.platformOwner, w.group]],
      ['SELECT * FROM app.restore_tenant($1, $2)', [w.ownerA, w.storeA]],
      ['SELECT * FROM app.tenant_overview($1, $2)', [w.ownerA, w.storeA]],
      ['SELECT app.expect_tenant_byok($1, $2)', [w.platformOwner, w.storeA]],
      ["SELECT * FROM app.resolve_user('someone', 'someone@example.test')", []],
    ] as const) {
      expect({ sql, code: await inTx(() => codeOf(c.query(sql, [...params]))) }).toEqual({ sql, code: 'BW011' });
    }
  });

  it('a verified ticket enters its own user’s organisations only, for the one transaction', async () => {
    const seen = await inTx(async () => {
      const who = (await authenticate(ticketFor(w.ownerA, w.storeA))).rows[0];
      expect(who).toMatchObject({ user_id: w.ownerA, status: 'active', org_id: w.storeA, api_key_id: null });
      await enter(w.ownerA, w.storeA);
      return (await c.query('SELECT id FROM organisations')).rows;
    });
    expect(seen).toEqual([{ id: w.storeA }]);
    expect(await inTx(() => codeOf(authenticateAs(c, w.ownerA).then(() => enter(w.ownerA, w.storeB))))).toBe('BW002');
    // The principal is gone with its transaction: the next one on this connection has to prove again.
    await c.query('BEGIN');
    await authenticateAs(c, w.ownerA);
    await c.query('COMMIT');
    expect(await inTx(() => codeOf(enter(w.ownerA, w.storeA)))).toBe('BW011');
    // ...and a rolled-back savepoint takes it with it.
    expect(
      await inTx(async () => {
        await c.query('SAVEPOINT s');
        await authenticateAs(c, w.ownerA);
        await c.query('ROLLBACK TO SAVEPOINT s');
        return codeOf(enter(w.ownerA, w.storeA));
      }),
    ).toBe('BW011');
  });

  it('refuses forged, tampered, foreign-key, expired, over-long and future tickets', async () => {
    const now = Math.floor(Date.now() / 1000);
    const good = ticketFor(w.ownerA, w.storeA);
    const [v, kid, payload, mac] = good.split('.') as [string, string, string, string];
    const body = JSON.parse(Buffer.from(payload, 'base64url').toString()) as Record<string, unknown>;
    const reencode = (o: Record<string, unknown>) => Buffer.from(JSON.stringify(o)).toString('base64url');
    const signWith = (key: GateKey, p: string) =>
      `${v}.${key.kid}.${p}.${createHmac('sha256', key.secret).update(`${v}.${key.kid}.${p}`).digest('base64url')}`;
    const attacker: GateKey = { kid: TEST_GATE_KEY.kid, secret: randomBytes(32) };
    const cases: Record<string, string | null> = {
      missing: null,
      empty: '',
      'a user id': w.ownerA,
      'payload swapped to another user, old MAC': `${v}.${kid}.${reencode({ ...body, sub: subjectOf(w.ownerB) })}.${mac}`,
      'MAC flipped': `${v}.${kid}.${payload}.${mac.startsWith('A') ? 'B' : 'A'}${mac.slice(1)}`,
      'signed with a guessed key': signWith(attacker, reencode({ ...body, sub: subjectOf(w.ownerB) })),
      'unknown kid': signWith({ kid: 'other', secret: TEST_GATE_KEY.secret }, payload),
      'other version': `bwt2.${kid}.${payload}.${mac}`,
      'lifetime over five minutes': signWith(TEST_GATE_KEY, reencode({ ...body, iat: now, exp: now + 301 })),
      'issued in the future': signWith(TEST_GATE_KEY, reencode({ ...body, iat: now + 600, exp: now + 700 })),
      'not JSON': signWith(TEST_GATE_KEY, Buffer.from('nope').toString('base64url')),
      'org not a uuid': signWith(TEST_GATE_KEY, reencode({ ...body, org: 'x' })),
      'an API key that does not exist': `bwk_${'a'.repeat(32)}_${'b'.repeat(43)}`,
    };
    for (const [name, proof] of Object.entries(cases)) {
      expect({ name, code: await inTx(() => codeOf(authenticate(proof))) }).toEqual({ name, code: 'BW011' });
    }
    const expired = ticketFor(w.ownerA, w.storeA, { now: now - 400, lifetime: 60 });
    expect(await inTx(() => codeOf(authenticate(expired)))).toBe('BW012');
    // The one a correctly keyed signer made passes, and is who it says.
    const forB = signWith(TEST_GATE_KEY, reencode({ ...body, sub: subjectOf(w.ownerB), email: emailOf(w.ownerB) }));
    expect((await inTx(() => authenticate(forB))).rows[0]).toMatchObject({ user_id: w.ownerB });
  });

  it('the gate key is out of every application role’s reach', async () => {
    for (const sql of [
      'SELECT * FROM app_private.gate_keys',
      "SELECT app_private.install_gate_key('mine', '\\x00'::bytea)",
      'SELECT * FROM app_private.verify_ticket($$x$$)',
      'SELECT * FROM app_private.set_tenant_context(NULL, NULL, NULL)',
      'SELECT app_private.current_principal()',
      'SELECT app_private.require_principal(gen_random_uuid(), false)',
      'SELECT * FROM app.resolve_api_key(NULL, NULL)',
    ]) {
      expect({ sql, code: await inTx(() => codeOf(c.query(sql))) }).toEqual({
        sql,
        code: expect.stringMatching(/^(42501|42883|42P01)$/),
      });
    }
  });

  it('a rotated key keeps verifying tickets in flight for ten more minutes, then never again', async () => {
    const m = await pg.client(MIGRATOR_ROLE);
    try {
      const next: GateKey = { kid: 'next', secret: randomBytes(32) };
      await m.query('SELECT app_private.install_gate_key($1, $2)', [next.kid, next.secret]);
      const now = Math.floor(Date.now() / 1000);
      const claims = { subject: subjectOf(w.ownerA), email: emailOf(w.ownerA), orgId: w.storeA, notAfter: now + 60 };
      expect(await inTx(() => codeOf(authenticate(issueTicket(next, claims, now))))).toBeNull();
      expect(await inTx(() => codeOf(authenticate(issueTicket(TEST_GATE_KEY, claims, now))))).toBeNull();
      const left = await m.query(
        "SELECT not_after - now() BETWEEN interval '9 minutes' AND interval '10 minutes' AS ok FROM app_private.gate_keys WHERE kid = $1",
        [TEST_GATE_KEY.kid],
      );
      expect(left.rows).toEqual([{ ok: true }]);
      // Ten minutes later (the owner moves the clock of the key instead of waiting):
      await m.query("UPDATE app_private.gate_keys SET not_after = now() - interval '1 second' WHERE kid = $1", [
        TEST_GATE_KEY.kid,
      ]);
      expect(await inTx(() => codeOf(authenticate(issueTicket(TEST_GATE_KEY, claims, now))))).toBe('BW011');
    } finally {
      await m.query('SELECT app_private.install_gate_key($1, $2)', [TEST_GATE_KEY.kid, TEST_GATE_KEY.secret]);
      await m.end();
    }
  });

  it('an API key proves itself with its secret; a revoked one stays out, and enters only its own organisation', async () => {
    const secret = randomBytes(32).toString('base64url');
    const keyId = await inTx(async () => {
      await authenticateAs(c, w.ownerA, w.storeA);
      await enter(w.ownerA, w.storeA);
      const r = await c.query<{ id: string }>(
        "INSERT INTO api_keys (org_id, name, secret_hash, permissions) VALUES ($1, 'k', $2, ARRAY['leads:view']) RETURNING id",
        [w.storeA, createHash('sha256').update(secret).digest()],
      );
      await c.query('COMMIT');
      await c.query('BEGIN');
      return r.rows[0]!.id;
    });
    const proof = `bwk_${keyId.replace(/-/g, '')}_${secret}`;
    const ctx = await inTx(async () => {
      expect((await authenticate(proof)).rows[0]).toMatchObject({ user_id: w.ownerA, api_key_id: keyId });
      expect(await codeOf(enter(w.ownerA, w.storeB))).toBe('BW008');
      return null;
    });
    expect(ctx).toBeNull();
    const grid = await inTx(async () => {
      await authenticate(proof);
      return (await enter(w.ownerA, w.storeA)).rows[0]!['permissions'];
    });
    expect(grid).toEqual(['leads:view']);
    // A key never carries a support grant, and a wrong secret is no key at all.
    expect(
      await inTx(async () => {
        await authenticate(proof);
        return codeOf(enter(w.ownerA, w.storeA, keyId));
      }),
    ).toBe('BW005');
    expect(await inTx(() => codeOf(authenticate(`${proof.slice(0, -1)}${proof.endsWith('A') ? 'B' : 'A'}`)))).toBe(
      'BW011',
    );
    await pg.superuser('UPDATE api_keys SET revoked_at = now() WHERE id = $1', [keyId]);
    expect(await inTx(() => codeOf(authenticate(proof)))).toBe('BW011');
  });
});
