/**
 * Cells: deployments that divide one residency zone's tenants between AWS accounts, because each
 * tenant has its own KMS key and an account holds at most `keyQuota` customer managed keys per
 * region, keys pending deletion included (docs/tenant-keys.md "Key quota: cells"). The catalogue
 * groups deployments into cells (`cell.group`, validated by parseCatalogue); `placeTenant` chooses
 * the cell of a new tenant. Placement is the operator's step before creating an organisation
 * (`npx tsx tools/cells/place.ts`): each cell's API only ever sees its own tenants.
 */
import { UUID } from '../../contracts/ids';
import type { ResidencyZone } from './regions';
import { DEFAULT_KEY_QUOTA, type DeploymentConfig } from './schema';

/** Share of a cell's key quota new tenants may fill; the rest absorbs keys pending deletion and platform keys. */
export const PLACEMENT_SHARE = 0.8;

/** A deployment seen as a cell. */
export interface Cell {
  /** The deployment's name. */
  readonly name: string;
  /** Its group: `cell.group`, or the deployment's own name when it names none. */
  readonly group: string;
  readonly region: string;
  readonly residency: ResidencyZone;
  readonly environment: DeploymentConfig['environment'];
  readonly acceptsNewTenants: boolean;
  /** Customer managed KMS keys its account may hold in its region. */
  readonly keyQuota: number;
  /** Keys at which it stops taking new tenants (PLACEMENT_SHARE of the quota). */
  readonly placementLimit: number;
  /** The API's domain, where the operator creates the tenant. */
  readonly domainName: string;
}

/** Every deployment of a validated catalogue as a cell. */
export function cellsOf(deployments: readonly DeploymentConfig[]): Cell[] {
  return deployments.map((d) => {
    const keyQuota = d.cell?.keyQuota ?? DEFAULT_KEY_QUOTA;
    return {
      name: d.name,
      group: d.cell?.group ?? d.name,
      region: d.region,
      residency: d.residency,
      environment: d.environment,
      acceptsNewTenants: d.cell?.acceptsNewTenants ?? true,
      keyQuota,
      placementLimit: Math.floor(keyQuota * PLACEMENT_SHARE),
      domainName: d.edge.domainName,
    };
  });
}

export type PlacementErrorCode =
  | 'INVALID_REQUEST'
  | 'ALREADY_PLACED_ELSEWHERE'
  | 'CELL_UNKNOWN'
  | 'PARENT_NOT_PLACED'
  | 'KEY_COUNT_MISSING'
  | 'CELL_FULL'
  | 'NO_CELL_IN_ZONE'
  | 'NO_CELL_WITH_CAPACITY';

export class PlacementError extends Error {
  constructor(
    readonly code: PlacementErrorCode,
    message: string,
  ) {
    super(`${code}: ${message}`);
    this.name = 'PlacementError';
  }
}

export interface PlacementRequest {
  /**
   * The organisation, when it may exist already: one in the directory stays in its cell.
   * @default - a new organisation (its id comes from the cell's API when it is created)
   */
  readonly orgId?: string;
  /** The residency zone the tenant's data must stay in. */
  readonly residency: ResidencyZone;
  /** @default 'production' */
  readonly environment?: DeploymentConfig['environment'];
  /** Only cells of this group (e.g. the region the customer chose). @default every group of the zone */
  readonly group?: string;
  /**
   * The parent organisation (a dealer group for its store): the child lives in its parent's cell,
   * since the hierarchy and support grants are per database. @default - none
   */
  readonly parentOrgId?: string;
}

/** What placement reads: where tenants already live, and how full each cell is. */
export interface PlacementState {
  /** The directory: the cell of every tenant placed so far, by organisation id (lower case). */
  readonly directory: ReadonlyMap<string, string>;
  /**
   * Customer managed keys in each cell's account and region now, keys pending deletion included
   * (CloudWatch `AWS/Usage` `ResourceCount` for KMS `CustomerManagedKey`), by cell name.
   */
  readonly keys: ReadonlyMap<string, number>;
}

export interface Placement {
  readonly cell: string;
  /** Why: it already lives there, it joins its parent, or the cell has the most headroom. */
  readonly reason: 'already-placed' | 'with-parent' | 'most-headroom';
  readonly keys: number;
  readonly placementLimit: number;
  readonly domainName: string;
}

function keysOf(cell: Cell, state: PlacementState): number {
  const n = state.keys.get(cell.name);
  if (n === undefined) throw new PlacementError('KEY_COUNT_MISSING', `no key count for cell '${cell.name}'`);
  if (!Number.isInteger(n) || n < 0) {
    throw new PlacementError(
      'INVALID_REQUEST',
      `the key count of cell '${cell.name}' must be a whole number, not ${n}`,
    );
  }
  return n;
}

function placed(cell: Cell, reason: Placement['reason'], keys: number): Placement {
  return { cell: cell.name, reason, keys, placementLimit: cell.placementLimit, domainName: cell.domainName };
}

/**
 * The cell of a tenant. Stable: a tenant in the directory stays in its cell whatever the cells'
 * load (moving one is an export and re-import, never a side effect of placement), and a child
 * joins its parent's cell while that cell's account has a key left. A new tenant goes to the cell
 * of its zone (and environment, and group when given) that accepts new tenants and has the most
 * headroom below its placement limit; ties go to the first name. Throws a PlacementError naming
 * the cell or value at fault.
 */
export function placeTenant(cells: readonly Cell[], request: PlacementRequest, state: PlacementState): Placement {
  const byName = new Map(cells.map((c) => [c.name, c]));
  const environment = request.environment ?? 'production';
  const lookUp = (org: string, what: string): Cell | undefined => {
    const name = state.directory.get(org);
    if (name === undefined) return undefined;
    const cell = byName.get(name);
    if (!cell) {
      throw new PlacementError(
        'CELL_UNKNOWN',
        `${what} ${org} lives in cell '${name}', which the catalogue does not list`,
      );
    }
    if (cell.residency !== request.residency || cell.environment !== environment) {
      throw new PlacementError(
        'ALREADY_PLACED_ELSEWHERE',
        `${what} ${org} lives in cell '${name}' (${cell.residency}, ${cell.environment}), not in ` +
          `${request.residency} ${environment}; moving a tenant is an export and re-import`,
      );
    }
    return cell;
  };

  if (request.orgId !== undefined) {
    if (!UUID.test(request.orgId)) throw new PlacementError('INVALID_REQUEST', `orgId ${request.orgId} is not a UUID`);
    const existing = lookUp(request.orgId.toLowerCase(), 'organisation');
    if (existing) return placed(existing, 'already-placed', keysOf(existing, state));
  }

  if (request.parentOrgId !== undefined) {
    if (!UUID.test(request.parentOrgId)) {
      throw new PlacementError('INVALID_REQUEST', `parentOrgId ${request.parentOrgId} is not a UUID`);
    }
    const parent = request.parentOrgId.toLowerCase();
    const cell = lookUp(parent, 'parent organisation');
    if (!cell) throw new PlacementError('PARENT_NOT_PLACED', `parent organisation ${parent} is in no cell`);
    const keys = keysOf(cell, state);
    if (keys >= cell.keyQuota) {
      throw new PlacementError(
        'CELL_FULL',
        `cell '${cell.name}' of parent organisation ${parent} holds ${keys} of its ${cell.keyQuota} keys; ` +
          `raise the account's KMS key quota (then cell.keyQuota) or move the group`,
      );
    }
    return placed(cell, 'with-parent', keys);
  }

  const zone = cells.filter(
    (c) =>
      c.residency === request.residency &&
      c.environment === environment &&
      (request.group === undefined || c.group === request.group),
  );
  if (zone.length === 0) {
    throw new PlacementError(
      'NO_CELL_IN_ZONE',
      `no ${environment} cell in residency zone ${request.residency}` +
        (request.group === undefined ? '' : ` in group '${request.group}'`),
    );
  }
  const loads = zone.map((cell) => ({ cell, keys: keysOf(cell, state) }));
  const open = loads
    .filter(({ cell, keys }) => cell.acceptsNewTenants && keys < cell.placementLimit)
    .sort(
      (a, b) =>
        b.cell.placementLimit - b.keys - (a.cell.placementLimit - a.keys) || (a.cell.name < b.cell.name ? -1 : 1),
    );
  const best = open[0];
  if (!best) {
    const why = loads
      .map(({ cell, keys }) =>
        cell.acceptsNewTenants ? `'${cell.name}' ${keys}/${cell.placementLimit} keys` : `'${cell.name}' drained`,
      )
      .join(', ');
    throw new PlacementError('NO_CELL_WITH_CAPACITY', `every cell is full or drained (${why}); deploy a new cell`);
  }
  return placed(best.cell, 'most-headroom', best.keys);
}

/**
 * The directory with `orgId` in `cell`, once the cell's API has created it. Recording the same
 * cell again changes nothing; another cell is refused: a tenant never moves by bookkeeping.
 */
export function recordPlacement(
  cells: readonly Cell[],
  directory: ReadonlyMap<string, string>,
  orgId: string,
  cell: string,
): Map<string, string> {
  if (!UUID.test(orgId)) throw new PlacementError('INVALID_REQUEST', `orgId ${orgId} is not a UUID`);
  if (!cells.some((c) => c.name === cell)) {
    throw new PlacementError(
      'CELL_UNKNOWN',
      `cell '${cell}' is not in the catalogue (${cells.map((c) => c.name).join(', ')})`,
    );
  }
  const org = orgId.toLowerCase();
  const current = directory.get(org);
  if (current !== undefined && current !== cell) {
    throw new PlacementError(
      'ALREADY_PLACED_ELSEWHERE',
      `organisation ${org} lives in cell '${current}'; moving a tenant is an export and re-import`,
    );
  }
  return new Map([...directory, [org, cell]]);
}
