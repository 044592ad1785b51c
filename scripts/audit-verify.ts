/**
 * `npm run audit:verify -- <directory or file> [--filtered] [--head <orgId>:<seq>:<hash>]...`
 *
 * Verifies archive batches (`.jsonl`, e.g. `aws s3 sync s3://<audit bucket>/orgs/ ./archive`) and
 * CSV exports, reading each file as a stream. Exit status 0: every chain verified; 1: a problem was
 * found (first one per chain is printed with file and line); 2: usage error.
 */
import { formatReport, verifyDirectory, type VerifyReport } from '../lambda/audit/verify';
import { isHash, type ChainHead } from '../lambda/audit/chain';

const USAGE = `usage: npm run audit:verify -- <directory or file> [--filtered] [--head <orgId>:<seq>:<hash>]...

Verifies audit hash chains in archive batches (*.jsonl, e.g. after
  aws s3 sync s3://<audit archive bucket>/orgs/ ./archive)
and CSV exports (*.csv from GET /audit/export), every file under a directory.

  --filtered                      the CSV export was filtered (from, to, actor, actor_type, event):
                                  accept gaps in sequence; each record's hash and the links between
                                  adjacent records are still checked
  --head <orgId>:<seq>:<hash>     the chain head read from the database for one organisation
                                  (repeat per organisation); without it, records cut off after the
                                  last one in the files cannot be noticed
  --help                          this text

Exit status: 0 every chain verified, 1 a problem found, 2 usage error.`;

export function parseArgs(
  args: readonly string[],
): { help: true } | { help: false; target: string; allowGaps: boolean; expectedHeads: Map<string, ChainHead> } {
  let target: string | undefined;
  let allowGaps = false;
  const expectedHeads = new Map<string, ChainHead>();
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === '--help' || a === '-h') return { help: true };
    if (a === '--filtered') allowGaps = true;
    else if (a === '--head') {
      const value = args[++i] ?? '';
      const m = /^(.+):(\d+):([0-9a-f]{64})$/.exec(value);
      if (!m || !m[1] || !isHash(m[3])) {
        throw new UsageError(`--head needs <orgId>:<seq>:<hash> (64 lower-case hex digits), got "${value}"`);
      }
      expectedHeads.set(m[1], { seq: Number(m[2]), hash: m[3] });
    } else if (a && !a.startsWith('-') && target === undefined) target = a;
    else throw new UsageError(`unexpected argument ${a}`);
  }
  if (!target) throw new UsageError('missing directory or file');
  return { help: false, target, allowGaps, expectedHeads };
}

export class UsageError extends Error {}

if (require.main === module) {
  let exit = 0;
  try {
    const parsed = parseArgs(process.argv.slice(2));
    if (parsed.help) {
      console.log(USAGE);
    } else {
      let report: VerifyReport;
      try {
        report = verifyDirectory(parsed.target, parsed);
      } catch (e) {
        throw new UsageError(`cannot read ${parsed.target}: ${(e as Error).message}`);
      }
      for (const line of formatReport(report)) console.log(line);
      exit = report.ok && report.files > 0 ? 0 : 1;
    }
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    console.error(`${e.message}\n\n${USAGE}`);
    exit = 2;
  }
  process.exitCode = exit;
}
