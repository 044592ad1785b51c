/**
 * Helpers for Bulwark's rules (`lib/compliance/rules/`), in the role cdk-nag's `NagRules` plays for its
 * own: every rule inspects the CloudFormation a resource renders (so raw overrides are seen too).
 */
import * as path from 'node:path';
import { CfnResource, Stack } from 'aws-cdk-lib';
import type { NagRuleResult } from 'cdk-nag';

export type Json = Record<string, unknown>;

export interface Rendered {
  readonly logicalId: string;
  readonly type: string;
  readonly properties: Json;
}

/**
 * Names a rule after the file that defines it, as cdk-nag's rules do: the rule id is
 * `<pack>-<file name>`, so the file name is the id's one source.
 */
export function ruleFromFile<T extends (...args: never[]) => unknown>(file: string, fn: T): T {
  return Object.defineProperty(fn, 'name', { value: path.parse(file).name });
}

/** A per-resource rule in cdk-nag's shape. */
export type ResourceRule = (node: CfnResource) => NagRuleResult;

/** The resource as CloudFormation will see it, tokens resolved within its stack. */
export function rendered(node: CfnResource): Rendered {
  const stack = Stack.of(node);
  const out = stack.resolve((node as unknown as { _toCloudFormation(): object })._toCloudFormation()) as {
    Resources: Record<string, { Type: string; Properties?: Json }>;
  };
  const [logicalId, res] = Object.entries(out.Resources)[0] ?? ['', { Type: '', Properties: {} }];
  return { logicalId, type: res.Type, properties: res.Properties ?? {} };
}

/** Every CfnResource in the node's stack, rendered. */
export function stackResources(node: CfnResource): Rendered[] {
  return Stack.of(node)
    .node.findAll()
    .filter((c): c is CfnResource => CfnResource.isCfnResource(c))
    .map(rendered);
}

export function asArray(v: unknown): unknown[] {
  return Array.isArray(v) ? v : v === undefined ? [] : [v];
}

/** `{Ref: id}` or `{Fn::GetAtt: [id, ...]}`. */
export function isRef(v: unknown, logicalId: string): boolean {
  if (typeof v !== 'object' || v === null) return false;
  const o = v as Json;
  if (o['Ref'] === logicalId) return true;
  const getAtt = o['Fn::GetAtt'];
  return Array.isArray(getAtt) && getAtt[0] === logicalId;
}

export function tagValue(props: Json, key: string): unknown {
  const tags = props['Tags'];
  if (Array.isArray(tags)) return (tags as Json[]).find((t) => t['Key'] === key)?.['Value'];
  if (tags && typeof tags === 'object') return (tags as Json)[key];
  return undefined;
}

/** Every statement of the identity policy documents in a rendered IAM resource. */
export function identityStatements(r: Rendered): Json[] {
  const documents: unknown[] = [];
  if (r.type === 'AWS::IAM::Policy' || r.type === 'AWS::IAM::ManagedPolicy')
    documents.push(r.properties['PolicyDocument']);
  else if (r.type === 'AWS::IAM::Role') {
    for (const pol of asArray(r.properties['Policies'])) documents.push((pol as Json)['PolicyDocument']);
  }
  return documents.flatMap((d) => asArray(((d ?? {}) as Json)['Statement'])) as Json[];
}
