/**
 * The residency guard: at synth, every stack of a deployment, and every region or regional ARN named
 * anywhere in its templates (resource properties, the mapping entries a resource reads, outputs,
 * parameter defaults, conditions, rules and unread mappings; nested stacks are stacks of their own),
 * must lie inside the deployment's residency zone. Global resources (CloudFront, CloudFront-scope
 * WAF) and out-of-zone regions are allowed only through an explicit, reasoned allowance on that one
 * resource.
 */
import {
  CfnElement,
  CfnResource,
  Stack,
  Stage,
  Token,
  Validations,
  type IPolicyValidationContext,
  type IPolicyValidationPlugin,
  type PolicyValidationPluginReport,
  type PolicyViolation,
} from 'aws-cdk-lib';
import type { SecretRotation } from 'aws-cdk-lib/aws-secretsmanager';
import type { IConstruct } from 'constructs';
import { REGIONS, regionInZone, type ResidencyZone } from '../config/regions';
import { rendered, type Json } from '../compliance/rule-helpers';

export const RESIDENCY_ALLOWANCE_METADATA = 'bulwark:residency-allowance';
const MIN_REASON = 20;

export interface ResidencyAllowance {
  readonly reason: string;
}

/**
 * Resource types that are global by nature: they do not live in the stack's region, so they can only
 * be accepted with a reason that says why they hold no customer data.
 */
const GLOBAL_TYPES = new Set([
  'AWS::CloudFront::Distribution',
  'AWS::CloudFront::ResponseHeadersPolicy',
  'AWS::CloudFront::CachePolicy',
  'AWS::CloudFront::OriginRequestPolicy',
  'AWS::CloudFront::Function',
  'AWS::CloudFront::OriginAccessControl',
  'AWS::CloudFront::KeyValueStore',
  'AWS::Route53::RecordSet',
  'AWS::Route53::HostedZone',
]);

export function isGlobal(r: ReturnType<typeof rendered>): boolean {
  if (GLOBAL_TYPES.has(r.type)) return true;
  return r.type === 'AWS::WAFv2::WebACL' && r.properties['Scope'] === 'CLOUDFRONT';
}

/**
 * Accepts one resource outside the residency zone (a global resource, or one in another region),
 * with a reason of at least 20 characters saying why it holds no customer data.
 */
export function allowOutsideResidency(construct: IConstruct, reason: string): void {
  const target = CfnResource.isCfnResource(construct) ? construct : construct.node.defaultChild;
  if (Stage.isStage(construct) || Stack.isStack(construct) || !target || !CfnResource.isCfnResource(target)) {
    throw new Error(`allowOutsideResidency(${construct.node.path}): needs exactly one CloudFormation resource`);
  }
  if (reason.trim().length < MIN_REASON) {
    throw new Error(`allowOutsideResidency(${target.node.path}): reason must be at least ${MIN_REASON} characters`);
  }
  target.node.addMetadata(RESIDENCY_ALLOWANCE_METADATA, { reason: reason.trim() } satisfies ResidencyAllowance);
}

/**
 * Allows a Secrets Manager rotation application (`addRotationSingleUser`, `SecretRotation`): AWS
 * publishes the rotation code only in the us-east-1 Serverless Application Repository, so the
 * template names that region as the code's origin. SAR deploys the application as a nested stack in
 * the deployment's own region; the function runs in its VPC, and secrets and logs never leave it.
 */
export function allowSecretRotationApplication(rotation: SecretRotation): void {
  allowOutsideResidency(
    rotation,
    'Rotation code origin: AWS publishes the Secrets Manager rotation function in the us-east-1 Serverless Application Repository; SAR copies it into a nested stack in this region, where it runs in the VPC. No secret, data or log leaves the region.',
  );
}

export function residencyAllowanceOf(construct: IConstruct): ResidencyAllowance | undefined {
  const m = construct.node.metadata.find((x) => x.type === RESIDENCY_ALLOWANCE_METADATA);
  return m ? (m.data as ResidencyAllowance) : undefined;
}

// Region names as they appear in ARNs, endpoints and properties (aws, gov and China partitions).
const REGION_PATTERN =
  /\b((?:us|eu|ap|sa|ca|me|af|il|mx)(?:-gov|-iso[a-z]?)?-(?:north|south|east|west|central|northeast|southeast|northwest|southwest)-\d)\b|\b(cn-(?:north|northwest)-\d)\b/g;

/** Every region name that appears in a value (strings inside tokens' rendered JSON included). */
export function regionsNamedIn(value: unknown): string[] {
  const text = JSON.stringify(value ?? null);
  const found = new Set<string>();
  for (const m of text.matchAll(REGION_PATTERN)) found.add(m[1] ?? m[2] ?? '');
  found.delete('');
  return [...found];
}

export interface ResidencyFinding {
  readonly constructPath: string;
  readonly message: string;
}

type Template = { readonly Mappings?: Record<string, Json> } & Record<string, unknown>;

/** The stack's whole template as CloudFormation will see it (mappings, outputs, parameters, ...). */
export function renderedTemplate(stack: Stack): Template {
  return stack.resolve((stack as unknown as { _toCloudFormation(): object })._toCloudFormation()) as Template;
}

function partitionOf(region: string): string {
  if (region.startsWith('cn-')) return 'aws-cn';
  return region.includes('-gov-') ? 'aws-us-gov' : 'aws';
}

/**
 * The mapping entries `value` reads with `Fn::FindInMap`: for `{Ref: AWS::Partition}` and
 * `{Ref: AWS::Region}` keys only the entry this stack's partition or region selects, otherwise the
 * whole mapping. Returns the entries and the names of the mappings read.
 */
function mappingReads(value: unknown, template: Template, region: string): { entries: unknown[]; names: Set<string> } {
  const entries: unknown[] = [];
  const names = new Set<string>();
  const key = (k: unknown): string | undefined => {
    if (typeof k === 'string') return k;
    const ref = (k as Json | undefined)?.['Ref'];
    if (ref === 'AWS::Partition') return partitionOf(region);
    if (ref === 'AWS::Region') return region;
    return undefined;
  };
  const walk = (v: unknown): void => {
    if (v === null || typeof v !== 'object') return;
    if (Array.isArray(v)) return v.forEach(walk);
    const find = (v as Json)['Fn::FindInMap'];
    if (Array.isArray(find) && typeof find[0] === 'string') {
      names.add(find[0]);
      const mapping = template.Mappings?.[find[0]];
      const first = key(find[1]);
      const top = first === undefined ? mapping : mapping?.[first];
      const second = key(find[2]);
      entries.push(second === undefined || first === undefined ? top : (top as Json | undefined)?.[second]);
    }
    Object.values(v as Json).forEach(walk);
  };
  walk(value);
  return { entries, names };
}

/** Regions a template value names, directly or through the mapping entries it reads. */
function regionsUsedBy(value: unknown, template: Template, region: string): string[] {
  return [...new Set([...regionsNamedIn(value), ...regionsNamedIn(mappingReads(value, template, region).entries)])];
}

const outside = (region: string, zone: ResidencyZone) => !REGIONS[region] || !regionInZone(region, zone);

/**
 * The regions outside `zone` a resource names (through its properties and the mappings it reads).
 * Used by the report to show what an allowance covers.
 */
export function regionsOutsideZone(res: CfnResource, zone: ResidencyZone): string[] {
  const stack = Stack.of(res);
  return regionsUsedBy(rendered(res).properties, renderedTemplate(stack), stack.region).filter((r) => outside(r, zone));
}

/** Template sections other than resources; each entry is checked on its own. */
const OTHER_SECTIONS = ['Outputs', 'Parameters', 'Conditions', 'Rules', 'Mappings'] as const;

/** Checks a stage against a residency zone; pure over the construct tree, so tests can call it directly. */
export function checkResidency(stage: Stage, zone: ResidencyZone): ResidencyFinding[] {
  const findings: ResidencyFinding[] = [];
  // A `global` deployment promises no residency: nothing to check.
  if (zone === 'global') return findings;
  const stacks = stage.node.findAll().filter((c): c is Stack => Stack.isStack(c) && Stage.of(c) === stage);
  for (const stack of stacks) {
    const own = stack.node.findAll().filter((c) => Stack.of(c) === stack);
    const resources = own.filter((c): c is CfnResource => CfnResource.isCfnResource(c));
    const stackRegion = Token.isUnresolved(stack.region) ? undefined : stack.region;
    if (stackRegion === undefined) {
      findings.push({ constructPath: stack.node.path, message: `stack ${stack.stackName} has no concrete region` });
      continue;
    }
    const template = renderedTemplate(stack);
    const stackOutside = !regionInZone(stackRegion, zone);
    // Mappings are judged where they are read; one that nothing reads is judged as itself.
    const readMappings = new Set<string>();
    for (const res of resources) {
      const r = rendered(res);
      for (const name of mappingReads(r.properties, template, stackRegion).names) readMappings.add(name);
      if (residencyAllowanceOf(res)) continue;
      const where = res.node.path;
      if (isGlobal(r)) {
        findings.push({
          constructPath: where,
          message: `${r.type} is a global resource outside residency zone ${zone}; allow it explicitly with a reason`,
        });
        continue;
      }
      if (stackOutside) {
        findings.push({
          constructPath: where,
          message: `${r.type} is in ${stackRegion}, outside residency zone ${zone}`,
        });
        continue;
      }
      for (const region of regionsUsedBy(r.properties, template, stackRegion)) {
        if (outside(region, zone)) {
          findings.push({
            constructPath: where,
            message: `${r.type} names region ${region}, outside residency zone ${zone}`,
          });
        }
      }
    }
    const elementPath = (section: string, key: string) =>
      own.find((c) => CfnElement.isCfnElement(c) && !CfnResource.isCfnResource(c) && stack.resolve(c.logicalId) === key)
        ?.node.path ?? `${stack.node.path}/${section}/${key}`;
    for (const section of OTHER_SECTIONS) {
      for (const [key, value] of Object.entries((template[section] ?? {}) as Json)) {
        if (section === 'Mappings' && readMappings.has(key)) continue;
        const regions = section === 'Mappings' ? regionsNamedIn(value) : regionsUsedBy(value, template, stackRegion);
        for (const region of regions.filter((x) => outside(x, zone))) {
          findings.push({
            constructPath: elementPath(section, key),
            message: `${section} entry ${key} names region ${region}, outside residency zone ${zone}`,
          });
        }
      }
    }
  }
  return findings;
}

/** The guard as a CDK validation plugin, scoped to one stage. */
export class ResidencyGuard implements IPolicyValidationPlugin {
  public readonly name = 'Bulwark-Residency';

  constructor(
    private readonly stage: Stage,
    private readonly zone: ResidencyZone,
  ) {}

  public validate(_context: IPolicyValidationContext): PolicyValidationPluginReport {
    // One violation per distinct problem, listing every resource that has it.
    const grouped = new Map<string, string[]>();
    for (const f of checkResidency(this.stage, this.zone)) {
      grouped.set(f.message, [...(grouped.get(f.message) ?? []), f.constructPath]);
    }
    const violations: PolicyViolation[] = [...grouped].map(([message, paths]) => ({
      ruleName: `Bulwark-Residency[${message}]`,
      description: message,
      severity: 'error',
      violatingResources: paths.map((constructPath) => ({ constructPath, locations: [] })),
    }));
    return { success: violations.length === 0, violations };
  }
}

/** Adds the residency guard to a stage's synth-time validation; returns its name. */
export function applyResidencyGuard(stage: Stage, zone: ResidencyZone): string {
  const guard = new ResidencyGuard(stage, zone);
  Validations.of(stage).addPlugins(guard);
  return guard.name;
}
