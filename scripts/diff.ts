/**
 * `npm run diff -- <assemblyA> <assemblyB>`: compares two synthesized cloud assemblies (cdk.out
 * directories) per stack, offline: no credentials, no deployed stack read. Exit 0 when they match
 * (asset hashes aside), 1 when they differ, 2 on usage errors.
 */
import { diffAssemblies, renderDiff } from '../tools/diff/assembly-diff';

const USAGE = `usage: npm run diff -- <assemblyA> <assemblyB>

Compares two synthesized cloud assemblies (for example cdk.out of main and of a branch:
  npm run synth -- -o /tmp/before   (on main)
  npm run synth -- -o /tmp/after    (on the branch)
  npm run diff -- /tmp/before /tmp/after)
stack by stack: resources added (+), removed (-) and changed (~) with the property paths that
changed; IAM and resource-policy changes come first, marked [IAM]. Asset hashes are normalised.
Needs no AWS credentials (cdk diff reads the deployed stacks; this does not).`;

if (require.main === module) {
  const args = process.argv.slice(2);
  if (args.includes('--help') || args.includes('-h')) {
    console.log(USAGE);
  } else if (args.length !== 2) {
    console.error(`expected two assembly directories, got ${args.length}\n\n${USAGE}`);
    process.exitCode = 2;
  } else {
    try {
      const diffs = diffAssemblies(args[0] as string, args[1] as string);
      console.log(renderDiff(diffs));
      process.exitCode = diffs.length === 0 ? 0 : 1;
    } catch (e) {
      console.error(`${(e as Error).message}\n\n${USAGE}`);
      process.exitCode = 2;
    }
  }
}
