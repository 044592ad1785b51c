/**
 * The synthesized CloudFormation templates of a scope's stacks, with cross-stack references
 * (`Fn::ImportValue`, `Fn::GetStackOutput`) followed to the resources they name, for rules that
 * must see a whole deployment rather than one stack at a time.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CfnResource, Stack, Stage } from 'aws-cdk-lib';
import type { IConstruct } from 'constructs';
import { asArray, type Json } from './rule-helpers';

export interface TemplateResource {
  readonly Type: string;
  readonly Properties?: Json;
  readonly Metadata?: Json;
}

export interface Template {
  readonly Resources?: Record<string, TemplateResource>;
  readonly Outputs?: Record<string, { readonly Value?: unknown; readonly Export?: { readonly Name?: unknown } }>;
  readonly [section: string]: unknown;
}

export interface SynthesizedStack {
  /** The deployed stack name, as `Fn::GetStackOutput` names it. */
  readonly stackName: string;
  readonly template: Template;
}

/** A resource of one stack: the unit a cross-stack rule reasons about. */
export interface ResourceRef {
  readonly stackName: string;
  readonly logicalId: string;
}

export const refKey = (r: ResourceRef): string => `${r.stackName}/${r.logicalId}`;

/** The templates the stacks under `scope` were synthesized to. Call after synthesis. */
export function synthesizedStacks(scope: IConstruct): SynthesizedStack[] {
  return scope.node
    .findAll()
    .filter((c): c is Stack => Stack.isStack(c))
    .flatMap((stack) => {
      const file = path.join(Stage.of(stack)?.outdir ?? '', stack.templateFile);
      if (!fs.existsSync(file)) return [];
      return [{ stackName: stack.stackName, template: JSON.parse(fs.readFileSync(file, 'utf8')) as Template }];
    });
}

/** The CfnResource a stack's logical id was synthesized from. */
export function constructOf(scope: IConstruct, ref: ResourceRef): CfnResource | undefined {
  return scope.node
    .findAll()
    .find(
      (c): c is CfnResource =>
        CfnResource.isCfnResource(c) &&
        Stack.of(c).stackName === ref.stackName &&
        Stack.of(c).resolve(c.logicalId) === ref.logicalId,
    );
}

/** Resolves references across the templates of one deployment. */
export class CrossStackReferences {
  private readonly byName: Map<string, SynthesizedStack>;
  private readonly exports = new Map<string, { stack: SynthesizedStack; value: unknown }>();

  constructor(readonly stacks: readonly SynthesizedStack[]) {
    this.byName = new Map(stacks.map((s) => [s.stackName, s]));
    for (const s of stacks) {
      for (const out of Object.values(s.template.Outputs ?? {})) {
        const name = out.Export?.Name;
        if (typeof name === 'string') this.exports.set(name, { stack: s, value: out.Value });
      }
    }
  }

  /** Every resource that `value`, read in stack `from`, refers to, following cross-stack references. */
  public resourcesIn(value: unknown, from: SynthesizedStack): ResourceRef[] {
    const found = new Map<string, ResourceRef>();
    const add = (stack: SynthesizedStack, logicalId: string) => {
      if (stack.template.Resources?.[logicalId] === undefined) return;
      const ref = { stackName: stack.stackName, logicalId };
      found.set(refKey(ref), ref);
    };
    const walk = (v: unknown, stack: SynthesizedStack, depth: number): void => {
      if (depth > 20 || v === null || typeof v !== 'object') return;
      if (Array.isArray(v)) {
        for (const x of v) walk(x, stack, depth + 1);
        return;
      }
      const o = v as Json;
      if (typeof o['Ref'] === 'string') add(stack, o['Ref']);
      const getAtt = o['Fn::GetAtt'];
      if (Array.isArray(getAtt) && typeof getAtt[0] === 'string') add(stack, getAtt[0]);
      if (typeof getAtt === 'string') add(stack, getAtt.split('.')[0] ?? '');
      for (const s of asArray(o['Fn::Sub']).filter((x): x is string => typeof x === 'string')) {
        for (const m of s.matchAll(/\$\{([^!.}][^.}]*)(\.[^}]*)?\}/g)) add(stack, m[1] ?? '');
      }
      const imported = o['Fn::ImportValue'];
      if (typeof imported === 'string') {
        const exp = this.exports.get(imported);
        if (exp) walk(exp.value, exp.stack, depth + 1);
      }
      const output = o['Fn::GetStackOutput'] as Json | undefined;
      if (output && typeof output['StackName'] === 'string' && typeof output['OutputName'] === 'string') {
        const producer = this.byName.get(output['StackName']);
        const out = producer?.template.Outputs?.[output['OutputName']];
        if (producer && out) walk(out.Value, producer, depth + 1);
      }
      for (const x of Object.values(o)) walk(x, stack, depth + 1);
    };
    walk(value, from, 0);
    return [...found.values()];
  }

  public resource(ref: ResourceRef): TemplateResource | undefined {
    return this.byName.get(ref.stackName)?.template.Resources?.[ref.logicalId];
  }

  /** Every resource of every stack, with its reference. */
  public *all(): Generator<{ ref: ResourceRef; stack: SynthesizedStack; resource: TemplateResource }> {
    for (const stack of this.stacks) {
      for (const [logicalId, resource] of Object.entries(stack.template.Resources ?? {})) {
        yield { ref: { stackName: stack.stackName, logicalId }, stack, resource };
      }
    }
  }
}
