// Regenerates docs/compliance/acknowledgements.md from the construct tree of every deployment.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { App } from 'aws-cdk-lib';
import { buildStages, cdkJsonContext } from '../lib/app';
import { collectAcknowledgements } from '../lib/compliance';
import { renderAcknowledgements } from '../tools/compliance/acknowledgements';
import { loadDeployments } from '../lib/config';

export const ACKNOWLEDGEMENTS_FILE = path.join(__dirname, '..', 'docs', 'compliance', 'acknowledgements.md');

export function renderCurrentAcknowledgements(): string {
  // Bundling is irrelevant to acknowledgements; skipping it keeps this fast.
  const app = new App({ context: { ...cdkJsonContext(), 'aws:cdk:bundling-stacks': [] } });
  buildStages(app, loadDeployments());
  return renderAcknowledgements(collectAcknowledgements(app));
}

if (require.main === module) {
  fs.writeFileSync(ACKNOWLEDGEMENTS_FILE, renderCurrentAcknowledgements());
  console.log(`wrote ${path.relative(process.cwd(), ACKNOWLEDGEMENTS_FILE)}`);
}
