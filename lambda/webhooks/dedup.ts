/**
 * Exactly-once processing of carrier events. The dedup row and the event's effect commit in one
 * transaction: a concurrent second delivery of the same event blocks on the unique key until the
 * first commits (then it is a duplicate) or rolls back (then it processes). A replay is acknowledged
 * with success so the carrier stops retrying, and is never processed twice.
 */
import type { SqlClient } from '../shared/migrations';
import type { Provider } from '../../contracts/webhooks';

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

/** Runs `effect` in the same transaction as the dedup insert, unless the event was already recorded. */
export async function processOnce(
  pool: ConnectionPool,
  key: DedupKey,
  effect: (tx: SqlClient) => Promise<void>,
): Promise<DedupOutcome> {
  const client = await pool.connect();
  let broken: Error | undefined;
  try {
    await client.query('BEGIN');
    try {
      const inserted = await client.query(
        `INSERT INTO webhook_event_dedup (provider, scope, event_id, event_type)
         VALUES ($1, $2, $3, $4)
         ON CONFLICT (provider, scope, event_id) DO NOTHING
         RETURNING 1 AS inserted`,
        [key.provider, key.scope, key.eventId, key.eventType],
      );
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
