/**
 * The operator's placement step around creating an organisation (docs/tenant-keys.md "Placing a
 * tenant"). It reads the catalogue's cells and the directory of placed tenants (a JSON object
 * `{ "<orgId>": "<cell>" }` the operator keeps) and:
 *
 *   npx tsx tools/cells/place.ts --residency <zone> --keys <cell>=<n>,... --directory <file> [...]
 *     prints the cell for a new tenant and the API to create it through;
 *   npx tsx tools/cells/place.ts --record <orgId>=<cell> --directory <file>
 *     adds the organisation the cell's API created to the directory.
 *
 * Exit status: 0 done, 1 no placement (the error says why), 2 usage error.
 */
import * as fs from 'node:fs';
import {
  RESIDENCY_ZONES,
  cellsOf,
  loadDeployments,
  PlacementError,
  placeTenant,
  recordPlacement,
  type Cell,
  type Placement,
  type PlacementRequest,
  type ResidencyZone,
} from '../../lib/config';

export const USAGE = `usage: npx tsx tools/cells/place.ts --residency <zone> --keys <cell>=<n>[,...] --directory <file.json>
                                   [--group <group>] [--parent <uuid>] [--org <uuid>]
                                   [--environment production|staging|development]
       npx tsx tools/cells/place.ts --record <orgId>=<cell> --directory <file.json>

  --residency    the zone the tenant's data must stay in (${RESIDENCY_ZONES.join(', ')})
  --keys         customer managed KMS keys per cell now, keys pending deletion included: in each cell's
                 account and region, CloudWatch AWS/Usage ResourceCount (Service KMS, Type Resource,
                 Resource CustomerManagedKey, Class None), maximum over the last hour
  --directory    the directory of placed tenants, { "<orgId>": "<cell>" } (created by --record)
  --group        only cells of this group
  --parent       the parent organisation (a store of a dealer group joins its group's cell)
  --org          an organisation that may be placed already (it stays where it is)
  --record       after POST /organisations in the chosen cell: add the new id to the directory

Exit status: 0 done, 1 no placement, 2 usage error.`;

export class UsageError extends Error {}

export type PlaceArgs =
  | {
      readonly mode: 'place';
      readonly request: PlacementRequest;
      readonly keys: ReadonlyMap<string, number>;
      readonly directoryFile: string;
    }
  | { readonly mode: 'record'; readonly orgId: string; readonly cell: string; readonly directoryFile: string };

const OPTIONS = ['org', 'residency', 'keys', 'directory', 'group', 'parent', 'environment', 'record'];

export function parseArgs(args: readonly string[]): PlaceArgs {
  const values = new Map<string, string>();
  for (let i = 0; i < args.length; i += 2) {
    const a = args[i] as string;
    const value = args[i + 1];
    if (!a.startsWith('--') || value === undefined || value.startsWith('--')) {
      throw new UsageError(`${a}: expected --<option> <value>`);
    }
    if (!OPTIONS.includes(a.slice(2))) throw new UsageError(`${a} is not an option`);
    values.set(a.slice(2), value);
  }
  const need = (k: string): string => {
    const v = values.get(k);
    if (v === undefined) throw new UsageError(`--${k} is required`);
    return v;
  };
  const directoryFile = need('directory');
  const record = values.get('record');
  if (record !== undefined) {
    const m = /^([^=]+)=([a-z0-9-]+)$/.exec(record);
    if (!m) throw new UsageError(`--record ${record} is not <orgId>=<cell>`);
    const others = [...values.keys()].filter((k) => k !== 'record' && k !== 'directory');
    if (others.length > 0) throw new UsageError(`--record takes only --directory, not --${others.join(', --')}`);
    return { mode: 'record', orgId: m[1] as string, cell: m[2] as string, directoryFile };
  }
  const residency = need('residency');
  if (!(RESIDENCY_ZONES as readonly string[]).includes(residency)) {
    throw new UsageError(`--residency ${residency} is not a residency zone (${RESIDENCY_ZONES.join(', ')})`);
  }
  const environment = values.get('environment') ?? 'production';
  if (!['production', 'staging', 'development'].includes(environment)) {
    throw new UsageError(`--environment ${environment} is not production, staging or development`);
  }
  const keys = new Map<string, number>();
  for (const pair of need('keys').split(',')) {
    const m = /^([a-z0-9-]+)=(\d+)$/.exec(pair.trim());
    if (!m) throw new UsageError(`--keys: ${pair} is not <cell>=<whole number>`);
    keys.set(m[1] as string, Number(m[2]));
  }
  const optional = (k: string, as: string) => (values.has(k) ? { [as]: values.get(k) as string } : {});
  return {
    mode: 'place',
    request: {
      residency: residency as ResidencyZone,
      environment: environment as PlacementRequest['environment'],
      ...optional('group', 'group'),
      ...optional('parent', 'parentOrgId'),
      ...optional('org', 'orgId'),
    },
    keys,
    directoryFile,
  };
}

/** The directory file: `{}` when it does not exist yet; every entry an organisation id and a cell name. */
export function readDirectory(file: string): Map<string, string> {
  if (!fs.existsSync(file)) return new Map();
  let parsed: unknown;
  try {
    parsed = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    throw new UsageError(`${file}: not JSON (${(e as Error).message})`);
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new UsageError(`${file}: must be an object of organisation id -> cell`);
  }
  const out = new Map<string, string>();
  for (const [org, cell] of Object.entries(parsed)) {
    if (typeof cell !== 'string') throw new UsageError(`${file}: ${org} must name a cell, not ${typeof cell}`);
    out.set(org.toLowerCase(), cell);
  }
  return out;
}

function writeDirectory(file: string, directory: ReadonlyMap<string, string>): void {
  // Sorted, so the operator's diffs stay small; renamed into place, so a crash leaves the old file.
  const sorted = Object.fromEntries([...directory.entries()].sort(([a], [b]) => (a < b ? -1 : 1)));
  const tmp = `${file}.tmp`;
  fs.writeFileSync(tmp, `${JSON.stringify(sorted, null, 2)}\n`);
  fs.renameSync(tmp, file);
}

/** Runs one command; returns what to print. Throws UsageError or PlacementError. */
export function run(cells: readonly Cell[], args: PlaceArgs): string {
  const directory = readDirectory(args.directoryFile);
  if (args.mode === 'record') {
    const next = recordPlacement(cells, directory, args.orgId, args.cell);
    writeDirectory(args.directoryFile, next);
    return `${args.orgId.toLowerCase()} -> ${args.cell} recorded in ${args.directoryFile}`;
  }
  const p: Placement = placeTenant(cells, args.request, { directory, keys: args.keys });
  if (p.reason === 'already-placed') {
    return `${args.request.orgId?.toLowerCase()} -> ${p.cell} (it already lives there; ${p.keys} of ${p.placementLimit} keys)`;
  }
  const why = p.reason === 'with-parent' ? 'its parent organisation lives there' : 'most headroom in the zone';
  return (
    `new tenant -> ${p.cell} (${why}; ${p.keys} of ${p.placementLimit} keys)\n` +
    `create it there: POST https://${p.domainName}/organisations, then\n` +
    `record it: npx tsx tools/cells/place.ts --record <orgId>=${p.cell} --directory ${args.directoryFile}`
  );
}

if (require.main === module) {
  try {
    console.log(run(cellsOf(loadDeployments()), parseArgs(process.argv.slice(2))));
  } catch (e) {
    if (e instanceof UsageError) {
      console.error(`${e.message}\n\n${USAGE}`);
      process.exitCode = 2;
    } else if (e instanceof PlacementError) {
      console.error(e.message);
      process.exitCode = 1;
    } else {
      throw e;
    }
  }
}
