/** Per Lambda function: its role and every policy statement attached to it, read from a synthesized template. */
type Json = Record<string, unknown>;

export interface StatementSummary {
  readonly effect: string;
  readonly actions: readonly string[];
  readonly resources: readonly string[];
  readonly condition?: unknown;
}

export interface FunctionIamSummary {
  readonly stack: string;
  readonly path: string;
  readonly managedPolicies: readonly string[];
  readonly statements: readonly StatementSummary[];
}

function asArray(v: unknown): unknown[] {
  return Array.isArray(v) ? v : v === undefined ? [] : [v];
}

/** Compact text for an intrinsic: `{"Fn::GetAtt":["Bucket","Arn"]}` becomes `Bucket.Arn`. */
export function show(v: unknown): string {
  if (typeof v === 'string') return v;
  if (v && typeof v === 'object') {
    const o = v as Json;
    if ('Ref' in o) return `${String(o['Ref'])}`;
    if ('Fn::GetAtt' in o) return asArray(o['Fn::GetAtt']).map(String).join('.');
    if ('Fn::Join' in o) {
      const [sep, parts] = asArray(o['Fn::Join']) as [string, unknown[]];
      return asArray(parts)
        .map(show)
        .join(sep ?? '');
    }
    if ('Fn::Sub' in o) return show(asArray(o['Fn::Sub'])[0]);
    if ('Fn::ImportValue' in o) return `import(${show(o['Fn::ImportValue'])})`;
  }
  return JSON.stringify(v);
}

function isRefTo(v: unknown, id: string): boolean {
  const o = (v ?? {}) as Json;
  return o['Ref'] === id || (Array.isArray(o['Fn::GetAtt']) && (o['Fn::GetAtt'] as unknown[])[0] === id);
}

function statements(doc: unknown): StatementSummary[] {
  return (asArray(((doc ?? {}) as Json)['Statement']) as Json[]).map((st) => ({
    effect: String(st['Effect']),
    actions: asArray(st['Action']).map(show),
    resources: asArray(st['Resource']).map(show),
    ...(st['Condition'] ? { condition: st['Condition'] } : {}),
  }));
}

/**
 * One entry per Lambda function of a synthesized template, headed by its construct path: the
 * template's `aws:cdk:path` metadata (synthesize with `aws:cdk:enable-path-metadata`), or
 * `<stack>/<logical id>` when the template carries none.
 */
export function iamSummary(stackName: string, template: { Resources?: Record<string, Json> }): FunctionIamSummary[] {
  const resources = template.Resources ?? {};
  const out: FunctionIamSummary[] = [];
  for (const [logicalId, fn] of Object.entries(resources)) {
    if (fn['Type'] !== 'AWS::Lambda::Function') continue;
    const props = (fn['Properties'] ?? {}) as Json;
    const cdkPath = ((fn['Metadata'] ?? {}) as Json)['aws:cdk:path'];
    const path = typeof cdkPath === 'string' ? cdkPath : `${stackName}/${logicalId}`;
    const roleId = Object.keys(resources).find((id) => isRefTo(props['Role'], id));
    const role = roleId ? ((resources[roleId]?.['Properties'] ?? {}) as Json) : {};
    const attached = Object.values(resources).filter(
      (r) =>
        (r['Type'] === 'AWS::IAM::Policy' || r['Type'] === 'AWS::IAM::ManagedPolicy') &&
        roleId !== undefined &&
        asArray(((r['Properties'] ?? {}) as Json)['Roles']).some((x) => isRefTo(x, roleId)),
    );
    out.push({
      stack: stackName,
      path,
      managedPolicies: asArray(role['ManagedPolicyArns']).map(show),
      statements: [
        ...asArray(role['Policies']).flatMap((p) => statements((p as Json)['PolicyDocument'])),
        ...attached.flatMap((p) => statements(((p['Properties'] ?? {}) as Json)['PolicyDocument'])),
      ],
    });
  }
  return out;
}
