import { App, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import type { IConstruct } from 'constructs';
import { buildStages, cdkJsonContext } from '../../lib/app';
import { CONTROL_TOWER_GATE_CONTEXT } from '../../lib/compliance/cfn-guard';
import type { BulwarkStage } from '../../lib/bulwark-stage';
import { CATALOGUE, loadDeployments, type DeploymentConfig } from '../../lib/config';

export interface TestAppOptions {
  /** Bundle Lambda code with esbuild. Only the bundling test turns this on. @default false */
  readonly bundling?: boolean;
  /**
   * Run the Control Tower gate (cfn-guard, tens of CPU seconds per deployment). Only the test of that
   * gate turns this on; `npm run synth` always runs it. @default false
   */
  readonly controlTower?: boolean;
  /**
   * Run CDK's built-in CloudFormation template validation (seconds of start-up per test file). Only
   * the test that synthesizes every deployment turns it on; `npm run synth` always runs it. @default false
   */
  readonly cfnValidation?: boolean;
  readonly context?: Record<string, unknown>;
}

export function testApp(options: TestAppOptions = {}): App {
  return new App({
    builtinCloudFormationValidation: options.cfnValidation ?? false,
    context: {
      ...cdkJsonContext(),
      ...(options.bundling ? {} : { 'aws:cdk:bundling-stacks': [] }),
      ...(options.controlTower ? {} : { [CONTROL_TOWER_GATE_CONTEXT]: false }),
      ...options.context,
    },
  });
}

/** A validated shipped deployment by name. */
export function deployment(name: keyof typeof CATALOGUE | string): DeploymentConfig {
  const found = loadDeployments().find((d) => d.name === name);
  if (!found) throw new Error(`no deployment ${name}`);
  return found;
}

/** Builds stages for the given deployments (all when omitted) in a fresh test app. */
export function buildTestStages(
  names?: readonly string[],
  options: TestAppOptions = {},
): { app: App; stages: BulwarkStage[] } {
  const app = testApp(options);
  const all = loadDeployments();
  const stages = buildStages(app, names ? all.filter((d) => names.includes(d.name)) : all);
  return { app, stages };
}

/** Every stack under a scope. */
export function stacksOf(scope: IConstruct): Stack[] {
  return scope.node.findAll().filter((c): c is Stack => Stack.isStack(c));
}

/** Template of a stack; asserting on it synthesizes (and so runs the compliance gate). */
export function templateOf(stack: Stack): Template {
  return Template.fromStack(stack);
}

/** Replaces asset hashes so handler code changes do not churn snapshots. */
export function normaliseAssets(template: unknown): unknown {
  return JSON.parse(
    JSON.stringify(template)
      .replace(/[0-9a-f]{64}(\.zip|\.json)?/g, '<asset-hash>$1')
      .replace(/"S3Key":"[^"]*"/g, '"S3Key":"<asset>"'),
  );
}
