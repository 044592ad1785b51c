/**
 * The aggregate per-tenant budget (docs/rate-limits.md "Per tenant"): requests per organisation per
 * fixed window, counted in DynamoDB with one conditional UpdateItem per request. The item
 * `<org_id>#<window start>` is created by the first request of the window; the update adds 1 only
 * while the count is below the budget, so a refused request writes nothing and the count never
 * passes the budget. Atomic in DynamoDB: two instances racing for the last unit cannot both win.
 *
 * Which organisation is counted is the caller's business (api.ts): always one a verified credential
 * proves, never a header the client chose.
 *
 * It protects availability, not isolation, so it fails open: a DynamoDB error, throttle or a call
 * slower than `timeoutMillis` lets the request through uncounted, logged with the code
 * TENANT_BUDGET_UNAVAILABLE and counted in a metric. Pure over the injected client, clock and timer.
 */
import { createHash } from 'node:crypto';
import { UpdateItemCommand, type UpdateItemCommandInput } from '@aws-sdk/client-dynamodb';
import { UUID } from '../../contracts/ids';
import { TENANT_BUDGET_ITEM, TENANT_BUDGET_METRICS, TENANT_BUDGET_WINDOW_SECONDS } from '../../contracts/rate-limits';
import { MetricUnit, type Log, type MetricsRecorder } from '../shared/observability';
import { errorName } from '../shared/sdk';

/** What the budget sends its one command through (a DynamoDBClient). */
export interface BudgetClient {
  send(command: UpdateItemCommand, options?: { abortSignal?: AbortSignal }): Promise<unknown>;
}

/** A timer the call races against; `cancel` clears it once the call has answered. */
export interface BudgetTimer {
  readonly elapsed: Promise<void>;
  cancel(): void;
}

export interface TenantBudgetOptions {
  readonly client: BudgetClient;
  readonly table: string;
  /** Requests per organisation per window (TENANT_BUDGET_WINDOW_SECONDS). */
  readonly requestsPerWindow: number;
  /** How long a request waits for DynamoDB before it goes on uncounted. @default 100 */
  readonly timeoutMillis?: number;
  /** Milliseconds since the epoch. @default Date.now */
  readonly now?: () => number;
  /** @default a setTimeout timer */
  readonly timer?: (ms: number) => BudgetTimer;
  /** Refusals and failures, with the organisation and the error's name, never a credential. */
  readonly log: Log;
  /** @default - no metrics */
  readonly metrics?: MetricsRecorder;
}

export type BudgetVerdict =
  | { readonly allowed: true; readonly counted: boolean }
  | { readonly allowed: false; readonly retryAfterSeconds: number };

/** Spends one request of `orgId`'s budget for the current window. */
export type TenantBudget = (orgId: string) => Promise<BudgetVerdict>;

export const DEFAULT_BUDGET_TIMEOUT_MILLIS = 100;

const realTimer = (ms: number): BudgetTimer => {
  let handle: ReturnType<typeof setTimeout> | undefined;
  const elapsed = new Promise<void>((resolve) => {
    handle = setTimeout(resolve, ms);
  });
  return { elapsed, cancel: () => clearTimeout(handle) };
};

/** The one UpdateItem of a request: create-or-increment while below the budget. */
export function budgetUpdate(
  table: string,
  orgId: string,
  windowStart: number,
  requestsPerWindow: number,
): UpdateItemCommandInput {
  return {
    TableName: table,
    Key: { [TENANT_BUDGET_ITEM.partitionKey]: { S: `${orgId}#${windowStart}` } },
    UpdateExpression: 'SET #expires = if_not_exists(#expires, :expires) ADD #count :one',
    ConditionExpression: 'attribute_not_exists(#count) OR #count < :limit',
    ExpressionAttributeNames: { '#count': TENANT_BUDGET_ITEM.count, '#expires': TENANT_BUDGET_ITEM.expiresAt },
    ExpressionAttributeValues: {
      ':one': { N: '1' },
      ':limit': { N: String(requestsPerWindow) },
      // DynamoDB TTL removes the item some time after this; its key already names its window.
      ':expires': { N: String(windowStart + 2 * TENANT_BUDGET_WINDOW_SECONDS) },
    },
    ReturnValues: 'UPDATED_NEW',
  };
}

export function createTenantBudget(o: TenantBudgetOptions): TenantBudget {
  if (!Number.isInteger(o.requestsPerWindow) || o.requestsPerWindow < 1) {
    throw new Error(`tenant budget: requestsPerWindow must be a positive integer, got ${o.requestsPerWindow}`);
  }
  const now = o.now ?? Date.now;
  const timer = o.timer ?? realTimer;
  const timeout = o.timeoutMillis ?? DEFAULT_BUDGET_TIMEOUT_MILLIS;
  const metric = (name: string) => {
    if (!o.metrics) return;
    o.metrics.addMetric(name, MetricUnit.Count, 1);
    o.metrics.publishStoredMetrics();
  };
  const failOpen = (orgId: string, error: string): BudgetVerdict => {
    o.log.warn('tenant budget unavailable: request not counted', {
      code: 'TENANT_BUDGET_UNAVAILABLE',
      orgId,
      error,
    });
    metric(TENANT_BUDGET_METRICS.unavailable);
    return { allowed: true, counted: false };
  };

  return async (orgId) => {
    // Only a verified organisation id is ever passed; anything else is a fault of ours, not counted.
    if (!UUID.test(orgId)) return failOpen(orgId.slice(0, 36), 'NotAnOrganisationId');
    const org = orgId.toLowerCase();
    const seconds = Math.floor(now() / 1000);
    const windowStart = seconds - (seconds % TENANT_BUDGET_WINDOW_SECONDS);
    const command = new UpdateItemCommand(budgetUpdate(o.table, org, windowStart, o.requestsPerWindow));
    const abort = new AbortController();
    const clock = timer(timeout);
    const outcome = await Promise.race([
      o.client.send(command, { abortSignal: abort.signal }).then(
        () => 'counted' as const,
        (e: unknown) => (errorName(e) === 'ConditionalCheckFailedException' ? ('spent' as const) : e),
      ),
      clock.elapsed.then(() => 'timeout' as const),
    ]);
    clock.cancel();
    if (outcome === 'counted') return { allowed: true, counted: true };
    if (outcome === 'spent') {
      const retryAfterSeconds = Math.max(1, windowStart + TENANT_BUDGET_WINDOW_SECONDS - seconds);
      o.log.warn('tenant budget spent: request refused', {
        code: 'TENANT_RATE_LIMITED',
        orgId: org,
        retryAfterSeconds,
      });
      metric(TENANT_BUDGET_METRICS.refused);
      return { allowed: false, retryAfterSeconds };
    }
    if (outcome === 'timeout') {
      abort.abort();
      return failOpen(org, 'Timeout');
    }
    return failOpen(org, errorName(outcome) ?? 'unknown');
  };
}

/**
 * The organisations the database proved for API keys, by the SHA-256 of the whole key (never the
 * key itself): a key's later requests are counted before a connection is taken. Only a request that
 * carries the whole key finds its entry, so nobody can make a key's organisation pay without the
 * key's secret; a key id alone finds nothing. Bounded (oldest entries go first) and short-lived.
 */
export class ProvenKeyOrganisations {
  private readonly entries = new Map<string, { readonly orgId: string; readonly until: number }>();

  constructor(
    private readonly max = 10_000,
    private readonly ttlMillis = 5 * 60_000,
    private readonly now: () => number = Date.now,
  ) {}

  private static digest(key: string): string {
    return createHash('sha256').update(key, 'utf8').digest('base64url');
  }

  /** The organisation the database proved for `key`, while remembered. */
  get(key: string): string | undefined {
    const d = ProvenKeyOrganisations.digest(key);
    const e = this.entries.get(d);
    if (!e) return undefined;
    if (e.until <= this.now()) {
      this.entries.delete(d);
      return undefined;
    }
    return e.orgId;
  }

  /** Remembers what the database proved: `key` belongs to `orgId`. */
  remember(key: string, orgId: string): void {
    const d = ProvenKeyOrganisations.digest(key);
    this.entries.delete(d);
    this.entries.set(d, { orgId, until: this.now() + this.ttlMillis });
    while (this.entries.size > this.max) {
      const oldest = this.entries.keys().next().value;
      if (oldest === undefined) break;
      this.entries.delete(oldest);
    }
  }

  get size(): number {
    return this.entries.size;
  }
}
