/**
 * The per-tenant budget (lambda/tenant-guard/tenant-budget.ts): its logic against the in-memory
 * model of DynamoDB's conditional UpdateItem (test/support/dynamodb-model.ts), with an injected
 * clock and timer, and the exact call it sends (aws-sdk-client-mock).
 */
import {
  ConditionalCheckFailedException,
  DynamoDBClient,
  ProvisionedThroughputExceededException,
  UpdateItemCommand,
} from '@aws-sdk/client-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import { TENANT_BUDGET_METRICS, TENANT_BUDGET_WINDOW_SECONDS } from '../../contracts/rate-limits';
import {
  createTenantBudget,
  ProvenKeyOrganisations,
  type BudgetTimer,
  type TenantBudgetOptions,
} from '../../lambda/tenant-guard/tenant-budget';
import { DynamoDbTableModel } from '../support/dynamodb-model';
import { RecordingLog, RecordingMetrics } from '../support/observability';

const TABLE = 'bulwark-tenant-budget';
const ORG_A = '0d6c1f4e-2b1a-4c3e-9f00-aaaaaaaaaaaa';
const ORG_B = '0d6c1f4e-2b1a-4c3e-9f00-bbbbbbbbbbbb';
/** 2026-01-01T00:00:00Z, the start of a window. */
const T0 = Date.UTC(2026, 0, 1) / 1000;

/** A timer that elapses only when the test says so. */
function manualTimer() {
  const pending: (() => void)[] = [];
  let cancelled = 0;
  return {
    timer: (): BudgetTimer => {
      let fire!: () => void;
      const elapsed = new Promise<void>((r) => (fire = r));
      pending.push(() => fire());
      return { elapsed, cancel: () => void cancelled++ };
    },
    fireAll: () => pending.splice(0).forEach((f) => f()),
    get cancelled() {
      return cancelled;
    },
  };
}

function setup(o: Partial<TenantBudgetOptions> & { limit?: number } = {}) {
  const model = new DynamoDbTableModel(TABLE, 'pk');
  const log = new RecordingLog();
  const metrics = new RecordingMetrics();
  let seconds = T0;
  const budget = createTenantBudget({
    client: model,
    table: TABLE,
    requestsPerWindow: o.limit ?? 3,
    now: () => seconds * 1000,
    log,
    metrics,
    ...o,
  });
  return {
    model,
    log,
    metrics,
    budget,
    at: (s: number) => {
      seconds = s;
    },
  };
}

const metricNames = (m: RecordingMetrics) => m.published.flatMap((p) => Object.keys(p.values));

describe('tenant budget against the DynamoDB model', () => {
  it('allows an organisation up to its budget in a window and refuses above it, with the seconds left in the window', async () => {
    const { budget, model, log, metrics, at } = setup({ limit: 3 });
    at(T0 + 15);
    for (let i = 0; i < 3; i++) expect(await budget(ORG_A)).toEqual({ allowed: true, counted: true });
    expect(await budget(ORG_A)).toEqual({ allowed: false, retryAfterSeconds: 45 });
    expect(await budget(ORG_A)).toEqual({ allowed: false, retryAfterSeconds: 45 });
    // A refused request wrote nothing: the count stays at the budget.
    expect(model.attribute(`${ORG_A}#${T0}`, 'n')).toEqual({ N: '3' });
    expect(model.attribute(`${ORG_A}#${T0}`, 'expiresAt')).toEqual({
      N: String(T0 + 2 * TENANT_BUDGET_WINDOW_SECONDS),
    });
    expect(log.entries.filter((e) => e.fields['code'] === 'TENANT_RATE_LIMITED')).toHaveLength(2);
    expect(log.entries[0]?.fields).toEqual({ code: 'TENANT_RATE_LIMITED', orgId: ORG_A, retryAfterSeconds: 45 });
    expect(metricNames(metrics)).toEqual([TENANT_BUDGET_METRICS.refused, TENANT_BUDGET_METRICS.refused]);
  });

  it('starts a fresh count when the window rolls over (injected clock); Retry-After is never below 1 s', async () => {
    const { budget, at } = setup({ limit: 2 });
    at(T0 + 59);
    await budget(ORG_A);
    await budget(ORG_A);
    expect(await budget(ORG_A)).toEqual({ allowed: false, retryAfterSeconds: 1 });
    at(T0 + 60);
    expect(await budget(ORG_A)).toEqual({ allowed: true, counted: true });
    expect(await budget(ORG_A)).toEqual({ allowed: true, counted: true });
    // The fixed window's edge: 2 at 59 s and 2 at 60 s, i.e. twice the budget within one second.
    expect(await budget(ORG_A)).toEqual({ allowed: false, retryAfterSeconds: 60 });
  });

  it('keeps organisations independent: one spending its budget leaves the other’s whole', async () => {
    const { budget, at } = setup({ limit: 2 });
    at(T0 + 1);
    await budget(ORG_A);
    await budget(ORG_A);
    expect((await budget(ORG_A)).allowed).toBe(false);
    expect(await budget(ORG_B)).toEqual({ allowed: true, counted: true });
    expect(await budget(ORG_B)).toEqual({ allowed: true, counted: true });
    expect((await budget(ORG_B)).allowed).toBe(false);
  });

  it('counts an organisation id in any case as one budget', async () => {
    const { budget } = setup({ limit: 1 });
    expect((await budget(ORG_A.toUpperCase())).allowed).toBe(true);
    expect((await budget(ORG_A)).allowed).toBe(false);
  });

  it('admits exactly the budget when many instances race for it (the conditional update is atomic)', async () => {
    const { budget } = setup({ limit: 25 });
    const verdicts = await Promise.all(Array.from({ length: 100 }, () => budget(ORG_A)));
    expect(verdicts.filter((v) => v.allowed)).toHaveLength(25);
  });

  it.each([
    [
      'throttled',
      new ProvisionedThroughputExceededException({ message: 'slow down', $metadata: {} }),
      'ProvisionedThroughputExceededException',
    ],
    ['an outage', Object.assign(new Error('connect ECONNREFUSED'), { name: 'Error' }), 'Error'],
    [
      'a missing table',
      Object.assign(new Error('not found'), { name: 'ResourceNotFoundException' }),
      'ResourceNotFoundException',
    ],
  ])(
    'fails open when DynamoDB fails (%s): the request passes uncounted, logged with a code and a metric',
    async (_, error, name) => {
      const { budget, model, log, metrics } = setup({ limit: 1 });
      model.failures.push(error);
      expect(await budget(ORG_A)).toEqual({ allowed: true, counted: false });
      expect(log.entries).toEqual([
        {
          level: 'warn',
          message: 'tenant budget unavailable: request not counted',
          fields: { code: 'TENANT_BUDGET_UNAVAILABLE', orgId: ORG_A, error: name },
        },
      ]);
      expect(metricNames(metrics)).toEqual([TENANT_BUDGET_METRICS.unavailable]);
      // Nothing was counted: the budget is whole once DynamoDB answers again.
      expect(await budget(ORG_A)).toEqual({ allowed: true, counted: true });
    },
  );

  it('fails open when DynamoDB does not answer within the timeout, and aborts the call', async () => {
    const clock = manualTimer();
    const { budget, model, log } = setup({ limit: 1, timer: clock.timer, timeoutMillis: 50 });
    model.hang = true;
    const pending = budget(ORG_A);
    await Promise.resolve();
    clock.fireAll();
    expect(await pending).toEqual({ allowed: true, counted: false });
    expect(log.entries[0]?.fields).toMatchObject({ code: 'TENANT_BUDGET_UNAVAILABLE', error: 'Timeout' });
    expect(model.aborted).toBe(1);
    // An answer before the timer clears it.
    model.hang = false;
    expect(await budget(ORG_A)).toEqual({ allowed: true, counted: true });
    expect(clock.cancelled).toBe(2);
  });

  it('never counts something that is not an organisation id (fails open, logged)', async () => {
    const { budget, model, log } = setup();
    expect(await budget('not-an-org')).toEqual({ allowed: true, counted: false });
    expect(model.calls).toHaveLength(0);
    expect(log.entries[0]?.fields).toMatchObject({ code: 'TENANT_BUDGET_UNAVAILABLE', error: 'NotAnOrganisationId' });
  });

  it('refuses a budget that is not a positive integer at construction', () => {
    expect(() => setup({ limit: 0 })).toThrow('requestsPerWindow must be a positive integer');
  });

  it('the model itself: refuses unused or undefined expression values and a key other than the table’s', async () => {
    const model = new DynamoDbTableModel(TABLE, 'pk');
    const base = {
      TableName: TABLE,
      Key: { pk: { S: 'k' } },
      UpdateExpression: 'ADD #n :one',
      ExpressionAttributeNames: { '#n': 'n' },
      ExpressionAttributeValues: { ':one': { N: '1' } },
    };
    await expect(
      model.send(
        new UpdateItemCommand({ ...base, ExpressionAttributeValues: { ':one': { N: '1' }, ':x': { N: '2' } } }),
      ),
    ).rejects.toMatchObject({ name: 'ValidationException' });
    await expect(model.send(new UpdateItemCommand({ ...base, UpdateExpression: 'ADD #n :two' }))).rejects.toMatchObject(
      { name: 'ValidationException' },
    );
    await expect(model.send(new UpdateItemCommand({ ...base, Key: { id: { S: 'k' } } }))).rejects.toMatchObject({
      name: 'ValidationException',
    });
    await expect(
      model.send(
        new UpdateItemCommand({ ...base, UpdateExpression: 'ADD pk :one', ExpressionAttributeNames: undefined }),
      ),
    ).rejects.toMatchObject({ name: 'ValidationException' });
    // A comparison with a missing attribute is false; the failed check writes nothing.
    await expect(
      model.send(new UpdateItemCommand({ ...base, ConditionExpression: '#n < :one' })),
    ).rejects.toBeInstanceOf(ConditionalCheckFailedException);
    expect(model.items.size).toBe(0);
    await expect(model.send(new UpdateItemCommand({ ...base, ReturnValues: 'ALL_NEW' }))).resolves.toMatchObject({
      Attributes: { pk: { S: 'k' }, n: { N: '1' } },
    });
  });
});

describe('tenant budget call shape (aws-sdk-client-mock)', () => {
  const ddb = mockClient(DynamoDBClient);
  beforeEach(() => ddb.reset());

  it('sends one conditional UpdateItem keyed on the organisation and the window, returning the new count', async () => {
    ddb.on(UpdateItemCommand).resolves({ Attributes: { n: { N: '1' } } });
    const budget = createTenantBudget({
      client: new DynamoDBClient({ region: 'eu-west-1' }),
      table: TABLE,
      requestsPerWindow: 3000,
      now: () => (T0 + 42) * 1000 + 500,
      log: new RecordingLog(),
    });
    expect(await budget(ORG_A)).toEqual({ allowed: true, counted: true });
    const calls = ddb.commandCalls(UpdateItemCommand);
    expect(calls).toHaveLength(1);
    expect(calls[0]?.args[0].input).toEqual({
      TableName: TABLE,
      Key: { pk: { S: `${ORG_A}#${T0}` } },
      UpdateExpression: 'SET #expires = if_not_exists(#expires, :expires) ADD #count :one',
      ConditionExpression: 'attribute_not_exists(#count) OR #count < :limit',
      ExpressionAttributeNames: { '#count': 'n', '#expires': 'expiresAt' },
      ExpressionAttributeValues: { ':one': { N: '1' }, ':limit': { N: '3000' }, ':expires': { N: String(T0 + 120) } },
      ReturnValues: 'UPDATED_NEW',
    });
  });

  it('reads ConditionalCheckFailedException as the budget spent', async () => {
    ddb
      .on(UpdateItemCommand)
      .rejects(new ConditionalCheckFailedException({ message: 'The conditional request failed', $metadata: {} }));
    const budget = createTenantBudget({
      client: new DynamoDBClient({ region: 'eu-west-1' }),
      table: TABLE,
      requestsPerWindow: 10,
      now: () => (T0 + 10) * 1000,
      log: new RecordingLog(),
    });
    expect(await budget(ORG_B)).toEqual({ allowed: false, retryAfterSeconds: 50 });
  });
});

describe('API keys the database proved (ProvenKeyOrganisations)', () => {
  const KEY = `bwk_${'a'.repeat(32)}_${'b'.repeat(43)}`;

  it('finds an organisation only by the whole key, for a limited time, and keeps a bounded number', () => {
    let now = 0;
    const orgs = new ProvenKeyOrganisations(2, 1000, () => now);
    orgs.remember(KEY, ORG_A);
    expect(orgs.get(KEY)).toBe(ORG_A);
    // The key id with another secret is another key: nothing.
    expect(orgs.get(`bwk_${'a'.repeat(32)}_${'c'.repeat(43)}`)).toBeUndefined();
    now = 1000;
    expect(orgs.get(KEY)).toBeUndefined();
    orgs.remember('k1', ORG_A);
    orgs.remember('k2', ORG_B);
    orgs.remember('k3', ORG_B);
    expect(orgs.size).toBe(2);
    expect(orgs.get('k1')).toBeUndefined();
    expect(orgs.get('k3')).toBe(ORG_B);
  });
});

describe('tenant API environment for the budget', () => {
  // Imported here only: the handler module builds its logger and tracer at load.
  const load = async () => (await import('../../lambda/tenant-guard/handler')).Env;

  it('takes the table and the budget together, as numbers, and refuses one without the other', async () => {
    const Env = await load();
    expect(
      Env.parse({
        TENANT_BUDGET_TABLE: 'bulwark-budget',
        TENANT_BUDGET_PER_MINUTE: '3000',
        TENANT_BUDGET_TIMEOUT_MS: '80',
      }),
    ).toMatchObject({
      TENANT_BUDGET_TABLE: 'bulwark-budget',
      TENANT_BUDGET_PER_MINUTE: 3000,
      TENANT_BUDGET_TIMEOUT_MS: 80,
    });
    const alone = Env.safeParse({ TENANT_BUDGET_TABLE: 'bulwark-budget' });
    expect(alone.success).toBe(false);
    expect(alone.error?.issues.map((i) => i.path.join('.'))).toEqual(['TENANT_BUDGET_TABLE']);
    expect(Env.safeParse({ TENANT_BUDGET_TABLE: 'bulwark-budget', TENANT_BUDGET_PER_MINUTE: '0' }).success).toBe(false);
  });
});
