import type {
  IPolicyValidationContext,
  IPolicyValidationPlugin,
  PolicyValidationPluginReport,
  Stage,
} from 'aws-cdk-lib';
import { Validations } from 'aws-cdk-lib';
import {
  AwsSolutionsChecks,
  HIPAASecurityChecks,
  NIST80053R5Checks,
  PCIDSS321Checks,
  ServerlessChecks,
  type NagPack,
} from 'cdk-nag';
import { applyGuardExemptions, controlTowerGate, controlTowerGateEnabled, type GuardExemption } from './cfn-guard';

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
  ) {
    this.name = pack.name;
  }

  public validate(_context: IPolicyValidationContext): PolicyValidationPluginReport {
    return this.pack.validateScope(this.stage);
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
 * warning or error, fails synthesis (cdk-nag v3 reports both as violations).
 */
export function applyComplianceGate(stage: Stage, options: ComplianceGateOptions = {}): string[] {
  const packs = [...standardPacks(), ...(options.extraPacks ?? [])];
  Validations.of(stage).addPlugins(...packs.map((p) => new StageScopedPack(p, stage)));
  const names = packs.map((p) => p.name);
  if (options.controlTower && controlTowerGateEnabled(stage)) {
    applyGuardExemptions(stage, options.controlTower);
    const guard = controlTowerGate();
    Validations.of(stage).addPlugins(guard);
    names.push(guard.name);
  }
  return names;
}
