/**
 * Evaluates a CloudWatch Logs JSON filter pattern (`{ ... }`) against a JSON log event, for the
 * subset the trail alarms use: `$.a.b[0].c` selectors, `=` / `!=` with quoted strings (`*` is a
 * wildcard), `NOT EXISTS`, `IS NULL`, `&&`, `||` and parentheses. Mixing `&&` and `||` without
 * parentheses is refused rather than guessed. A selector that matches nothing satisfies no
 * comparison (not even `!=`), so patterns must say `NOT EXISTS` where they mean it.
 */

type Node =
  | { readonly op: '&&' | '||'; readonly terms: readonly Node[] }
  | { readonly op: '=' | '!='; readonly path: string; readonly value: string }
  | { readonly op: 'NOT EXISTS' | 'IS NULL'; readonly path: string };

const TOKEN = /\s*(\(|\)|&&|\|\||!=|=|NOT EXISTS|IS NULL|\$[A-Za-z0-9_.[\]]+|"(?:[^"\\]|\\.)*")/y;

function tokenize(src: string): string[] {
  const out: string[] = [];
  TOKEN.lastIndex = 0;
  while (TOKEN.lastIndex < src.length) {
    if (/^\s*$/.test(src.slice(TOKEN.lastIndex))) break;
    const at = TOKEN.lastIndex;
    const m = TOKEN.exec(src);
    if (!m?.[1]) throw new Error(`filter pattern: cannot read at ${at}: ${src.slice(at, at + 30)}`);
    out.push(m[1]);
  }
  return out;
}

export function parseFilterPattern(pattern: string): Node {
  const body = /^\s*\{(.*)\}\s*$/s.exec(pattern)?.[1];
  if (body === undefined) throw new Error(`not a JSON filter pattern: ${pattern}`);
  const tokens = tokenize(body);
  let i = 0;
  const next = (): string => {
    const t = tokens[i++];
    if (t === undefined) throw new Error('filter pattern ends early');
    return t;
  };
  const expr = (): Node => {
    const terms = [term()];
    let op: '&&' | '||' | undefined;
    while (tokens[i] === '&&' || tokens[i] === '||') {
      const o = next() as '&&' | '||';
      if (op && o !== op) throw new Error('mixed && and || without parentheses');
      op = o;
      terms.push(term());
    }
    return terms.length === 1 ? terms[0]! : { op: op!, terms };
  };
  const term = (): Node => {
    const t = next();
    if (t === '(') {
      const inner = expr();
      if (next() !== ')') throw new Error('missing )');
      return inner;
    }
    if (!t.startsWith('$')) throw new Error(`expected a selector, got ${t}`);
    const op = next();
    if (op === 'NOT EXISTS' || op === 'IS NULL') return { op, path: t };
    if (op !== '=' && op !== '!=') throw new Error(`unsupported operator ${op}`);
    const v = next();
    if (!v.startsWith('"')) throw new Error(`expected a quoted value, got ${v}`);
    return { op, path: t, value: JSON.parse(v) as string };
  };
  const node = expr();
  if (i !== tokens.length) throw new Error(`trailing tokens: ${tokens.slice(i).join(' ')}`);
  return node;
}

function select(event: unknown, path: string): { found: boolean; value: unknown } {
  let cur: unknown = event;
  for (const part of path.slice(2).split('.')) {
    const m = /^([^[]+)((?:\[\d+\])*)$/.exec(part);
    if (!m) throw new Error(`bad selector ${path}`);
    const steps: (string | number)[] = [m[1]!, ...[...m[2]!.matchAll(/\[(\d+)\]/g)].map((x) => Number(x[1]))];
    for (const s of steps) {
      if (cur === null || typeof cur !== 'object' || !(s in (cur as object))) return { found: false, value: undefined };
      cur = (cur as Record<string | number, unknown>)[s];
    }
  }
  return { found: true, value: cur };
}

function like(value: string, pattern: string): boolean {
  const re = new RegExp(
    `^${pattern
      .split('*')
      .map((p) => p.replace(/[.+?^${}()|[\]\\]/g, '\\$&'))
      .join('.*')}$`,
    's',
  );
  return re.test(value);
}

function evaluate(node: Node, event: unknown): boolean {
  switch (node.op) {
    case '&&':
      return node.terms.every((t) => evaluate(t, event));
    case '||':
      return node.terms.some((t) => evaluate(t, event));
    case 'NOT EXISTS':
      return !select(event, node.path).found;
    case 'IS NULL':
      return select(event, node.path).value === null;
    default: {
      const { found, value } = select(event, node.path);
      if (!found || value === null || typeof value === 'object') return false;
      const matches = like(String(value), node.value);
      return node.op === '=' ? matches : !matches;
    }
  }
}

/** Whether a CloudWatch Logs JSON filter pattern matches the event. */
export function filterMatches(pattern: string, event: unknown): boolean {
  return evaluate(parseFilterPattern(pattern), event);
}
