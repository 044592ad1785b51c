// `npm run synth [-- <cdk synth flags>]`: every argument after `--` goes to `cdk synth` (for example
// `-c deployments=prod-eu -c account=123456789012`), then the summary reads the assembly it wrote.
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';

/** The assembly directory `cdk synth` writes: `-o`/`--output` when given, else cdk.json's `cdk.out`. */
export function outputDirectory(args: readonly string[]): string {
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] as string;
    if ((arg === '-o' || arg === '--output') && args[i + 1] !== undefined) return args[i + 1] as string;
    const inline = /^--output=(.+)$/.exec(arg);
    if (inline) return inline[1] as string;
  }
  return 'cdk.out';
}

/**
 * cdk synth's stderr without its progress lines: aws-cdk-lib's "Bundling asset <path>..." (one per
 * function per deployment) and the CLI's "Successfully synthesized to ..." and "Supply a stack id
 * ..." (the summary that follows says both better). Everything else (warnings, errors) is kept.
 */
export function withoutProgress(stderr: string): string {
  return stderr
    .replace(/^Bundling asset [^\n]*\.\.\.\n/gm, '')
    .replace(/^(\n)?Successfully synthesized to [^\n]*\n/m, '')
    .replace(/^Supply a stack id \([^\n]*\) to display its template\.\n/m, '');
}

function run(command: string, args: readonly string[], quiet = false): void {
  const bin = path.join(__dirname, '..', 'node_modules', '.bin', command);
  const r = spawnSync(bin, args, {
    stdio: quiet ? ['inherit', 'inherit', 'pipe'] : 'inherit',
    encoding: 'utf8',
    maxBuffer: 1 << 30,
  });
  if (r.error) throw r.error;
  if (quiet) process.stderr.write(withoutProgress(r.stderr));
  if (r.status !== 0) process.exit(r.status ?? 1);
}

if (require.main === module) {
  const args = process.argv.slice(2);
  run('cdk', ['synth', '--quiet', ...args], true);
  run('tsx', [path.join(__dirname, 'summary.ts'), outputDirectory(args)]);
}
