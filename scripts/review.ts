// `npm run review`: synthesizes every deployment and writes one HTML report for security reviewers.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { App } from 'aws-cdk-lib';
import { buildStages, cdkJsonContext } from '../lib/app';
import { collectAcknowledgements, readFindings } from '../lib/compliance';
import { loadDeployments } from '../lib/config';
import { residencyReport } from '../lib/residency/report';
import { CONTROLS } from '../lib/review/controls';
import { renderReview, type ReviewInput } from '../lib/review/html';
import { iamSummary } from '../lib/review/iam-summary';

export function buildReview(now: Date = new Date()): ReviewInput {
  const outdir = fs.mkdtempSync(path.join(os.tmpdir(), 'bulwark-review-'));
  const app = new App({
    outdir,
    context: {
      ...cdkJsonContext(),
      'aws:cdk:bundling-stacks': [],
      '@aws-cdk/core:appMode': 'inmemory',
      // The CLI turns construct paths on; the IAM section heads each function with its path.
      'aws:cdk:enable-path-metadata': true,
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
    deployments: stages.map((s) => ({ name: s.deployment.name, packs: s.compliancePacks })),
    controls: CONTROLS,
    findings: readFindings(outdir),
    acknowledgements: collectAcknowledgements(app),
    functions,
    residency: stages.map((s) => residencyReport(s, s.deployment)),
  };
  fs.rmSync(outdir, { recursive: true, force: true });
  return review;
}

if (require.main === module) {
  const file = path.resolve(process.argv[2] ?? 'review/bulwark-review.html');
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const review = buildReview();
  fs.writeFileSync(file, renderReview(review));
  console.log(
    `wrote ${path.relative(process.cwd(), file)}: ${review.controls.length} controls, ${review.findings.length} findings, ` +
      `${review.acknowledgements.length} acknowledgements, ${review.functions.length} functions`,
  );
}
