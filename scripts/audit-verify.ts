/**
 * `npm run audit:verify -- <directory or file> [--filtered] [--head <orgId>:<seq>:<hash>]...`
 *
 * Verifies archive batches (`.jsonl`, e.g. `aws s3 sync s3://<audit bucket>/orgs/ ./archive`) and
 * CSV exports. Exit status 0: every chain verified; 1: a problem was found (first one per chain is
 * printed with file and line); 2: usage error.
 */
import { formatReport, verifyDirectory } from '../lambda/audit/verify';
import { isHash, type ChainHead } from '../lambda/audit/chain';

function usage(message: string): never {
  console.error(
    `${message}\nusage: npm run audit:verify -- <directory or file> [--filtered] [--head <orgId>:<seq>:<hash>]`,
  );
  process.exit(2);
}

const args = process.argv.slice(2);
let target: string | undefined;
let allowGaps = false;
const expectedHeads = new Map<string, ChainHead>();
for (let i = 0; i < args.length; i++) {
  const a = args[i];
  if (a === '--filtered') allowGaps = true;
  else if (a === '--head') {
    const m = /^(.+):(\d+):([0-9a-f]{64})$/.exec(args[++i] ?? '');
    if (!m || !m[1] || !isHash(m[3])) usage('--head needs <orgId>:<seq>:<hash>');
    expectedHeads.set(m[1], { seq: Number(m[2]), hash: m[3] });
  } else if (a && !a.startsWith('--') && target === undefined) target = a;
  else usage(`unexpected argument ${a}`);
}
if (!target) usage('missing directory or file');

let report;
try {
  report = verifyDirectory(target, { allowGaps, expectedHeads });
} catch (e) {
  usage(`cannot read ${target}: ${(e as Error).message}`);
}
for (const line of formatReport(report)) console.log(line);
process.exit(report.ok && report.files > 0 ? 0 : 1);
