/**
 * Bundle size and module init time of every function, bundled as the function recipe bundles it
 * (tools/bundles/bundles.ts: the recipe's esbuild options and externals). Init is the time a fresh
 * `node` process takes to `require` the bundle, the SDK clients left to the runtime resolved from
 * node_modules as Lambda resolves them from its own copy: the median of `--runs` processes; and
 * the bundle's own share (the SDK clients loaded before the clock starts).
 * On node < 21 the timed process gets the global `navigator` Node 21+ has (the runtime is Node 24),
 * so that pg's Cloudflare probe takes the path it takes on Lambda instead of loading undici.
 * It also prints the largest packages in each bundle, and fails when a target is missed:
 * API and authorizer <= 250 KB, webhook ingress <= 100 KB, every function's init <= 150 ms.
 *
 *   npx tsx bench/bundles.ts [--runs 7] [--wall] [--root <checkout>]
 *
 * `--root` bundles the same functions from another checkout (e.g. a `git worktree` of an older
 * revision with node_modules linked) for a before/after comparison.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import * as path from 'node:path';
import { allFunctions, bundleFunction, unprovidedImports } from '../tools/bundles/bundles';

const arg = (name: string, fallback: string): string => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? (process.argv[i + 1] ?? fallback) : fallback;
};
const RUNS = Number(arg('runs', '7'));
const WALL = process.argv.includes('--wall');
const HERE = path.join(__dirname, '..');
const ROOT = path.resolve(arg('root', HERE));

const KB = 1024;
/** Size targets by function (construct path suffix); init target for all. */
const SIZE_TARGETS: readonly (readonly [RegExp, number])[] = [
  [/TenantGuard\/Api$/, 250 * KB],
  [/TenantGuard\/Authorizer$/, 250 * KB],
  [/Webhooks\/Function$/, 100 * KB],
];
const INIT_TARGET_MS = 150;

/**
 * What Lambda sets before loading a handler, and valid values for the functions' own variables
 * (some validate their environment and build their clients at module load, as they should).
 */
const LAMBDA_ENV = {
  AWS_REGION: 'eu-west-1',
  AWS_LAMBDA_FUNCTION_NAME: 'bench',
  AWS_LAMBDA_FUNCTION_MEMORY_SIZE: '256',
  AWS_EXECUTION_ENV: 'AWS_Lambda_nodejs24.x',
  ACCOUNT_ID: '123456789012',
  DEPLOYMENT: 'prod-eu',
  DB_HOST: 'proxy.example.internal',
  DB_PORT: '5432',
  DB_NAME: 'bulwark',
  DB_USER: 'app_bench',
  AUDIT_BUCKET: 'bench-audit',
  AUDIT_KEY_ARN: 'arn:aws:kms:eu-west-1:123456789012:key/00000000-0000-4000-8000-000000000000',
  AUDIT_RETENTION_MONTHS: '{"pro":12,"business":24,"enterprise":84}',
  EXPORT_BUCKET: 'bench-exports',
  EXPORT_KEY_ARN: 'arn:aws:kms:eu-west-1:123456789012:key/00000000-0000-4000-8000-000000000001',
  BULWARK_ENVIRONMENT: 'production',
};

/**
 * Prints the CPU time (user + system) of the `require`, which on a busy machine stays what the wall
 * time would be on an idle one (Lambda gives init a full vCPU burst); `--wall` prints wall time.
 * Two figures: the whole module init (the bundle and the SDK clients it requires), and the bundle's
 * own share (the clients loaded before the clock starts).
 */
const REQUIRE_TIMED =
  "const { performance } = require('node:perf_hooks'); const [file, ...clients] = process.argv.slice(1); " +
  // Node 21+ (the runtime's Node 24) has a global `navigator`; without it, pg's Cloudflare probe
  // constructs a fetch `Response`, loading undici (~57 ms of CPU on node 20) where Lambda never does.
  "if (typeof navigator === 'undefined') globalThis.navigator = { userAgent: 'Node.js/' + process.versions.node.split('.')[0] }; " +
  'if (process.env.PRELOAD) for (const c of clients) require(c); ' +
  'const t = performance.now(); const c = process.cpuUsage(); require(file); const u = process.cpuUsage(c); ' +
  'process.stdout.write(String(process.env.WALL ? performance.now() - t : (u.user + u.system) / 1000));';

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;

/** Median init (ms) over RUNS fresh processes: whole, and the bundle's own with the clients preloaded. */
function initMs(file: string, clients: readonly string[]): { whole: number; own: number } {
  return { whole: median(runs(file, clients, false)), own: median(runs(file, clients, true)) };
}

function runs(file: string, clients: readonly string[], preload: boolean): number[] {
  const times: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    let out: string;
    try {
      out = execFileSync(process.execPath, ['-e', REQUIRE_TIMED, file, ...clients], {
        env: {
          PATH: process.env['PATH'],
          NODE_PATH: path.join(ROOT, 'node_modules'),
          ...LAMBDA_ENV,
          ...(preload ? { PRELOAD: '1' } : {}),
          ...(WALL ? { WALL: '1' } : {}),
        },
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'pipe'],
      });
    } catch (e) {
      const stderr = String((e as { stderr?: unknown }).stderr ?? '');
      const reason = /^\w*Error: .*$/m.exec(stderr)?.[0] ?? stderr.slice(-500);
      throw new Error(`${file} failed to load: ${reason}`, { cause: e });
    }
    times.push(Number(out));
  }
  return times;
}

async function main(): Promise<void> {
  const navigatorNote =
    Number(process.versions.node.split('.')[0]) < 21 ? ' (global navigator emulated as on node 21+)' : '';
  console.log(
    `node ${process.version}${navigatorNote}, ${cpus().length} cores, load ${loadavg()
      .map((l) => l.toFixed(1))
      .join(' ')}, ${RUNS} runs per init${ROOT === HERE ? '' : `, code from ${ROOT}`}`,
  );
  const out = fs.mkdtempSync(path.join(tmpdir(), 'bulwark-bundles-'));
  const failures: string[] = [];
  const rows: string[] = [];
  try {
    for (const fn of allFunctions()) {
      const entry = path.join(ROOT, path.relative(HERE, fn.entry));
      const bundle = await bundleFunction({ ...fn, entry });
      const dir = path.join(out, fn.name.replace(/\//g, '_'));
      fs.mkdirSync(dir);
      const file = path.join(dir, 'index.js');
      fs.writeFileSync(file, bundle.code);
      const clients = bundle.runtimeImports.filter((m) => m.startsWith('@aws-sdk/client-'));
      const { whole: ms, own } = initMs(file, clients);
      const top = Object.entries(bundle.packages)
        .sort((a, b) => b[1] - a[1])
        .slice(0, 4)
        .map(([p, b]) => `${p} ${Math.round(b / KB)}`)
        .join(', ');
      rows.push(
        `| ${fn.name} | \`${path.relative(HERE, fn.entry)}\` | ${Math.round(bundle.bytes / KB)} | ${ms.toFixed(0)} | ` +
          `${own.toFixed(0)} | ${top} |`,
      );
      const sizeTarget = SIZE_TARGETS.find(([re]) => re.test(fn.name))?.[1];
      if (sizeTarget !== undefined && bundle.bytes > sizeTarget) {
        failures.push(`${fn.name}: ${Math.round(bundle.bytes / KB)} KB > ${sizeTarget / KB} KB`);
      }
      if (ms > INIT_TARGET_MS) failures.push(`${fn.name}: init ${ms.toFixed(0)} ms > ${INIT_TARGET_MS} ms`);
      const unprovided = unprovidedImports(bundle);
      if (unprovided.length > 0) failures.push(`${fn.name}: leaves ${unprovided.join(', ')} to the runtime`);
    }
  } finally {
    fs.rmSync(out, { recursive: true, force: true });
  }
  const clock = WALL ? 'wall' : 'CPU';
  console.log(`\n| function | entry | KB | init ms (${clock}) | of which the bundle | largest packages (KB) |`);
  console.log('| --- | --- | ---: | ---: | ---: | --- |');
  for (const r of rows) console.log(r);
  if (failures.length > 0) {
    console.log(`\nMissed targets:\n${failures.map((f) => `- ${f}`).join('\n')}`);
    process.exitCode = 1;
  } else {
    console.log('\nAll targets met.');
  }
}

void main();
