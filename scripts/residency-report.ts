// Regenerates docs/residency/<deployment>.md for every deployment in the catalogue.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { App } from 'aws-cdk-lib';
import { buildStages, cdkJsonContext } from '../lib/app';
import { loadDeployments } from '../lib/config';
import { renderResidencyReport, residencyReport } from '../tools/residency/report';

export const RESIDENCY_DIR = path.join(__dirname, '..', 'docs', 'residency');

/** Deployment name -> rendered report. */
export function renderCurrentResidencyReports(): Map<string, string> {
  const app = new App({ context: { ...cdkJsonContext(), 'aws:cdk:bundling-stacks': [] } });
  const stages = buildStages(app, loadDeployments());
  return new Map(stages.map((s) => [s.deployment.name, renderResidencyReport(residencyReport(s, s.deployment))]));
}

if (require.main === module) {
  fs.mkdirSync(RESIDENCY_DIR, { recursive: true });
  for (const [name, text] of renderCurrentResidencyReports()) {
    fs.writeFileSync(path.join(RESIDENCY_DIR, `${name}.md`), text);
    console.log(`wrote docs/residency/${name}.md`);
  }
}
