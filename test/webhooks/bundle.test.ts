/**
 * The function's entry point bundles with esbuild as NodejsFunction will bundle it (CDK tests run
 * with bundling off), so a dependency that cannot be bundled fails here rather than at deploy.
 */
import * as path from 'node:path';
import { build } from 'esbuild';
import { BUNDLE_TARGET, RUNTIME_PROVIDED_MODULES } from '../../lib/shared/function';

it('bundles lambda/webhooks/index.ts as the function recipe does, with every dependency resolved', async () => {
  const result = await build({
    entryPoints: [path.join(__dirname, '..', '..', 'lambda', 'webhooks', 'index.ts')],
    bundle: true,
    platform: 'node',
    target: BUNDLE_TARGET,
    format: 'cjs',
    minify: true,
    write: false,
    logLevel: 'silent',
    // The runtime's SDK clients; pg's optional native binding is loaded lazily only when asked for.
    external: [...RUNTIME_PROVIDED_MODULES, 'pg-native'],
    metafile: true,
  });
  expect(result.errors).toEqual([]);
  const inputs = Object.keys(result.metafile.inputs);
  expect(inputs.some((i) => i.includes('node_modules/pg/'))).toBe(true);
  // The signer is not guaranteed in the runtime, so it is bundled; SDK clients come from the runtime.
  expect(inputs.some((i) => i.includes('@aws-sdk/rds-signer'))).toBe(true);
  expect(inputs.filter((i) => i.includes('node_modules/@aws-sdk/client-'))).toEqual([]);
  expect(result.outputFiles[0]!.contents.length).toBeLessThan(3 * 1024 * 1024);
});
