/**
 * The architecture diagram of docs/ARCHITECTURE.md (a mermaid `flowchart LR`) as inline SVG, so the
 * review page shows it offline and in print without running mermaid. Understands what that diagram
 * uses: nodes `id["label"]`, `id(["label"])` (stadium), `id[("label")]` (store), edges `-->` and
 * `-.->` with optional `|"label"|`, `subgraph id["label"] ... end` and `<br/>` line breaks.
 */
import { esc } from './escape';

export type NodeShape = 'box' | 'stadium' | 'store';

export interface DiagramNode {
  readonly id: string;
  readonly lines: readonly string[];
  readonly shape: NodeShape;
  readonly subgraph?: string;
}

export interface DiagramEdge {
  readonly from: string;
  readonly to: string;
  readonly label?: string;
  readonly dashed: boolean;
}

export interface Diagram {
  readonly nodes: readonly DiagramNode[];
  readonly edges: readonly DiagramEdge[];
  readonly subgraphs: readonly { readonly id: string; readonly label: string }[];
}

const NODE = String.raw`(\w+)\s*(?:(\(\[|\[\(|\[)"([^"]*)"(?:\]\)|\)\]|\]))?`;
const NODE_LINE = new RegExp(`^${NODE}$`);
const EDGE_LINE = new RegExp(String.raw`^${NODE}\s*(-->|-\.->)\s*(?:\|"([^"]*)"\|\s*)?${NODE}$`);
const SUBGRAPH = /^subgraph\s+(\w+)(?:\["([^"]*)"\])?$/;

/** Lines of at most 26 characters (what a box holds at the diagram's font size), broken at spaces. */
function wrap(text: string): string[] {
  const out: string[] = [];
  for (const word of text.split(' ')) {
    const last = out[out.length - 1];
    if (last !== undefined && last.length + 1 + word.length <= 26) out[out.length - 1] = `${last} ${word}`;
    else out.push(word);
  }
  return out;
}

/** The first ```mermaid block of a markdown text, or undefined. */
export function mermaidBlock(markdown: string): string | undefined {
  return /```mermaid\n([\s\S]*?)```/.exec(markdown)?.[1];
}

/** Parses the flowchart subset above; any other line is an error naming it (the doc changed shape). */
export function parseFlowchart(source: string): Diagram {
  const nodes = new Map<string, { id: string; lines: string[]; shape: NodeShape; subgraph?: string }>();
  const edges: DiagramEdge[] = [];
  const subgraphs: { id: string; label: string }[] = [];
  let current: string | undefined;
  const node = (id: string, open: string | undefined, label: string | undefined): void => {
    const known = nodes.get(id);
    if (known && label === undefined) return;
    const shape: NodeShape = open === '([' ? 'stadium' : open === '[(' ? 'store' : 'box';
    nodes.set(id, {
      id,
      lines: (label ?? id).split(/<br\s*\/?>/).flatMap(wrap),
      shape,
      ...((known?.subgraph ?? current) ? { subgraph: known?.subgraph ?? current } : {}),
    });
  };
  source.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('%%') || /^flowchart\s+LR$/.test(line) || /^direction\s+\w+$/.test(line)) return;
    const sub = SUBGRAPH.exec(line);
    if (sub) {
      current = sub[1] as string;
      subgraphs.push({ id: current, label: sub[2] ?? current });
      return;
    }
    if (line === 'end') {
      current = undefined;
      return;
    }
    const edge = EDGE_LINE.exec(line);
    if (edge) {
      const [, a, aOpen, aLabel, arrow, label, b, bOpen, bLabel] = edge;
      node(a as string, aOpen, aLabel);
      node(b as string, bOpen, bLabel);
      edges.push({ from: a as string, to: b as string, dashed: arrow === '-.->', ...(label ? { label } : {}) });
      return;
    }
    const n = NODE_LINE.exec(line);
    if (n) return node(n[1] as string, n[2], n[3]);
    throw new Error(`architecture diagram line ${i + 1} is not understood: ${line}`);
  });
  return { nodes: [...nodes.values()], edges, subgraphs };
}

interface Placed {
  readonly node: DiagramNode;
  readonly x: number;
  readonly y: number;
  readonly h: number;
}

const W = 170;
const COL = 230;
const LINE = 15;
const GAP = 16;

/** Layer per node: longest path from a source, with sources pulled right next to the nodes they share. */
function layers(nodes: readonly DiagramNode[], edges: readonly DiagramEdge[]): Map<string, number> {
  // Drop back edges (a verdict returned to its caller) so the rest is acyclic.
  const forward: DiagramEdge[] = [];
  const state = new Map<string, 'open' | 'done'>();
  const visit = (id: string): void => {
    state.set(id, 'open');
    for (const e of edges.filter((x) => x.from === id)) {
      if (state.get(e.to) === 'open') continue;
      forward.push(e);
      if (!state.has(e.to)) visit(e.to);
    }
    state.set(id, 'done');
  };
  for (const n of nodes) if (!state.has(n.id)) visit(n.id);
  const preds = (id: string) => forward.filter((e) => e.to === id).map((e) => e.from);
  const layer = new Map<string, number>();
  const asap = (fixed: ReadonlyMap<string, number>): void => {
    layer.clear();
    const get = (id: string, seen: Set<string>): number => {
      const known = layer.get(id) ?? fixed.get(id);
      if (known !== undefined) return known;
      seen.add(id);
      const l = Math.max(-1, ...preds(id).map((p) => get(p, seen))) + 1;
      layer.set(id, l);
      return l;
    };
    for (const [id, l] of fixed) layer.set(id, l);
    for (const n of nodes) get(n.id, new Set());
  };
  asap(new Map());
  const fixed = new Map<string, number>();
  for (const n of nodes) {
    if (preds(n.id).length > 0) continue;
    const shared = forward.filter((e) => e.from === n.id && preds(e.to).length > 1).map((e) => layer.get(e.to) ?? 1);
    fixed.set(n.id, shared.length > 0 ? Math.max(0, Math.min(...shared) - 1) : 0);
  }
  asap(fixed);
  return layer;
}

/** Connected groups of nodes, in order of first appearance. */
function components(d: Diagram): DiagramNode[][] {
  const group = new Map<string, number>();
  const out: DiagramNode[][] = [];
  for (const n of d.nodes) {
    if (group.has(n.id)) continue;
    const members: DiagramNode[] = [];
    const stack = [n.id];
    group.set(n.id, out.length);
    while (stack.length > 0) {
      const id = stack.pop() as string;
      members.push(d.nodes.find((x) => x.id === id) as DiagramNode);
      for (const e of d.edges) {
        const other = e.from === id ? e.to : e.to === id ? e.from : undefined;
        if (other !== undefined && !group.has(other)) {
          group.set(other, out.length);
          stack.push(other);
        }
      }
    }
    out.push(d.nodes.filter((x) => members.includes(x)));
  }
  return out;
}

function shapeSvg(p: Placed, filled: boolean): string {
  const fill = filled ? '#eaf2fb' : '#ffffff';
  const base = `class="node" x="${p.x}" y="${p.y}" width="${W}" height="${p.h}" fill="${fill}" stroke="#445566"`;
  const text = p.node.lines
    .map(
      (l, i) =>
        `<text x="${p.x + W / 2}" y="${p.y + 14 + (p.node.shape === 'store' ? 4 : 0) + i * LINE}" text-anchor="middle"${
          i === 0 ? ' font-weight="600"' : ''
        }>${esc(l)}</text>`,
    )
    .join('');
  if (p.node.shape === 'store') {
    const cx = p.x + W / 2;
    return `<rect ${base} rx="8"/><ellipse cx="${cx}" cy="${p.y + 4}" rx="${W / 2}" ry="4" fill="${fill}" stroke="#445566"/>${text}`;
  }
  return `<rect ${base} rx="${p.node.shape === 'stadium' ? p.h / 2 : 4}"/>${text}`;
}

/** Renders the diagram as one self-contained SVG element (no script, no external reference). */
export function renderDiagramSvg(d: Diagram): string {
  const placed = new Map<string, Placed>();
  const frames: string[] = [];
  let top = 10;
  let width = 0;
  for (const members of components(d)) {
    const ids = new Set(members.map((m) => m.id));
    const compEdges = d.edges.filter((e) => ids.has(e.from));
    const layer = layers(members, compEdges);
    const columns: DiagramNode[][] = [];
    for (const m of members) (columns[layer.get(m.id) ?? 0] ??= []).push(m);
    // One sweep left to right: order each column by where its predecessors sit.
    const order = new Map<string, number>();
    columns.forEach((col) => {
      const key = (n: DiagramNode) => {
        const p = compEdges.filter((e) => e.to === n.id && order.has(e.from)).map((e) => order.get(e.from) as number);
        return p.length ? p.reduce((a, b) => a + b, 0) / p.length : Number.MAX_SAFE_INTEGER;
      };
      col.sort((a, b) => key(a) - key(b)).forEach((n, i) => order.set(n.id, i));
    });
    // Every member of the component sits inside one subgraph: draw its frame and label.
    const sub = members.every((m) => m.subgraph && m.subgraph === members[0]?.subgraph)
      ? d.subgraphs.find((s) => s.id === members[0]?.subgraph)
      : undefined;
    const left = sub ? 30 : 10;
    const start = top + (sub ? 28 : 0);
    let bottom = start;
    columns.forEach((col, c) => {
      let y = start;
      for (const n of col) {
        const h = n.lines.length * LINE + 12;
        placed.set(n.id, { node: n, x: left + c * COL, y, h });
        y += h + GAP;
      }
      bottom = Math.max(bottom, y);
    });
    const right = left + (columns.length - 1) * COL + W;
    if (sub) {
      frames.push(
        `<rect x="${left - 20}" y="${top}" width="${right - left + 40}" height="${bottom - top}" fill="none" stroke="#8899aa" stroke-dasharray="6 4" rx="8"/>` +
          `<text x="${left - 10}" y="${top + 18}" font-style="italic">${esc(sub.label)}</text>`,
      );
    }
    width = Math.max(width, right + 30);
    top = bottom + 30;
  }
  const edges = d.edges.map((e) => {
    const a = placed.get(e.from) as Placed;
    const b = placed.get(e.to) as Placed;
    const dash = e.dashed ? ' stroke-dasharray="5 4"' : '';
    let path: string;
    let mid: [number, number];
    if (b.x > a.x) {
      const [x1, y1, x2, y2] = [a.x + W, a.y + a.h / 2, b.x, b.y + b.h / 2];
      const dx = (x2 - x1) / 2;
      path = `M${x1},${y1} C${x1 + dx},${y1} ${x2 - dx},${y2} ${x2},${y2}`;
      mid = [(x1 + x2) / 2, (y1 + y2) / 2];
    } else {
      // Back to an earlier column (a verdict returned): loop under both boxes.
      const [x1, y1, x2, y2] = [a.x + W / 2, a.y + a.h, b.x + W / 2 + 20, b.y + b.h];
      const low = Math.max(y1, y2) + 30;
      path = `M${x1},${y1} C${x1},${low} ${x2},${low} ${x2},${y2}`;
      mid = [(x1 + x2) / 2, low - 8];
    }
    const label = e.label
      ? `<text x="${mid[0]}" y="${mid[1] - 3}" text-anchor="middle" class="edge-label">${esc(e.label)}</text>`
      : '';
    return `<path d="${path}" fill="none" stroke="#556677"${dash} marker-end="url(#arrow)"/>${label}`;
  });
  const shaded = shadedSubgraphs(d);
  const boxes = [...placed.values()].map((p) =>
    shapeSvg(p, p.node.subgraph !== undefined && shaded.includes(p.node.subgraph)),
  );
  const legend = d.subgraphs
    .filter((s) => shaded.includes(s.id))
    .map(
      (s) =>
        `<rect x="10" y="${top}" width="14" height="10" fill="#eaf2fb" stroke="#445566"/><text x="30" y="${top + 9}">${esc(s.label)}</text>`,
    )
    .join('');
  const height = top + (legend ? 20 : 0);
  return (
    `<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-label="Bulwark architecture" viewBox="0 0 ${width} ${height}" width="100%" font-family="system-ui, sans-serif" font-size="11">` +
    `<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#556677"/></marker></defs>` +
    `<style>.edge-label{fill:#334455;paint-order:stroke;stroke:#fff;stroke-width:3px}</style>` +
    frames.join('') +
    edges.join('') +
    boxes.join('') +
    legend +
    '</svg>'
  );
}

/** Subgraphs drawn as shading (their nodes share a component with others) rather than as a frame. */
function shadedSubgraphs(d: Diagram): string[] {
  return d.subgraphs
    .map((s) => s.id)
    .filter((id) => {
      const comp = components(d).find((c) => c.some((n) => n.subgraph === id)) ?? [];
      return comp.some((n) => n.subgraph !== id);
    });
}
