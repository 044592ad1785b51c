/**
 * Seeds two rows per tenant table for each given organisation (as the superuser, which bypasses
 * RLS, so seeding never depends on the thing under test). The matrix refuses to run when a tenant
 * table discovered from the catalog has no seed rows here, so a new table cannot slip past it.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { buildChain, type AuditRecord } from '../../lambda/audit/chain';
import { AUDIT_COLUMNS, rowToRecord } from '../../lambda/audit/pg-sink';
import type { TestPostgres } from '../support/postgres';
import { authenticateAs, createUser } from './fixtures';
import { defined } from '../support/defined';

const VIN_CHARS = 'ABCDEFGHJKLMNPRSTUVWXYZ0123456789';
export const vin = (): string => Array.from(randomBytes(17), (b) => VIN_CHARS[b % VIN_CHARS.length]).join('');

async function one(pg: TestPostgres, sql: string, params: unknown[]): Promise<string> {
  const rows = (await pg.superuser(sql, params)) as { id: string }[];
  return defined(rows[0]).id;
}

const WEBHOOK_PROVIDERS = ['frejun', 'didlogic'] as const;
let seeded = 0;

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
      await authenticateAs(app, owner, org);
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
    // Handled by the member above (own-calls scoping, migrations/0410), with a recording.
    const call = await one(
      pg,
      "INSERT INTO calls (org_id, lead_id, customer_id, direction, from_number, to_number, duration_seconds, agent_user_id, carrier_call_id) VALUES ($1, $2, $3, 'inbound', '+15550101', '+15550102', 42, $4, $5) RETURNING id",
      [org, lead, customer, member, `call-${tag}-${i}`],
    );
    await one(
      pg,
      "INSERT INTO call_recordings (org_id, call_id, file_id, content_type, duration_seconds) VALUES ($1, $2, $3, 'audio/mpeg', 40) RETURNING id",
      [org, call, randomUUID()],
    );
  }
  await seedAuditLog(pg, org, owner);
  // One secret per (org, provider): alternating the provider between seeded organisations lets the
  // matrix copy one tenant's row into the other without a unique collision, so only RLS decides.
  await one(
    pg,
    'INSERT INTO organisation_webhook_secrets (org_id, provider, current_sealed) VALUES ($1, $2, $3) RETURNING id',
    [org, WEBHOOK_PROVIDERS[seeded++ % WEBHOOK_PROVIDERS.length], `sealed-test-${tag}`],
  );
  // The credentials vault: scopes unique to this seed, so a copied row collides with nothing.
  for (const kind of ['sip_password', 'ai_provider_key']) {
    await one(
      pg,
      'INSERT INTO tenant_credentials (org_id, kind, scope, set_by, sealed) VALUES ($1, $2, $3, $4, $5) RETURNING id',
      [org, kind, `seed-${tag}`, owner, `bwk1.sealed-test-${tag}`],
    );
  }
  // Tenant export requests (tenant keys capability): read-only for the application role.
  for (let i = 0; i < 2; i++) {
    await one(pg, 'INSERT INTO tenant_exports (org_id, requested_by) VALUES ($1, $2) RETURNING id', [org, owner]);
  }
  // Tenant files (docs/tenant-files.md): metadata rows; one linked to a vehicle, one not.
  for (let i = 0; i < 2; i++) {
    await one(
      pg,
      `INSERT INTO tenant_files (org_id, name, content_type, size_bytes, sha256, vehicle_id)
       VALUES ($1, $2, 'image/jpeg', 1024, $3, (SELECT id FROM vehicles WHERE org_id = $1 AND $4 LIMIT 1)) RETURNING id`,
      [org, `photo-${tag}-${i}.jpg`, `${'A'.repeat(43)}=`, i === 0],
    );
  }
  // Rows nothing references, so a DELETE is decided by RLS alone (not by a foreign key).
  await one(pg, 'INSERT INTO customers (org_id, name) VALUES ($1, $2) RETURNING id', [org, `Spare ${tag}`]);
  await one(pg, "INSERT INTO vehicles (org_id, vin, make, model, year) VALUES ($1, $2, 'M', 'M', 2021) RETURNING id", [
    org,
    vin(),
  ]);
  await one(pg, 'INSERT INTO leads (org_id, name) VALUES ($1, $2) RETURNING id', [org, `Spare lead ${tag}`]);
  await one(
    pg,
    "INSERT INTO calls (org_id, direction, from_number, to_number) VALUES ($1, 'outbound', '+15550103', '+15550104') RETURNING id",
    [org],
  );
}

const AUDIT_INSERT = `INSERT INTO audit_log (id, ${AUDIT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16) RETURNING id`;

function auditParams(id: string, r: AuditRecord): unknown[] {
  return [
    id,
    r.seq,
    r.orgId,
    r.occurredAt,
    r.actorType,
    r.actorUserId,
    r.actorEmail,
    r.event,
    r.entityType,
    r.entityId,
    r.ip,
    r.userAgent,
    r.supportGrantId,
    JSON.stringify(r.metadata),
    r.prevHash,
    r.hash,
  ];
}

/**
 * audit_log rows must extend their organisation's hash chain (a trigger checks sequence and link),
 * so a copied row only inserts if it is the next link. Each organisation gets a valid two-record
 * chain; an organisation seeded after another also gets, as its lowest-id row (the one the matrix
 * copies into the other tenant), a record that is the valid third link of that other tenant's chain.
 */
async function seedAuditLog(pg: TestPostgres, org: string, owner: string): Promise<void> {
  const event = (entityId: string) => ({
    orgId: org,
    actorType: 'user' as const,
    actorUserId: owner,
    actorEmail: null,
    event: 'lead.created',
    entityType: 'lead',
    entityId,
    ip: null,
    userAgent: null,
    supportGrantId: null,
    metadata: {},
    occurredAt: new Date(),
  });
  for (const r of buildChain([event('seed-1'), event('seed-2')])) {
    await one(pg, AUDIT_INSERT, auditParams(randomUUID(), r));
  }
  const others = (await pg.superuser(
    `SELECT ${AUDIT_COLUMNS} FROM audit_log WHERE org_id <> $1 AND seq = 2 ORDER BY recorded_at LIMIT 1`,
    [org],
  )) as Record<string, unknown>[];
  if (others[0]) {
    const head = rowToRecord(others[0]);
    const [next] = buildChain([{ ...event('seed-link'), orgId: head.orgId }], head);
    await one(
      pg,
      AUDIT_INSERT,
      auditParams('00000000-0000-4000-8000-000000000000'.slice(0, 24) + randomBytes(6).toString('hex'), {
        ...defined(next),
        orgId: org,
      }),
    );
  }
}
