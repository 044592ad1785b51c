/**
 * The operator's placement tool (tools/cells/place.ts): arguments, the directory file it keeps,
 * and the command itself against the shipped catalogue.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { CATALOGUE, PlacementError, cellsOf, loadDeployments } from '../../lib/config';
import { UsageError, parseArgs, run } from '../../tools/cells/place';
import { EU, INDIA } from '../support/catalogue';

const ORG = '6f1c3a52-7d1e-4c8e-9a0b-1d2e3f4a5b6c';
const cells = cellsOf(loadDeployments());
const KEYS = Object.keys(CATALOGUE)
  .map((name) => `${name}=10`)
  .join(',');
let dir: string;
let directory: string;

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cells-'));
  directory = path.join(dir, 'directory.json');
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('parseArgs', () => {
  it('reads a placement and a record', () => {
    expect(
      parseArgs(['--residency', 'eu', '--keys', 'a-1=5, b-2=0', '--directory', 'd.json', '--parent', ORG]),
    ).toEqual({
      mode: 'place',
      request: { residency: 'eu', environment: 'production', parentOrgId: ORG },
      keys: new Map([
        ['a-1', 5],
        ['b-2', 0],
      ]),
      directoryFile: 'd.json',
    });
    expect(parseArgs(['--record', `${ORG}=a-1`, '--directory', 'd.json'])).toEqual({
      mode: 'record',
      orgId: ORG,
      cell: 'a-1',
      directoryFile: 'd.json',
    });
  });

  it.each([
    [['--residency', 'mars', '--keys', 'a=1', '--directory', 'd'], /--residency mars is not a residency zone/],
    [['--residency', 'eu', '--keys', 'a=-1', '--directory', 'd'], /--keys: a=-1 is not <cell>=<whole number>/],
    [['--residency', 'eu', '--directory', 'd'], /--keys is required/],
    [['--residency', 'eu', '--keys', 'a=1', '--directory', 'd', '--cell', 'x'], /--cell is not an option/],
    [['--record', `${ORG}=a`, '--directory', 'd', '--residency', 'eu'], /--record takes only --directory/],
    [['--residency'], /--residency: expected --<option> <value>/],
  ])('refuses %j', (args, message) => {
    expect(() => parseArgs(args)).toThrow(UsageError);
    expect(() => parseArgs(args)).toThrow(message);
  });
});

describe('run', () => {
  it('places a new tenant, records it after creation, and keeps it there', () => {
    const placed = run(cells, parseArgs(['--residency', EU.residency, '--keys', KEYS, '--directory', directory]));
    expect(placed).toMatch(
      new RegExp(`^new tenant -> ${EU.name} \\(most headroom in the zone; 10 of 80000 keys\\)\\n`),
    );
    expect(placed).toContain(`create it there: POST https://${CATALOGUE[EU.name]?.edge.domainName}/organisations`);
    expect(fs.existsSync(directory)).toBe(false);

    run(cells, parseArgs(['--record', `${ORG.toUpperCase()}=${EU.name}`, '--directory', directory]));
    expect(JSON.parse(fs.readFileSync(directory, 'utf8'))).toEqual({ [ORG]: EU.name });

    const again = run(
      cells,
      parseArgs(['--residency', EU.residency, '--keys', KEYS, '--directory', directory, '--org', ORG]),
    );
    expect(again).toBe(`${ORG} -> ${EU.name} (it already lives there; 10 of 80000 keys)`);
    // Recording it in another cell would move it: refused, and the directory is unchanged.
    expect(() => run(cells, parseArgs(['--record', `${ORG}=${INDIA.name}`, '--directory', directory]))).toThrow(
      PlacementError,
    );
    expect(JSON.parse(fs.readFileSync(directory, 'utf8'))).toEqual({ [ORG]: EU.name });
  });

  it('refuses a directory that is not an object of organisation -> cell', () => {
    fs.writeFileSync(directory, '["x"]');
    expect(() => run(cells, parseArgs(['--residency', 'eu', '--keys', KEYS, '--directory', directory]))).toThrow(
      /must be an object of organisation id -> cell/,
    );
  });
});

it('runs as a command: prints the cell (exit 0), or why not (exit 1)', () => {
  const cli = (...args: string[]) =>
    spawnSync(
      process.execPath,
      [require.resolve('tsx/cli'), path.join(__dirname, '..', '..', 'tools', 'cells', 'place.ts'), ...args],
      {
        encoding: 'utf8',
        env: { PATH: process.env['PATH'] },
      },
    );
  const ok = cli('--residency', INDIA.residency, '--keys', KEYS, '--directory', directory);
  expect({ status: ok.status, out: ok.stdout.split('\n')[0] }).toEqual({
    status: 0,
    out: `new tenant -> ${INDIA.name} (most headroom in the zone; 10 of 80000 keys)`,
  });
  const none = cli('--residency', 'us', '--keys', KEYS, '--directory', directory);
  expect({ status: none.status, err: none.stderr.trim() }).toEqual({
    status: 1,
    err: 'NO_CELL_IN_ZONE: no production cell in residency zone us',
  });
  expect(cli('--residency', 'eu').status).toBe(2);
});
