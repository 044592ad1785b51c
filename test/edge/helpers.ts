import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { App, Stack } from 'aws-cdk-lib';
import { cdkJsonContext } from '../../lib/app';
import { CONTROL_TOWER_GATE_CONTEXT } from '../../lib/compliance/cfn-guard';
import { BulwarkStage } from '../../lib/bulwark-stage';
import { parseDeployment, type DeploymentConfig, type DeploymentInput } from '../../lib/config';
import { EU, shippedInput } from '../support/catalogue';

const TEST_CERT = (region: string): string =>
  `arn:aws:acm:${region}:000000000000:certificate/00000000-0000-4000-8000-000000000000`;

/** A `us` deployment with a CloudFront entry; the shipped catalogue has none (both zones exclude us-east-1). */
export function cloudFrontDeploymentInput(overrides: Partial<DeploymentInput['edge']> = {}): DeploymentInput {
  const base = shippedInput(EU);
  return {
    ...base,
    region: 'us-east-2',
    backupRegion: 'us-west-2',
    availabilityZones: ['us-east-2a', 'us-east-2b', 'us-east-2c'],
    residency: 'us',
    edge: {
      ...base.edge,
      domainName: 'api.us.bulwark.example.com',
      entry: 'cloudfront',
      certificateArn: TEST_CERT('us-east-2'),
      cloudFrontCertificateArn: TEST_CERT('us-east-1'),
      ...overrides,
    },
  };
}

export function cloudFrontDeployment(overrides: Partial<DeploymentInput['edge']> = {}): DeploymentConfig {
  return parseDeployment('prod-us', cloudFrontDeploymentInput(overrides));
}

/** An app whose output directory is known, so a failed synth's validation report can be read. */
export function appWithOutdir(): App {
  const outdir = fs.mkdtempSync(path.join(os.tmpdir(), 'bulwark-edge-'));
  return new App({
    outdir,
    // CDK's template validation runs in test/foundation/deployments.test.ts and synth.
    builtinCloudFormationValidation: false,
    context: { ...cdkJsonContext(), 'aws:cdk:bundling-stacks': [], [CONTROL_TOWER_GATE_CONTEXT]: false },
  });
}

export function stageFor(app: App, deployment: DeploymentConfig): BulwarkStage {
  return new BulwarkStage(app, { deployment });
}

/** Synthesizes `app` and returns every gate finding as `<rule> <construct path>`; empty when the gate passes. */
export function gateFindings(app: App): string[] {
  try {
    app.synth();
    return [];
  } catch (e) {
    const report = path.join(app.outdir, 'validation-report.json');
    if (!fs.existsSync(report)) throw e;
    const parsed = JSON.parse(fs.readFileSync(report, 'utf8')) as {
      pluginReports: { violations: { ruleName: string; violatingConstructs: { constructPath: string }[] }[] }[];
    };
    return parsed.pluginReports.flatMap((p) =>
      p.violations.flatMap((v) => v.violatingConstructs.map((c) => `${v.ruleName} ${c.constructPath}`)),
    );
  }
}

/** A bare stack (outside any stage, so not gated) for construct-level assertions. */
export function bareStack(region = 'eu-west-1'): Stack {
  const app = new App({
    builtinCloudFormationValidation: false,
    context: { ...cdkJsonContext(), 'aws:cdk:bundling-stacks': [] },
  });
  return new Stack(app, 'Test', { env: { account: '000000000000', region } });
}
