/**
 * The tenant API as deployed: API Gateway's REQUEST authorizer (lambda/tenant-guard/authorizer.ts)
 * in front of the API function built exactly as its Lambda entry builds it (`buildHandler`: no token
 * verifier of its own), against a real PostgreSQL as the application role. `gateway()` plays API
 * Gateway: a missing Authorization header never reaches the authorizer (401 TOKEN_MISSING); a Deny
 * becomes the ACCESS_DENIED gateway response (401 with the authorizer's code); an Allow must cover
 * the method ARN, and its context reaches the function as `requestContext.authorizer`, every value
 * stringified. Verdicts can be cached, as API Gateway caches them per Authorization header.
 */
import type { APIGatewayAuthorizerResult, APIGatewayRequestAuthorizerEvent } from 'aws-lambda';
import type { Pool } from 'pg';
import { createAuthorizer, stageWildcard } from '../../lambda/tenant-guard/authorizer';
import { buildHandler } from '../../lambda/tenant-guard/handler';
import { RecordingLog } from '../support/observability';
import { createHmac } from 'node:crypto';
import { securityHeaders } from '../../contracts/security-headers';
import { EnvelopeCipher } from '../../lambda/tenant-keys/envelope-cipher';
import { contextTenantKeyResolver, PgTenantKeyStore, pgTenantKeyResolver } from '../../lambda/tenant-keys/pg-stores';
import { DataKeyCache } from '../../lambda/tenant-keys/data-key-cache';
import { PgWebhookSecretReader } from '../../lambda/webhooks/pg-secret-store';
import { StoredSecretResolver } from '../../lambda/webhooks/secrets';
import { FakeKms, KEY_A } from '../tenant-keys/fake-kms';
import { startPostgres, TEST_GATE_KEY, type TestPostgres } from '../support/postgres';
import { DATABASE_ROLES } from '../../contracts/database';
import { buildWorld, createUser, type World } from './fixtures';
import { proxyEvent, SOURCE_IP, testIdentity, type TestIdentity, type TokenOptions } from './http';

const STAGE_ARN = 'arn:aws:execute-api:eu-west-1:111111111111:abcdef1234/prod';

type Headers = Record<string, string>;
interface Answer {
  readonly status: number;
  readonly body: Record<string, unknown>;
}

describe('tenant API behind the REQUEST authorizer', () => {
  let pg: TestPostgres;
  let w: World;
  let pool: Pool;
  let api: ReturnType<typeof buildHandler>;
  let authorize: ReturnType<typeof createAuthorizer>;
  const authorizerLog = new RecordingLog();
  let id: TestIdentity;
  let kms: FakeKms;
  let cipher: EnvelopeCipher;
  /** The function's clock when set; the authorizer (jose) keeps the real one. */
  let frozenAt: Date | undefined;
  /** The function's log of refusals the audit chain could not take. */
  const refusals = new RecordingLog();

  beforeAll(async () => {
    pg = await startPostgres();
    w = await buildWorld(pg);
    pool = pg.pool();
    pool.on('error', () => undefined);
    id = await testIdentity(pg);
    authorize = createAuthorizer({ verify: id.verify, log: authorizerLog, gateKey: TEST_GATE_KEY });
    kms = new FakeKms();
    // The ingress opens with the webhooks role's key lookup; the API seals with the key its own
    // transaction's tenant context reads (migrations/0403). One data-key cache, as in a warm function.
    const cache = new DataKeyCache();
    cipher = new EnvelopeCipher({
      kms: kms.client,
      cache,
      keyFor: pgTenantKeyResolver(new PgTenantKeyStore(pg.pool(DATABASE_ROLES.webhooks))),
    });
    api = buildHandler(pool, refusals, {
      cipher: (tx) => new EnvelopeCipher({ kms: kms.client, cache, keyFor: contextTenantKeyResolver(tx) }),
      now: () => frozenAt ?? new Date(),
    });
  });
  afterAll(async () => pg?.stop());

  const methodArn = (method: string, path: string) => `${STAGE_ARN}/${method}${path}`;

  /** API Gateway's verdict cache, keyed like the authorizer's identity source. */
  const cache = new Map<string, APIGatewayAuthorizerResult>();

  async function gateway(
    method: string,
    path: string,
    headers: Headers = {},
    body?: unknown,
    o: { cached?: boolean } = {},
  ): Promise<Answer> {
    const authorization = Object.entries(headers).find(([k]) => k.toLowerCase() === 'authorization')?.[1];
    // The UNAUTHORIZED and ACCESS_DENIED gateway responses (lib/tenant-guard/tenant-guard.ts).
    if (!authorization) return { status: 401, body: { error: 'TOKEN_MISSING', header: 'authorization' } };
    let verdict = o.cached ? cache.get(authorization) : undefined;
    if (!verdict) {
      const event = {
        type: 'REQUEST',
        methodArn: methodArn(method, path),
        resource: path,
        path,
        httpMethod: method,
        headers,
        multiValueHeaders: Object.fromEntries(Object.entries(headers).map(([k, v]) => [k, [v]])),
        pathParameters: null,
        queryStringParameters: null,
        multiValueQueryStringParameters: null,
        stageVariables: null,
        requestContext: {},
      } as unknown as APIGatewayRequestAuthorizerEvent;
      verdict = await authorize(event);
      cache.set(authorization, verdict);
    }
    const statement = verdict.policyDocument.Statement[0] as { Effect: string; Resource: string };
    const context = Object.fromEntries(Object.entries(verdict.context ?? {}).map(([k, v]) => [k, String(v)]));
    if (statement.Effect !== 'Allow')
      return { status: 401, body: { error: context['error'], header: 'authorization' } };
    // The Allow must cover this route (a cached verdict is reused for every route of the caller).
    expect(statement.Resource).toBe(`${STAGE_ARN}/*`);
    const r = await api(
      proxyEvent(method, path, { headers, body, authorizer: { ...context, principalId: verdict.principalId } }),
    );
    expect(r.headers).toMatchObject(securityHeaders());
    return { status: r.statusCode, body: JSON.parse(r.body) as Record<string, unknown> };
  }

  const bearer = async (user: string, org: string | null, o?: TokenOptions) => ({
    Authorization: await id.bearer(user, org, o),
  });

  it('verifies bearer tokens at the edge: valid passes; missing, expired, forged, wrong-audience and claimless are refused with their code', async () => {
    expect(await gateway('GET', '/leads', await bearer(w.ownerA, w.storeA))).toMatchObject({ status: 200 });
    // A missing header never reaches the authorizer (API Gateway's UNAUTHORIZED response answers,
    // pinned in construct.test.ts); should one reach it anyway, it is refused with the same code.
    const bare = await authorize({
      type: 'REQUEST',
      methodArn: methodArn('GET', '/leads'),
      headers: {},
      multiValueHeaders: {},
    } as unknown as APIGatewayRequestAuthorizerEvent);
    expect(bare.policyDocument.Statement[0]).toMatchObject({ Effect: 'Deny' });
    expect(bare.context).toEqual({ error: 'TOKEN_MISSING' });
    const past = Math.floor(Date.now() / 1000) - 3600;
    expect(await gateway('GET', '/leads', await bearer(w.ownerA, w.storeA, { exp: past }))).toEqual({
      status: 401,
      body: { error: 'TOKEN_EXPIRED', header: 'authorization' },
    });
    expect(await gateway('GET', '/leads', await bearer(w.ownerA, w.storeA, { key: id.foreignKey }))).toEqual({
      status: 401,
      body: { error: 'TOKEN_INVALID', header: 'authorization' },
    });
    expect(await gateway('GET', '/leads', await bearer(w.ownerA, w.storeA, { aud: 'another-client' }))).toEqual({
      status: 401,
      body: { error: 'TOKEN_INVALID', header: 'authorization' },
    });
    expect(await gateway('GET', '/leads', await bearer(w.ownerA, null))).toEqual({
      status: 401,
      body: { error: 'TENANT_CONTEXT_MISSING', header: 'authorization' },
    });
    expect(await gateway('GET', '/leads', { Authorization: 'Basic YWxpY2U6c2VjcmV0' })).toEqual({
      status: 401,
      body: { error: 'TOKEN_INVALID', header: 'authorization' },
    });
    // Each refusal is logged with its code, and nothing of the credential.
    expect(authorizerLog.entries.map((e) => [e.level, e.message, e.fields])).toEqual(
      expect.arrayContaining([
        ['warn', 'token refused', { code: 'TOKEN_MISSING' }],
        ['warn', 'token refused', { code: 'TOKEN_EXPIRED' }],
        ['warn', 'token refused', { code: 'TENANT_CONTEXT_MISSING' }],
      ]),
    );
    expect(JSON.stringify(authorizerLog.entries)).not.toMatch(/eyJ|YWxpY2U6c2VjcmV0/);
  });

  it('a verified token still gets no further than its membership allows', async () => {
    // Owner of store A naming store B in the token: the edge verified the token, the database refuses the tenant.
    expect(await gateway('GET', '/leads', await bearer(w.ownerA, w.storeB))).toEqual({
      status: 403,
      body: { error: 'MEMBERSHIP_REVOKED' },
    });
    // The refusal cannot enter store B's audit chain (not a member), so it is kept in the log.
    expect(refusals.entries.splice(0)).toEqual([
      expect.objectContaining({
        level: 'warn',
        fields: expect.objectContaining({
          event: 'access.refused',
          orgId: w.storeB,
          metadata: expect.stringContaining('"code":"MEMBERSHIP_REVOKED"'),
        }),
      }),
    ]);
  });

  it('a cached verdict is never honoured past its token’s expiry', async () => {
    const exp = Math.floor(Date.now() / 1000) + 600;
    const headers = await bearer(w.ownerA, w.storeA, { exp });
    expect((await gateway('GET', '/leads', headers)).status).toBe(200);
    // The function's clock moves to one second past the token's expiry; API Gateway would answer
    // from its cache without asking the authorizer again.
    frozenAt = new Date(exp * 1000 + 1000);
    try {
      expect(await gateway('GET', '/leads', headers, undefined, { cached: true })).toEqual({
        status: 401,
        body: { error: 'TOKEN_EXPIRED', header: 'authorization' },
      });
      // One second before expiry the same cached verdict is still honoured.
      frozenAt = new Date(exp * 1000 - 1000);
      expect((await gateway('GET', '/leads', headers, undefined, { cached: true })).status).toBe(200);
    } finally {
      frozenAt = undefined;
    }
  });

  it('API keys pass the deployed gateway and are checked in the database on every request: wrong secret, revocation', async () => {
    const minter = await createUser(pg);
    await pg.superuser("INSERT INTO memberships (org_id, user_id, role) VALUES ($1, $2, 'admin')", [w.storeA, minter]);
    const minted = await gateway('POST', '/api-keys', await bearer(minter, w.storeA), {
      name: 'dms sync',
      permissions: ['leads:view', 'leads:create'],
    });
    expect(minted.status).toBe(201);
    const key = String(minted.body['key']);
    const auth = { Authorization: `ApiKey ${key}` };

    expect(await gateway('POST', '/leads', auth, { name: 'from the DMS' })).toMatchObject({ status: 201 });
    expect((await gateway('GET', '/leads', auth)).status).toBe(200);
    expect(await gateway('DELETE', '/leads/00000000-0000-4000-8000-000000000000', auth)).toEqual({
      status: 403,
      body: { error: 'PERMISSION_DENIED' },
    });
    // Same shape, wrong secret: the authorizer lets it through, the database refuses it.
    const forged = `ApiKey ${key.slice(0, -4)}${key.endsWith('AAAA') ? 'BBBB' : 'AAAA'}`;
    expect(await gateway('GET', '/leads', { Authorization: forged })).toEqual({
      status: 401,
      body: { error: 'TOKEN_INVALID', header: 'authorization' },
    });
    expect(await gateway('GET', '/leads', { Authorization: 'ApiKey bwk_nothex_short' })).toEqual({
      status: 401,
      body: { error: 'TOKEN_INVALID', header: 'authorization' },
    });

    // Revoked: refused on the next request, even though API Gateway still holds an Allow for the header.
    const revoked = await gateway('DELETE', `/api-keys/${String(minted.body['id'])}`, await bearer(minter, w.storeA));
    expect(revoked.status).toBe(200);
    expect(await gateway('GET', '/leads', auth, undefined, { cached: true })).toEqual({
      status: 401,
      body: { error: 'TOKEN_INVALID', header: 'authorization' },
    });
  });

  it('the deployed function honours only verdicts: a bare bearer token, or a key other than the verdict’s, is refused', async () => {
    const direct = await api(proxyEvent('GET', '/leads', { headers: await bearer(w.ownerA, w.storeA) }));
    expect(direct.statusCode).toBe(401);
    expect(JSON.parse(direct.body)).toEqual({ error: 'TOKEN_INVALID', header: 'authorization' });

    // A real, live key presented under a verdict issued for another key id is refused; under its own, served.
    const minted = await gateway('POST', '/api-keys', await bearer(w.ownerA, w.storeA), {
      name: 'verdict check',
      permissions: ['leads:view'],
    });
    const keyHeader = { Authorization: `ApiKey ${String(minted.body['key'])}` };
    const withVerdict = (keyId: string) =>
      api(
        proxyEvent('GET', '/leads', {
          headers: keyHeader,
          authorizer: { kind: 'api_key', keyId, principalId: `api_key:${keyId}` },
        }),
      );
    const mismatched = await withVerdict('11111111-1111-4111-8111-111111111111');
    expect(mismatched.statusCode).toBe(401);
    expect(JSON.parse(mismatched.body)).toEqual({ error: 'TOKEN_INVALID', header: 'authorization' });
    expect((await withVerdict(String(minted.body['id']))).statusCode).toBe(200);

    const unknownKind = await api(proxyEvent('GET', '/leads', { authorizer: { kind: 'iam', principalId: 'x' } }));
    expect(JSON.parse(unknownKind.body)).toEqual({ error: 'TOKEN_INVALID', header: 'authorization' });
  });

  it('opening a support grant is recorded in the organisation’s own durable audit chain', async () => {
    const opened = await gateway('POST', '/support-grants', await bearer(w.support, w.storeA), {
      orgId: w.storeB,
      reason: 'customer ticket 4711: import stuck',
      durationMinutes: 30,
    });
    expect(opened.status).toBe(201);
    const grantId = String((opened.body['grant'] as { id: string }).id);
    expect(
      await pg.superuser(
        "SELECT actor_user_id, support_grant_id, entity_id FROM audit_log WHERE org_id = $1 AND event = 'support_grant.opened'",
        [w.storeB],
      ),
    ).toEqual([{ actor_user_id: w.support, support_grant_id: grantId, entity_id: grantId }]);
  });

  describe('per-organisation webhook secrets', () => {
    const SECRET = 'frejun-portal-secret-0123456789';
    const signWith = async (org: string) => {
      const keys = await new StoredSecretResolver({
        store: new PgWebhookSecretReader(pg.pool(DATABASE_ROLES.webhooks)),
        cipher,
      }).secretsFor(org, 'frejun');
      return keys.keys.map((k) => createHmac('sha256', k).update('{"event_id":"e1"}').digest('hex'));
    };

    it('are write-only: sealed under the tenant key, reported as secret_set, audited, usable by verification', async () => {
      kms.createKey(KEY_A);
      await pg.superuser("SELECT * FROM app.record_tenant_key($1, $2, 'managed')", [w.storeA, KEY_A]);
      const owner = await bearer(w.ownerA, w.storeA);
      expect(await gateway('GET', '/webhook-secrets', owner)).toEqual({
        status: 200,
        body: {
          secrets: [
            { provider: 'frejun', secret_set: false, previous_secret_active: false },
            { provider: 'didlogic', secret_set: false, previous_secret_active: false },
          ],
        },
      });
      const set = await gateway('PUT', '/webhook-secrets/frejun', owner, { secret: SECRET });
      expect(set).toEqual({
        status: 200,
        body: { secret: { provider: 'frejun', secret_set: true, previous_secret_active: false } },
      });
      const stored = JSON.stringify(
        await pg.superuser('SELECT * FROM organisation_webhook_secrets WHERE org_id = $1', [w.storeA]),
      );
      expect(stored).not.toContain(SECRET);
      expect(stored).not.toContain(Buffer.from(SECRET).toString('base64'));
      expect(kms.generateCalls).toBeGreaterThan(0);
      // The verification side opens it and signs exactly as the carrier would.
      expect(await signWith(w.storeA)).toEqual([
        createHmac('sha256', SECRET).update('{"event_id":"e1"}').digest('hex'),
      ]);
      const events = (await pg.superuser(
        "SELECT actor_user_id, ip, entity_id, metadata FROM audit_log WHERE org_id = $1 AND event = 'webhook_secret.rotated'",
        [w.storeA],
      )) as { actor_user_id: string; ip: string; entity_id: string; metadata: object }[];
      expect(events).toEqual([
        { actor_user_id: w.ownerA, ip: SOURCE_IP, entity_id: 'frejun', metadata: expect.any(Object) },
      ]);
      expect(JSON.stringify(events)).not.toContain(SECRET);

      // Rotation: the previous secret keeps verifying until the window ends or the owner ends it.
      await gateway('PUT', '/webhook-secrets/frejun', owner, { secret: `${SECRET}-next` });
      expect(await signWith(w.storeA)).toHaveLength(2);
      expect(await gateway('DELETE', '/webhook-secrets/frejun/previous', owner)).toEqual({
        status: 200,
        body: { secret: { provider: 'frejun', secret_set: true, previous_secret_active: false } },
      });
      expect(await signWith(w.storeA)).toHaveLength(1);
    });

    it('refusals: missing permission, unknown provider, bad secret, no tenant key yet, KMS down', async () => {
      const viewer = await createUser(pg);
      await pg.superuser("INSERT INTO memberships (org_id, user_id, role) VALUES ($1, $2, 'viewer')", [
        w.storeA,
        viewer,
      ]);
      expect(
        await gateway('PUT', '/webhook-secrets/frejun', await bearer(viewer, w.storeA), { secret: SECRET }),
      ).toEqual({
        status: 403,
        body: { error: 'PERMISSION_DENIED' },
      });
      const owner = await bearer(w.ownerA, w.storeA);
      expect(await gateway('PUT', '/webhook-secrets/telnyx', owner, { secret: SECRET })).toEqual({
        status: 404,
        body: { error: 'NOT_FOUND' },
      });
      expect(await gateway('PUT', '/webhook-secrets/didlogic', owner, { secret: 'short' })).toEqual({
        status: 400,
        body: { error: 'VALIDATION_FAILED', field: 'secret' },
      });
      expect(await gateway('PUT', '/webhook-secrets/didlogic', owner, { secret: SECRET, extra: 1 })).toEqual({
        status: 400,
        body: { error: 'VALIDATION_FAILED', field: 'extra' },
      });
      // Store B has no tenant key yet: nothing can be sealed, so nothing is stored.
      expect(
        await gateway('PUT', '/webhook-secrets/frejun', await bearer(w.ownerB, w.storeB), { secret: SECRET }),
      ).toEqual({ status: 409, body: { error: 'TENANT_KEY_MISSING' } });
      expect(await pg.superuser('SELECT 1 FROM organisation_webhook_secrets WHERE org_id = $1', [w.storeB])).toEqual(
        [],
      );
      // KMS refusing (here: store C's recorded key is unknown to KMS) is a retryable 503; nothing is stored.
      // (Store A's key would not do: the cipher's bounded data-key cache rightly seals without KMS.)
      await pg.superuser("SELECT * FROM app.record_tenant_key($1, $2, 'managed')", [
        w.storeC,
        'arn:aws:kms:eu-west-1:111122223333:key/33333333-3333-4333-8333-333333333333',
      ]);
      expect(
        await gateway('PUT', '/webhook-secrets/didlogic', await bearer(w.ownerC, w.storeC), { secret: SECRET }),
      ).toEqual({ status: 503, body: { error: 'KEY_UNAVAILABLE' } });
      expect(await pg.superuser('SELECT 1 FROM organisation_webhook_secrets WHERE org_id = $1', [w.storeC])).toEqual(
        [],
      );
    });
  });
});

describe('REQUEST authorizer', () => {
  const refusals = new RecordingLog();
  const refuseAll = createAuthorizer({
    verify: () => Promise.reject(new Error('the verifier must not be reached')),
    log: refusals,
    gateKey: TEST_GATE_KEY,
  });
  const event = (headers: Record<string, string[]>) =>
    ({
      type: 'REQUEST',
      methodArn: `${STAGE_ARN}/GET/leads`,
      headers: Object.fromEntries(Object.entries(headers).map(([k, v]) => [k, v[v.length - 1]])),
      multiValueHeaders: headers,
    }) as unknown as APIGatewayRequestAuthorizerEvent;

  it('covers the whole stage with one verdict and refuses malformed method ARNs', () => {
    expect(stageWildcard(`${STAGE_ARN}/POST/leads/bulk-delete`)).toBe(`${STAGE_ARN}/*`);
    expect(() => stageWildcard('not-an-arn')).toThrow();
  });

  it('refuses a repeated Authorization header instead of picking one', async () => {
    const key = `ApiKey bwk_${'a'.repeat(32)}_${'b'.repeat(43)}`;
    const r = await refuseAll(event({ Authorization: [key, key] }));
    expect(r.policyDocument.Statement[0]).toMatchObject({ Effect: 'Deny' });
    expect(r.context).toEqual({ error: 'TOKEN_INVALID' });
    expect(refusals.entries.at(-1)).toEqual({
      level: 'warn',
      message: 'token refused',
      fields: { code: 'TOKEN_INVALID' },
    });
    expect(JSON.stringify(refusals.entries)).not.toContain('b'.repeat(43));
  });

  it('passes a well-formed API key on by id only, never its secret', async () => {
    const r = await refuseAll(event({ authorization: [`ApiKey bwk_${'c'.repeat(32)}_${'d'.repeat(43)}`] }));
    expect(r.policyDocument.Statement[0]).toMatchObject({ Effect: 'Allow', Resource: `${STAGE_ARN}/*` });
    expect(r.context).toEqual({ kind: 'api_key', keyId: 'cccccccc-cccc-cccc-cccc-cccccccccccc' });
    expect(JSON.stringify(r)).not.toContain('d'.repeat(43));
  });

  it('fails (500), rather than denying, when verification itself breaks', async () => {
    await expect(refuseAll(event({ Authorization: ['Bearer a.b.c'] }))).rejects.toThrow('must not be reached');
  });
});
