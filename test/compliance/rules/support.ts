import { App, Stack } from 'aws-cdk-lib';
import type { IConstruct } from 'constructs';
import { BulwarkChecks } from '../../../lib/compliance';

/** Construct paths the Bulwark pack reports for one rule, over a scope (synthesized first, as the gate is). */
export function findingsOf(scope: IConstruct, ruleId: string): string[] {
  // Synthesis runs aspects (tags are applied by one) and writes the templates stage rules read.
  (scope.node.root as App).synth();
  const report = new BulwarkChecks().validateScope(scope);
  const v = report.violations.find((x) => x.ruleName === ruleId);
  return (v?.violatingResources ?? []).map((r) => r.constructPath ?? '?').sort();
}

/** A single-stack fixture. */
export function fixtureStack(app = fixtureApp(), id = 'S'): Stack {
  return new Stack(app, id, { env: { account: '123456789012', region: 'eu-west-1' } });
}

/** CDK's own template validator is off: it is not under test here, and slows every synth. */
export function fixtureApp(): App {
  return new App({ builtinCloudFormationValidation: false });
}
