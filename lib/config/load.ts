import { CATALOGUE } from './catalogue';
import { ConfigError, parseCatalogue, type DeploymentConfig, type DeploymentInput } from './schema';

/** Where overrides come from: CDK context and the process environment, read once by the entry point. */
export interface LoadOptions {
  /** CDK context values (`-c key=value`). */
  readonly context?: Readonly<Record<string, unknown>>;
  /** Environment variables. */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** The catalogue to load. @default CATALOGUE */
  readonly catalogue?: Readonly<Record<string, DeploymentInput>>;
}

function envKey(name: string): string {
  return `BULWARK_ACCOUNT_${name.toUpperCase().replace(/-/g, '_')}`;
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' && v.length > 0 ? v : undefined;
}

/**
 * Applies account overrides, validates the whole catalogue, and returns the selected deployments.
 *
 * Precedence for the account, most specific first: context `<name>:account`, env
 * `BULWARK_ACCOUNT_<NAME>`, context `account`, env `BULWARK_ACCOUNT`, the catalogue value.
 * Selection: context `deployments` (comma separated); all deployments when absent.
 */
export function loadDeployments(options: LoadOptions = {}): DeploymentConfig[] {
  const context = options.context ?? {};
  const env = options.env ?? {};
  const catalogue = options.catalogue ?? CATALOGUE;

  const withOverrides: Record<string, unknown> = {};
  for (const [name, input] of Object.entries(catalogue)) {
    const account =
      str(context[`${name}:account`]) ??
      str(env[envKey(name)]) ??
      str(context['account']) ??
      str(env['BULWARK_ACCOUNT']) ??
      input.account;
    withOverrides[name] = { ...input, account };
  }
  // Validate everything, selected or not, so a broken entry never hides behind a selection.
  const all = parseCatalogue(withOverrides);

  const selection = str(context['deployments']);
  if (!selection) return all;
  const wanted = selection
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  const unknown = wanted.filter((w) => !all.some((d) => d.name === w));
  if (unknown.length > 0) {
    throw new ConfigError(
      unknown.map((u) => `deployments: ${u} is not in the catalogue (${all.map((d) => d.name).join(', ')})`),
    );
  }
  return all.filter((d) => wanted.includes(d.name));
}
