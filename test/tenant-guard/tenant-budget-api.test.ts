/**
 * The per-tenant budget on the request path: the REQUEST authorizer in front of the API function
 * built as its Lambda entry builds it (`buildHandler`), against a real PostgreSQL as the application
 * role, with the budget over the in-memory DynamoDB model (test/support/dynamodb-model.ts). Which
 * organisation pays is what matters: the one a verified credential proves, never one the client names.
 */
import type { APIGatewayAuthorizerResult, APIGatewayRequestAuthorizerEvent } from 'aws-lambda';
import type { Pool } from 'pg';
import { securityHeaders } from '../../contracts/security-headers';
import { TENANT_BUDGET_WINDOW_SECONDS } from '../../contracts/rate-limits';
import { createAuthorizer } from '../../lambda/tenant-guard/authorizer';
import { buildHandler } from '../../lambda/tenant-guard/handler';
import { createTenantBudget } from '../../lambda/tenant-guard/tenant-budget';
import { DynamoDbTableModel } from '../support/dynamodb-model';
import { RecordingLog, RecordingMetrics } from '../support/observability';
import { startPostgres, TEST_GATE_KEY, type TestPostgres } from '../support/postgres';
import { buildWorld, type World } from './fixtures';
import { proxyEvent, testIdentity, type TestIdentity } from './http';

const STAGE_ARN = 'arn:aws:execute-api:eu-west-1:111111111111:abcdef1234/prod';
const TABLE = 'bulwark-tenant-budget';
const BUDGET = 3;

interface Answer {
  readonly status: number;
  readonly body: Record<string, unknown>;
  readonly headers: Record<string, unknown>;
}

describe('per-tenant budget through the tenant API', () => {
  let pg: TestPostgres;
  let w: World;
  let id: TestIdentity;
  let api: ReturnType<typeof buildHandler>;
  let authorize: ReturnType<typeof createAuthorizer>;
  const model = new DynamoDbTableModel(TABLE, 'pk');
  const log = new RecordingLog();
  const metrics = new RecordingMetrics();
  /** Connections the API took from the pool. */
  let connections = 0;
  /** The budget's clock, in seconds; each test starts a window of its own. */
  let clock = Math.floor(Date.UTC(2026, 0, 1) / 1000);
  let apiKeyA: string;

  beforeAll(async () => {
    pg = await startPostgres();
    w = await buildWorld(pg);
    const pool = pg.pool();
    pool.on('error', () => undefined);
    const counted = Object.create(pool) as Pool;
    counted.connect = (() => {
      connections++;
      return pool.connect();
    }) as Pool['connect'];
    id = await testIdentity(pg);
    authorize = createAuthorizer({ verify: id.verify, log: new RecordingLog(), gateKey: TEST_GATE_KEY });
    const budget = createTenantBudget({
      client: model,
      table: TABLE,
      requestsPerWindow: BUDGET,
      now: () => clock * 1000,
      log,
      metrics,
    });
    api = buildHandler(counted, log, { budget });
    const minted = await call(
      'POST',
      '/api-keys',
      { Authorization: await id.bearer(w.ownerA, w.storeA) },
      {
        name: 'crm sync',
        permissions: ['leads:view'],
      },
    );
    expect(minted.status).toBe(201);
    apiKeyA = `ApiKey ${String(minted.body['key'])}`;
  });
  afterAll(async () => pg?.stop());
  beforeEach(() => {
    clock += TENANT_BUDGET_WINDOW_SECONDS;
    log.entries.length = 0;
  });

  /** API Gateway: the authorizer's verdict, then the function with it as `requestContext.authorizer`. */
  async function call(method: string, path: string, headers: Record<string, string>, body?: unknown): Promise<Answer> {
    const verdict: APIGatewayAuthorizerResult = await authorize({
      type: 'REQUEST',
      methodArn: `${STAGE_ARN}/${method}${path}`,
      headers,
      multiValueHeaders: Object.fromEntries(Object.entries(headers).map(([k, v]) => [k, [v]])),
    } as unknown as APIGatewayRequestAuthorizerEvent);
    const context = Object.fromEntries(Object.entries(verdict.context ?? {}).map(([k, v]) => [k, String(v)]));
    if ((verdict.policyDocument.Statement[0] as { Effect: string }).Effect !== 'Allow') {
      return { status: 401, body: { error: context['error'] }, headers: {} };
    }
    const r = await api(
      proxyEvent(method, path, { headers, body, authorizer: { ...context, principalId: verdict.principalId } }),
    );
    return { status: r.statusCode, body: JSON.parse(r.body) as Record<string, unknown>, headers: r.headers ?? {} };
  }
  const bearer = async (user: string, org: string) => ({ Authorization: await id.bearer(user, org) });
  const count = (org: string) => model.attribute(`${org}#${clock - (clock % TENANT_BUDGET_WINDOW_SECONDS)}`, 'n')?.N;

  it('answers 429 TENANT_RATE_LIMITED with Retry-After once the organisation’s budget is spent, before taking a connection', async () => {
    const auth = await bearer(w.ownerA, w.storeA);
    for (let i = 0; i < BUDGET; i++) expect((await call('GET', '/leads', auth)).status).toBe(200);
    const before = connections;
    const refused = await call('GET', '/leads', auth);
    expect(refused.status).toBe(429);
    expect(refused.body).toEqual({ error: 'TENANT_RATE_LIMITED' });
    expect(refused.headers).toMatchObject({
      'retry-after': String(TENANT_BUDGET_WINDOW_SECONDS),
      ...securityHeaders(),
    });
    // Refused before the database: no connection was taken for it.
    expect(connections).toBe(before);
    // Logged with the organisation and the code, never a credential.
    const line = log.entries.find((e) => e.fields['code'] === 'TENANT_RATE_LIMITED');
    expect(line?.fields).toEqual({ code: 'TENANT_RATE_LIMITED', orgId: w.storeA, retryAfterSeconds: 60 });
    expect(JSON.stringify(log.entries)).not.toContain(auth.Authorization.slice('Bearer '.length));
    expect(metrics.published.some((p) => p.values['TenantBudgetRefused'] === 1)).toBe(true);
    // The next window admits it again.
    clock += TENANT_BUDGET_WINDOW_SECONDS;
    expect((await call('GET', '/leads', auth)).status).toBe(200);
  });

  it('leaves every other organisation’s budget whole', async () => {
    const a = await bearer(w.ownerA, w.storeA);
    for (let i = 0; i < BUDGET; i++) await call('GET', '/leads', a);
    expect((await call('GET', '/leads', a)).status).toBe(429);
    expect((await call('GET', '/leads', await bearer(w.ownerB, w.storeB))).status).toBe(200);
    expect(count(w.storeB)).toBe('1');
  });

  it('counts a bearer token against the organisation it proves, not the one X-Bulwark-Org names', async () => {
    // The group's Owner reads a store they oversee: the group pays, the store's budget is untouched.
    const auth = { ...(await bearer(w.groupOwner, w.group)), 'X-Bulwark-Org': w.storeA };
    for (let i = 0; i < BUDGET; i++) expect((await call('GET', '/leads', auth)).status).toBe(200);
    expect((await call('GET', '/leads', auth)).status).toBe(429);
    expect(count(w.group)).toBe(String(BUDGET));
    expect(count(w.storeA)).toBeUndefined();
    expect((await call('GET', '/leads', await bearer(w.ownerA, w.storeA))).status).toBe(200);
  });

  it('counts an API key against the organisation the database proves it belongs to; a key id without its secret spends nothing', async () => {
    // A wrong secret for a real key id: refused by the database, nothing counted.
    const forged = apiKeyA.slice(0, -4) + (apiKeyA.endsWith('AAAA') ? 'BBBB' : 'AAAA');
    expect((await call('GET', '/leads', { Authorization: forged })).status).toBe(401);
    expect(count(w.storeA)).toBeUndefined();
    // The key spends its organisation's budget, which the organisation's people share.
    for (let i = 0; i < BUDGET; i++) expect((await call('GET', '/leads', { Authorization: apiKeyA })).status).toBe(200);
    expect(count(w.storeA)).toBe(String(BUDGET));
    // Once the database has proven the key, its later requests pay before a connection is taken.
    const before = connections;
    const refused = await call('GET', '/leads', { Authorization: apiKeyA });
    expect(refused).toMatchObject({ status: 429, body: { error: 'TENANT_RATE_LIMITED' } });
    expect(connections).toBe(before);
    expect(refused.headers['retry-after']).toBe('60');
    expect((await call('GET', '/leads', await bearer(w.ownerA, w.storeA))).status).toBe(429);
    expect((await call('GET', '/leads', await bearer(w.ownerB, w.storeB))).status).toBe(200);
  });

  it('fails open when DynamoDB fails: the request is served, logged with TENANT_BUDGET_UNAVAILABLE', async () => {
    model.failures.push(Object.assign(new Error('throttled'), { name: 'ThrottlingException' }));
    expect((await call('GET', '/leads', await bearer(w.ownerA, w.storeA))).status).toBe(200);
    expect(log.entries.find((e) => e.fields['code'] === 'TENANT_BUDGET_UNAVAILABLE')?.fields).toEqual({
      code: 'TENANT_BUDGET_UNAVAILABLE',
      orgId: w.storeA,
      error: 'ThrottlingException',
    });
  });
});
