/**
 * Property-based: whatever the catalogue, context and environment hold, loading either returns validated
 * deployments or throws a ConfigError whose every line names a field and where its value came from.
 */
import * as fc from 'fast-check';
import { CATALOGUE, ConfigError, envKey, loadDeployments, show, type DeploymentInput } from '../../lib/config';

const SHIPPED = Object.entries(CATALOGUE);
const NAMES = SHIPPED.map(([n]) => n);

/** Strings that have crashed loaders before: Object members, look-alikes, separators, oversized values. */
const nasty = fc.constantFrom(
  'constructor',
  'toString',
  '__proto__',
  'hasOwnProperty',
  'valueOf',
  'prototype',
  '',
  ' ',
  ',',
  ',,',
  'eu-w\u0435st-1',
  'prod-\u0435u',
  'us-east-1',
  'eu-west-1',
  'ap-south-2',
  '999.999.999.999/16',
  '10.40.1.0/16',
  '/webhooks/../admin',
  'frame-ancestors *; default-src *',
  '000000000000',
  '123456789012',
  'arn:aws:acm:us-east-1:000000000000:certificate/00000000-0000-4000-8000-000000000000',
  'x'.repeat(5000),
  '\u0000\u200b\ud800',
);
const value: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 3, arbitrary: nasty },
  { weight: 2, arbitrary: fc.anything({ maxDepth: 2, withNullPrototype: true, withBoxedValues: true }) },
  { weight: 1, arbitrary: fc.constantFrom(0, -1, 1e9, 1.5, NaN, Infinity, -0, 2 ** 53, null, [], {}) },
);

/** Every path in the shipped entries, plus made-up keys, so mutations hit real fields and unknown ones. */
function paths(node: unknown, prefix: string[] = []): string[][] {
  if (node === null || typeof node !== 'object' || Array.isArray(node)) return [prefix];
  return [prefix, ...Object.entries(node).flatMap(([k, v]) => paths(v, [...prefix, k]))];
}
const KNOWN_PATHS = [
  ...new Map(SHIPPED.flatMap(([, d]) => paths(d)).map((p) => [p.join('.'), p])).values(),
  ['data', 'vpcCidr'],
  ['edge', 'contentSecurityPolicy'],
  ['edge', 'hostingProviderExemptPathPrefixes'],
  ['edge', 'entry'],
  ['edge', 'cloudFrontCertificateArn'],
  ['webhooks', 'verification'],
  ['webhooks', 'telnyxPreviousPublicKey'],
];
const path = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom(...KNOWN_PATHS) },
  { weight: 1, arbitrary: fc.array(fc.oneof(nasty, fc.string({ maxLength: 6 })), { minLength: 1, maxLength: 3 }) },
);
const mutation = fc.record({ path, value, remove: fc.boolean() });

/** Applies a mutation to a deep copy, building intermediate objects as needed (own keys only). */
function mutate(entry: unknown, m: { path: string[]; value: unknown; remove: boolean }): unknown {
  if (m.path.length === 0) return m.remove ? undefined : m.value;
  const copy: unknown = JSON.parse(JSON.stringify(entry ?? {}));
  let node = copy as Record<string, unknown>;
  if (node === null || typeof node !== 'object') return copy;
  for (const k of m.path.slice(0, -1)) {
    const next = Object.hasOwn(node, k) ? node[k] : undefined;
    if (next === null || typeof next !== 'object') {
      Object.defineProperty(node, k, { value: {}, enumerable: true, writable: true, configurable: true });
    }
    node = node[k] as Record<string, unknown>;
  }
  const last = m.path[m.path.length - 1] as string;
  if (m.remove) delete node[last];
  else Object.defineProperty(node, last, { value: m.value, enumerable: true, writable: true, configurable: true });
  return copy;
}

const catalogue = fc
  .record({
    base: fc.array(fc.constantFrom(...SHIPPED), { minLength: 0, maxLength: 3 }),
    names: fc.array(fc.oneof(fc.constantFrom(...NAMES), nasty, fc.string({ maxLength: 12 })), { maxLength: 3 }),
    mutations: fc.array(fc.tuple(fc.nat(), mutation), { minLength: 1, maxLength: 4 }),
  })
  .map(({ base, names, mutations }) => {
    const out = Object.create(null) as Record<string, unknown>;
    base.forEach(([n, d], i) => {
      out[names[i] ?? n] = d;
    });
    const keys = Object.keys(out);
    for (const [i, m] of mutations) {
      const key = keys.length > 0 ? (keys[i % keys.length] as string) : 'dep-a';
      out[key] = mutate(out[key], m);
    }
    return out;
  });

const contextKey = fc.oneof(
  fc.constantFrom('deployments', 'account', ...NAMES.map((n) => `${n}:account`)),
  nasty.map((n) => `${n}:account`),
);
const context = fc.dictionary(contextKey, value, { maxKeys: 3 });
const env = fc.dictionary(
  fc.constantFrom('BULWARK_ACCOUNT', ...NAMES.map(envKey), 'PATH'),
  fc.oneof(nasty, fc.string({ maxLength: 14 })),
  { maxKeys: 3 },
);

/** A problem names a field (`<deployment>[.<field>…]`, `deployments` or `catalogue`) and the value's source. */
const SOURCE = / \(from (catalogue|context .+|environment BULWARK_ACCOUNT\S*)\)$/;
function namesAField(problem: string, keys: readonly string[]): boolean {
  const heads = ['deployments', 'catalogue', ...keys.map(show), ...keys.map((k) => show(k.replace(/:account$/, '')))];
  return heads.some((h) => problem.startsWith(`${h}: `) || problem.startsWith(`${h}.`) || problem.startsWith(`${h}[`));
}

/** Loads; returns the problems of a ConfigError (any other throw fails the property). */
function problemsOf(load: () => unknown): string[] {
  try {
    expect(Array.isArray(load())).toBe(true);
    return [];
  } catch (e) {
    if (e instanceof ConfigError) return [...e.problems];
    throw e;
  }
}

function check(load: () => unknown, keys: readonly string[]): void {
  for (const p of problemsOf(load)) {
    if (!namesAField(p, keys) || !SOURCE.test(p)) throw new Error(`problem without a field or source: ${p}`);
    // Values are quoted escaped: nothing outside printable ASCII reaches the terminal.
    if (!/^[\x20-\x7e]*$/.test(p)) throw new Error(`unescaped value in: ${p}`);
  }
}

describe('configuration never crashes', () => {
  it('reports every mutated catalogue as a ConfigError naming fields, or loads it', () => {
    fc.assert(
      fc.property(catalogue, (c) => {
        check(() => loadDeployments({ catalogue: c as Record<string, DeploymentInput> }), Object.keys(c));
      }),
      { numRuns: 400 },
    );
  });

  it('reports every bad context and environment value as a ConfigError naming fields, or loads', () => {
    fc.assert(
      fc.property(context, env, (ctx, environment) => {
        check(() => loadDeployments({ context: ctx, env: environment }), [...NAMES, ...Object.keys(ctx)]);
      }),
      { numRuns: 400 },
    );
  });
});
