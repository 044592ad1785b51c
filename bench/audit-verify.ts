/**
 * Peak memory (max RSS) and time of `npm run audit:verify` over an archive of 200,000 records
 * (4 organisations, batches of 1,000, as the shipper writes them) and over one CSV export of the
 * same size. Each verification runs in a child process of its own so its peak is its own.
 *
 *   npx tsx bench/audit-verify.ts [--records 200000] [--before <git revision>]
 *
 * `--before` also measures the verifier of that revision (extracted with `git archive`), for a
 * before/after comparison of a change to lambda/audit/.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { buildChain, type AuditRecord } from '../lambda/audit/chain';
import { batchKey, encodeBatch, encodeCsv } from '../lambda/audit/formats';
import { sampleEvents } from '../test/audit/fixtures';

const ROOT = path.join(__dirname, '..');
const arg = (name: string): string | undefined => {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
};

function child(verifyModule: string, target: string): void {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { verifyDirectory } = require(verifyModule) as typeof import('../lambda/audit/verify');
  const loadedRssMb = process.memoryUsage().rss / 2 ** 20;
  const start = process.hrtime.bigint();
  const report = verifyDirectory(target, {});
  const ms = Number(process.hrtime.bigint() - start) / 1e6;
  const records = report.chains.reduce((n, c) => n + c.records, 0);
  // resourceUsage().maxRSS is in kilobytes.
  console.log(
    JSON.stringify({ ok: report.ok, records, ms, loadedRssMb, maxRssMb: process.resourceUsage().maxRSS / 1024 }),
  );
}

interface Measured {
  readonly ok: boolean;
  readonly records: number;
  readonly ms: number;
  /** RSS once node, tsx and the verifier are loaded: the floor under the peak. */
  readonly loadedRssMb: number;
  readonly maxRssMb: number;
}

function measure(verifyModule: string, target: string): Measured {
  const r = spawnSync(process.execPath, [require.resolve('tsx/cli'), __filename, '--child', verifyModule, target], {
    encoding: 'utf8',
  });
  if (r.status !== 0) throw new Error(`child failed: ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').pop() as string) as Measured;
}

function main(): void {
  const total = Number(arg('--records') ?? 200_000);
  const before = arg('--before');
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-audit-verify-'));
  try {
    const orgs = 4;
    const archiveDir = path.join(work, 'archive');
    const csvFile = path.join(work, 'export.csv');
    const chains: AuditRecord[][] = [];
    for (let o = 0; o < orgs; o++) {
      const orgId = `3f1c2b9a-0000-4000-8000-00000000000${o}`;
      const chain = buildChain(sampleEvents(orgId, total / orgs, o + 1));
      chains.push(chain);
      for (let i = 0; i < chain.length; i += 1000) {
        const part = chain.slice(i, i + 1000);
        const file = path.join(archiveDir, batchKey('', { orgId, firstSeq: (part[0] as AuditRecord).seq }));
        fs.mkdirSync(path.dirname(file), { recursive: true });
        fs.writeFileSync(file, encodeBatch(part));
      }
    }
    // One organisation's export of the same size.
    const big = buildChain(sampleEvents('3f1c2b9a-0000-4000-8000-0000000000ff', total, 9));
    fs.writeFileSync(csvFile, encodeCsv(big));
    const size = (p: string): number =>
      fs.statSync(p).isDirectory()
        ? fs.readdirSync(p).reduce((n, e) => n + size(path.join(p, e)), 0)
        : fs.statSync(p).size;

    const impls: [string, string][] = [['current', path.join(ROOT, 'lambda', 'audit', 'verify.ts')]];
    if (before) {
      const dir = path.join(work, 'before');
      fs.mkdirSync(dir);
      const tar = execFileSync('git', ['archive', before, 'lambda', 'contracts'], { cwd: ROOT, maxBuffer: 1 << 30 });
      execFileSync('tar', ['-x', '-C', dir], { input: tar });
      impls.unshift([`before (${before})`, path.join(dir, 'lambda', 'audit', 'verify.ts')]);
    }
    console.log(`node ${process.version}, ${os.cpus().length} CPUs, load ${os.loadavg()[0]?.toFixed(2)}`);
    for (const [label, target] of [
      [
        `archive: ${total} records in ${total / 1000} batch files, ${(size(archiveDir) / 1e6).toFixed(0)} MB`,
        archiveDir,
      ],
      [`CSV export: ${total} records in one file, ${(size(csvFile) / 1e6).toFixed(0)} MB`, csvFile],
    ] as const) {
      console.log(label);
      for (const [name, module] of impls) {
        const m = measure(module, target);
        if (!m.ok || m.records !== total) throw new Error(`${name}: verification failed on ${target}`);
        console.log(
          `  ${name.padEnd(24)} peak RSS ${m.maxRssMb.toFixed(0).padStart(5)} MB (${m.loadedRssMb.toFixed(0)} MB ` +
            `before reading)  ${(m.ms / 1000).toFixed(1)} s`,
        );
      }
    }
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}

if (process.argv[2] === '--child') child(process.argv[3] as string, process.argv[4] as string);
else main();
