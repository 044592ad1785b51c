import type { AcknowledgementRow, Finding } from '../../lib/compliance';
import type { ResidencyReport } from '../residency/report';
import type { AccessProofResult } from '../access-proof';
import { renderAccessProofSection } from '../access-proof/render';
import type { Control } from '../controls/controls';
import type { FunctionIamSummary } from './iam-summary';
import { esc } from './escape';
import { mermaidBlock, parseFlowchart, renderDiagramSvg } from './diagram';
import { groupAcknowledgements, topAcceptedRisks } from '../compliance/acknowledgements';

export interface ReviewDeployment {
  readonly name: string;
  readonly packs: readonly string[];
  /** @default - not shown */
  readonly region?: string;
  /** @default - not shown */
  readonly residency?: string;
  /** Number of stacks. @default - not shown */
  readonly stacks?: number;
}

export interface ReviewInput {
  readonly generatedAt: string;
  /** The commit the page was generated from (`git rev-parse HEAD`, `+dirty` when the tree has changes). */
  readonly commit?: string;
  /** docs/ARCHITECTURE.md, whose mermaid diagram the page draws. @default - no diagram */
  readonly architecture?: string;
  readonly deployments: readonly ReviewDeployment[];
  readonly controls: readonly Control[];
  readonly findings: readonly Finding[];
  readonly acknowledgements: readonly AcknowledgementRow[];
  readonly functions: readonly FunctionIamSummary[];
  readonly residency: readonly ResidencyReport[];
  /** The must-allow / must-deny rows of the access proof with their verdicts per deployment. */
  readonly accessProof: readonly AccessProofResult[];
}

export { esc };

function table(headers: readonly string[], rows: readonly (readonly string[])[]): string {
  if (rows.length === 0) return '<p class="none">None.</p>';
  return `<table><thead><tr>${headers.map((h) => `<th>${esc(h)}</th>`).join('')}</tr></thead><tbody>${rows
    .map((r) => `<tr>${r.map((c) => `<td>${c}</td>`).join('')}</tr>`)
    .join('')}</tbody></table>`;
}

const code = (s: string) => `<code>${esc(s)}</code>`;

/** The pack (gate) a finding id belongs to: `AwsSolutions-IAM5[...]` is AwsSolutions's. */
function packOf(finding: string, packs: readonly string[]): string {
  return packs.find((p) => finding.startsWith(`${p}-`) || finding.startsWith(`${p}::`)) ?? 'other';
}

const TOP_RISKS = 5;

/** One screen: where the page comes from, each deployment, each gate with its counts, the largest accepted risks. */
function summarySection(r: ReviewInput): string {
  const names = r.deployments.map((d) => d.name);
  const packs = [...new Set(r.deployments.flatMap((d) => d.packs))];
  const acksOf = (d: string) => r.acknowledgements.filter((a) => a.deployment === d);
  const findingsOf = (d: string) => r.findings.filter((f) => f.constructPath.startsWith(`${d}/`));
  const proofOf = (d: string) => r.accessProof.filter((x) => x.stage === d);
  const gateRows = packs.map((p) => [
    code(p),
    ...r.deployments.map((d) => {
      if (!d.packs.includes(p)) return 'not run';
      const f = findingsOf(d.name).filter((x) => x.pack === p).length;
      const a = acksOf(d.name).filter((x) => packOf(x.finding, d.packs) === p).length;
      return `${f === 0 ? '0' : `<strong>${f}</strong>`} / ${a}`;
    }),
  ]);
  const others = r.deployments.map((d) => acksOf(d.name).filter((x) => packOf(x.finding, d.packs) === 'other').length);
  if (others.some((n) => n > 0)) gateRows.push(['other', ...others.map((n) => `0 / ${n}`)]);
  const risks = topAcceptedRisks(r.acknowledgements, TOP_RISKS);
  const verdicts = (d: string) => {
    const rows = proofOf(d);
    const allowed = rows.filter((x) => x.expected === 'allow' && !x.flipped).length;
    const denied = rows.filter((x) => x.expected === 'deny' && !x.flipped).length;
    const flipped = rows.filter((x) => x.flipped).length;
    return `${allowed} allowed and ${denied} denied as required${flipped ? `, <strong>${flipped} not as required</strong>` : ''}`;
  };
  return `<section id="summary"><h2>Summary</h2>
<p>Commit ${code(r.commit ?? 'unknown')}, generated ${esc(r.generatedAt)}.</p>${table(
    ['Deployment', 'Region', 'Residency', 'Stacks', 'Unacknowledged findings', 'Acknowledgements', 'Access proof'],
    r.deployments.map((d) => [
      esc(d.name),
      esc(d.region ?? ''),
      esc(d.residency ?? ''),
      d.stacks === undefined ? '' : String(d.stacks),
      String(findingsOf(d.name).length),
      String(acksOf(d.name).length),
      verdicts(d.name),
    ]),
  )}<h3>Gates: unacknowledged findings / acknowledgements</h3>${table(['Gate', ...names], gateRows)}
<h3>Top accepted risks</h3>${table(
    ['Rule', 'Count', 'Reason'],
    risks.map((g) => [code(g.rule), String(g.entries.length), esc(g.reason)]),
  )}</section>`;
}

function architectureSection(markdown: string): string {
  const source = mermaidBlock(markdown);
  if (source === undefined) return '';
  return `<section id="architecture"><h2>Architecture</h2><figure>${renderDiagramSvg(parseFlowchart(source))}<figcaption>From docs/ARCHITECTURE.md; solid arrows are calls, dashed ones key use and backups.</figcaption></figure></section>`;
}

/** Per deployment, one collapsible group per rule and reason, largest first. */
function acknowledgementsSection(rows: ReviewInput['acknowledgements']): string {
  const body = groupAcknowledgements(rows)
    .map(
      (d) =>
        `<h3>${esc(d.deployment)} (${d.total})</h3>${d.groups
          .map((g) => {
            const detailed = g.entries.some((e) => e.detail !== undefined);
            return `<details><summary>${code(g.rule)} × ${g.entries.length}: ${esc(g.reason)}</summary>${table(
              detailed ? ['Construct', 'Finding'] : ['Construct'],
              g.entries.map((e) => (detailed ? [code(e.path), code(e.detail ?? '')] : [code(e.path)])),
            )}</details>`;
          })
          .join('')}`,
    )
    .join('');
  return `<section id="acknowledgements"><h2>Acknowledgements</h2><p>Grouped by rule and reason; open a group for the constructs it covers.</p>${
    rows.length === 0 ? '<p class="none">None.</p>' : body
  }</section>`;
}

/** A single self-contained HTML page (no external assets) for security reviewers. */
export function renderReview(r: ReviewInput): string {
  const sections: string[] = [];
  sections.push(summarySection(r));
  if (r.architecture !== undefined) sections.push(architectureSection(r.architecture));
  sections.push(
    `<section id="controls"><h2>Controls matrix</h2>${table(
      ['Control', 'Promise', 'Implemented by', 'Proven by', 'Guarded by'],
      r.controls.map((c) => [
        code(c.id),
        esc(c.promise),
        c.implementedBy.map(code).join('<br>'),
        c.provenBy.map((t) => `${code(t.file)}: ${esc(t.name)}`).join('<br>'),
        c.guardedBy.map(code).join('<br>') || 'n/a',
      ]),
    )}</section>`,
  );
  sections.push(
    `<section id="findings"><h2>Compliance findings (unacknowledged)</h2>${table(
      ['Pack', 'Rule', 'Construct', 'Description'],
      r.findings.map((f) => [esc(f.pack), code(f.rule), code(f.constructPath), esc(f.description)]),
    )}</section>`,
  );
  sections.push(acknowledgementsSection(r.acknowledgements));
  sections.push(
    `<section id="iam"><h2>IAM policy summary per function</h2>${
      r.functions.length === 0
        ? '<p class="none">No Lambda functions.</p>'
        : r.functions
            .map(
              (f) =>
                `<h3>${code(f.path)}</h3>${
                  f.managedPolicies.length ? `<p>Managed policies: ${f.managedPolicies.map(code).join(', ')}</p>` : ''
                }${table(
                  ['Effect', 'Actions', 'Resources', 'Condition'],
                  f.statements.map((s) => [
                    esc(s.effect),
                    s.actions.map(code).join('<br>'),
                    s.resources.map(code).join('<br>'),
                    s.condition ? code(JSON.stringify(s.condition)) : '',
                  ]),
                )}`,
            )
            .join('')
    }</section>`,
  );
  sections.push(renderAccessProofSection(r.accessProof));
  sections.push(
    `<section id="residency"><h2>Residency</h2>${r.residency
      .map(
        (d) =>
          `<h3>${esc(d.deployment)} (zone ${code(d.zone)})</h3>${table(
            ['Stack', 'Region', 'In zone'],
            d.stacks.map((s) => [esc(s.name), esc(s.region), s.inZone ? 'yes' : 'no']),
          )}<h4>Data stores, keys and backups</h4>${table(
            ['Kind', 'Construct', 'Type', 'Region'],
            d.dataStores.map((x) => [esc(x.kind), code(x.path), esc(x.type), esc(x.region)]),
          )}<h4>Log destinations</h4>${table(
            ['Kind', 'Construct', 'Type', 'Region'],
            d.logDestinations.map((x) => [esc(x.kind), code(x.path), esc(x.type), esc(x.region)]),
          )}<h4>Allowed outside the zone</h4>${table(
            ['Construct', 'Type', 'Region', 'Reason'],
            d.allowances.map((x) => [code(x.path), esc(x.type), esc(x.region), esc(x.reason)]),
          )}`,
      )
      .join('')}</section>`,
  );
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Bulwark security review</title>
<style>
body{font:14px/1.45 system-ui,sans-serif;margin:2rem;color:#1b1f24}h1{margin-top:0}
table{border-collapse:collapse;width:100%;margin:.5rem 0 1.5rem}th,td{border:1px solid #d0d7de;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f6f8fa}code{font-size:12px;word-break:break-all}.none{color:#57606a}nav a{margin-right:1rem}
details{margin:.25rem 0}summary{cursor:pointer}details table{margin:.25rem 0 .75rem}figure{margin:0}svg{max-width:100%;height:auto}
@media print{nav{display:none}svg{break-inside:avoid}}
</style></head><body>
<h1>Bulwark security review</h1><p>Generated ${esc(r.generatedAt)} from the code by <code>npm run review</code>.</p>
<nav><a href="#summary">Summary</a><a href="#architecture">Architecture</a><a href="#controls">Controls</a><a href="#findings">Findings</a><a href="#acknowledgements">Acknowledgements</a><a href="#iam">IAM</a><a href="#access-proof">Access proof</a><a href="#residency">Residency</a></nav>
${sections.join('\n')}
</body></html>
`;
}
