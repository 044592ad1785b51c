/**
 * Tenancy fixtures for tests: organisations, users and memberships created through the same gate
 * functions production uses (a platform_owner provisions; the superuser only creates that first
 * platform user, as an operator would).
 */
import { randomUUID } from 'node:crypto';
import type { ClientBase } from 'pg';
import type { AuditSink } from '../../lambda/shared/audit';
import { issueTicket, MAX_TICKET_SECONDS } from '../../lambda/tenant-guard/ticket';
import { TEST_GATE_KEY, type TestPostgres } from '../support/postgres';
import { defined } from '../support/defined';

export interface World {
  readonly platformOwner: string;
  readonly support: string;
  readonly network: string;
  readonly group: string;
  /** Two sibling stores under `group`, and one store directly under `network`. */
  readonly storeA: string;
  readonly storeB: string;
  readonly storeC: string;
  /** Owners of the stores / group / network. */
  readonly ownerA: string;
  readonly ownerB: string;
  readonly ownerC: string;
  readonly groupOwner: string;
  readonly networkOwner: string;
}

/** Fixture users' identity-provider subject and e-mail follow from their id, so tickets need no lookup. */
export const subjectOf = (userId: string): string => `sub-${userId}`;
export const emailOf = (userId: string): string => `${userId.slice(0, 8)}@example.test`;
const NIL = '00000000-0000-0000-0000-000000000000';

export async function createUser(pg: TestPostgres, platformRole: string | null = null): Promise<string> {
  const id = randomUUID();
  const rows = (await pg.superuser(
    'INSERT INTO users (id, subject, email, platform_role) VALUES ($1, $2, $3, $4) RETURNING id',
    [id, subjectOf(id), emailOf(id), platformRole],
  )) as { id: string }[];
  return defined(rows[0]).id;
}

/** A gate ticket for a fixture user, signed with the test gate key as the authorizer signs. */
export function ticketFor(
  userId: string,
  org: string = NIL,
  o: { readonly now?: number; readonly lifetime?: number; readonly subject?: string } = {},
): string {
  const now = o.now ?? Math.floor(Date.now() / 1000);
  return issueTicket(
    TEST_GATE_KEY,
    {
      subject: o.subject ?? subjectOf(userId),
      email: emailOf(userId),
      orgId: org,
      notAfter: now + (o.lifetime ?? MAX_TICKET_SECONDS),
    },
    now,
  );
}

/** Proves `userId` to the database for the current transaction (app.authenticate). */
export async function authenticateAs(c: ClientBase, userId: string, org?: string): Promise<void> {
  await c.query('SELECT app.authenticate($1)', [ticketFor(userId, org)]);
}

export async function createOrg(
  app: ClientBase,
  actor: string,
  kind: 'store' | 'dealer_group' | 'network',
  owner: string,
  parent: string | null = null,
  plan: 'pro' | 'business' | 'enterprise' = 'business',
): Promise<string> {
  await app.query('BEGIN');
  try {
    await authenticateAs(app, actor);
    const r = await app.query<{ id: string }>('SELECT app.create_organisation($1, $2, $3, $4, $5, $6) AS id', [
      actor,
      kind,
      `${kind}-${randomUUID().slice(0, 6)}`,
      plan,
      parent,
      owner,
    ]);
    await app.query('COMMIT');
    return defined(r.rows[0]).id;
  } catch (e) {
    await app.query('ROLLBACK');
    throw e;
  }
}

export async function buildWorld(pg: TestPostgres): Promise<World> {
  const platformOwner = await createUser(pg, 'platform_owner');
  const support = await createUser(pg, 'platform_support');
  const [ownerA, ownerB, ownerC, groupOwner, networkOwner] = [
    await createUser(pg),
    await createUser(pg),
    await createUser(pg),
    await createUser(pg),
    await createUser(pg),
  ];
  const c = await pg.client();
  try {
    const network = await createOrg(c, platformOwner, 'network', networkOwner, null, 'enterprise');
    const group = await createOrg(c, platformOwner, 'dealer_group', groupOwner, network, 'enterprise');
    const storeA = await createOrg(c, platformOwner, 'store', ownerA, group);
    const storeB = await createOrg(c, platformOwner, 'store', ownerB, group);
    const storeC = await createOrg(c, platformOwner, 'store', ownerC, network, 'pro');
    return {
      platformOwner,
      support,
      network,
      group,
      storeA,
      storeB,
      storeC,
      ownerA,
      ownerB,
      ownerC,
      groupOwner,
      networkOwner,
    };
  } finally {
    await c.end();
  }
}

/** Runs `fn` in one transaction entered as (user, org), then rolls back. */
export async function asTenant<T>(
  c: ClientBase,
  user: string,
  org: string,
  fn: () => Promise<T>,
  grant: string | null = null,
): Promise<T> {
  await c.query('BEGIN');
  try {
    await authenticateAs(c, user, org);
    await c.query('SELECT * FROM app.set_tenant_context($1, $2, $3)', [user, org, grant]);
    return await fn();
  } finally {
    await c.query('ROLLBACK');
  }
}

/** `sink`, recording events outside a transaction with a ticket for their actor (as the API relays its caller's). */
export function proving(sink: AuditSink): AuditSink {
  return {
    record: (event, tx, proof) =>
      sink.record(event, tx, proof ?? (event.actorUserId ? ticketFor(event.actorUserId, event.orgId) : undefined)),
  };
}
