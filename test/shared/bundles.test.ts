/**
 * Every function of every shipped deployment, bundled as the recipe bundles it (CDK tests run with
 * bundling off): each leaves to the runtime only what the Lambda Node.js runtime provides (the SDK
 * service clients), ships no source map unless asked, and every dependency resolves.
 */
import * as path from 'node:path';
import { NEVER_LOADED_MODULES, RUNTIME_PROVIDED_MODULES } from '../../lib/shared/function';
import {
  allFunctions,
  bundleFunction,
  unprovidedImports,
  type FunctionBundle,
  type FunctionToBundle,
} from '../../tools/bundles/bundles';

const lambdaDir = path.join(__dirname, '..', '..', 'lambda');
let functions: FunctionToBundle[];
const bundles = new Map<string, FunctionBundle>();

beforeAll(async () => {
  functions = allFunctions();
  for (const fn of functions) bundles.set(fn.name, await bundleFunction(fn));
}, 300_000);

it('finds every function, the API and webhook ingress among them', () => {
  const entries = functions.map((f) => path.relative(lambdaDir, f.entry));
  expect(entries).toEqual(
    expect.arrayContaining([
      'tenant-guard/handler.ts',
      'tenant-guard/authorizer-handler.ts',
      'webhooks/index.ts',
      'audit/shipper-handler.ts',
    ]),
  );
  // One bundle per function: the recipe gives every deployment the same code.
  expect(new Set(entries).size).toBe(entries.length);
});

it('leaves only the runtime SDK clients (and modules never loaded) out of each bundle', () => {
  for (const fn of functions) {
    expect({ fn: fn.name, external: fn.external }).toEqual({
      fn: fn.name,
      external: [...RUNTIME_PROVIDED_MODULES, ...NEVER_LOADED_MODULES],
    });
    const bundle = bundles.get(fn.name)!;
    expect({ fn: fn.name, unprovided: unprovidedImports(bundle) }).toEqual({ fn: fn.name, unprovided: [] });
    // The clients really are left out, and nothing else of the SDK's own code is bundled in a client's place.
    expect(Object.keys(bundle.packages).filter((p) => p.startsWith('@aws-sdk/client-'))).toEqual([]);
  }
});

it('bundles none of the SDK helpers: URLs and database tokens are signed with node:crypto', () => {
  for (const [name, b] of bundles) {
    // Presigned URLs (lambda/shared/s3-presigner.ts): no presigner, and none of the SDK's own code.
    expect({
      name,
      sdk: Object.keys(b.packages).filter((p) => /^@smithy\/|^@aws-sdk\//.test(p)),
    }).toEqual({ name, sdk: [] });
    // The database token is signed without the SDK's credential-provider chain (STS, SSO, ...).
    expect({
      name,
      chain: Object.keys(b.packages).filter((p) => /credential-provider|nested-clients/.test(p)),
    }).toEqual({
      name,
      chain: [],
    });
  }
});

it('flags a bundle that leaves anything else to the runtime', () => {
  expect(
    unprovidedImports({
      runtimeImports: [
        '@aws-sdk/client-s3',
        '@aws-sdk/s3-request-presigner',
        '@smithy/core',
        '@aws-sdk/client-s3/dist-cjs/x',
        'pg-native',
      ],
    }),
  ).toEqual(['@aws-sdk/s3-request-presigner', '@smithy/core', '@aws-sdk/client-s3/dist-cjs/x']);
});

it('ships no source map unless the function asks', () => {
  for (const fn of functions)
    expect({ fn: fn.name, sourceMap: fn.sourceMap }).toEqual({ fn: fn.name, sourceMap: false });
});
