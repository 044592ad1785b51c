/**
 * Exactly-once processing of carrier events. The dedup row and the event's effect commit in one
 * transaction: a concurrent second delivery of the same event blocks on the unique key until the
 * first commits (then it is a duplicate) or rolls back (then it processes), for at most the lock
 * timeout (then DELIVERY_IN_PROGRESS, and the carrier retries). A replay is acknowledged
 * with success so the carrier stops retrying, and is never processed twice.
 */
import type { SqlClient } from '../shared/migrations';
import type { Provider } from '../../contracts/webhooks';
import { WebhookError } from './errors';

/** A pooled connection (`pg.PoolClient` fits). */
export interface TransactionClient extends SqlClient {
  release(error?: Error | boolean): void;
}

/** A connection pool (`pg.Pool` fits). */
export interface ConnectionPool {
  connect(): Promise<TransactionClient>;
}

export interface DedupKey {
  readonly provider: Provider;
  /** `platform` for platform-wide accounts (Telnyx), the organisation id for per-organisation secrets. */
  readonly scope: string;
  readonly eventId: string;
  readonly eventType: string;
}

export type DedupOutcome = 'processed' | 'duplicate';

/**
 * Bounds on the dedup transaction, set with SET LOCAL (they end with it, never leaking to the pooled
 * connection). Below the role's own defaults and the function's 10 s timeout, so a frozen first
 * delivery holding the dedup row cannot stall its retries: they fail fast with DELIVERY_IN_PROGRESS
 * (503, retried by the carrier), and the frozen one is ended by the idle-in-transaction timeout.
 */
export interface DedupTimeouts {
  /** Longest wait for the dedup row lock. @default 1000 */
  readonly lockMs: number;
  /** Longest single statement. @default 3000 */
  readonly statementMs: number;
  /** Longest pause between statements (a frozen effect) before PostgreSQL ends the session. @default 8000 */
  readonly idleInTransactionMs: number;
}

export const DEFAULT_DEDUP_TIMEOUTS: DedupTimeouts = { lockMs: 1000, statementMs: 3000, idleInTransactionMs: 8000 };

export interface ProcessOnceOptions {
  /** @default DEFAULT_DEDUP_TIMEOUTS */
  readonly timeouts?: DedupTimeouts;
  /** Runs first in the transaction (before the dedup row); throw to refuse the event, recording nothing. */
  readonly guard?: (tx: SqlClient) => Promise<void>;
}

/** PostgreSQL's lock_not_available: lock_timeout expired. */
const LOCK_NOT_AVAILABLE = '55P03';

function begin(t: DedupTimeouts): string {
  for (const v of [t.lockMs, t.statementMs, t.idleInTransactionMs]) {
    if (!Number.isSafeInteger(v) || v < 1) throw new RangeError('dedup timeouts must be positive integers (ms)');
  }
  // One round trip; integers only, so interpolating them is safe (SET takes no bind parameters).
  return (
    `BEGIN; SET LOCAL lock_timeout = ${t.lockMs}; SET LOCAL statement_timeout = ${t.statementMs}; ` +
    `SET LOCAL idle_in_transaction_session_timeout = ${t.idleInTransactionMs}`
  );
}

/** Runs `effect` in the same transaction as the dedup insert, unless the event was already recorded. */
export async function processOnce(
  pool: ConnectionPool,
  key: DedupKey,
  effect: (tx: SqlClient) => Promise<void>,
  options: ProcessOnceOptions = {},
): Promise<DedupOutcome> {
  const start = begin(options.timeouts ?? DEFAULT_DEDUP_TIMEOUTS);
  const client = await pool.connect();
  let broken: Error | undefined;
  try {
    await client.query(start);
    try {
      if (options.guard) await options.guard(client);
      let inserted: { rows: unknown[] };
      try {
        inserted = await client.query(
          `INSERT INTO webhook_event_dedup (provider, scope, event_id, event_type)
           VALUES ($1, $2, $3, $4)
           ON CONFLICT (provider, scope, event_id) DO NOTHING
           RETURNING 1 AS inserted`,
          [key.provider, key.scope, key.eventId, key.eventType],
        );
      } catch (e) {
        // Another delivery of this event holds its row (and may be frozen): the carrier retries later.
        if ((e as { code?: unknown }).code === LOCK_NOT_AVAILABLE) {
          throw new WebhookError('DELIVERY_IN_PROGRESS', 'the dedup row is locked by another delivery', { cause: e });
        }
        throw e;
      }
      if (inserted.rows.length === 0) {
        await client.query('ROLLBACK');
        return 'duplicate';
      }
      await effect(client);
      await client.query('COMMIT');
      return 'processed';
    } catch (e) {
      await client.query('ROLLBACK').catch((rollbackError: unknown) => {
        broken = rollbackError as Error;
      });
      throw e;
    }
  } finally {
    // A connection whose rollback failed is discarded rather than returned to the pool mid-transaction.
    client.release(broken ?? false);
  }
}

/**
 * Deletes up to `limit` expired dedup rows through app.purge_webhook_events: the ingress role holds
 * no DELETE (which would also let it LOCK the table, migrations/0403); the function deletes expired
 * rows only. Concurrent purges at worst skip a batch.
 */
export async function purgeExpired(client: SqlClient, limit = 500): Promise<number> {
  const r = await client.query('SELECT app.purge_webhook_events($1) AS n', [limit]);
  return Number(r.rows[0]?.['n'] ?? 0);
}
