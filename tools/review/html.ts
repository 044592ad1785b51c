import type { AcknowledgementRow, Finding } from '../../lib/compliance';
import type { ResidencyReport } from '../residency/report';
import type { AccessProofResult } from '../access-proof';
import { renderAccessProofSection } from '../access-proof/render';
import type { Control } from '../controls/controls';
import type { FunctionIamSummary } from './iam-summary';

export interface ReviewInput {
  readonly generatedAt: string;
  readonly deployments: readonly { readonly name: string; readonly packs: readonly string[] }[];
  readonly controls: readonly Control[];
  readonly findings: readonly Finding[];
  readonly acknowledgements: readonly AcknowledgementRow[];
  readonly functions: readonly FunctionIamSummary[];
  readonly residency: readonly ResidencyReport[];
  /** The must-allow / must-deny rows of the access proof with their verdicts per deployment. */
  readonly accessProof: readonly AccessProofResult[];
}

export function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

function table(headers: readonly string[], rows: readonly (readonly string[])[]): string {
  if (rows.length === 0) return '<p class="none">None.</p>';
  return `<table><thead><tr>${headers.map((h) => `<th>${esc(h)}</th>`).join('')}</tr></thead><tbody>${rows
    .map((r) => `<tr>${r.map((c) => `<td>${c}</td>`).join('')}</tr>`)
    .join('')}</tbody></table>`;
}

const code = (s: string) => `<code>${esc(s)}</code>`;

/** A single self-contained HTML page (no external assets) for security reviewers. */
export function renderReview(r: ReviewInput): string {
  const sections: string[] = [];
  sections.push(
    `<section id="summary"><h2>Summary</h2>${table(
      ['Deployment', 'Packs', 'Unacknowledged findings', 'Acknowledgements'],
      r.deployments.map((d) => [
        esc(d.name),
        esc(d.packs.join(', ')),
        String(r.findings.filter((f) => f.constructPath.startsWith(`${d.name}/`)).length),
        String(r.acknowledgements.filter((a) => a.deployment === d.name).length),
      ]),
    )}</section>`,
  );
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
  sections.push(
    `<section id="acknowledgements"><h2>Acknowledgements</h2>${table(
      ['Deployment', 'Construct', 'Finding', 'Reason'],
      r.acknowledgements.map((a) => [esc(a.deployment), code(a.path), code(a.finding), esc(a.reason)]),
    )}</section>`,
  );
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
</style></head><body>
<h1>Bulwark security review</h1><p>Generated ${esc(r.generatedAt)} from the code by <code>npm run review</code>.</p>
<nav><a href="#summary">Summary</a><a href="#controls">Controls</a><a href="#findings">Findings</a><a href="#acknowledgements">Acknowledgements</a><a href="#iam">IAM</a><a href="#access-proof">Access proof</a><a href="#residency">Residency</a></nav>
${sections.join('\n')}
</body></html>
`;
}
