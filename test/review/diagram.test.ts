import * as fs from 'node:fs';
import * as path from 'node:path';
import { mermaidBlock, parseFlowchart, renderDiagramSvg } from '../../tools/review/diagram';

const ARCHITECTURE = fs.readFileSync(path.join(__dirname, '..', '..', 'docs', 'ARCHITECTURE.md'), 'utf8');

interface Box {
  x: number;
  y: number;
  w: number;
  h: number;
}

function boxes(svg: string): Box[] {
  return [...svg.matchAll(/<rect class="node" x="([\d.]+)" y="([\d.]+)" width="(\d+)" height="(\d+)"/g)].map((m) => ({
    x: Number(m[1]),
    y: Number(m[2]),
    w: Number(m[3]),
    h: Number(m[4]),
  }));
}

describe('architecture diagram', () => {
  const source = mermaidBlock(ARCHITECTURE);

  it('reads every node, edge and subgraph of docs/ARCHITECTURE.md', () => {
    expect(source).toBeDefined();
    const d = parseFlowchart(source ?? '');
    const declared = new Set([...(source ?? '').matchAll(/\b(\w+)(?:\(\[|\[\(|\[)"/g)].map((m) => m[1]));
    declared.delete('subgraph');
    const subgraphs = [...(source ?? '').matchAll(/^\s*subgraph (\w+)/gm)].map((m) => m[1]);
    for (const s of subgraphs) declared.delete(s);
    expect(d.nodes.map((n) => n.id).sort()).toEqual([...declared].sort());
    expect(d.edges).toHaveLength((source ?? '').split('\n').filter((l) => /-->|-\.->/.test(l)).length);
    expect(d.subgraphs.map((s) => s.id)).toEqual(subgraphs);
    expect(d.edges.find((e) => e.from === 'api' && e.to === 'kms')).toEqual({
      from: 'api',
      to: 'kms',
      dashed: true,
      label: 'org_id context',
    });
    expect(d.nodes.find((n) => n.id === 'pg')).toMatchObject({ shape: 'store', subgraph: 'vpc' });
  });

  it('draws one self-contained SVG with every label and no overlapping boxes', () => {
    const d = parseFlowchart(source ?? '');
    const svg = renderDiagramSvg(d);
    expect(svg).toMatch(/^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
    expect(svg).not.toMatch(/<script|href=|url\((?!#arrow\))/);
    for (const n of d.nodes) for (const l of n.lines) expect(svg).toContain(`>${l.replace(/&/g, '&amp;')}</text>`);
    const b = boxes(svg);
    expect(b).toHaveLength(d.nodes.length);
    for (const [i, p] of b.entries()) {
      for (const q of b.slice(i + 1)) {
        const apart = p.x + p.w <= q.x || q.x + q.w <= p.x || p.y + p.h <= q.y || q.y + q.h <= p.y;
        expect(apart).toBe(true);
      }
    }
    expect(svg.match(/marker-end/g)).toHaveLength(d.edges.length);
  });

  it('refuses a line it does not understand, naming it', () => {
    expect(() => parseFlowchart('flowchart LR\n  a --> b\n  click a "https://example.com"')).toThrow(
      /line 3 is not understood: click a/,
    );
  });
});
