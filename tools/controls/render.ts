import type { Control } from './controls';

function cell(s: string): string {
  return s.replace(/\|/g, '\\|');
}

/** Renders `docs/controls.md`. */
export function renderControls(controls: readonly Control[]): string {
  const out = [
    '# Controls matrix',
    '',
    '<!-- Generated from tools/controls/controls.ts by `npm run docs:controls`; a test fails when it is stale. -->',
    '',
    'Each promise Bulwark makes, the code that implements it, the tests that prove it, and the compliance rules that',
    'fail synth when it breaks.',
    '',
    '| Control | Promise | Implemented by | Proven by | Guarded by |',
    '| --- | --- | --- | --- | --- |',
  ];
  for (const c of controls) {
    out.push(
      `| ${c.id} | ${cell(c.promise)} | ${c.implementedBy.map((f) => `\`${f}\``).join('<br>')} | ${c.provenBy
        .map((t) => `\`${t.file}\`: ${cell(t.name)}`)
        .join('<br>')} | ${c.guardedBy.length ? c.guardedBy.map((r) => `\`${r}\``).join('<br>') : 'n/a'} |`,
    );
  }
  out.push('');
  return out.join('\n');
}
