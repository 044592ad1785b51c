import * as fs from 'node:fs';
import * as path from 'node:path';
import type { App } from 'aws-cdk-lib';
import { BulwarkStage } from './bulwark-stage';
import type { DeploymentConfig } from './config';

/** Adds one stage per deployment to `app`. Configuration must already be validated. */
export function buildStages(app: App, deployments: readonly DeploymentConfig[]): BulwarkStage[] {
  return deployments.map((deployment) => new BulwarkStage(app, { deployment }));
}

/** The context (feature flags) from cdk.json, for apps built outside the CDK CLI: tests and scripts. */
export function cdkJsonContext(): Record<string, unknown> {
  const file = path.join(__dirname, '..', 'cdk.json');
  return (JSON.parse(fs.readFileSync(file, 'utf8')) as { context: Record<string, unknown> }).context;
}
