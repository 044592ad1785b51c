/**
 * A store write and the audit event that describes it commit together: the store calls the
 * callback with the write's result inside the write's transaction (`tx`), and a throw from it rolls
 * the write back. So a step is never committed without its event, and a failed event leaves the
 * step to be retried. Stores without transactions (in-memory fakes) pass no `tx`.
 */
import type { SqlClient } from '../shared/migrations';

export type AndThen<T> = (result: T, tx: SqlClient | undefined) => Promise<void>;
