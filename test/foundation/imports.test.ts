/**
 * Imports run one way (contracts/README.md) and in no circle. The graph is read with the TypeScript
 * compiler, so this holds even where the lint rule could be switched off by a comment; and the same
 * rule table is checked against eslint.imports.cjs, so the lint rule says what this test says.
 */
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import * as os from 'node:os';
import * as path from 'node:path';
import { Linter } from 'eslint';
import * as tseslint from 'typescript-eslint';
import { importCycles, importGraph, type ImportGraph } from '../support/import-graph';

const ROOT = path.join(__dirname, '..', '..');
const AREAS = ['lambda', 'lib', 'bin', 'contracts', 'scripts'] as const;
type Area = (typeof AREAS)[number];
const CDK_PACKAGES = ['aws-cdk-lib', 'constructs', 'cdk-nag'];

function allowedLocal(from: Area, to: string): boolean {
  if (from === 'lambda') return to !== 'lib' && to !== 'bin';
  if (from === 'lib' || from === 'bin') return to !== 'lambda';
  if (from === 'contracts') return to === 'contracts';
  return true;
}

function allowedPackage(from: Area, pkg: string): boolean {
  if (from === 'lambda') return !CDK_PACKAGES.includes(pkg);
  if (from === 'contracts') return pkg.startsWith('node:');
  return true;
}

const areaOf = (file: string): string => file.split('/')[0] ?? file;

function boundaryViolations(graph: ImportGraph): string[] {
  const out: string[] = [];
  for (const [file, { local, packages }] of graph) {
    const from = areaOf(file) as Area;
    for (const to of local) if (!allowedLocal(from, areaOf(to))) out.push(`${file} imports ${to}`);
    for (const pkg of packages) if (!allowedPackage(from, pkg)) out.push(`${file} imports ${pkg}`);
  }
  return out;
}

describe('the repository', () => {
  const graph = importGraph(ROOT, ['lib', 'lambda', 'contracts', 'bin']);

  it('reads every module of lib/, lambda/, contracts/ and bin/', () => {
    for (const file of ['lib/bulwark-stage.ts', 'lambda/tenant-guard/guard.ts', 'contracts/ids.ts', 'bin/bulwark.ts']) {
      expect(graph.has(file)).toBe(true);
    }
    // The relative imports are resolved to files: guard.ts's UUID comes from contracts/.
    expect(graph.get('lambda/tenant-guard/jwt.ts')?.local).toContain('contracts/ids.ts');
  });

  it('has no import cycle', () => {
    expect(importCycles(graph).map((c) => c.join(' -> '))).toEqual([]);
  });

  it('imports one way: lambda/ and lib/ meet only in contracts/, which imports no package', () => {
    expect(boundaryViolations(graph)).toEqual([]);
  });
});

describe('the checks', () => {
  let dir: string;
  const write = (file: string, text: string) => {
    fs.mkdirSync(path.dirname(path.join(dir, file)), { recursive: true });
    fs.writeFileSync(path.join(dir, file), text);
  };
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'imports-'));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('find a planted cycle, type-only imports included, and name its modules', () => {
    write('lambda/a.ts', "import { b } from './b';\nexport const a = b;\n");
    write('lambda/b.ts', "import type { C } from './nested/c';\nexport const b = 1 as C;\n");
    write('lambda/nested/c.ts', "export type C = number;\nexport { a } from '../a';\n");
    write('lambda/d.ts', "import { a } from './a';\nexport const d = a;\n");
    expect(importCycles(importGraph(dir, ['lambda']))).toEqual([
      ['lambda/a.ts', 'lambda/b.ts', 'lambda/nested/c.ts', 'lambda/a.ts'],
    ]);
  });

  it('find planted imports against the direction', () => {
    write('lib/stack.ts', "import { handler } from '../lambda/handler';\nexport const s = handler;\n");
    write(
      'lambda/handler.ts',
      "import { Stack } from 'aws-cdk-lib';\nimport '../lib/stack';\nexport const handler = Stack;\n",
    );
    write(
      'contracts/names.ts',
      "import { z } from 'zod';\nimport { createHash } from 'node:crypto';\nexport const n = [z, createHash];\n",
    );
    expect(boundaryViolations(importGraph(dir, ['lib', 'lambda', 'contracts'])).sort()).toEqual([
      'contracts/names.ts imports zod',
      'lambda/handler.ts imports aws-cdk-lib',
      'lambda/handler.ts imports lib/stack.ts',
      'lib/stack.ts imports lambda/handler.ts',
    ]);
  });
});

describe('eslint.imports.cjs', () => {
  const blocks = createRequire(__filename)('../../eslint.imports.cjs') as Linter.Config[];
  const linter = new Linter({ configType: 'flat', cwd: ROOT });
  const config: Linter.Config[] = [{ files: ['**/*.ts'], languageOptions: { parser: tseslint.parser } }, ...blocks];
  const lintRefuses = (file: string, specifier: string): boolean =>
    linter
      .verify(`import type {} from '${specifier}';\n`, config, { filename: path.join(ROOT, file) })
      .some((m) => m.ruleId === 'no-restricted-imports');

  // A probe file two folders deep in every area, importing every other area and some packages.
  const probes = AREAS.map((from) => ({ from, file: `${from}/some/probe.ts` }));
  const cases = probes.flatMap(({ from, file }) => [
    ...AREAS.map((to) => ({ from, file, specifier: `../../${to}/some/module`, allowed: allowedLocal(from, to) })),
    ...['aws-cdk-lib', 'aws-cdk-lib/aws-s3', 'constructs', 'cdk-nag', 'zod', '@aws-sdk/client-kms', 'node:crypto'].map(
      (specifier) => ({
        from,
        file,
        specifier,
        allowed: allowedPackage(from, specifier.startsWith('@') ? specifier : (specifier.split('/')[0] ?? specifier)),
      }),
    ),
  ]);

  it.each(cases)('$file importing $specifier: allowed $allowed', ({ file, specifier, allowed }) => {
    expect(lintRefuses(file, specifier)).toBe(!allowed);
  });

  it('refuses, from a handler, a relative import that climbs out of lambda/ at any depth', () => {
    expect(lintRefuses('lambda/a/b/c/probe.ts', '../../../../lib/config/schema')).toBe(true);
    expect(lintRefuses('lambda/probe.ts', '../lib/config')).toBe(true);
    expect(lintRefuses('lambda/a/probe.ts', '../shared/db')).toBe(false);
  });
});
