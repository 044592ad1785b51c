import { Stage } from 'aws-cdk-lib';
import type { IConstruct } from 'constructs';
import { acknowledgementsOn } from './acknowledge';

export interface AcknowledgementRow {
  readonly deployment: string;
  /** Construct path inside the deployment's stage, e.g. `Operations/AlarmTopic/Resource`. */
  readonly path: string;
  readonly finding: string;
  readonly reason: string;
}

function stageOf(construct: IConstruct): Stage | undefined {
  return construct.node.scopes
    .slice()
    .reverse()
    .find((s): s is Stage => Stage.isStage(s) && s.node.scope !== undefined);
}

/** Every acknowledgement under `root`, sorted for stable output. */
export function collectAcknowledgements(root: IConstruct): AcknowledgementRow[] {
  const rows: AcknowledgementRow[] = [];
  for (const c of root.node.findAll()) {
    for (const ack of acknowledgementsOn(c)) {
      const stage = stageOf(c);
      const deployment = stage?.stageName ?? '<app>';
      const path = stage ? c.node.path.slice(stage.node.path.length + 1) : c.node.path;
      rows.push({ deployment, path, finding: ack.id, reason: ack.reason });
    }
  }
  return rows.sort(
    (a, b) =>
      a.deployment.localeCompare(b.deployment) || a.path.localeCompare(b.path) || a.finding.localeCompare(b.finding),
  );
}
