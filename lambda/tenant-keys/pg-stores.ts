/**
 * PostgreSQL adapters for the tenant-keys ports, over the functions of
 * `migrations/0300_tenant_keys_lifecycle.sql`. They connect as the application role; the database
 * re-checks every rule (Owner only, deadlines passed, nothing left before "shredded").
 */
import type { Pool } from 'pg';
import type { AuditSink } from '../shared/audit';
import type { AndThen } from './and-then';
import type { ExportRequest, ExportSection, ExportSource, ExportStore, SectionReader } from './export';
import {
  cancel,
  LifecycleError,
  restore,
  type Actor,
  type LifecycleState,
  type TenantLifecycle,
  type Transition,
} from './lifecycle';
import type { LifecycleStore, TenantDataEraser } from './lifecycle-processor';
import type { KeylessTenantSource } from './reconcile';
import type { KeyBehindPolicy, KeyPolicyVersions } from './policy-refresh';
import { ProvisionError } from './provision-status';
import type { KeySource, TenantKeyRecord, TenantKeyStore } from './provisioner';
import { withTransaction } from '../shared/db';
import type { SqlClient } from '../shared/migrations';

type Row = Record<string, unknown>;

const date = (v: unknown): Date | null => (v === null || v === undefined ? null : new Date(v as string | Date));

function lifecycleOf(r: Row): TenantLifecycle {
  return {
    orgId: String(r['org_id']),
    state: r['lifecycle_state'] as LifecycleState,
    cancelledAt: date(r['cancelled_at']),
    accessUntil: date(r['access_until']),
    graceEndsAt: date(r['grace_ends_at']),
    shreddedAt: date(r['shredded_at']),
  };
}

export class PgTenantKeyStore implements TenantKeyStore, KeylessTenantSource {
  constructor(private readonly pool: Pool) {}

  async keyless(limit: number, minAgeSeconds: number): Promise<string[]> {
    const r = await this.pool.query('SELECT org_id FROM app.keyless_tenants($1, make_interval(secs => $2))', [
      limit,
      minAgeSeconds,
    ]);
    return r.rows.map((row: Row) => String(row['org_id']));
  }

  async get(orgId: string): Promise<TenantKeyRecord | null> {
    const r = (await this.pool.query('SELECT key_arn, key_source, lifecycle_state FROM app.tenant_status($1)', [orgId]))
      .rows[0] as Row | undefined;
    // A shredded tenant has no usable key and must never be given a new one.
    if (r?.['lifecycle_state'] === 'shredded') throw new ProvisionError('TENANT_SHREDDED', 'the tenant was shredded');
    if (!r || r['key_arn'] === null) return null;
    return { keyArn: String(r['key_arn']), source: r['key_source'] as KeySource };
  }

  async record(orgId: string, key: TenantKeyRecord, andThen?: AndThen<TenantKeyRecord>): Promise<TenantKeyRecord> {
    return withTransaction(this.pool, async (c) => {
      const r = (
        await c.query('SELECT key_arn, key_source FROM app.record_tenant_key($1, $2, $3)', [
          orgId,
          key.keyArn,
          key.source,
        ])
      ).rows[0] as Row;
      const stored: TenantKeyRecord = { keyArn: String(r['key_arn']), source: r['key_source'] as KeySource };
      await andThen?.(stored, c);
      return stored;
    });
  }
}

/** Key policy versions (migrations/0414), as the provisioner's own role. */
export class PgKeyPolicyVersions implements KeyPolicyVersions {
  constructor(private readonly pool: Pool) {}

  async behind(version: number, after: string | null, limit: number): Promise<KeyBehindPolicy[]> {
    const r = await this.pool.query(
      'SELECT org_id, key_arn, key_source FROM app.tenant_keys_behind_policy($1, $2, $3)',
      [version, after, limit],
    );
    return r.rows.map((row: Row) => ({
      orgId: String(row['org_id']),
      keyArn: String(row['key_arn']),
      source: row['key_source'] as KeySource,
    }));
  }

  async record(orgId: string, keyArn: string, version: number): Promise<boolean> {
    const r = await this.pool.query('SELECT app.record_key_policy_version($1, $2, $3) AS ok', [orgId, keyArn, version]);
    return (r.rows[0] as Row)['ok'] === true;
  }

  async count(version: number): Promise<{ managed: number; byok: number }> {
    const r = (await this.pool.query('SELECT managed, byok FROM app.count_tenant_keys_behind_policy($1)', [version]))
      .rows[0] as Row;
    return { managed: Number(r['managed']), byok: Number(r['byok']) };
  }
}

/** The tenant's key ARN for `EnvelopeCipher` (`keyFor`): refuses a tenant without a key, or shredded. */
export function pgTenantKeyResolver(store: PgTenantKeyStore): (orgId: string) => Promise<string> {
  return async (orgId) => {
    const k = await store.get(orgId);
    if (!k) throw new ProvisionError('KEY_NOT_USABLE', 'the tenant has no key yet');
    return k.keyArn;
  };
}

/**
 * The key of the tenant a transaction is in, for `EnvelopeCipher` (`keyFor`) in the tenant API: read
 * under the transaction's writable tenant context (app.context_tenant_key), which returns that
 * organisation's key and no other. Refuses any other organisation, and a tenant without a key.
 */
export function contextTenantKeyResolver(tx: SqlClient): (orgId: string) => Promise<string> {
  return async (orgId) => {
    const r = (await tx.query('SELECT org_id, key_arn FROM app.context_tenant_key()')).rows[0] as Row | undefined;
    if (!r || r['org_id'] !== orgId) {
      throw new ProvisionError('KEY_NOT_USABLE', 'not the writable tenant context of this transaction');
    }
    if (r['key_arn'] === null) throw new ProvisionError('KEY_NOT_USABLE', 'the tenant has no key yet');
    return String(r['key_arn']);
  };
}

export class PgLifecycleStore implements LifecycleStore {
  private readonly keys: PgTenantKeyStore;

  constructor(
    private readonly pool: Pool,
    private readonly audit: AuditSink,
  ) {
    this.keys = new PgTenantKeyStore(pool);
  }

  async due(_now: Date, limit: number): Promise<TenantLifecycle[]> {
    // The database decides what is due, by its own clock.
    return (await this.pool.query('SELECT * FROM app.due_tenant_lifecycles($1)', [limit])).rows.map(lifecycleOf);
  }

  async commit(from: TenantLifecycle, transition: Transition): Promise<boolean> {
    return withTransaction(this.pool, async (c) => {
      const r = await c.query('SELECT app.advance_tenant_lifecycle($1, $2, $3) AS ok', [
        from.orgId,
        from.state,
        transition.next.state,
      ]);
      if ((r.rows[0] as Row)['ok'] !== true) return false;
      for (const e of transition.events) await this.audit.record(e, c);
      return true;
    });
  }

  keyOf(orgId: string): Promise<TenantKeyRecord | null> {
    return this.keys.get(orgId);
  }

  /** The tenant's lifecycle as the database holds it (system view). */
  async load(orgId: string): Promise<TenantLifecycle | null> {
    const r = (await this.pool.query('SELECT * FROM app.tenant_status($1)', [orgId])).rows[0] as Row | undefined;
    return r ? lifecycleOf(r) : null;
  }
}

/** An acting user with the proof the database gate asks for (migrations/0400). */
export type ProvenActor = Actor & { readonly userId: string; readonly proof: string };

/** Owner-facing lifecycle commands: the pure rules first, then the database gate, audited in one transaction. */
export class PgLifecycleCommands {
  constructor(
    private readonly pool: Pool,
    private readonly audit: AuditSink,
    private readonly clock: () => Date,
  ) {}

  /**
   * Cancels `orgId` as `actor` (its Owner, proven by `actor.proof`: a gate ticket or API key secret,
   * lambda/tenant-guard/ticket.ts); access continues until `billingPeriodEnd`.
   */
  async cancel(orgId: string, actor: ProvenActor, billingPeriodEnd: Date): Promise<TenantLifecycle> {
    return withTransaction(this.pool, async (c) => {
      await c.query('SELECT app.authenticate($1)', [actor.proof]);
      await c.query('SELECT * FROM app.set_tenant_context($1, $2)', [actor.userId, orgId]);
      const cur = await c.query(
        'SELECT id AS org_id, lifecycle_state, cancelled_at, access_until, grace_ends_at, shredded_at FROM organisations WHERE id = $1',
        [orgId],
      );
      const t = cancel(lifecycleOf(cur.rows[0] as Row), this.clock(), billingPeriodEnd, actor);
      await c.query('SELECT * FROM app.cancel_tenant($1)', [billingPeriodEnd]);
      for (const e of t.events) await this.audit.record(e, c);
      return t.next;
    });
  }

  /**
   * Restores a cancelled tenant or one in grace. In grace the organisation is suspended, so no tenant
   * context can be entered before; the database checks the actor's ownership directly, and the event
   * is recorded once the tenant is active again (the same order as `POST /tenant/restore`).
   */
  async restore(orgId: string, actor: ProvenActor): Promise<TenantLifecycle> {
    return withTransaction(this.pool, async (c) => {
      await c.query('SELECT app.authenticate($1)', [actor.proof]);
      // The tenant API's role reads the lifecycle as its member sees it (it cannot call tenant_status).
      const cur = (
        await c.query(
          'SELECT org_id, lifecycle_state, cancelled_at, access_until, grace_ends_at FROM app.tenant_overview($1, $2)',
          [actor.userId, orgId],
        )
      ).rows[0] as Row | undefined;
      if (!cur) throw new LifecycleError('INVALID_TRANSITION', 'no such tenant');
      const t = restore(lifecycleOf(cur), this.clock(), actor);
      await c.query('SELECT * FROM app.restore_tenant($1, $2)', [actor.userId, orgId]);
      // Active again: enter it as the restoring Owner, since audit_log admits only the context's organisation.
      await c.query('SELECT 1 FROM app.set_tenant_context($1, $2, NULL)', [actor.userId, orgId]);
      for (const e of t.events) await this.audit.record(e, c);
      return t.next;
    });
  }
}

export class PgTenantDataEraser implements TenantDataEraser {
  constructor(private readonly pool: Pool) {}

  deleteRows(orgId: string, andThen?: AndThen<number>): Promise<number> {
    return withTransaction(this.pool, async (c) => {
      const n = Number(((await c.query('SELECT app.erase_tenant_rows($1) AS n', [orgId])).rows[0] as Row)['n']);
      await andThen?.(n, c);
      return n;
    });
  }
}

function exportOf(r: Row): ExportRequest {
  return {
    id: String(r['id']),
    orgId: String(r['org_id']),
    requestedBy: String(r['requested_by']),
    status: r['status'] as ExportRequest['status'],
    objectKey: (r['object_key'] as string | null | undefined) ?? null,
    requestedAt: new Date(r['requested_at'] as string),
    completedAt: date(r['completed_at']),
  };
}

export class PgExportStore implements ExportStore {
  constructor(private readonly pool: Pool) {}

  create(orgId: string, requestedBy: string, _at?: Date, proof?: string): Promise<ExportRequest> {
    return withTransaction(this.pool, async (c) => {
      await c.query('SELECT app.authenticate($1)', [proof ?? null]);
      await c.query('SELECT * FROM app.set_tenant_context($1, $2)', [requestedBy, orgId]);
      const r = await c.query('SELECT * FROM app.request_tenant_export()');
      return exportOf(r.rows[0] as Row);
    });
  }

  get(orgId: string, id: string, userId: string, proof?: string): Promise<ExportRequest | null> {
    return withTransaction(this.pool, async (c) => {
      await c.query('SELECT app.authenticate($1)', [proof ?? null]);
      await c.query('SELECT * FROM app.set_tenant_context($1, $2)', [userId, orgId]);
      const r = await c.query('SELECT * FROM tenant_exports WHERE org_id = $1 AND id = $2', [orgId, id]);
      return r.rows[0] ? exportOf(r.rows[0] as Row) : null;
    });
  }

  async pending(limit: number): Promise<ExportRequest[]> {
    return (await this.pool.query('SELECT * FROM app.pending_tenant_exports($1)', [limit])).rows.map(exportOf);
  }

  complete(id: string, objectKey: string, rows: number, _at?: Date, andThen?: AndThen<boolean>): Promise<void> {
    return this.finish(id, objectKey, rows, andThen);
  }

  fail(id: string, _at?: Date, andThen?: AndThen<boolean>): Promise<void> {
    return this.finish(id, null, null, andThen);
  }

  private finish(id: string, objectKey: string | null, rows: number | null, andThen?: AndThen<boolean>) {
    return withTransaction(this.pool, async (c) => {
      const r = await c.query('SELECT app.finish_tenant_export($1, $2, $3) AS done', [id, objectKey, rows]);
      await andThen?.((r.rows[0] as Row)['done'] === true, c);
    });
  }
}

const SECTION_TABLE: Readonly<Record<ExportSection, string>> = {
  leads: 'leads',
  customers: 'customers',
  vehicles: 'vehicles',
  deals: 'deals',
  calls: 'calls',
  call_recordings: 'call_recordings',
  files: 'tenant_files',
  audit_log: 'audit_log',
  credentials: 'tenant_credentials',
};

/** Columns read per section: every column, except the vault's, whose ciphertext nobody exports (or may read). */
const SECTION_COLUMNS: Partial<Record<ExportSection, string>> = {
  credentials: 'id, org_id, kind, scope, set_at, set_by',
};

/** Sections read in a stable order: files oldest first. */
const SECTION_ORDER: Partial<Record<ExportSection, string>> = {
  files: ' ORDER BY created_at, id',
};

/**
 * Reads an export in one REPEATABLE READ snapshot, entered as the requesting Owner, through
 * server-side cursors (bounded memory). Only the organisation's own rows: a dealer group Owner's
 * oversight of member stores does not widen its export. The audit log section is read when the
 * audit capability's table exists.
 */
export class PgExportSource implements ExportSource {
  constructor(
    private readonly pool: Pool,
    private readonly pageSize = 500,
  ) {}

  read<T>(req: ExportRequest, fn: (reader: SectionReader) => Promise<T>): Promise<T> {
    return withTransaction(
      this.pool,
      async (c) => {
        // Read-only, as the requesting Owner, and only while the export is pending (migrations/0400).
        await c.query('SELECT app.enter_export_context($1)', [req.id]);
        const pageSize = this.pageSize;
        const reader: SectionReader = {
          async *rows(section) {
            const table = SECTION_TABLE[section];
            const exists = (await c.query('SELECT to_regclass($1) IS NOT NULL AS e', [`public.${table}`])).rows[0];
            if ((exists as Row)['e'] !== true) return;
            const columns = SECTION_COLUMNS[section] ?? '*';
            await c.query(
              `DECLARE export_cursor NO SCROLL CURSOR FOR SELECT ${columns} FROM ${table} WHERE org_id = $1${SECTION_ORDER[section] ?? ''}`,
              [req.orgId],
            );
            try {
              for (;;) {
                const page = await c.query(`FETCH ${pageSize} FROM export_cursor`);
                for (const r of page.rows) yield r as Row;
                if (page.rows.length < pageSize) break;
              }
            } finally {
              await c.query('CLOSE export_cursor');
            }
          },
        };
        return fn(reader);
      },
      'REPEATABLE READ',
    );
  }
}
