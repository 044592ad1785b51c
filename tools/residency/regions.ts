/**
 * Where a resource's properties point, read the way AWS reads them: the region field of each ARN
 * (`arn:<partition>:<service>:<region>:...`) and the value of each property whose name says it is a
 * region (`Region`, `DestinationRegion`, `RegionName`, ...). Free text (names, tags, descriptions)
 * is never searched: a deployment called `prod-ap-south-1` tags every resource with that name, and
 * a regex over it would place a vault in ap-south-2 in ap-south-1.
 */
type Json = Record<string, unknown>;

/** The exact shape of an AWS region name (aws, gov, iso and China partitions). */
const REGION = /^(?:us|eu|ap|sa|ca|me|af|il|mx|cn)(?:-gov|-iso[a-z]?)?-[a-z]+-\d{1,2}$/;

export function isRegionName(s: unknown): s is string {
  return typeof s === 'string' && REGION.test(s);
}

/** What resolving `Fn::FindInMap` needs: the template's mappings and the stack's region. */
export interface TemplateContext {
  readonly mappings?: Readonly<Record<string, unknown>>;
  readonly region: string;
}

function partitionOf(region: string): string {
  if (region.startsWith('cn-')) return 'aws-cn';
  return region.includes('-gov-') ? 'aws-us-gov' : 'aws';
}

/** A mapping key: a literal, or the pseudo parameters a stack in `region` resolves itself. */
function mapKey(k: unknown, ctx: TemplateContext | undefined): string | undefined {
  if (typeof k === 'string') return k;
  const ref = (k as Json | null | undefined)?.['Ref'];
  if (ctx && ref === 'AWS::Partition') return partitionOf(ctx.region);
  if (ctx && ref === 'AWS::Region') return ctx.region;
  return undefined;
}

/**
 * A CloudFormation value as text, with every intrinsic that is not plain text replaced by an
 * opaque `${}` (which never contains a `:`), so that an ARN built with `Fn::Join` or `Fn::Sub`
 * keeps its field positions; `Fn::FindInMap` reads the mapping entry the stack's region selects.
 * Returns undefined for anything that is not a string.
 */
function textOf(v: unknown, ctx: TemplateContext | undefined): string | undefined {
  if (typeof v === 'string') return v;
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return undefined;
  const o = v as Json;
  const join = o['Fn::Join'];
  if (Array.isArray(join) && typeof join[0] === 'string' && Array.isArray(join[1])) {
    return (join[1] as unknown[]).map((p) => textOf(p, ctx) ?? '${}').join(join[0]);
  }
  const sub = o['Fn::Sub'];
  const template = Array.isArray(sub) ? sub[0] : sub;
  if (typeof template === 'string') return template.replace(/\$\{[^}]*\}/g, '${}');
  const find = o['Fn::FindInMap'];
  if (Array.isArray(find) && typeof find[0] === 'string') {
    const [first, second] = [mapKey(find[1], ctx), mapKey(find[2], ctx)];
    if (first === undefined || second === undefined) return undefined;
    const entry = (ctx?.mappings?.[find[0]] as Json | undefined)?.[first];
    const value = (entry as Json | undefined)?.[second];
    return typeof value === 'string' ? value : undefined;
  }
  return undefined;
}

/** The region field of an ARN, or undefined when `text` is no ARN or names no literal region. */
export function regionOfArn(text: string): string | undefined {
  if (!text.startsWith('arn:')) return undefined;
  const region = text.split(':')[3];
  return isRegionName(region) ? region : undefined;
}

const REGION_FIELD = /region(name)?$/i;

/**
 * Every region the properties name in an ARN or a region field, in order of first appearance. The
 * parts of a `Fn::Join` are walked too, so an ARN that is one part of a longer string still counts.
 */
export function regionsReferenced(properties: unknown, ctx?: TemplateContext): string[] {
  const found = new Set<string>();
  const walk = (v: unknown, key: string | undefined): void => {
    const text = textOf(v, ctx);
    if (text !== undefined) {
      if (key !== undefined && REGION_FIELD.test(key) && isRegionName(text)) found.add(text);
      const arnRegion = regionOfArn(text);
      if (arnRegion) found.add(arnRegion);
    }
    if (Array.isArray(v)) v.forEach((x) => walk(x, key));
    else if (v !== null && typeof v === 'object') {
      for (const [k, x] of Object.entries(v as Json)) walk(x, k.startsWith('Fn::') ? key : k);
    }
  };
  walk(properties, undefined);
  return [...found];
}
