import { CfnResource, Stack, Stage, Validations } from 'aws-cdk-lib';
import type { IConstruct } from 'constructs';

/** Rule-pack prefixes the gate runs; an acknowledgement must name a rule of one of them. */
export const ACKNOWLEDGEABLE_PACKS = [
  'AwsSolutions',
  'HIPAA.Security',
  'NIST.800.53.R5',
  'PCI.DSS.321',
  'Serverless',
  'Bulwark',
] as const;

const FINDING_ID = new RegExp(
  `^(${ACKNOWLEDGEABLE_PACKS.map((p) => p.replace(/\./g, '\\.')).join('|')})-[A-Za-z0-9]+(\\[[^\\]]+\\])?$` +
    // CDK's own template validator (cfn-lint rules), e.g. CloudFormation-Validate::W3010.
    '|^CloudFormation-Validate::[EWI][0-9]{4}$' +
    // AWS Control Tower proactive controls (cfn-guard), through exemptGuardRule() in cfn-guard.ts.
    '|^cdk-validator-cfnguard::[a-z0-9_]+$',
);

export const MIN_REASON_LENGTH = 20;

/** Findings of CDK's own template validator, which runs at app level after every stage's packs. */
export const TEMPLATE_VALIDATOR_PREFIX = 'CloudFormation-Validate::';

/** The gate's own finding for an acknowledgement that matches nothing; never itself acknowledgeable. */
export const STALE_ACKNOWLEDGEMENT_RULE = 'Bulwark-StaleAcknowledgement';

/** Metadata key marking an acknowledgement made through this helper, for the generated list. */
export const BULWARK_ACK_METADATA = 'bulwark:acknowledgement';

export interface AcknowledgementRecord {
  readonly id: string;
  readonly reason: string;
}

/**
 * Accepts one compliance finding on one CloudFormation resource, with a specific reason.
 *
 * `construct` must be a CfnResource, or an L2 whose default child is one: the acknowledgement is
 * recorded on that single resource so it can never cover siblings or children (cdk-nag honours
 * acknowledgements on every ancestor, which is exactly what this helper exists to prevent).
 * Stacks, stages and plain grouping constructs are refused.
 */
export function acknowledge(construct: IConstruct, id: string, reason: string): void {
  const where = construct.node.path || '<root>';
  if (Stage.isStage(construct) || Stack.isStack(construct)) {
    throw new Error(`acknowledge(${where}): stack- or stage-wide acknowledgements are not allowed`);
  }
  const target = CfnResource.isCfnResource(construct) ? construct : construct.node.defaultChild;
  if (!target || !CfnResource.isCfnResource(target)) {
    throw new Error(`acknowledge(${where}): needs a construct that is, or wraps, exactly one CloudFormation resource`);
  }
  if (!FINDING_ID.test(id) || id.startsWith(STALE_ACKNOWLEDGEMENT_RULE)) {
    throw new Error(
      `acknowledge(${where}): "${id}" is not a finding id of the form <Pack>-<Rule> or <Pack>-<Rule>[<finding>] ` +
        `for packs ${ACKNOWLEDGEABLE_PACKS.join(', ')}, or CloudFormation-Validate::<rule>`,
    );
  }
  const trimmed = reason.trim();
  if (trimmed.length < MIN_REASON_LENGTH) {
    throw new Error(`acknowledge(${where}, ${id}): reason must be specific, at least ${MIN_REASON_LENGTH} characters`);
  }
  const existing = acknowledgementsOn(target).find((a) => a.id === id);
  if (existing) {
    throw new Error(`acknowledge(${target.node.path}, ${id}): already acknowledged`);
  }
  Validations.of(target).acknowledge({ id, reason: trimmed });
  target.node.addMetadata(BULWARK_ACK_METADATA, { id, reason: trimmed } satisfies AcknowledgementRecord);
}

/** Acknowledgements recorded on exactly this construct through the helper. */
export function acknowledgementsOn(construct: IConstruct): AcknowledgementRecord[] {
  return construct.node.metadata
    .filter((m) => m.type === BULWARK_ACK_METADATA)
    .map((m) => m.data as AcknowledgementRecord);
}
