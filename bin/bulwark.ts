#!/usr/bin/env node
// Entry point: the only place that reads process.env. Configuration is validated before any
// construct exists, so a bad catalogue entry fails fast with `<deployment>.<field>: <problem>`.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { App } from 'aws-cdk-lib';
import { buildStages } from '../lib/app';
import { ComplianceError, assertCompliant, collectAcknowledgements } from '../lib/compliance';
import { ConfigError, loadDeployments, placeholderFields } from '../lib/config';

function main(): void {
  const app = new App();
  let deployments;
  try {
    deployments = loadDeployments({
      // All context: `deployments`, `account` and `<deployment>:account` are read from it.
      context: app.node.getAllContext(),
      env: process.env,
    });
  } catch (e) {
    if (e instanceof ConfigError) {
      console.error(e.message);
      process.exit(1);
    }
    throw e;
  }

  const stages = buildStages(app, deployments);
  const assembly = app.synth();
  try {
    assertCompliant(assembly.directory);
  } catch (e) {
    if (e instanceof ComplianceError) {
      console.error(e.message);
      process.exit(1);
    }
    throw e;
  }

  // Facts the summary prints that are not in the templates themselves.
  const compliance = stages.map((s) => ({
    deployment: s.deployment.name,
    region: s.deployment.region,
    residency: s.deployment.residency,
    account: s.deployment.account,
    packs: s.compliancePacks,
    acknowledgements: collectAcknowledgements(s).length,
    // Only a placeholder-account synth gets here with placeholders: a real account refuses them.
    placeholders: placeholderFields(s.deployment),
  }));
  fs.writeFileSync(path.join(assembly.directory, 'bulwark-compliance.json'), JSON.stringify(compliance, null, 2));
}

main();
