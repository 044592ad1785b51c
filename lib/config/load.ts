import { CATALOGUE } from './catalogue';
import {
  ConfigError,
  parseCatalogue,
  show,
  type DeploymentConfig,
  type DeploymentInput,
  type ValueSources,
} from './schema';

/** Where overrides come from: CDK context and the process environment, read once by the entry point. */
export interface LoadOptions {
  /** CDK context values (`-c key=value`). */
  readonly context?: Readonly<Record<string, unknown>>;
  /** Environment variables. */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** The catalogue to load. @default CATALOGUE */
  readonly catalogue?: Readonly<Record<string, DeploymentInput>>;
}

export function envKey(name: string): string {
  return `BULWARK_ACCOUNT_${name.toUpperCase().replace(/-/g, '_')}`;
}

/** Own property only: a context key or variable named `constructor` is not inherited. */
function own(obj: object, key: string): unknown {
  return Object.hasOwn(obj, key) ? (obj as Record<string, unknown>)[key] : undefined;
}

interface Override {
  readonly value: unknown;
  readonly source: string;
}

/**
 * The account override for `name`, most specific first. Context values are taken as given (so a number or an
 * empty string is reported, not skipped); an empty environment variable counts as unset.
 */
function accountOverride(name: string, context: object, env: object): Override | undefined {
  const candidates: [object, string, string][] = [
    [context, `${name}:account`, `context ${name}:account`],
    [env, envKey(name), `environment ${envKey(name)}`],
    [context, 'account', 'context account'],
    [env, 'BULWARK_ACCOUNT', 'environment BULWARK_ACCOUNT'],
  ];
  for (const [from, key, source] of candidates) {
    const value = own(from, key);
    if (value === undefined || (from === env && value === '')) continue;
    return { value, source };
  }
  return undefined;
}

/**
 * Applies account overrides, validates the whole catalogue, and returns the selected deployments.
 *
 * Precedence for the account, most specific first: context `<name>:account`, env
 * `BULWARK_ACCOUNT_<NAME>`, context `account`, env `BULWARK_ACCOUNT`, the catalogue value.
 * A `<name>:account` context key or `BULWARK_ACCOUNT_<NAME>` variable naming no deployment is a problem.
 * Selection: context `deployments` (comma separated); all deployments when absent.
 * Throws a ConfigError listing every problem, and nothing else.
 */
export function loadDeployments(options: LoadOptions = {}): DeploymentConfig[] {
  const context: object = options.context ?? {};
  const env: object = options.env ?? {};
  const catalogue: unknown = options.catalogue ?? CATALOGUE;
  if (catalogue === null || typeof catalogue !== 'object' || Array.isArray(catalogue)) {
    return parseCatalogue(catalogue);
  }
  const names = Object.keys(catalogue);
  const problems: string[] = [];

  // A null-prototype object, so that a deployment named `__proto__` is a key like any other.
  const withOverrides = Object.create(null) as Record<string, unknown>;
  const sources = new Map<string, ValueSources>();
  for (const name of names) {
    const input = own(catalogue, name);
    const override = accountOverride(name, context, env);
    if (override && typeof override.value === 'number') {
      problems.push(
        `${show(name)}.account: ${show(override.value)} is a number; pass the account as a string of 12 digits ` +
          `(a number loses leading zeros) (from ${override.source})`,
      );
    }
    const usable = input !== null && typeof input === 'object' && !Array.isArray(input);
    withOverrides[name] = override && usable ? { ...input, account: override.value } : input;
    if (override) sources.set(name, { account: override.source });
  }
  for (const key of Object.keys(context)) {
    const m = /^(.*):account$/.exec(key);
    if (m && !names.includes(m[1] as string)) {
      problems.push(
        `${show(m[1])}.account: there is no deployment ${show(m[1])} in the catalogue (${names.map(show).join(', ')}) ` +
          `(from context ${show(key)})`,
      );
    }
  }

  // A mistyped variable would otherwise fall back to the catalogue's account without a word.
  const variables = new Set(names.map(envKey));
  for (const key of Object.keys(env)) {
    if (!key.startsWith('BULWARK_ACCOUNT_') || variables.has(key) || own(env, key) === '') continue;
    const meant = key.slice('BULWARK_ACCOUNT_'.length).toLowerCase().replace(/_/g, '-');
    problems.push(
      `${show(meant)}.account: there is no deployment ${show(meant)} in the catalogue (${names.map(show).join(', ')}); ` +
        `its variable would be one of ${[...variables].join(', ')} (from environment ${show(key)})`,
    );
  }

  let wanted: string[] | undefined;
  const selection = own(context, 'deployments');
  if (selection !== undefined) {
    const from = '(from context deployments)';
    if (typeof selection !== 'string') {
      problems.push(`deployments: must be a comma-separated list of deployment names, not ${show(selection)} ${from}`);
    } else {
      wanted = selection
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean);
      if (wanted.length === 0) {
        problems.push(`deployments: ${show(selection)} selects no deployment; omit it to select all ${from}`);
      }
      for (const w of wanted.filter((x) => !names.includes(x))) {
        problems.push(`deployments: ${show(w)} is not in the catalogue (${names.map(show).join(', ')}) ${from}`);
      }
    }
  }

  // Validate everything, selected or not, so a broken entry never hides behind a selection.
  let all: DeploymentConfig[] = [];
  try {
    all = parseCatalogue(withOverrides, sources);
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    problems.push(...e.problems);
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return wanted ? all.filter((d) => wanted.includes(d.name)) : all;
}
