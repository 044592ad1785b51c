/**
 * Reads a synthesized stage (cloud assembly: manifest dependencies + templates) the way
 * CloudFormation deploys it, to check that every function that reaches the database is deployed
 * after the schema resource that migrates it.
 */
import type * as cxapi from 'aws-cdk-lib/cx-api';

type Resource = { Type?: string; Properties?: Record<string, unknown>; DependsOn?: string | string[] };
type Resources = Record<string, Resource>;

const SCHEMA_TYPE = 'Custom::BulwarkSchema';

/** Every statement granted to the role of function `fn`, from policies listing the role or attached to it. */
export function roleStatements(all: Resources, fn: Resource): Record<string, unknown>[] {
  const role = fn.Properties?.['Role'] as { 'Fn::GetAtt'?: [string, string] } | undefined;
  const roleId = role?.['Fn::GetAtt']?.[0];
  if (!roleId || !all[roleId]) return [];
  const attached = JSON.stringify(all[roleId].Properties?.['ManagedPolicyArns'] ?? []);
  return Object.entries(all)
    .filter(
      ([id, r]) =>
        (r.Type === 'AWS::IAM::Policy' || r.Type === 'AWS::IAM::ManagedPolicy') &&
        (JSON.stringify(r.Properties?.['Roles'] ?? []).includes(`"${roleId}"`) || attached.includes(`"${id}"`)),
    )
    .flatMap(([, r]) => (r.Properties?.['PolicyDocument'] as { Statement: Record<string, unknown>[] }).Statement);
}

/** A function reaches the database when it is given an endpoint or may log in to it. */
export function reachesDatabase(all: Resources, fn: Resource): boolean {
  const vars = (fn.Properties?.['Environment'] as { Variables?: Record<string, unknown> } | undefined)?.Variables;
  if (vars && Object.keys(vars).some((k) => k === 'DB_HOST' || k === 'PGHOST')) return true;
  return roleStatements(all, fn).some((st) => JSON.stringify(st['Action']).includes('rds-db:connect'));
}

const dependsOn = (r: Resource): string[] => [r.DependsOn ?? []].flat();

/** Logical ids `id` depends on, directly or through other resources of the template. */
function resourceClosure(all: Resources, id: string): Set<string> {
  const seen = new Set<string>();
  const todo = [...dependsOn(all[id]!)];
  while (todo.length > 0) {
    const next = todo.pop()!;
    if (seen.has(next)) continue;
    seen.add(next);
    if (all[next]) todo.push(...dependsOn(all[next]));
  }
  return seen;
}

/** Stacks `stack` deploys after, directly or transitively (manifest dependencies). */
function stackClosure(stack: cxapi.CloudArtifact): Set<string> {
  const seen = new Set<string>();
  const todo = [...stack.dependencies];
  while (todo.length > 0) {
    const next = todo.pop()!;
    if (seen.has(next.id)) continue;
    seen.add(next.id);
    todo.push(...next.dependencies);
  }
  return seen;
}

export interface SchemaOrder {
  /** `<stack>/<logical id>` of every function that reaches the database (the schema's own provider excluded). */
  readonly functions: string[];
  /** Those that could run before the schema resource: a reason each. */
  readonly violations: string[];
}

/** Checks one stage's assembly: exactly one schema resource, and every database function deploys after it. */
export function schemaOrder(stage: cxapi.CloudAssembly): SchemaOrder {
  const stacks = stage.stacks.map((s) => ({ artifact: s, resources: (s.template.Resources ?? {}) as Resources }));
  const holders = stacks.flatMap((s) =>
    Object.entries(s.resources)
      .filter(([, r]) => r.Type === SCHEMA_TYPE)
      .map(([id, r]) => ({ stack: s.artifact, id, resource: r })),
  );
  if (holders.length !== 1) throw new Error(`expected one ${SCHEMA_TYPE}, found ${holders.length}`);
  const schema = holders[0]!;
  const token = schema.resource.Properties?.['ServiceToken'] as { 'Fn::GetAtt'?: [string, string] } | undefined;
  const provider = token?.['Fn::GetAtt']?.[0];

  const functions: string[] = [];
  const violations: string[] = [];
  for (const { artifact, resources } of stacks) {
    for (const [id, r] of Object.entries(resources)) {
      if (r.Type !== 'AWS::Lambda::Function' || !reachesDatabase(resources, r)) continue;
      if (artifact === schema.stack && id === provider) continue;
      const name = `${artifact.stackName}/${id}`;
      functions.push(name);
      if (artifact === schema.stack) {
        if (!resourceClosure(resources, id).has(schema.id)) {
          violations.push(`${name} does not depend on ${schema.id} in its own stack`);
        }
      } else if (!stackClosure(artifact).has(schema.stack.id)) {
        violations.push(`${name}: stack ${artifact.id} does not deploy after ${schema.stack.id} (holds ${schema.id})`);
      }
    }
  }
  return { functions, violations };
}
