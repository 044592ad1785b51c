import * as fs from 'node:fs';
import * as path from 'node:path';
import { CloudAssembly } from 'aws-cdk-lib/cx-api';
import {
  BULWARK_ACK_METADATA,
  STALE_ACKNOWLEDGEMENT_RULE,
  TEMPLATE_VALIDATOR_PREFIX,
  type AcknowledgementRecord,
} from './acknowledge';

export interface Finding {
  readonly pack: string;
  readonly rule: string;
  readonly severity: string;
  readonly constructPath: string;
  readonly description: string;
}

interface ReportedViolation {
  readonly ruleName: string;
  readonly description: string;
  readonly severity?: string;
  readonly violatingConstructs?: ReadonlyArray<{ readonly constructPath?: string }>;
}

interface ValidationReport {
  readonly pluginReports?: ReadonlyArray<{
    readonly pluginName: string;
    readonly conclusion: string;
    readonly violations?: readonly ReportedViolation[];
    /** Findings an acknowledgement matched (CDK core records these for plugins it suppresses centrally). */
    readonly suppressedViolations?: readonly ReportedViolation[];
  }>;
}

const TEMPLATE_VALIDATOR_PLUGIN = 'CloudFormation Validate';

/**
 * Acknowledgements of CDK's template validator that match none of its findings. That validator runs
 * at app level after the stages' gates, so this is read from the report and the assembly's metadata.
 */
function staleTemplateValidatorAcknowledgements(assemblyDir: string, report: ValidationReport): Finding[] {
  if (!fs.existsSync(path.join(assemblyDir, 'manifest.json'))) return [];
  // No entry from the validator means it was turned off (`cdk synth --no-validation`) or reported nothing at all;
  // the report cannot tell which, so its acknowledgements are judged only when it reported.
  if (!(report.pluginReports ?? []).some((p) => p.pluginName === TEMPLATE_VALIDATOR_PLUGIN)) return [];
  const matched = new Set<string>();
  for (const plugin of report.pluginReports ?? []) {
    if (plugin.pluginName !== TEMPLATE_VALIDATOR_PLUGIN) continue;
    for (const v of [...(plugin.violations ?? []), ...(plugin.suppressedViolations ?? [])]) {
      for (const c of v.violatingConstructs ?? [])
        matched.add(`${c.constructPath}\n${TEMPLATE_VALIDATOR_PREFIX}${v.ruleName}`);
    }
  }
  const assembly = new CloudAssembly(assemblyDir);
  const stacks = [assembly, ...assembly.nestedAssemblies.map((n) => n.nestedAssembly)].flatMap((a) => a.stacks);
  const stale: Finding[] = [];
  for (const stack of stacks) {
    for (const entry of stack.findMetadataByType(BULWARK_ACK_METADATA)) {
      const ack = entry.data as unknown as AcknowledgementRecord;
      const constructPath = entry.path.replace(/^\//, '');
      if (!ack.id.startsWith(TEMPLATE_VALIDATOR_PREFIX) || matched.has(`${constructPath}\n${ack.id}`)) continue;
      stale.push({
        pack: STALE_ACKNOWLEDGEMENT_RULE,
        rule: `${STALE_ACKNOWLEDGEMENT_RULE}[${ack.id}]`,
        severity: 'error',
        constructPath,
        description: `acknowledges ${ack.id}, but the template validator reports no such finding here: remove the acknowledgement`,
      });
    }
  }
  return stale;
}

/**
 * Unacknowledged findings recorded in a cloud assembly's validation report, and acknowledgements
 * that match no finding.
 */
export function readFindings(assemblyDir: string): Finding[] {
  const file = path.join(assemblyDir, 'validation-report.json');
  if (!fs.existsSync(file)) return [];
  const report = JSON.parse(fs.readFileSync(file, 'utf8')) as ValidationReport;
  const findings: Finding[] = [];
  for (const plugin of report.pluginReports ?? []) {
    for (const v of plugin.violations ?? []) {
      for (const c of v.violatingConstructs ?? []) {
        findings.push({
          pack: plugin.pluginName,
          rule: v.ruleName,
          severity: v.severity ?? 'error',
          constructPath: c.constructPath ?? '?',
          description: v.description,
        });
      }
    }
  }
  return [...findings, ...staleTemplateValidatorAcknowledgements(assemblyDir, report)];
}

export class ComplianceError extends Error {
  constructor(readonly findings: readonly Finding[]) {
    super(
      `Compliance gate: ${findings.length} unacknowledged finding(s):\n` +
        findings.map((f) => `  - ${f.constructPath}: ${f.rule} (${f.severity}) ${f.description}`).join('\n') +
        '\nFix the resource, or accept one finding on one construct with acknowledge() and a specific reason.',
    );
    this.name = 'ComplianceError';
  }
}

/**
 * Fails when the assembly holds any unacknowledged finding, warnings included. CDK only throws for
 * in-memory apps; under the CLI it merely sets an exit code that the CLI does not act on, so the
 * entry point calls this itself.
 */
export function assertCompliant(assemblyDir: string): void {
  const findings = readFindings(assemblyDir);
  if (findings.length > 0) throw new ComplianceError(findings);
}
