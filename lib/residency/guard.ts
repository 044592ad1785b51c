/**
 * The residency guard: at synth, every stack of a deployment, and every region or regional ARN named
 * anywhere in its templates, must lie inside the deployment's residency zone. Global resources
 * (CloudFront, CloudFront-scope WAF) and out-of-zone regions are allowed only through an explicit,
 * reasoned allowance on that one resource.
 */
import {
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
import type { IConstruct } from 'constructs';
import { REGIONS, regionInZone, type ResidencyZone } from '../config/regions';
import { rendered } from '../compliance/rule-helpers';

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

function isGlobal(r: ReturnType<typeof rendered>): boolean {
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

/** Checks a stage against a residency zone; pure over the construct tree, so tests can call it directly. */
export function checkResidency(stage: Stage, zone: ResidencyZone): ResidencyFinding[] {
  const findings: ResidencyFinding[] = [];
  // A `global` deployment promises no residency: nothing to check.
  if (zone === 'global') return findings;
  const stacks = stage.node.findAll().filter((c): c is Stack => Stack.isStack(c) && Stage.of(c) === stage);
  for (const stack of stacks) {
    const resources = stack.node
      .findAll()
      .filter((c): c is CfnResource => CfnResource.isCfnResource(c) && Stack.of(c) === stack);
    const stackRegion = Token.isUnresolved(stack.region) ? undefined : stack.region;
    if (stackRegion === undefined) {
      findings.push({ constructPath: stack.node.path, message: `stack ${stack.stackName} has no concrete region` });
      continue;
    }
    const stackOutside = !regionInZone(stackRegion, zone);
    for (const res of resources) {
      if (residencyAllowanceOf(res)) continue;
      const r = rendered(res);
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
      for (const region of regionsNamedIn(r.properties)) {
        if (!REGIONS[region] || !regionInZone(region, zone)) {
          findings.push({
            constructPath: where,
            message: `${r.type} names region ${region}, outside residency zone ${zone}`,
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
      violatingResources: paths.map((constructPath) => ({ constructPath, locations: ['Properties'] })),
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
