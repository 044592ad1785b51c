import * as fs from 'node:fs';
import * as path from 'node:path';

const ROOT = path.join(__dirname, '..', '..');

function sources(dir: string): string[] {
  const full = path.join(ROOT, dir);
  if (!fs.existsSync(full)) return [];
  return fs.readdirSync(full, { withFileTypes: true, recursive: true }).flatMap((e) => {
    const file = path.join(e.parentPath, e.name);
    return e.isFile() && file.endsWith('.ts') ? [file] : [];
  });
}

// tools/ holds report tooling that never deploys; what synth and the handlers run must not depend on it.
describe('tools/ stays out of what deploys', () => {
  const deployed = [
    ...sources('lib'),
    ...sources('lambda'),
    ...sources('contracts'),
    path.join(ROOT, 'bin', 'bulwark.ts'),
  ];

  it('finds the deployed sources', () => {
    expect(deployed.length).toBeGreaterThan(20);
  });

  it.each(deployed.map((f) => [path.relative(ROOT, f), f]))('%s imports nothing from tools/', (_name, file) => {
    const text = fs.readFileSync(file, 'utf8');
    const specifiers = [...text.matchAll(/(?:from|import|require\()\s*['"]([^'"]+)['"]/g)].map((m) => m[1] ?? '');
    const intoTools = specifiers.filter(
      (s) => s.startsWith('.') && path.resolve(path.dirname(file), s).startsWith(path.join(ROOT, 'tools') + path.sep),
    );
    expect(intoTools).toEqual([]);
  });
});
