/**
 * Real bundling of one function (CDK tests run with bundling off): what a user sees during
 * `npm run synth`, and what ships in the asset.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { withoutProgress } from '../../bin/synth';

function bundle(sourceMap: boolean): { stderr: string; files: string[] } {
  const outdir = fs.mkdtempSync(path.join(os.tmpdir(), 'bundle-probe-'));
  try {
    const r = spawnSync(
      process.execPath,
      [
        require.resolve('tsx/cli'),
        path.join(__dirname, '..', 'support', 'bundle-probe.ts'),
        outdir,
        sourceMap ? 'source-map' : '',
      ],
      { encoding: 'utf8' },
    );
    expect(r.status).toBe(0);
    // Assets are staged once, at the app's outdir, for every stage.
    const assets = fs.readdirSync(outdir).filter((d) => d.startsWith('asset.'));
    expect(assets).toHaveLength(1);
    return { stderr: r.stderr, files: fs.readdirSync(path.join(outdir, assets[0] as string)).sort() };
  } finally {
    fs.rmSync(outdir, { recursive: true, force: true });
  }
}

describe('bundling a function for real', () => {
  it('prints nothing but the progress line npm run synth drops, and ships no source map', () => {
    const { stderr, files } = bundle(false);
    expect(stderr).toMatch(/^Bundling asset BundleProbe\/S\/Fn\/Default\/Code\/Stage\.\.\.$/m);
    expect(withoutProgress(stderr)).toBe('');
    expect(files).toEqual(['index.js']);
  });

  it('ships the source map only when asked', () => {
    expect(bundle(true).files).toEqual(['index.js', 'index.js.map']);
  });
});

describe('withoutProgress', () => {
  it('drops only whole progress lines', () => {
    const text =
      'Bundling asset a/B/Code/Stage...\n▲ [WARNING] something\nBundling asset failed: x\n\n' +
      'Successfully synthesized to /tmp/out\nSupply a stack id (a, b) to display its template.\n';
    expect(withoutProgress(text)).toBe('▲ [WARNING] something\nBundling asset failed: x\n');
  });
});
