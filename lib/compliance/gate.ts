import {
  CfnResource,
  Stage,
  Validations,
  type IPolicyValidationContext,
  type IPolicyValidationPlugin,
  type PolicyValidationPluginReport,
  type PolicyViolation,
} from 'aws-cdk-lib';
import {
  AwsSolutionsChecks,
  HIPAASecurityChecks,
  NIST80053R5Checks,
  PCIDSS321Checks,
  ServerlessChecks,
  type NagPack,
} from 'cdk-nag';
import { acknowledgementsOn, STALE_ACKNOWLEDGEMENT_RULE, TEMPLATE_VALIDATOR_PREFIX } from './acknowledge';
import {
  applyGuardExemptions,
  CONTROL_TOWER_PLUGIN,
  controlTowerGate,
  controlTowerGateEnabled,
  type GuardExemption,
} from './cfn-guard';

/**
 * Every (resource, rule id) a pack found in one stage, acknowledged or not: what an acknowledgement
 * must match to be current.
 */
export class FindingLedger {
  private readonly found = new Set<string>();

  public record(constructPath: string, ruleId: string): void {
    this.found.add(`${constructPath}\n${ruleId}`);
  }

  public has(constructPath: string, ruleId: string): boolean {
    return this.found.has(`${constructPath}\n${ruleId}`);
  }
}

/**
 * Records each finding of a cdk-nag pack in the ledger. cdk-nag v3 asks `isAcknowledged` exactly
 * once per finding (a non-compliant rule, each granular finding, a rule that threw) before it
 * drops acknowledged ones, and never otherwise, so that call is where a finding is seen whether or
 * not it is then acknowledged. Verified by test/compliance/gate.test.ts (a matching acknowledgement
 * passes), which fails if a cdk-nag upgrade moves this.
 */
function observeFindings(pack: NagPack, ledger: FindingLedger): void {
  const internals = pack as unknown as { isAcknowledged?: (node: CfnResource, ruleId: string) => boolean };
  const original = internals.isAcknowledged;
  if (typeof original !== 'function') {
    throw new Error(`cdk-nag pack ${pack.name} has no isAcknowledged(); the acknowledgement check needs updating`);
  }
  internals.isAcknowledged = (node, ruleId) => {
    ledger.record(node.node.path, ruleId);
    return original.call(pack, node, ruleId);
  };
}

/**
 * Runs a cdk-nag pack over one stage only.
 *
 * cdk-nag v3 packs walk the whole app they are handed; registered per stage as they are, every
 * stage would re-check (and re-report) every other stage. Scoping keeps each deployment's
 * findings attributed to that deployment.
 */
export class StageScopedPack implements IPolicyValidationPlugin {
  public readonly name: string;

  constructor(
    private readonly pack: NagPack,
    private readonly stage: Stage,
    ledger: FindingLedger,
  ) {
    this.name = pack.name;
    observeFindings(pack, ledger);
  }

  public validate(_context: IPolicyValidationContext): PolicyValidationPluginReport {
    return this.pack.validateScope(this.stage);
  }
}

/**
 * Fails synth on an acknowledgement that matches no finding: it would silently pre-approve a future
 * regression on its resource. Registered after the packs, whose findings it reads from the ledger
 * (plugins run in registration order). Acknowledgements of the CDK template validator, which runs
 * at app level after every stage, are checked from the validation report by `readFindings`.
 */
export class AcknowledgementCheck implements IPolicyValidationPlugin {
  public readonly name = STALE_ACKNOWLEDGEMENT_RULE;

  constructor(
    private readonly stage: Stage,
    private readonly ledger: FindingLedger,
  ) {}

  public validate(_context: IPolicyValidationContext): PolicyValidationPluginReport {
    const stale = new Map<string, string[]>();
    for (const c of this.stage.node.findAll()) {
      if (!CfnResource.isCfnResource(c) || Stage.of(c) !== this.stage) continue;
      for (const ack of acknowledgementsOn(c)) {
        // Template-validator acknowledgements are checked against its report after synth; Control
        // Tower exemptions are cfn-guard suppressions on a resource that applyGuardExemptions
        // requires to exist, and cfn-guard runs outside this ledger.
        if (
          ack.id.startsWith(TEMPLATE_VALIDATOR_PREFIX) ||
          ack.id.startsWith(`${CONTROL_TOWER_PLUGIN}::`) ||
          this.ledger.has(c.node.path, ack.id)
        )
          continue;
        stale.set(ack.id, [...(stale.get(ack.id) ?? []), c.node.path]);
      }
    }
    const violations: PolicyViolation[] = [...stale].map(([id, paths]) => ({
      ruleName: `${STALE_ACKNOWLEDGEMENT_RULE}[${id}]`,
      description: `acknowledges ${id}, but no pack of this stage reports ${id} on this resource: remove the acknowledgement`,
      severity: 'error',
      violatingResources: paths.map((constructPath) => ({ constructPath, locations: ['Metadata'] })),
    }));
    return { success: violations.length === 0, violations };
  }
}

/** Creates the packs every stage runs. Additional packs (Bulwark's own) are appended by callers. */
export function standardPacks(): NagPack[] {
  return [
    new AwsSolutionsChecks(),
    new HIPAASecurityChecks(),
    new NIST80053R5Checks(),
    new PCIDSS321Checks(),
    new ServerlessChecks(),
  ];
}

export interface ComplianceGateOptions {
  /** Packs run in addition to the five standard ones. @default - none */
  readonly extraPacks?: readonly NagPack[];
  /**
   * Runs AWS Control Tower's proactive controls (cfn-guard) too, with these exemptions, unless the
   * `bulwark:controlTowerGate` context is false. @default - not run
   */
  readonly controlTower?: readonly GuardExemption[];
}

/**
 * The compliance gate: every pack runs over the stage at synth, and any unacknowledged finding,
 * warning or error, fails synthesis (cdk-nag v3 reports both as violations), as does any
 * acknowledgement that no pack's finding matches. Returns the names of the packs.
 */
export function applyComplianceGate(stage: Stage, options: ComplianceGateOptions = {}): string[] {
  const packs = [...standardPacks(), ...(options.extraPacks ?? [])];
  const ledger = new FindingLedger();
  Validations.of(stage).addPlugins(
    ...packs.map((p) => new StageScopedPack(p, stage, ledger)),
    new AcknowledgementCheck(stage, ledger),
  );
  const names = packs.map((p) => p.name);
  if (options.controlTower && controlTowerGateEnabled(stage)) {
    applyGuardExemptions(stage, options.controlTower);
    const guard = controlTowerGate();
    Validations.of(stage).addPlugins(guard);
    names.push(guard.name);
  }
  return names;
}
