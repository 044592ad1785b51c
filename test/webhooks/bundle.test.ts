/**
 * The function's entry point bundles with esbuild as NodejsFunction will bundle it (CDK tests run
 * with bundling off), so a dependency that cannot be bundled fails here rather than at deploy.
 */
import * as path from 'node:path';
import { build } from 'esbuild';
import { defined } from '../support/defined';

it('bundles lambda/webhooks/index.ts for Node.js 22 with every dependency resolved', async () => {
  const result = await build({
    entryPoints: [path.join(__dirname, '..', '..', 'lambda', 'webhooks', 'index.ts')],
    bundle: true,
    platform: 'node',
    target: 'node22',
    format: 'cjs',
    minify: true,
    write: false,
    logLevel: 'silent',
    // pg's optional native binding is loaded lazily only when asked for; it is not used.
    external: ['pg-native'],
    metafile: true,
  });
  expect(result.errors).toEqual([]);
  const inputs = Object.keys(result.metafile.inputs);
  expect(inputs.some((i) => i.includes('node_modules/pg/'))).toBe(true);
  expect(inputs.some((i) => i.includes('@aws-sdk/rds-signer'))).toBe(true);
  expect(defined(result.outputFiles[0]).contents.length).toBeLessThan(3 * 1024 * 1024);
});
