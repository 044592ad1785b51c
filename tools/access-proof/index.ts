/**
 * The access proof: must-allow / must-deny rows evaluated against the synthesized policies of every
 * shipped deployment. Dev tooling only (it runs the AGPL `@cloud-copilot/iam-simulate`).
 */
import { App, type Stage } from 'aws-cdk-lib';
import { buildStages, cdkJsonContext } from '../../lib/app';
import { loadDeployments } from '../../lib/config';
import { evaluateRows, type RowResult } from './evaluate';
import { stageModel } from './model';
import { MUST_ALLOW } from './must-allow';
import { MUST_DENY } from './must-deny';
import type { AccessRow, Verdict } from './rows';

export { MUST_ALLOW, MUST_DENY, stageModel, evaluateRows };
export type { AccessRow, RowResult, Verdict };

export interface AccessProofResult extends RowResult {
  readonly expected: Verdict;
  /** The verdict is not the expected one. */
  readonly flipped: boolean;
}

/** The expected verdict of every row, must-allow first. */
export function accessRows(): { row: AccessRow; expected: Verdict }[] {
  return [
    ...MUST_ALLOW.map((row) => ({ row, expected: 'allow' as const })),
    ...MUST_DENY.map((row) => ({ row, expected: 'deny' as const })),
  ];
}

/** Evaluates every row in every given stage (all shipped deployments by default, bundling off). */
export async function evaluateAccessProof(stages?: readonly Stage[]): Promise<AccessProofResult[]> {
  let targets = stages;
  if (!targets) {
    const app = new App({ context: { ...cdkJsonContext(), 'aws:cdk:bundling-stacks': [] } });
    targets = buildStages(app, loadDeployments());
    app.synth();
  }
  const out: AccessProofResult[] = [];
  for (const stage of targets) {
    const model = stageModel(stage);
    for (const { row, expected } of accessRows()) {
      const [result] = await evaluateRows(model, [row]);
      if (!result) throw new Error(`access proof: row ${row.id} has no result in ${model.stageName}`);
      out.push({ ...result, expected, flipped: result.verdict !== expected });
    }
  }
  return out;
}
