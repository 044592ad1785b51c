/**
 * What a context lookup would return, committed so that synth never needs AWS credentials.
 *
 * Each region lists its availability zone names and the residency zones it belongs to.
 * Residency zones are legal boundaries, not AWS naming: eu-west-2 (London) and eu-central-2 (Zurich)
 * are outside the European Union, so they are not in `eu` even though their names start with `eu-`.
 */
export const RESIDENCY_ZONES = ['eu', 'in', 'us', 'global'] as const;
export type ResidencyZone = (typeof RESIDENCY_ZONES)[number];

export interface RegionFacts {
  /** Availability zone names as returned by `ec2:DescribeAvailabilityZones`. */
  readonly availabilityZones: readonly string[];
  /** Residency zones (other than `global`, which admits every region) this region is inside. */
  readonly residency: readonly Exclude<ResidencyZone, 'global'>[];
}

function azs(region: string, letters: string): readonly string[] {
  return [...letters].map((l) => `${region}${l}`);
}

export const REGIONS: Readonly<Record<string, RegionFacts>> = {
  'ap-south-1': { availabilityZones: azs('ap-south-1', 'abc'), residency: ['in'] },
  'ap-south-2': { availabilityZones: azs('ap-south-2', 'abc'), residency: ['in'] },
  'eu-west-1': { availabilityZones: azs('eu-west-1', 'abc'), residency: ['eu'] },
  'eu-west-3': { availabilityZones: azs('eu-west-3', 'abc'), residency: ['eu'] },
  'eu-central-1': { availabilityZones: azs('eu-central-1', 'abc'), residency: ['eu'] },
  'eu-north-1': { availabilityZones: azs('eu-north-1', 'abc'), residency: ['eu'] },
  'eu-south-1': { availabilityZones: azs('eu-south-1', 'abc'), residency: ['eu'] },
  'eu-south-2': { availabilityZones: azs('eu-south-2', 'abc'), residency: ['eu'] },
  // Outside the EU: listed so that a `global` deployment may use them, and so that an `eu`
  // deployment naming them gets "outside residency zone eu" rather than "unknown region".
  'eu-west-2': { availabilityZones: azs('eu-west-2', 'abc'), residency: [] },
  'eu-central-2': { availabilityZones: azs('eu-central-2', 'abc'), residency: [] },
  'us-east-1': { availabilityZones: azs('us-east-1', 'abcdef'), residency: ['us'] },
  'us-east-2': { availabilityZones: azs('us-east-2', 'abc'), residency: ['us'] },
  'us-west-2': { availabilityZones: azs('us-west-2', 'abcd'), residency: ['us'] },
};

/** Facts about `region`, or undefined. Own keys only: `constructor` or `__proto__` are not regions. */
export function regionFacts(region: string): RegionFacts | undefined {
  return Object.hasOwn(REGIONS, region) ? REGIONS[region] : undefined;
}

export function isKnownRegion(region: string): boolean {
  return regionFacts(region) !== undefined;
}

/** True when `region` lies inside `zone`. Every known region lies inside `global`. */
export function regionInZone(region: string, zone: ResidencyZone): boolean {
  const facts = regionFacts(region);
  if (!facts) return false;
  return zone === 'global' || facts.residency.includes(zone);
}
