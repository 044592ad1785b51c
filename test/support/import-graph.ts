/**
 * The import graph of the repository's TypeScript, read with the TypeScript compiler's own
 * pre-processor (static imports, `export ... from`, `import type`, `require` and dynamic imports).
 */
import * as fs from 'node:fs';
import { builtinModules } from 'node:module';
import * as path from 'node:path';
import * as ts from 'typescript';

export interface ModuleImports {
  /** Repository-relative paths of the local modules imported. */
  readonly local: readonly string[];
  /** Package names imported (`node:fs` and `fs` both read `node:fs`). */
  readonly packages: readonly string[];
}

export type ImportGraph = ReadonlyMap<string, ModuleImports>;

function sourceFiles(root: string, dir: string): string[] {
  const full = path.join(root, dir);
  if (!fs.existsSync(full)) return [];
  return fs
    .readdirSync(full, { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts'))
    .map((f) => path.posix.join(dir, f.split(path.sep).join('/')))
    .sort();
}

function resolveLocal(root: string, from: string, specifier: string): string {
  const base = path.posix.normalize(path.posix.join(path.posix.dirname(from), specifier));
  for (const candidate of [base, `${base}.ts`, `${base}/index.ts`]) {
    const full = path.join(root, candidate);
    if (fs.existsSync(full) && fs.statSync(full).isFile()) return candidate;
  }
  throw new Error(`${from}: cannot resolve ${specifier}`);
}

function packageName(specifier: string): string {
  const [first = specifier, second] = specifier.split('/');
  if (specifier.startsWith('node:') || builtinModules.includes(first)) {
    return `node:${specifier.replace(/^node:/, '')}`;
  }
  return specifier.startsWith('@') && second !== undefined ? `${first}/${second}` : first;
}

/** Reads every `.ts` file under `dirs` (repository-relative) and what each imports. */
export function importGraph(root: string, dirs: readonly string[]): ImportGraph {
  const graph = new Map<string, ModuleImports>();
  for (const file of dirs.flatMap((d) => sourceFiles(root, d))) {
    const info = ts.preProcessFile(fs.readFileSync(path.join(root, file), 'utf8'), true, true);
    const local = new Set<string>();
    const packages = new Set<string>();
    for (const { fileName } of info.importedFiles) {
      if (fileName.startsWith('.')) local.add(resolveLocal(root, file, fileName));
      else packages.add(packageName(fileName));
    }
    graph.set(file, { local: [...local].sort(), packages: [...packages].sort() });
  }
  return graph;
}

/**
 * Import cycles among the graph's modules, each as the path that closes it (`[a, b, a]`): one per
 * back edge of a depth-first walk, so there is at least one whenever the graph has a cycle.
 */
export function importCycles(graph: ImportGraph): string[][] {
  const state = new Map<string, 'open' | 'done'>();
  const trail: string[] = [];
  const cycles: string[][] = [];
  const visit = (v: string): void => {
    state.set(v, 'open');
    trail.push(v);
    for (const w of graph.get(v)?.local ?? []) {
      if (!graph.has(w)) continue;
      const seen = state.get(w);
      if (seen === 'open') cycles.push([...trail.slice(trail.indexOf(w)), w]);
      else if (seen === undefined) visit(w);
    }
    trail.pop();
    state.set(v, 'done');
  };
  for (const v of [...graph.keys()].sort()) if (!state.has(v)) visit(v);
  return cycles;
}
