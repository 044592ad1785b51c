/**
 * The one place tests pin the shipped catalogue (lib/config/catalogue.ts). Everything else iterates over
 * the catalogue, or names a deployment through this file: adding a deployment changes no test, and renaming
 * or removing a shipped one changes only this file.
 */
import { CATALOGUE, type DeploymentInput } from '../../lib/config';

export interface ShippedDeployment {
  readonly name: string;
  readonly region: string;
  readonly backupRegion: string;
  readonly residency: string;
}

/** The shipped EU deployment: what a test uses when it needs one real, regional deployment. */
export const EU: ShippedDeployment = {
  name: 'prod-eu',
  region: 'eu-west-1',
  backupRegion: 'eu-central-1',
  residency: 'eu',
};

/** The shipped India deployment (its backup region is ap-south-2). */
export const INDIA: ShippedDeployment = {
  name: 'prod-ap-south-1',
  region: 'ap-south-1',
  backupRegion: 'ap-south-2',
  residency: 'in',
};

/** The deployments whose facts tests pin; the catalogue may hold more. */
export const PINNED: readonly ShippedDeployment[] = [EU, INDIA];

/** Every deployment name in the catalogue, in catalogue order. */
export const CATALOGUE_NAMES: readonly string[] = Object.keys(CATALOGUE);

/** The catalogue entry (before validation) of a shipped deployment. */
export function shippedInput(d: ShippedDeployment): DeploymentInput {
  if (!Object.hasOwn(CATALOGUE, d.name)) throw new Error(`the catalogue no longer ships ${d.name}`);
  return CATALOGUE[d.name] as DeploymentInput;
}
