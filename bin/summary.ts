// Prints what `npm run synth` produced: deployments, stacks, resources per stack, and the gate's result.
// Reads only cdk.out, so it can never disagree with what would be deployed.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { summarise, renderSummary } from '../tools/compliance/summary';

const outdir = process.argv[2] ?? 'cdk.out';
if (!fs.existsSync(path.join(outdir, 'manifest.json'))) {
  console.error(`${outdir} holds no cloud assembly; run \`npm run synth\` first`);
  process.exit(1);
}
console.log(renderSummary(summarise(outdir), outdir));
