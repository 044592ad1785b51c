/**
 * Tenancy fixtures for tests: organisations, users and memberships created through the same gate
 * functions production uses (a platform_owner provisions; the superuser only creates that first
 * platform user, as an operator would).
 */
import { randomUUID } from 'node:crypto';
import type { ClientBase } from 'pg';
import type { TestPostgres } from '../support/postgres';
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

export async function createUser(pg: TestPostgres, platformRole: string | null = null): Promise<string> {
  const sub = randomUUID();
  const rows = (await pg.superuser(
    'INSERT INTO users (subject, email, platform_role) VALUES ($1, $2, $3) RETURNING id',
    [sub, `${sub.slice(0, 8)}@example.test`, platformRole],
  )) as { id: string }[];
  return defined(rows[0]).id;
}

export async function createOrg(
  app: ClientBase,
  actor: string,
  kind: 'store' | 'dealer_group' | 'network',
  owner: string,
  parent: string | null = null,
  plan: 'pro' | 'business' | 'enterprise' = 'business',
): Promise<string> {
  const r = await app.query<{ id: string }>('SELECT app.create_organisation($1, $2, $3, $4, $5, $6) AS id', [
    actor,
    kind,
    `${kind}-${randomUUID().slice(0, 6)}`,
    plan,
    parent,
    owner,
  ]);
  return defined(r.rows[0]).id;
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
    await c.query('SELECT * FROM app.set_tenant_context($1, $2, $3)', [user, org, grant]);
    return await fn();
  } finally {
    await c.query('ROLLBACK');
  }
}
