/**
 * Offline comparison of two synthesized cloud assemblies (`cdk.out` directories), stack by stack:
 * resources added, removed and changed with the property paths that changed, IAM and resource
 * policy changes first. Unlike `cdk diff`, it reads no deployed stack, so it needs no credentials.
 * Asset hashes (64 hex digits in S3 keys, image tags, asset metadata) are normalised, so a rebuilt
 * bundle whose template is otherwise unchanged shows no difference.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

type Json = Record<string, unknown>;

export interface StackTemplate {
  /** `<deployment>/<stack id>` for a stack in a stage, else the stack's display name. */
  readonly name: string;
  readonly template: Json;
}

/** Every stack template of an assembly, nested stage assemblies included, by display name. */
export function readAssembly(dir: string): Map<string, StackTemplate> {
  const out = new Map<string, StackTemplate>();
  const manifestFile = path.join(dir, 'manifest.json');
  if (!fs.existsSync(manifestFile)) throw new Error(`${dir} holds no cloud assembly (no manifest.json)`);
  const manifest = JSON.parse(fs.readFileSync(manifestFile, 'utf8')) as { artifacts?: Record<string, Json> };
  for (const [id, artifact] of Object.entries(manifest.artifacts ?? {})) {
    const props = (artifact['properties'] ?? {}) as Json;
    if (artifact['type'] === 'aws:cloudformation:stack') {
      const name = typeof artifact['displayName'] === 'string' ? artifact['displayName'] : id;
      const template = JSON.parse(fs.readFileSync(path.join(dir, String(props['templateFile'])), 'utf8')) as Json;
      out.set(name, { name, template });
    } else if (artifact['type'] === 'cdk:cloud-assembly' && typeof props['directoryName'] === 'string') {
      for (const [name, stack] of readAssembly(path.join(dir, props['directoryName']))) out.set(name, stack);
    }
  }
  return out;
}

const ASSET_HASH = /[0-9a-f]{64}/g;

/** The value with every asset hash replaced by `<asset>`. */
export function normaliseAssets(v: unknown): unknown {
  if (typeof v === 'string') return v.replace(ASSET_HASH, '<asset>');
  if (Array.isArray(v)) return v.map(normaliseAssets);
  if (v !== null && typeof v === 'object') {
    return Object.fromEntries(
      Object.entries(v as Json).map(([k, x]) => [k.replace(ASSET_HASH, '<asset>'), normaliseAssets(x)]),
    );
  }
  return v;
}

export interface PathChange {
  /** `Properties.PolicyDocument.Statement[1].Action`; `` for the whole value. */
  readonly path: string;
  readonly before?: unknown;
  readonly after?: unknown;
}

/** Leaf-level differences between two JSON values (arrays compared by position). */
export function diffValues(a: unknown, b: unknown, at = ''): PathChange[] {
  if (JSON.stringify(a) === JSON.stringify(b)) return [];
  const objects = (x: unknown) => x !== null && typeof x === 'object';
  if (Array.isArray(a) && Array.isArray(b)) {
    const out: PathChange[] = [];
    for (let i = 0; i < Math.max(a.length, b.length); i++) {
      const p = `${at}[${i}]`;
      if (i >= a.length) out.push({ path: p, after: b[i] });
      else if (i >= b.length) out.push({ path: p, before: a[i] });
      else out.push(...diffValues(a[i], b[i], p));
    }
    return out;
  }
  if (objects(a) && objects(b) && !Array.isArray(a) && !Array.isArray(b)) {
    const out: PathChange[] = [];
    const ao = a as Json;
    const bo = b as Json;
    for (const k of [...new Set([...Object.keys(ao), ...Object.keys(bo)])]) {
      const p = at ? `${at}.${k}` : k;
      if (!(k in bo)) out.push({ path: p, before: ao[k] });
      else if (!(k in ao)) out.push({ path: p, after: bo[k] });
      else out.push(...diffValues(ao[k], bo[k], p));
    }
    return out;
  }
  return [{ path: at, before: a, after: b }];
}

/** Property names that hold or decide access policy in any resource type (a function's Role too). */
const POLICY_PATH =
  /(^|\.)(PolicyDocument|KeyPolicy|AssumeRolePolicyDocument|ManagedPolicyArns|Policies|AccessPolicy|ResourcePolicy|Policy|PolicyText|Principal|PermissionsBoundary|SourceArn|Role)(\.|\[|$)/;

/** An IAM or resource-policy change: what a reviewer must read first. */
export function isPolicyChange(type: string, changePath: string): boolean {
  return (
    /^AWS::IAM::/.test(type) ||
    type === 'AWS::Lambda::Permission' ||
    /Policy$/.test(type) ||
    POLICY_PATH.test(changePath)
  );
}

export interface ResourceDiff {
  readonly logicalId: string;
  readonly type: string;
  readonly kind: 'added' | 'removed' | 'changed';
  readonly changes: readonly PathChange[];
  /** The resource is an access policy, or a change touches one. */
  readonly policy: boolean;
}

export interface StackDiff {
  readonly stack: string;
  readonly kind: 'added' | 'removed' | 'changed';
  readonly resources: readonly ResourceDiff[];
  /** Differences outside Resources (Outputs, Parameters, Conditions, Mappings, Rules, ...). */
  readonly other: readonly PathChange[];
}

function resourcesOf(t: Json): Record<string, Json> {
  return (t['Resources'] ?? {}) as Record<string, Json>;
}

/** Differences between two templates of one stack, asset hashes normalised. */
export function diffTemplates(before: Json, after: Json): { resources: ResourceDiff[]; other: PathChange[] } {
  const a = normaliseAssets(before) as Json;
  const b = normaliseAssets(after) as Json;
  const ra = resourcesOf(a);
  const rb = resourcesOf(b);
  const resources: ResourceDiff[] = [];
  for (const id of [...new Set([...Object.keys(ra), ...Object.keys(rb)])].sort()) {
    const x = ra[id];
    const y = rb[id];
    const type = String((y ?? x)?.['Type']);
    if (!x || !y) {
      const kind = x ? 'removed' : 'added';
      resources.push({ logicalId: id, type, kind, changes: [], policy: isPolicyChange(type, '') });
      continue;
    }
    const changes = diffValues(x, y);
    if (changes.length === 0) continue;
    resources.push({
      logicalId: id,
      type,
      kind: 'changed',
      changes,
      policy: changes.some((c) => isPolicyChange(type, c.path)),
    });
  }
  const { Resources: _a, ...restA } = a;
  const { Resources: _b, ...restB } = b;
  return { resources, other: diffValues(restA, restB) };
}

export function diffAssemblies(dirA: string, dirB: string): StackDiff[] {
  const a = readAssembly(dirA);
  const b = readAssembly(dirB);
  const out: StackDiff[] = [];
  for (const name of [...new Set([...a.keys(), ...b.keys()])].sort()) {
    const x = a.get(name);
    const y = b.get(name);
    const d = diffTemplates(x?.template ?? {}, y?.template ?? {});
    const kind = !x ? 'added' : !y ? 'removed' : 'changed';
    if (kind === 'changed' && d.resources.length === 0 && d.other.length === 0) continue;
    out.push({ stack: name, kind, resources: d.resources, other: kind === 'changed' ? d.other : [] });
  }
  return out;
}

function show(v: unknown): string {
  if (v === undefined) return '(absent)';
  const s = JSON.stringify(v);
  return s.length > 160 ? `${s.slice(0, 157)}...` : s;
}

function changeLines(changes: readonly PathChange[], indent: string): string[] {
  return changes.map((c) => {
    const p = c.path || '(value)';
    if (c.before === undefined) return `${indent}+ ${p}: ${show(c.after)}`;
    if (c.after === undefined) return `${indent}- ${p}: ${show(c.before)}`;
    return `${indent}~ ${p}: ${show(c.before)} -> ${show(c.after)}`;
  });
}

const MARK = { added: '+', removed: '-', changed: '~' } as const;

/** Text report: per stack, IAM/policy changes first (marked [IAM]), then the rest; a summary line last. */
export function renderDiff(diffs: readonly StackDiff[]): string {
  const lines: string[] = [];
  for (const d of diffs) {
    lines.push(`${MARK[d.kind]} stack ${d.stack}${d.kind === 'changed' ? '' : ` (${d.kind})`}`);
    const ordered = [...d.resources.filter((r) => r.policy), ...d.resources.filter((r) => !r.policy)];
    for (const r of ordered) {
      lines.push(`  ${r.policy ? '[IAM] ' : ''}${MARK[r.kind]} ${r.type} ${r.logicalId}`);
      const policyFirst = [
        ...r.changes.filter((c) => isPolicyChange(r.type, c.path)),
        ...r.changes.filter((c) => !isPolicyChange(r.type, c.path)),
      ];
      lines.push(...changeLines(policyFirst, '      '));
    }
    if (d.other.length > 0) {
      lines.push('  template sections outside Resources:');
      lines.push(...changeLines(d.other, '      '));
    }
  }
  const all = diffs.flatMap((d) => d.resources);
  const count = (k: ResourceDiff['kind']) => all.filter((r) => r.kind === k).length;
  lines.push(
    diffs.length === 0
      ? 'no differences (asset hashes normalised)'
      : `${diffs.length} stack(s) differ: ${count('added')} resource(s) added, ${count('removed')} removed, ` +
          `${count('changed')} changed; ${all.filter((r) => r.policy).length} with IAM or resource-policy changes`,
  );
  return lines.join('\n');
}
