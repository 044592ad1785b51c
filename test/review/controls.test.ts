import * as fs from 'node:fs';
import * as path from 'node:path';
import { CONTROLS } from '../../tools/controls/controls';
import { renderControls } from '../../tools/controls/render';
import { CONTROLS_FILE } from '../../scripts/controls';

const ROOT = path.join(__dirname, '..', '..');
const NAG_RULES = fs.readFileSync(path.join(ROOT, 'node_modules', 'cdk-nag', 'RULES.md'), 'utf8');

describe('controls matrix', () => {
  it('docs/controls.md is current (run `npm run docs:controls`)', () => {
    expect(fs.readFileSync(CONTROLS_FILE, 'utf8')).toBe(renderControls(CONTROLS));
  });

  it('covers every promise Bulwark makes, once each', () => {
    const ids = CONTROLS.map((c) => c.id);
    expect(new Set(ids).size).toBe(ids.length);
    for (const promise of [
      'tenant-isolation',
      'encryption-in-transit',
      'encryption-at-rest',
      'hsts',
      'waf',
      'audit-immutability',
      'support-mode-tracking',
      'webhook-verification',
      'backups-pitr',
      'residency',
      'deletion-after-grace',
    ]) {
      expect(ids).toContain(promise);
    }
  });

  it.each(CONTROLS.map((c) => [c.id, c] as const))('%s: lists code, tests and rules that exist', (_id, control) => {
    expect(control.implementedBy.length).toBeGreaterThan(0);
    expect(control.provenBy.length).toBeGreaterThan(0);
    for (const file of control.implementedBy) expect(fs.existsSync(path.join(ROOT, file))).toBe(true);
    for (const t of control.provenBy) {
      const file = path.join(ROOT, t.file);
      expect(fs.existsSync(file)).toBe(true);
      // The title must appear as a string literal in the file: a renamed or deleted test breaks this.
      const source = fs.readFileSync(file, 'utf8');
      expect([`'${t.name}'`, `"${t.name}"`, `\`${t.name}\``].some((lit) => source.includes(lit))).toBe(true);
    }
    for (const rule of control.guardedBy) {
      const bulwark = /^Bulwark-(.+)$/.exec(rule);
      if (bulwark) {
        const name = bulwark[1] ?? '';
        // Bulwark's rules are one file each, named by their id (lib/compliance/rules/<Rule>.ts).
        expect(name === 'Residency' || fs.existsSync(path.join(ROOT, 'lib', 'compliance', 'rules', `${name}.ts`))).toBe(
          true,
        );
      } else {
        expect(NAG_RULES).toContain(rule);
      }
    }
  });
});
