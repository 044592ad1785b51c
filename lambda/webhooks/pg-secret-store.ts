/**
 * PostgreSQL storage of sealed webhook secrets (migrations/0201_organisation_webhook_secrets.sql).
 *
 * - `PgWebhookSecretStore` is for management: it is handed a transaction that has already entered
 *   the organisation's tenant context (`app.set_tenant_context`), so RLS confines it to that tenant.
 * - `PgWebhookSecretReader` is for verification, when a carrier (not a user) is calling: it reads the
 *   ciphertext, and asks whether a secret is still accepted, through the SECURITY DEFINER functions of
 *   migrations/0406_webhook_hardening.sql (nothing else of the table is reachable).
 */
import type { HmacProvider } from '../../contracts/webhooks';
import type { SqlClient } from '../shared/migrations';
import type { SealedSecret } from '../shared/secret-cipher';
import type { OrganisationSecret, StoredWebhookSecret, VerificationSecretReader, WebhookSecretStore } from './secrets';

function toStored(row: Record<string, unknown> | undefined): StoredWebhookSecret | null {
  if (!row) return null;
  return {
    current: String(row['current_sealed']),
    previous: row['previous_sealed'] == null ? null : String(row['previous_sealed']),
    previousValidUntil: row['previous_valid_until'] == null ? null : new Date(row['previous_valid_until'] as Date),
    rotatedAt: new Date(row['rotated_at'] as Date),
  };
}

export class PgWebhookSecretStore implements WebhookSecretStore {
  /** `tx` must be inside a transaction with the organisation's tenant context entered. */
  constructor(private readonly tx: SqlClient) {}

  async read(orgId: string, provider: HmacProvider): Promise<StoredWebhookSecret | null> {
    const r = await this.tx.query(
      `SELECT current_sealed, previous_sealed, previous_valid_until, rotated_at
       FROM organisation_webhook_secrets WHERE org_id = $1 AND provider = $2`,
      [orgId, provider],
    );
    return toStored(r.rows[0]);
  }

  async rotate(orgId: string, provider: HmacProvider, sealed: string, at: Date, until: Date): Promise<void> {
    // One statement: the row lock makes concurrent rotations serialise, each demoting the one before.
    const r = await this.tx.query(
      `INSERT INTO organisation_webhook_secrets (org_id, provider, current_sealed, rotated_at)
       VALUES ($1, $2, $3, $4)
       ON CONFLICT (org_id, provider) DO UPDATE SET
         previous_sealed = organisation_webhook_secrets.current_sealed,
         previous_valid_until = $5,
         current_sealed = EXCLUDED.current_sealed,
         rotated_at = EXCLUDED.rotated_at
       RETURNING 1`,
      [orgId, provider, sealed, at, until],
    );
    if (r.rows.length !== 1) throw new Error('webhook secret was not written (no writable tenant context?)');
  }

  async dropPrevious(orgId: string, provider: HmacProvider): Promise<void> {
    await this.tx.query(
      `UPDATE organisation_webhook_secrets SET previous_sealed = NULL, previous_valid_until = NULL
       WHERE org_id = $1 AND provider = $2`,
      [orgId, provider],
    );
  }
}

export class PgWebhookSecretReader implements VerificationSecretReader {
  constructor(private readonly db: SqlClient) {}

  async lookup(orgId: string, provider: HmacProvider): Promise<OrganisationSecret> {
    // One row for an active organisation (NULL ciphertext without a secret), none otherwise.
    const r = await this.db.query('SELECT * FROM app.webhook_organisation_secret($1, $2)', [orgId, provider]);
    const row = r.rows[0];
    if (!row) return { known: false };
    return { known: true, stored: row['current_sealed'] == null ? null : toStored(row) };
  }

  async accepts(tx: SqlClient, orgId: string, provider: HmacProvider, sealed: SealedSecret): Promise<boolean> {
    const r = await tx.query('SELECT app.webhook_secret_accepts($1, $2, $3) AS ok', [orgId, provider, sealed]);
    return r.rows[0]?.['ok'] === true;
  }
}
