import * as fs from 'node:fs';
import * as path from 'node:path';
import { CloudAssembly, type CloudFormationStackArtifact } from 'aws-cdk-lib/cx-api';
import { readFindings } from '../../lib/compliance/findings';

export interface StackSummary {
  readonly name: string;
  readonly region: string;
  readonly resources: number;
}

export interface DeploymentSummary {
  readonly deployment: string;
  readonly region: string;
  readonly residency: string;
  readonly account: string;
  readonly packs: readonly string[];
  readonly acknowledgements: number;
  /** Fields still holding catalogue placeholders (`account`, `edge.domainName`, ...). */
  readonly placeholders: readonly string[];
  readonly findings: number;
  readonly stacks: readonly StackSummary[];
}

interface ComplianceFacts {
  readonly deployment: string;
  readonly region: string;
  readonly residency: string;
  readonly account: string;
  readonly packs: readonly string[];
  readonly acknowledgements: number;
  readonly placeholders?: readonly string[];
}

function stackSummary(s: CloudFormationStackArtifact): StackSummary {
  const resources = Object.keys((s.template as { Resources?: object }).Resources ?? {}).length;
  return { name: s.stackName, region: s.environment.region, resources };
}

/** Reads a synthesized cloud assembly and the gate's facts written next to it. */
export function summarise(outdir: string): DeploymentSummary[] {
  const assembly = new CloudAssembly(outdir);
  const factsFile = path.join(outdir, 'bulwark-compliance.json');
  const facts: ComplianceFacts[] = fs.existsSync(factsFile)
    ? (JSON.parse(fs.readFileSync(factsFile, 'utf8')) as ComplianceFacts[])
    : [];
  const findings = readFindings(outdir);
  return assembly.nestedAssemblies.map((nested) => {
    const name = nested.displayName ?? nested.id;
    const f = facts.find((x) => x.deployment === name);
    return {
      deployment: name,
      region: f?.region ?? '?',
      residency: f?.residency ?? '?',
      account: f?.account ?? '?',
      packs: f?.packs ?? [],
      acknowledgements: f?.acknowledgements ?? 0,
      placeholders: f?.placeholders ?? (/^0{12}$/.test(f?.account ?? '') ? ['account'] : []),
      findings: findings.filter((x) => x.constructPath.startsWith(`${name}/`)).length,
      stacks: nested.nestedAssembly.stacks.map(stackSummary),
    };
  });
}

export function renderSummary(deployments: readonly DeploymentSummary[], outdir = 'cdk.out'): string {
  const out: string[] = [];
  const totalStacks = deployments.reduce((n, d) => n + d.stacks.length, 0);
  out.push(
    `Bulwark synth: ${deployments.length} deployment(s), ${totalStacks} stack(s) in ${outdir.replace(/\/*$/, '/')}`,
  );
  for (const d of deployments) {
    out.push('');
    out.push(`${d.deployment}  region=${d.region} residency=${d.residency} account=${d.account}`);
    for (const s of d.stacks) {
      out.push(`  ${s.name.padEnd(36)} ${s.region.padEnd(14)} ${String(s.resources).padStart(4)} resources`);
    }
    out.push(`  compliance: ${d.packs.length} packs (${d.packs.join(', ')}): ${d.findings} unacknowledged findings`);
    out.push(`  acknowledgements: ${d.acknowledgements} (listed in docs/compliance/acknowledgements.md)`);
    if (d.placeholders.length > 0) {
      out.push(
        `  note: placeholders in ${d.placeholders.join(', ')}; not deployable (README "Accounts"): ` +
          'set them in lib/config/catalogue.ts and pass -c account=<id>',
      );
    }
  }
  return out.join('\n');
}
