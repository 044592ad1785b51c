/**
 * Cells in the catalogue (validated with the rest of it) and the placement of tenants among them.
 */
import {
  ConfigError,
  PLACEMENT_SHARE,
  PlacementError,
  cellsOf,
  parseCatalogue,
  placeTenant,
  recordPlacement,
  type DeploymentInput,
  type PlacementRequest,
  type PlacementState,
} from '../../lib/config';
import { EU, INDIA, shippedInput } from '../support/catalogue';

const eu = shippedInput(EU);
const india = shippedInput(INDIA);
const account = (n: number) => String(100000000000 + n);

/** `input` deployable in account `n`: its own certificate, domain and alarm address (no placeholder left). */
function inAccount(input: DeploymentInput, n: number, name: string): DeploymentInput {
  const region = input.region;
  return {
    ...input,
    account: account(n),
    edge: {
      ...input.edge,
      domainName: `api.${name}.acme-saas.io`,
      certificateArn: `arn:aws:acm:${region}:${account(n)}:certificate/1f2e3d4c-5b6a-4978-8695-a4b3c2d1e0f9`,
    },
    alarms: { email: 'oncall@acme-saas.io' },
  };
}

/** Three EU cells in their own accounts (eu-3 drained), and India as a group of its own. */
function catalogue(overrides: Record<string, Partial<DeploymentInput>> = {}): Record<string, DeploymentInput> {
  const base: Record<string, DeploymentInput> = {
    'eu-1': { ...inAccount(eu, 1, 'eu-1'), cell: { group: 'eu' } },
    'eu-2': { ...inAccount(eu, 2, 'eu-2'), cell: { group: 'eu' } },
    'eu-3': { ...inAccount(eu, 3, 'eu-3'), cell: { group: 'eu', acceptsNewTenants: false } },
    'prod-in': inAccount(india, 4, 'prod-in'),
  };
  for (const [name, o] of Object.entries(overrides)) base[name] = { ...base[name], ...o } as DeploymentInput;
  return base;
}

function problems(input: Record<string, DeploymentInput>): string[] {
  try {
    parseCatalogue(input);
  } catch (e) {
    if (e instanceof ConfigError) return [...e.problems];
    throw e;
  }
  return [];
}

const cells = cellsOf(parseCatalogue(catalogue()));
const ORG = '6f1c3a52-7d1e-4c8e-9a0b-1d2e3f4a5b6c';
const PARENT = '0b9a8c7d-6e5f-4a3b-8c2d-1e0f9a8b7c6d';
const state = (keys: Record<string, number>, directory: Record<string, string> = {}): PlacementState => ({
  keys: new Map(Object.entries(keys)),
  directory: new Map(Object.entries(directory)),
});
const KEYS = { 'eu-1': 50_000, 'eu-2': 20_000, 'eu-3': 0, 'prod-in': 10 };

function placementError(request: PlacementRequest, s: PlacementState): PlacementError {
  try {
    placeTenant(cells, request, s);
  } catch (e) {
    if (e instanceof PlacementError) return e;
    throw e;
  }
  throw new Error('placed');
}

describe('cells in the catalogue', () => {
  it('reads groups, draining and quota, and makes an ungrouped deployment a group of one', () => {
    expect(cells.map((c) => [c.name, c.group, c.acceptsNewTenants, c.keyQuota, c.placementLimit])).toEqual([
      ['eu-1', 'eu', true, 100_000, 100_000 * PLACEMENT_SHARE],
      ['eu-2', 'eu', true, 100_000, 80_000],
      ['eu-3', 'eu', false, 100_000, 80_000],
      ['prod-in', 'prod-in', true, 100_000, 80_000],
    ]);
  });

  it('accepts a raised key quota', () => {
    const raised = cellsOf(parseCatalogue(catalogue({ 'eu-2': { cell: { group: 'eu', keyQuota: 200_000 } } })));
    expect(raised.find((c) => c.name === 'eu-2')?.placementLimit).toBe(160_000);
  });

  it('refuses cells of one group that differ in region, residency or environment, naming the field', () => {
    const found = problems(
      catalogue({
        'eu-2': {
          ...inAccount(
            {
              ...eu,
              region: 'eu-central-1',
              backupRegion: 'eu-west-1',
              availabilityZones: ['eu-central-1a', 'eu-central-1b'],
            },
            2,
            'eu-2',
          ),
          cell: { group: 'eu' },
        },
        'eu-3': { environment: 'staging', cell: { group: 'eu' } },
      }),
    );
    expect(found).toEqual([
      'eu-2.cell.group: cells of group eu share their region; eu-1 has eu-west-1, this one eu-central-1 (from catalogue)',
      'eu-3.cell.group: cells of group eu share their environment; eu-1 has production, this one staging (from catalogue)',
    ]);
  });

  it('refuses two cells of a group in one account, naming where the account came from', () => {
    const found = problems(catalogue({ 'eu-2': { ...inAccount(eu, 1, 'eu-2'), cell: { group: 'eu' } } }));
    expect(found).toEqual([
      `eu-2.account: ${account(1)} is also the account of eu-1, a cell of the same group; cells in one account ` +
        'share its KMS key quota, so each needs its own account (from catalogue)',
    ]);
    // The rule is per group: a deployment outside the group may share an account (it is not a cell of it).
    expect(problems(catalogue({ 'prod-in': inAccount(india, 1, 'prod-in') }))).toEqual([]);
  });

  it('leaves the placeholder account to the synth summary', () => {
    const { 'eu-1': a, 'eu-2': b } = catalogue();
    expect(problems({ 'eu-1': { ...a!, account: eu.account }, 'eu-2': { ...b!, account: eu.account } })).toEqual([]);
  });

  it('refuses a group named after an ungrouped deployment, and malformed cell fields', () => {
    expect(problems(catalogue({ 'eu-1': { cell: { group: 'prod-in' } } }))).toEqual(
      expect.arrayContaining([expect.stringMatching(/^eu-1\.cell\.group: prod-in is the name of deployment prod-in/)]),
    );
    const bad = problems(
      catalogue({ 'eu-1': { cell: { group: 'EU', keyQuota: 0, drain: true } as unknown as DeploymentInput['cell'] } }),
    );
    expect(bad).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^eu-1\.cell\.group: must be 2-32 lower-case letters/),
        expect.stringMatching(/^eu-1\.cell\.keyQuota: must be positive/),
        expect.stringMatching(/^eu-1\.cell\.drain: is not a known field \(known: group, acceptsNewTenants, keyQuota\)/),
      ]),
    );
  });
});

describe('placeTenant', () => {
  it('places a new tenant in the open cell of its zone with the most headroom', () => {
    expect(placeTenant(cells, { residency: 'eu' }, state(KEYS))).toEqual({
      cell: 'eu-2',
      reason: 'most-headroom',
      keys: 20_000,
      placementLimit: 80_000,
      domainName: 'api.eu-2.acme-saas.io',
    });
    expect(placeTenant(cells, { residency: 'in' }, state(KEYS)).cell).toBe('prod-in');
  });

  it('never places in a drained cell, however empty, and breaks ties by name', () => {
    expect(placeTenant(cells, { residency: 'eu' }, state({ ...KEYS, 'eu-1': 7, 'eu-2': 7 })).cell).toBe('eu-1');
  });

  it('counts headroom against each cell own limit (raised quotas)', () => {
    const raised = cellsOf(parseCatalogue(catalogue({ 'eu-1': { cell: { group: 'eu', keyQuota: 200_000 } } })));
    // eu-1: 160,000 - 50,000 = 110,000 left; eu-2: 80,000 - 20,000 = 60,000.
    expect(placeTenant(raised, { residency: 'eu' }, state(KEYS)).cell).toBe('eu-1');
  });

  it('stops placing in a cell at its placement limit, and says so when every cell is full or drained', () => {
    expect(placeTenant(cells, { residency: 'eu' }, state({ ...KEYS, 'eu-2': 80_000 })).cell).toBe('eu-1');
    const e = placementError({ residency: 'eu' }, state({ ...KEYS, 'eu-1': 79_999 + 1, 'eu-2': 90_000 }));
    expect(e.code).toBe('NO_CELL_WITH_CAPACITY');
    expect(e.message).toBe(
      "NO_CELL_WITH_CAPACITY: every cell is full or drained ('eu-1' 80000/80000 keys, 'eu-2' 90000/80000 keys, " +
        "'eu-3' drained); deploy a new cell",
    );
  });

  it('keeps a placed tenant where it is, even in a full or drained cell', () => {
    const s = state({ ...KEYS, 'eu-3': 99_000 }, { [ORG]: 'eu-3' });
    expect(placeTenant(cells, { residency: 'eu', orgId: ORG.toUpperCase() }, s)).toMatchObject({
      cell: 'eu-3',
      reason: 'already-placed',
    });
  });

  it('never moves a placed tenant to another zone or a cell the catalogue lost', () => {
    expect(placementError({ residency: 'in', orgId: ORG }, state(KEYS, { [ORG]: 'eu-1' })).code).toBe(
      'ALREADY_PLACED_ELSEWHERE',
    );
    expect(placementError({ residency: 'eu', orgId: ORG }, state(KEYS, { [ORG]: 'eu-9' })).message).toBe(
      `CELL_UNKNOWN: organisation ${ORG} lives in cell 'eu-9', which the catalogue does not list`,
    );
  });

  it("puts a child in its parent's cell, drained or past the placement limit, but not past the quota", () => {
    const s = (keys: number) => state({ ...KEYS, 'eu-3': keys }, { [PARENT]: 'eu-3' });
    expect(placeTenant(cells, { residency: 'eu', parentOrgId: PARENT }, s(85_000))).toMatchObject({
      cell: 'eu-3',
      reason: 'with-parent',
    });
    expect(placementError({ residency: 'eu', parentOrgId: PARENT }, s(100_000)).code).toBe('CELL_FULL');
    expect(placementError({ residency: 'eu', parentOrgId: PARENT }, state(KEYS)).code).toBe('PARENT_NOT_PLACED');
  });

  it('filters by group and environment, and names what is missing', () => {
    expect(placementError({ residency: 'eu', group: 'eu-central' }, state(KEYS)).message).toBe(
      "NO_CELL_IN_ZONE: no production cell in residency zone eu in group 'eu-central'",
    );
    expect(placementError({ residency: 'eu', environment: 'staging' }, state(KEYS)).code).toBe('NO_CELL_IN_ZONE');
    expect(placementError({ residency: 'us' }, state(KEYS)).code).toBe('NO_CELL_IN_ZONE');
  });

  it('refuses to guess a missing or malformed key count, and a malformed id', () => {
    expect(placementError({ residency: 'eu' }, state({ 'eu-1': 1, 'eu-3': 1 })).message).toBe(
      "KEY_COUNT_MISSING: no key count for cell 'eu-2'",
    );
    expect(placementError({ residency: 'eu' }, state({ ...KEYS, 'eu-2': -1 })).code).toBe('INVALID_REQUEST');
    expect(placementError({ residency: 'eu', orgId: 'not-a-uuid' }, state(KEYS)).code).toBe('INVALID_REQUEST');
  });
});

describe('recordPlacement', () => {
  it('adds an organisation, idempotently, and refuses to move one', () => {
    const d = recordPlacement(cells, new Map(), ORG.toUpperCase(), 'eu-2');
    expect([...d]).toEqual([[ORG, 'eu-2']]);
    expect([...recordPlacement(cells, d, ORG, 'eu-2')]).toEqual([[ORG, 'eu-2']]);
    expect(() => recordPlacement(cells, d, ORG, 'eu-1')).toThrow(
      /^ALREADY_PLACED_ELSEWHERE: organisation .* lives in cell 'eu-2'/,
    );
    expect(() => recordPlacement(cells, d, PARENT, 'eu-9')).toThrow(
      /^CELL_UNKNOWN: cell 'eu-9' is not in the catalogue/,
    );
  });
});
