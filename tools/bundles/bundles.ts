/**
 * Every Bulwark function, bundled as the function recipe bundles it (lib/shared/function.ts:
 * NodejsFunction runs esbuild with these options), for bench/bundles.ts (size and module init per
 * function) and test/shared/bundles.test.ts (what each bundle leaves to the runtime).
 */
import { builtinModules } from 'node:module';
import * as path from 'node:path';
import { App } from 'aws-cdk-lib';
import type { IConstruct } from 'constructs';
import { build } from 'esbuild';
import { buildStages, cdkJsonContext } from '../../lib/app';
import { loadDeployments } from '../../lib/config';
import { BUNDLE_TARGET, BulwarkFunction, NEVER_LOADED_MODULES } from '../../lib/shared/function';

const ROOT = path.join(__dirname, '..', '..');

export interface FunctionToBundle {
  /** The function's construct path inside its stage, e.g. `Api/TenantGuard/Handler`. */
  readonly name: string;
  readonly entry: string;
  readonly external: readonly string[];
  readonly sourceMap: boolean;
}

/** The functions under `scope`, one per distinct bundle (every deployment bundles the same code). */
export function functionsOf(scope: IConstruct): FunctionToBundle[] {
  const seen = new Map<string, FunctionToBundle>();
  for (const c of scope.node.findAll()) {
    if (!(c instanceof BulwarkFunction)) continue;
    const b = c.bundling;
    const key = JSON.stringify([b.entry, b.external, b.sourceMap]);
    if (seen.has(key)) continue;
    // Drop the stage: the same function has the same path in every deployment.
    const name = c.node.path.split('/').slice(1).join('/');
    seen.set(key, { name, entry: b.entry, external: b.external, sourceMap: b.sourceMap });
  }
  return [...seen.values()].sort((a, b) => a.name.localeCompare(b.name));
}

/** Every function of every shipped deployment (constructs only: no synthesis, no bundling). */
export function allFunctions(): FunctionToBundle[] {
  const app = new App({
    context: { ...cdkJsonContext(), 'aws:cdk:bundling-stacks': [] },
    builtinCloudFormationValidation: false,
  });
  buildStages(app, loadDeployments());
  return functionsOf(app);
}

export interface FunctionBundle {
  readonly code: Uint8Array;
  /** Bytes of `index.js`, what Lambda loads. */
  readonly bytes: number;
  /** Modules the bundle requires at run time that are not Node.js built-ins. */
  readonly runtimeImports: readonly string[];
  /** Bytes in the output per npm package (`(source)` for the repository's own code). */
  readonly packages: Readonly<Record<string, number>>;
}

const BUILTINS = new Set([...builtinModules, ...builtinModules.map((m) => `node:${m}`)]);

/** esbuild with NodejsFunction's options for the recipe's `bundling` (minified CommonJS for Node 24). */
export async function bundleFunction(fn: FunctionToBundle): Promise<FunctionBundle> {
  const result = await build({
    entryPoints: [fn.entry],
    bundle: true,
    platform: 'node',
    target: BUNDLE_TARGET,
    format: 'cjs',
    minify: true,
    sourcemap: fn.sourceMap,
    external: [...fn.external],
    outfile: 'index.js',
    write: false,
    metafile: true,
    logLevel: 'silent',
  });
  const out = result.outputFiles.find((f) => f.path.endsWith('index.js'));
  const meta = Object.entries(result.metafile.outputs).find(([file]) => file.endsWith('index.js'))?.[1];
  if (!out || !meta) throw new Error(`${fn.name}: esbuild wrote no index.js`);
  const runtimeImports = new Set<string>();
  for (const input of Object.values(result.metafile.inputs)) {
    for (const i of input.imports) if (i.external && !BUILTINS.has(i.path)) runtimeImports.add(i.path);
  }
  const packages: Record<string, number> = {};
  for (const [file, i] of Object.entries(meta.inputs)) {
    const m = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(file);
    const pkg = m?.[1] ?? (path.resolve(ROOT, file).startsWith(ROOT) ? '(source)' : file);
    packages[pkg] = (packages[pkg] ?? 0) + i.bytesInOutput;
  }
  return { code: out.contents, bytes: out.contents.length, runtimeImports: [...runtimeImports].sort(), packages };
}

/** Only the runtime's SDK clients, by package name (no deep imports into a client's files). */
const RUNTIME_CLIENT = /^@aws-sdk\/client-[a-z0-9-]+$/;

/**
 * What a bundle leaves to the runtime that the runtime does not provide: anything but an SDK
 * service client (RUNTIME_PROVIDED_MODULES) or a module never loaded (NEVER_LOADED_MODULES).
 */
export function unprovidedImports(bundle: Pick<FunctionBundle, 'runtimeImports'>): string[] {
  return bundle.runtimeImports.filter((m) => !RUNTIME_CLIENT.test(m) && !NEVER_LOADED_MODULES.includes(m));
}
