// `npm run review`: synthesizes every deployment and writes one HTML report for security reviewers.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { App, Stack, Stage } from 'aws-cdk-lib';
import { buildStages, cdkJsonContext } from '../lib/app';
import { collectAcknowledgements, readFindings } from '../lib/compliance';
import { loadDeployments } from '../lib/config';
import { residencyReport } from '../tools/residency/report';
import { CONTROLS } from '../tools/controls/controls';
import { renderReview, type ReviewInput } from '../tools/review/html';
import { iamSummary } from '../tools/review/iam-summary';
import { evaluateAccessProof } from '../tools/access-proof';

const ROOT = path.join(__dirname, '..');
const ARCHITECTURE_FILE = path.join(ROOT, 'docs', 'ARCHITECTURE.md');

/** The commit the page describes; `+dirty` when the work tree has changes, `unknown` outside git. */
export function currentCommit(cwd: string = ROOT): string {
  const head = spawnSync('git', ['rev-parse', 'HEAD'], { cwd, encoding: 'utf8' });
  if (head.status !== 0) return 'unknown';
  const status = spawnSync('git', ['status', '--porcelain'], { cwd, encoding: 'utf8' });
  return `${head.stdout.trim()}${status.stdout.trim() ? '+dirty' : ''}`;
}

/**
 * Synthesizes every deployment and gathers what the review page shows. `context` adds app context:
 * tests switch the Control Tower gate off there (`bulwark:controlTowerGate: false`), which
 * test/compliance/cfn-guard.test.ts covers; `npm run review` runs every gate.
 */
export async function buildReview(
  now: Date = new Date(),
  context: Readonly<Record<string, unknown>> = {},
): Promise<ReviewInput> {
  const outdir = fs.mkdtempSync(path.join(os.tmpdir(), 'bulwark-review-'));
  const app = new App({
    outdir,
    context: {
      ...cdkJsonContext(),
      'aws:cdk:bundling-stacks': [],
      '@aws-cdk/core:appMode': 'inmemory',
      // Templates name each resource's construct path, which heads its IAM summary.
      'aws:cdk:enable-path-metadata': true,
      ...context,
    },
  });
  const stages = buildStages(app, loadDeployments());
  try {
    app.synth();
  } catch {
    // A failing gate still produces its report; the findings section shows why.
  }
  const functions = stages.flatMap((stage) =>
    stage
      .synth()
      .stacks.flatMap((s) =>
        iamSummary(s.stackName, s.template as { Resources?: Record<string, Record<string, unknown>> }),
      ),
  );
  const review: ReviewInput = {
    generatedAt: now.toISOString(),
    commit: currentCommit(),
    architecture: fs.readFileSync(ARCHITECTURE_FILE, 'utf8'),
    deployments: stages.map((s) => ({
      name: s.deployment.name,
      packs: s.compliancePacks,
      region: s.deployment.region,
      residency: s.deployment.residency,
      stacks: s.node.findAll().filter((c) => Stack.isStack(c) && Stage.of(c) === s).length,
    })),
    controls: CONTROLS,
    findings: readFindings(outdir),
    acknowledgements: collectAcknowledgements(app),
    functions,
    residency: stages.map((s) => residencyReport(s, s.deployment)),
    accessProof: await evaluateAccessProof(stages),
  };
  fs.rmSync(outdir, { recursive: true, force: true });
  return review;
}

if (require.main === module) {
  const file = path.resolve(process.argv[2] ?? 'review/bulwark-review.html');
  fs.mkdirSync(path.dirname(file), { recursive: true });
  buildReview().then(
    (review) => {
      fs.writeFileSync(file, renderReview(review));
      const flipped = review.accessProof.filter((r) => r.flipped).length;
      console.log(
        `wrote ${path.relative(process.cwd(), file)}: ${review.controls.length} controls, ${review.findings.length} findings, ` +
          `${review.acknowledgements.length} acknowledgements, ${review.functions.length} functions, ` +
          `${review.accessProof.length} access-proof verdicts (${flipped} not as required)`,
      );
    },
    (e: unknown) => {
      console.error(e);
      process.exitCode = 1;
    },
  );
}
