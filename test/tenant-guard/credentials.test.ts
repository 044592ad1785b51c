/**
 * The credentials vault through the deployed path: the REQUEST authorizer in front of the tenant API
 * built as its Lambda entry builds it (`buildHandler`), a real PostgreSQL as the application role,
 * and KMS played by aws-sdk-client-mock (FakeKms wraps data keys for real, so another context
 * really fails to open them). Every response body, log line, audit row, SQL parameter and export
 * written here is scanned for the secret values at the end.
 */
import { randomBytes } from 'node:crypto';
import { GenerateDataKeyCommand } from '@aws-sdk/client-kms';
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import type { APIGatewayRequestAuthorizerEvent } from 'aws-lambda';
import { mockClient } from 'aws-sdk-client-mock';
import type { Pool, PoolClient } from 'pg';
import {
  CREDENTIAL_KIND_NAMES,
  CREDENTIAL_KINDS,
  CREDENTIAL_SCOPE,
  type CredentialKind,
} from '../../contracts/credentials';
import { DATABASE_ROLES } from '../../contracts/database';
import { ERROR_STATUS } from '../../lambda/tenant-guard/errors';
import { createAuthorizer } from '../../lambda/tenant-guard/authorizer';
import { buildHandler } from '../../lambda/tenant-guard/handler';
import { DataKeyCache } from '../../lambda/tenant-keys/data-key-cache';
import { EnvelopeCipher, SecretOpenError } from '../../lambda/tenant-keys/envelope-cipher';
import { ExportService, readExport } from '../../lambda/tenant-keys/export';
import { contextTenantKeyResolver, PgExportSource, PgExportStore } from '../../lambda/tenant-keys/pg-stores';
import { RecordingLog } from '../support/observability';
import { startPostgres, TEST_GATE_KEY, type TestPostgres } from '../support/postgres';
import { defined } from '../support/defined';
import { FakeKms, KEY_A, KEY_B } from '../tenant-keys/fake-kms';
import { asTenant, authenticateAs, buildWorld, createOrg, createUser, ticketFor, type World } from './fixtures';
import { proxyEvent, testIdentity, type TestIdentity } from './http';

const STAGE_ARN = 'arn:aws:execute-api:eu-west-1:111111111111:abcdef1234/prod';
const KEY_C = 'arn:aws:kms:eu-west-1:111122223333:key/33333333-3333-4333-8333-333333333333';

/** A fresh secret per kind; every value any test sends is remembered for the final scan. */
const secrets: string[] = [];
function secret(kind: CredentialKind): string {
  const v = `${kind}-${randomBytes(18).toString('hex')}`;
  secrets.push(v);
  return v;
}
const SCOPE: Readonly<Record<CredentialKind, string>> = {
  mailbox_password: 'sales@dealer.example',
  oauth_refresh_token: 'sales@dealer.example',
  sip_password: 'agent-0001',
  carrier_token: 'agent-0001',
  ai_provider_key: 'workspace-main',
};

interface Answer {
  readonly status: number;
  readonly body: Record<string, unknown>;
}

describe('credentials vault', () => {
  let pg: TestPostgres;
  let w: World;
  let pool: Pool;
  let id: TestIdentity;
  let kms: FakeKms;
  let api: ReturnType<typeof buildHandler>;
  let noCipher: ReturnType<typeof buildHandler>;
  let authorize: ReturnType<typeof createAuthorizer>;
  const authorizerLog = new RecordingLog();
  const apiLog = new RecordingLog();
  const bodies: string[] = [];
  const sent: string[] = [];
  const exports: string[] = [];
  /** When set, the next UPDATE of the vault fails as a driver error quoting its row would. */
  let failUpdate = false;

  /** The application pool, recording every statement and parameter the handler sends. */
  function recordingPool(inner: Pool): Pool {
    const wrapped = new WeakSet<PoolClient>();
    return {
      connect: async () => {
        const c = await inner.connect();
        if (!wrapped.has(c)) {
          wrapped.add(c);
          const query = c.query.bind(c) as (sql: string, params?: unknown[]) => Promise<unknown>;
          (c as unknown as { query: unknown }).query = (sql: string, params?: unknown[]) => {
            sent.push(JSON.stringify([sql, params ?? []]));
            if (failUpdate && /^UPDATE tenant_credentials/.test(sql)) {
              failUpdate = false;
              const e = Object.assign(new Error('simulated driver failure'), {
                detail: `Failing row contains (${(params ?? []).join(', ')})`,
              });
              return Promise.reject(e);
            }
            return query(sql, params);
          };
        }
        return c;
      },
    } as unknown as Pool;
  }

  beforeAll(async () => {
    pg = await startPostgres();
    w = await buildWorld(pg);
    pool = pg.pool();
    pool.on('error', () => undefined);
    id = await testIdentity(pg);
    kms = new FakeKms();
    kms.createKey(KEY_A);
    kms.createKey(KEY_B);
    await pg.superuser("SELECT * FROM app.record_tenant_key($1, $2, 'managed')", [w.storeA, KEY_A]);
    await pg.superuser("SELECT * FROM app.record_tenant_key($1, $2, 'managed')", [w.storeB, KEY_B]);
    const cache = new DataKeyCache();
    const db = recordingPool(pool);
    api = buildHandler(db, apiLog, {
      cipher: (tx) => new EnvelopeCipher({ kms: kms.client, cache, keyFor: contextTenantKeyResolver(tx) }),
    });
    noCipher = buildHandler(db, apiLog);
    authorize = createAuthorizer({ verify: id.verify, log: authorizerLog, gateKey: TEST_GATE_KEY });
  });
  afterAll(async () => pg?.stop());

  async function call(
    method: string,
    path: string,
    auth: string,
    body?: unknown,
    headers: Record<string, string> = {},
    handler = api,
  ): Promise<Answer> {
    const all = { Authorization: auth, ...headers };
    const verdict = await authorize({
      type: 'REQUEST',
      methodArn: `${STAGE_ARN}/${method}${path}`,
      resource: path,
      path,
      httpMethod: method,
      headers: all,
      multiValueHeaders: Object.fromEntries(Object.entries(all).map(([k, v]) => [k, [v]])),
      requestContext: {},
    } as unknown as APIGatewayRequestAuthorizerEvent);
    expect(verdict.policyDocument.Statement[0]).toMatchObject({ Effect: 'Allow' });
    const context = Object.fromEntries(Object.entries(verdict.context ?? {}).map(([k, v]) => [k, String(v)]));
    const r = await handler(
      proxyEvent(method, path, { headers: all, body, authorizer: { ...context, principalId: verdict.principalId } }),
    );
    bodies.push(r.body);
    return { status: r.statusCode, body: JSON.parse(r.body) as Record<string, unknown> };
  }
  const bearer = (user: string, org: string) => id.bearer(user, org);
  const path = (kind: string, scope: string) => `/credentials/${kind}/${encodeURIComponent(scope)}`;

  /** The stored row as a database dump (or backup) holds it: read by the schema owner. */
  async function dump(org: string, kind: CredentialKind) {
    const rows = (await pg.superuser('SELECT * FROM tenant_credentials WHERE org_id = $1 AND kind = $2', [
      org,
      kind,
    ])) as { id: string; sealed: string; set_by: string; scope: string }[];
    return rows;
  }
  const opener = (keyArn: string) => new EnvelopeCipher({ kms: kms.client, keyFor: () => Promise.resolve(keyArn) });
  const text = (b: Uint8Array) => Buffer.from(b).toString('utf8');

  it('the database accepts exactly the contract’s kinds and scope format', async () => {
    const insert = (kind: string, scope: string) =>
      pg
        .superuser(
          'INSERT INTO tenant_credentials (org_id, kind, scope, set_by, sealed) VALUES ($1, $2, $3, $4, $5) RETURNING kind',
          [w.network, kind, scope, w.networkOwner, 'bwk1.AAAA'],
        )
        .then(
          () => 'ok',
          (e: { code?: string }) => e.code,
        );
    for (const kind of CREDENTIAL_KIND_NAMES) expect({ kind, r: await insert(kind, 'x') }).toEqual({ kind, r: 'ok' });
    expect(await insert('oauth_access_token', 'x')).toBe('23514');
    for (const scope of ['ok@mail.example', 'a'.repeat(128)]) {
      expect({ scope, ok: CREDENTIAL_SCOPE.test(scope), db: await insert('sip_password', scope) }).toEqual({
        scope,
        ok: true,
        db: 'ok',
      });
    }
    for (const scope of ['-x', 'a'.repeat(129), 'a b', 'a/b']) {
      expect({ scope, ok: CREDENTIAL_SCOPE.test(scope), db: await insert('sip_password', scope) }).toEqual({
        scope,
        ok: false,
        db: '23514',
      });
    }
    await pg.superuser('DELETE FROM tenant_credentials WHERE org_id = $1', [w.network]);
  });

  it('sets every kind write-only: sealed under the tenant key with org and kind in the context, audited by kind', async () => {
    const owner = await bearer(w.ownerA, w.storeA);
    const values = {} as Record<CredentialKind, string>;
    for (const kind of CREDENTIAL_KIND_NAMES) {
      values[kind] = secret(kind);
      kms.mock.resetHistory();
      const set = await call('PUT', path(kind, SCOPE[kind]), owner, { [kind]: values[kind] });
      expect(set).toEqual({
        status: 200,
        body: {
          credential: {
            kind,
            scope_type: CREDENTIAL_KINDS[kind],
            scope: SCOPE[kind],
            [`${kind}_set`]: true,
            set_at: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
            set_by: w.ownerA,
          },
        },
      });
      // The KMS call shape: the tenant's own key, its org and the kind as purpose.
      expect(kms.mock.commandCalls(GenerateDataKeyCommand).map((c) => c.args[0].input)).toEqual([
        { KeyId: KEY_A, KeySpec: 'AES_256', EncryptionContext: { org_id: w.storeA, purpose: kind } },
      ]);
    }
    const list = await call('GET', '/credentials', owner);
    expect(list.status).toBe(200);
    expect(
      (list.body['credentials'] as Record<string, unknown>[]).map((c) => [c['kind'], c[`${c['kind']}_set`]]),
    ).toEqual([...CREDENTIAL_KIND_NAMES].sort().map((k) => [k, true]));
    expect(await call('GET', path('sip_password', SCOPE.sip_password), owner)).toMatchObject({
      status: 200,
      body: { credential: { kind: 'sip_password', sip_password_set: true, set_by: w.ownerA } },
    });

    // What a dump holds is ciphertext that opens only for this org and this kind.
    for (const kind of CREDENTIAL_KIND_NAMES) {
      const [row] = await dump(w.storeA, kind);
      expect(defined(row).sealed).toMatch(/^bwk1\./);
      expect(text(await opener(KEY_A).open(w.storeA, kind, defined(row).sealed))).toBe(values[kind]);
      await expect(opener(KEY_A).open(w.storeB, kind, defined(row).sealed)).rejects.toThrow(SecretOpenError);
      const other = kind === 'sip_password' ? 'carrier_token' : 'sip_password';
      await expect(opener(KEY_A).open(w.storeA, other, defined(row).sealed)).rejects.toThrow(SecretOpenError);
    }

    const audit = (await pg.superuser(
      "SELECT event, actor_user_id, entity_type, metadata FROM audit_log WHERE org_id = $1 AND event LIKE 'credential.%' ORDER BY seq",
      [w.storeA],
    )) as { event: string; actor_user_id: string; entity_type: string; metadata: Record<string, unknown> }[];
    expect(audit.map((a) => [a.event, a.actor_user_id, a.entity_type, a.metadata])).toEqual(
      CREDENTIAL_KIND_NAMES.map((kind) => ['credential.set', w.ownerA, 'credential', { kind, scope: SCOPE[kind] }]),
    );
  });

  it('rotation replaces the sealed value (the old one is gone) and deletion removes the row; a missing one is CREDENTIAL_MISSING', async () => {
    const admin = await createUser(pg);
    await pg.superuser("INSERT INTO memberships (org_id, user_id, role) VALUES ($1, $2, 'admin')", [w.storeA, admin]);
    const auth = await bearer(admin, w.storeA);
    const kind = 'oauth_refresh_token';
    const [before] = await dump(w.storeA, kind);
    const next = secret(kind);
    const replaced = await call('PUT', path(kind, SCOPE[kind]), auth, { [kind]: next });
    expect(replaced).toMatchObject({
      status: 200,
      body: { credential: { oauth_refresh_token_set: true, set_by: admin } },
    });
    const [after] = await dump(w.storeA, kind);
    expect(defined(after).sealed).not.toBe(defined(before).sealed);
    expect(text(await opener(KEY_A).open(w.storeA, kind, defined(after).sealed))).toBe(next);
    expect(await dump(w.storeA, kind)).toHaveLength(1);

    const gone = await call('DELETE', path(kind, SCOPE[kind]), auth);
    expect(gone).toEqual({
      status: 200,
      body: { credential: { kind, scope_type: 'mailbox', scope: SCOPE[kind], oauth_refresh_token_set: false } },
    });
    expect(await dump(w.storeA, kind)).toEqual([]);
    for (const method of ['GET', 'DELETE']) {
      expect(await call(method, path(kind, SCOPE[kind]), auth)).toEqual({
        status: ERROR_STATUS.CREDENTIAL_MISSING,
        body: { error: 'CREDENTIAL_MISSING' },
      });
    }
    const events = (await pg.superuser(
      "SELECT event, actor_user_id, metadata FROM audit_log WHERE org_id = $1 AND event LIKE 'credential.%' AND actor_user_id = $2 ORDER BY seq",
      [w.storeA, admin],
    )) as { event: string; metadata: Record<string, unknown> }[];
    expect(events.map((e) => [e.event, e.metadata])).toEqual([
      ['credential.replaced', { kind, scope: SCOPE[kind] }],
      ['credential.deleted', { kind, scope: SCOPE[kind] }],
    ]);
  });

  it('another tenant can neither see nor open it: RLS hides the row, the encryption context refuses the key', async () => {
    const ownerB = await bearer(w.ownerB, w.storeB);
    expect(await call('GET', '/credentials', ownerB)).toEqual({ status: 200, body: { credentials: [] } });
    expect(await call('GET', path('sip_password', SCOPE.sip_password), ownerB)).toMatchObject({
      status: 404,
      body: { error: 'CREDENTIAL_MISSING' },
    });
    expect(await call('DELETE', path('sip_password', SCOPE.sip_password), ownerB)).toMatchObject({ status: 404 });
    // Store B setting the same kind and scope makes its own row, sealed under its own key; A's is untouched.
    const [aBefore] = await dump(w.storeA, 'sip_password');
    expect(
      await call('PUT', path('sip_password', SCOPE.sip_password), ownerB, { sip_password: secret('sip_password') }),
    ).toMatchObject({ status: 200, body: { credential: { set_by: w.ownerB } } });
    expect(await dump(w.storeA, 'sip_password')).toEqual([aBefore]);
    const [bRow] = await dump(w.storeB, 'sip_password');
    // B's tenant key under A's context, and A's key under B's context, both refuse.
    await expect(opener(KEY_B).open(w.storeA, 'sip_password', defined(bRow).sealed)).rejects.toThrow(SecretOpenError);
    await expect(opener(KEY_A).open(w.storeB, 'sip_password', defined(aBefore).sealed)).rejects.toThrow(
      SecretOpenError,
    );
    // A copied ciphertext (a compromised writer pasting A's row into B's) still opens only as A's.
    await expect(opener(KEY_A).open(w.storeB, 'sip_password', defined(aBefore).sealed)).rejects.toThrow(
      SecretOpenError,
    );

    // As the API's own database role, whatever SQL it sends: B's context sees none of A's rows, and
    // no context reads the ciphertext at all (not in SELECT, WHERE, RETURNING or SET).
    const app = await pg.client(DATABASE_ROLES.app);
    try {
      const seen = await asTenant(app, w.ownerB, w.storeB, async () =>
        (await app.query('SELECT org_id FROM tenant_credentials')).rows.map((r: { org_id: string }) => r.org_id),
      );
      expect(new Set(seen)).toEqual(new Set([w.storeB]));
      for (const sql of [
        'SELECT sealed FROM tenant_credentials',
        "SELECT id FROM tenant_credentials WHERE sealed LIKE 'bwk1.%'",
        'UPDATE tenant_credentials SET sealed = sealed',
        "UPDATE tenant_credentials SET set_at = now() WHERE kind = 'sip_password' RETURNING sealed",
        'SELECT t.* FROM tenant_credentials t',
        'SELECT to_jsonb(t) FROM tenant_credentials t',
      ]) {
        const code = await asTenant(app, w.ownerA, w.storeA, () =>
          app.query(sql).then(
            () => 'ran',
            (e: { code?: string }) => e.code,
          ),
        ).catch((e: { code?: string }) => e.code);
        expect({ sql, code }).toEqual({ sql, code: '42501' });
      }
      // Nor can it forge who set a credential: the database stamps the verified user.
      const stamped = await asTenant(app, w.ownerA, w.storeA, async () => {
        await app.query(
          "INSERT INTO tenant_credentials (org_id, kind, scope, set_by, set_at, sealed) VALUES ($1, 'carrier_token', 'forged', $2, '2000-01-01', 'bwk1.AAAA')",
          [w.storeA, w.ownerB],
        );
        return (
          await app.query(
            "SELECT set_by, set_at > now() - interval '1 hour' AS fresh FROM tenant_credentials WHERE scope = 'forged'",
          )
        ).rows;
      });
      expect(stamped).toEqual([{ set_by: w.ownerA, fresh: true }]);
    } finally {
      await app.end();
    }
  });

  it('only Owners and Admins (settings) set or delete; support staff never, even on a read-write grant', async () => {
    const member = await createUser(pg);
    const viewer = await createUser(pg);
    await pg.superuser(
      "INSERT INTO memberships (org_id, user_id, role) VALUES ($1, $2, 'member'), ($1, $3, 'viewer')",
      [w.storeA, member, viewer],
    );
    const kind = 'ai_provider_key';
    for (const user of [member, viewer]) {
      const auth = await bearer(user, w.storeA);
      for (const [method, body] of [
        ['PUT', { [kind]: secret(kind) }],
        ['DELETE', undefined],
        ['GET', undefined],
      ] as const) {
        expect(await call(method, path(kind, SCOPE[kind]), auth, body)).toEqual({
          status: 403,
          body: { error: 'PERMISSION_DENIED' },
        });
      }
      expect(await call('GET', '/credentials', auth)).toMatchObject({ status: 403 });
    }
    // A read-write support grant holds settings:edit, and the database still refuses its writes.
    const c = await pool.connect();
    let grant: string;
    try {
      await c.query('BEGIN');
      await authenticateAs(c, w.support);
      grant = defined(
        (
          await c.query<{ id: string }>(
            "SELECT (app.open_support_grant($1, $2, 'ticket 7: mailbox setup', interval '30 minutes', 'read_write')).id AS id",
            [w.support, w.storeA],
          )
        ).rows[0],
      ).id;
      await c.query('COMMIT');
    } finally {
      c.release();
    }
    const support = await bearer(w.support, w.storeA);
    const headers = { 'X-Bulwark-Support-Grant': grant };
    const [before] = await dump(w.storeA, kind);
    for (const scope of [SCOPE[kind], 'workspace-new']) {
      expect(await call('PUT', path(kind, scope), support, { [kind]: secret(kind) }, headers)).toEqual({
        status: 403,
        body: { error: 'PERMISSION_DENIED' },
      });
    }
    expect(await dump(w.storeA, kind)).toEqual([before]);
    // The database refuses it on its own, whatever SQL the API sends under the grant.
    const app = await pg.client(DATABASE_ROLES.app);
    try {
      const refused = await asTenant(
        app,
        w.support,
        w.storeA,
        async () => {
          const attempt = (sql: string, params: unknown[]) =>
            app.query('SAVEPOINT s').then(() =>
              app.query(sql, params).then(
                (r) => `rows:${r.rowCount ?? 0}`,
                async (e: { code?: string }) => {
                  await app.query('ROLLBACK TO SAVEPOINT s');
                  return e.code;
                },
              ),
            );
          return [
            await attempt(
              "INSERT INTO tenant_credentials (org_id, kind, scope, set_by, sealed) VALUES ($1, 'ai_provider_key', 'via-grant', $2, 'bwk1.AAAA')",
              [w.storeA, w.support],
            ),
            await attempt("UPDATE tenant_credentials SET sealed = 'bwk1.AAAA' WHERE kind = $1", [kind]),
            await attempt('SELECT * FROM app.delete_tenant_rows($1::regclass, ARRAY[$2]::uuid[])', [
              'tenant_credentials',
              defined(before).id,
            ]),
          ];
        },
        grant,
      );
      expect(refused).toEqual(['42501', 'rows:0', 'rows:0']);
    } finally {
      await app.end();
    }
    // Support staff may see that it is set (metadata), never the value.
    expect(await call('GET', path(kind, SCOPE[kind]), support, undefined, headers)).toMatchObject({
      status: 200,
      body: { credential: { ai_provider_key_set: true } },
    });
  });

  it('refuses with explicit codes: unknown kind, bad scope, wrong or extra field, an access token, no key, KMS down', async () => {
    const owner = await bearer(w.ownerA, w.storeA);
    const cases: [string, unknown, number, Record<string, unknown>][] = [
      [path('smtp_token', 'x'), { smtp_token: 'x' }, 404, { error: 'NOT_FOUND' }],
      [path('sip_password', '-bad'), { sip_password: 'x' }, 400, { error: 'VALIDATION_FAILED', field: 'scope' }],
      [
        path('sip_password', 'a'),
        { password: secret('sip_password') },
        400,
        { error: 'VALIDATION_FAILED', field: 'sip_password,password' },
      ],
      [path('sip_password', 'a'), { sip_password: '' }, 400, { error: 'VALIDATION_FAILED', field: 'sip_password' }],
      [
        path('sip_password', 'a'),
        { sip_password: 'é'.repeat(2049) },
        400,
        { error: 'VALIDATION_FAILED', field: 'sip_password' },
      ],
      [
        path('oauth_refresh_token', 'a'),
        { oauth_refresh_token: secret('oauth_refresh_token'), access_token: secret('oauth_refresh_token') },
        400,
        { error: 'VALIDATION_FAILED', field: 'access_token' },
      ],
    ];
    for (const [p, body, status, answer] of cases) {
      expect({ p, r: await call('PUT', p, owner, body) }).toEqual({ p, r: { status, body: answer } });
    }
    // Store C has no tenant key yet: nothing can be sealed, nothing is stored.
    expect(
      await call('PUT', path('sip_password', 'a'), await bearer(w.ownerC, w.storeC), {
        sip_password: secret('sip_password'),
      }),
    ).toEqual({ status: 409, body: { error: 'TENANT_KEY_MISSING' } });
    // KMS refusing (its recorded key is unknown to KMS) is retryable; nothing is stored either.
    await pg.superuser("SELECT * FROM app.record_tenant_key($1, $2, 'managed')", [w.storeC, KEY_C]);
    expect(
      await call('PUT', path('sip_password', 'a'), await bearer(w.ownerC, w.storeC), {
        sip_password: secret('sip_password'),
      }),
    ).toEqual({ status: 503, body: { error: 'KEY_UNAVAILABLE' } });
    expect(await pg.superuser('SELECT 1 FROM tenant_credentials WHERE org_id = $1', [w.storeC])).toEqual([]);
    // An API without a cipher never stores a value it could not seal.
    expect(
      await call('PUT', path('sip_password', 'a'), owner, { sip_password: secret('sip_password') }, {}, noCipher),
    ).toEqual({ status: 503, body: { error: 'KEY_UNAVAILABLE' } });
    expect(await dump(w.storeA, 'sip_password')).toHaveLength(1);
    // An unexpected failure is logged (INTERNAL) and rolled back; the log carries no value.
    failUpdate = true;
    expect(
      await call('PUT', path('carrier_token', SCOPE.carrier_token), owner, { carrier_token: secret('carrier_token') }),
    ).toEqual({ status: 500, body: { error: 'INTERNAL' } });
    expect(apiLog.entries.some((e) => e.message === 'tenant API: unexpected error')).toBe(true);
  });

  it('exports say only which credentials are set; the export carries no value or ciphertext', async () => {
    const s3 = mockClient(S3Client);
    s3.on(PutObjectCommand).resolves({});
    const lifecycle = pg.pool(DATABASE_ROLES.lifecycle);
    // The API records the request; the worker (its own role) completes it.
    const [apiStore, worker] = [new PgExportStore(pool), new PgExportStore(lifecycle)];
    const service = new ExportService({
      s3: new S3Client({ region: 'eu-west-1', credentials: { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'x' } }),
      store: {
        create: (...a) => apiStore.create(...a),
        get: (...a) => apiStore.get(...a),
        pending: (...a) => worker.pending(...a),
        complete: (...a) => worker.complete(...a),
        fail: (...a) => worker.fail(...a),
      },
      source: new PgExportSource(lifecycle),
      audit: { record: () => Promise.resolve() },
      clock: () => new Date(),
      bucket: 'bulwark-exports',
      bucketKeyArn: 'arn:aws:kms:eu-west-1:111122223333:key/export',
    });
    const req = await service.request(w.storeA, {
      userId: w.ownerA,
      email: null,
      role: 'owner',
      proof: ticketFor(w.ownerA),
    });
    const pending = (await worker.pending(10)).find((r) => r.id === req.id);
    await service.process(defined(pending));
    const body = defined(s3.commandCalls(PutObjectCommand)[0]).args[0].input.Body as Buffer;
    const lines = readExport(body) as { section?: string; row?: Record<string, unknown> }[];
    exports.push(JSON.stringify(lines));
    const rows = lines.filter((l) => l.section === 'credentials').map((l) => defined(l.row));
    expect(rows.map((r) => Object.keys(r).sort())).toEqual(
      rows.map((r) => ['id', 'kind', 'org_id', 'scope', 'set_at', 'set_by', `${String(r['kind'])}_set`].sort()),
    );
    expect(new Set(rows.map((r) => r['kind']))).toEqual(
      new Set(['mailbox_password', 'sip_password', 'carrier_token', 'ai_provider_key']),
    );
    expect(rows.every((r) => r[`${String(r['kind'])}_set`] === true && r['org_id'] === w.storeA)).toBe(true);
    expect(JSON.stringify(lines)).not.toContain('bwk1.');
    s3.restore();
  });

  it('erasure deletes the tenant’s credentials (its key’s shredding covers every copy)', async () => {
    const owner = await createUser(pg);
    const c = await pg.client();
    let org: string;
    try {
      org = await createOrg(c, w.platformOwner, 'store', owner, w.group);
    } finally {
      await c.end();
    }
    await pg.superuser("SELECT * FROM app.record_tenant_key($1, $2, 'managed')", [org, KEY_B]);
    expect(
      await call('PUT', path('mailbox_password', 'inbox'), await bearer(owner, org), {
        mailbox_password: secret('mailbox_password'),
      }),
    ).toMatchObject({ status: 200 });
    // Its grace period ended a day ago, as the lifecycle processor would have recorded it.
    await pg.superuser(
      `UPDATE organisations SET lifecycle_state = 'grace', status = 'suspended', cancelled_at = now() - interval '40 days',
              access_until = now() - interval '31 days', grace_ends_at = now() - interval '1 day' WHERE id = $1`,
      [org],
    );
    await pg.pool(DATABASE_ROLES.lifecycle).query('SELECT app.erase_tenant_rows($1)', [org]);
    expect(await pg.superuser('SELECT 1 FROM tenant_credentials WHERE org_id = $1', [org])).toEqual([]);
    expect((await pg.superuser('SELECT count(*)::int AS n FROM tenant_credentials')) as { n: number }[]).not.toEqual([
      { n: 0 },
    ]);
  });

  it('no secret value appears in any response, log line, audit row, SQL parameter or export of these tests', async () => {
    expect(secrets.length).toBeGreaterThan(10);
    expect(bodies.length).toBeGreaterThan(20);
    expect(sent.length).toBeGreaterThan(20);
    expect(exports.length).toBe(1);
    const audit = JSON.stringify(await pg.superuser('SELECT * FROM audit_log'));
    const logs = [...authorizerLog.entries, ...apiLog.entries].map((e) => JSON.stringify(e));
    expect(logs.length).toBeGreaterThan(0);
    const haystacks: Record<string, string[]> = { bodies, logs, audit: [audit], sent, exports };
    const leaks: string[] = [];
    for (const s of secrets) {
      const forms = [
        s,
        Buffer.from(s).toString('base64'),
        Buffer.from(s).toString('base64url'),
        Buffer.from(s).toString('hex'),
      ];
      for (const [where, texts] of Object.entries(haystacks)) {
        if (texts.some((t) => forms.some((f) => t.includes(f)))) leaks.push(`${s.split('-')[0]} in ${where}`);
      }
    }
    expect(leaks).toEqual([]);
  });
});
