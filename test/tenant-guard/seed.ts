/**
 * Seeds two rows per tenant table for each given organisation (as the superuser, which bypasses
 * RLS, so seeding never depends on the thing under test). The matrix refuses to run when a tenant
 * table discovered from the catalog has no seed rows here, so a new table cannot slip past it.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import type { TestPostgres } from '../support/postgres';
import { createUser } from './fixtures';

const VIN_CHARS = 'ABCDEFGHJKLMNPRSTUVWXYZ0123456789';
export const vin = (): string => Array.from(randomBytes(17), (b) => VIN_CHARS[b % VIN_CHARS.length]).join('');

async function one(pg: TestPostgres, sql: string, params: unknown[]): Promise<string> {
  const rows = (await pg.superuser(sql, params)) as { id: string }[];
  return rows[0]!.id;
}

/** Seeds `org` (owned by `owner`); `support` is a platform_support user for grants. */
export async function seedTenant(pg: TestPostgres, org: string, owner: string, support: string): Promise<void> {
  const tag = randomUUID().slice(0, 8);
  for (let i = 0; i < 2; i++) {
    const role = await one(
      pg,
      'INSERT INTO custom_roles (org_id, name, permissions) VALUES ($1, $2, $3) RETURNING id',
      [org, `role-${tag}-${i}`, ['leads:view', 'customers:view']],
    );
    const member = await createUser(pg);
    await one(
      pg,
      "INSERT INTO memberships (org_id, user_id, role, custom_role_id) VALUES ($1, $2, 'custom', $3) RETURNING id",
      [org, member, role],
    );
    await one(pg, 'INSERT INTO custom_roles (org_id, name, permissions) VALUES ($1, $2, $3) RETURNING id', [
      org,
      `unused-${tag}-${i}`,
      ['calls:view'],
    ]);
    // API keys are minted only inside a verified context (a trigger stamps and narrows them).
    const app = await pg.client();
    try {
      await app.query('BEGIN');
      await app.query('SELECT app.set_tenant_context($1, $2)', [owner, org]);
      await app.query('INSERT INTO api_keys (org_id, name, secret_hash, permissions) VALUES ($1, $2, $3, $4)', [
        org,
        `key-${tag}-${i}`,
        randomBytes(32),
        ['leads:view'],
      ]);
      await app.query('COMMIT');
    } finally {
      await app.end();
    }
    await one(
      pg,
      "INSERT INTO support_grants (org_id, granted_to, reason, expires_at) VALUES ($1, $2, 'seeded support ticket', now() + interval '1 hour') RETURNING id",
      [org, support],
    );
    const customer = await one(
      pg,
      'INSERT INTO customers (org_id, name, email, phone) VALUES ($1, $2, $3, $4) RETURNING id',
      [org, `Customer ${tag}-${i}`, `c-${tag}-${i}@example.test`, '+15550100'],
    );
    const vehicle = await one(
      pg,
      "INSERT INTO vehicles (org_id, vin, make, model, year, price_cents) VALUES ($1, $2, 'Make', 'Model', 2024, 2500000) RETURNING id",
      [org, vin()],
    );
    const lead = await one(
      pg,
      "INSERT INTO leads (org_id, customer_id, vehicle_id, name, email, source) VALUES ($1, $2, $3, $4, $5, 'web') RETURNING id",
      [org, customer, vehicle, `Lead ${tag}-${i}`, `l-${tag}-${i}@example.test`],
    );
    await one(
      pg,
      'INSERT INTO deals (org_id, customer_id, lead_id, vehicle_id, amount_cents) VALUES ($1, $2, $3, $4, 2400000) RETURNING id',
      [org, customer, lead, vehicle],
    );
    await one(
      pg,
      "INSERT INTO messages (org_id, lead_id, customer_id, channel, direction, body) VALUES ($1, $2, $3, 'sms', 'inbound', $4) RETURNING id",
      [org, lead, customer, `hello from ${tag}`],
    );
    await one(
      pg,
      "INSERT INTO calls (org_id, lead_id, customer_id, direction, from_number, to_number, duration_seconds) VALUES ($1, $2, $3, 'inbound', '+15550101', '+15550102', 42) RETURNING id",
      [org, lead, customer],
    );
  }
  // Tenant export requests (tenant keys capability): read-only for the application role.
  for (let i = 0; i < 2; i++) {
    await one(pg, 'INSERT INTO tenant_exports (org_id, requested_by) VALUES ($1, $2) RETURNING id', [org, owner]);
  }
  // Rows nothing references, so a DELETE is decided by RLS alone (not by a foreign key).
  await one(pg, 'INSERT INTO customers (org_id, name) VALUES ($1, $2) RETURNING id', [org, `Spare ${tag}`]);
  await one(pg, "INSERT INTO vehicles (org_id, vin, make, model, year) VALUES ($1, $2, 'M', 'M', 2021) RETURNING id", [
    org,
    vin(),
  ]);
  await one(pg, 'INSERT INTO leads (org_id, name) VALUES ($1, $2) RETURNING id', [org, `Spare lead ${tag}`]);
}
