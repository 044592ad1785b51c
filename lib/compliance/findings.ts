import * as fs from 'node:fs';
import * as path from 'node:path';

export interface Finding {
  readonly pack: string;
  readonly rule: string;
  readonly severity: string;
  readonly constructPath: string;
  readonly description: string;
}

interface ValidationReport {
  readonly pluginReports?: ReadonlyArray<{
    readonly pluginName: string;
    readonly conclusion: string;
    readonly violations?: ReadonlyArray<{
      readonly ruleName: string;
      readonly description: string;
      readonly severity?: string;
      readonly violatingConstructs?: ReadonlyArray<{ readonly constructPath?: string }>;
    }>;
  }>;
}

/** Unacknowledged findings recorded in a cloud assembly's validation report. */
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
  return findings;
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
