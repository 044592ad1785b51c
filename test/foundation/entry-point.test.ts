import { spawnSync } from 'node:child_process';
import { CONTROL_TOWER_GATE_CONTEXT } from '../../lib/compliance';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { renderSummary, summarise } from '../../tools/compliance/summary';

const ROOT = path.join(__dirname, '..', '..');

/** Runs the real entry point the way the CDK CLI does: context in CDK_CONTEXT_JSON, output in CDK_OUTDIR. */
function runApp(context: Record<string, unknown>, env: Record<string, string> = {}) {
  const outdir = fs.mkdtempSync(path.join(os.tmpdir(), 'bulwark-app-'));
  const cdkJson = JSON.parse(fs.readFileSync(path.join(ROOT, 'cdk.json'), 'utf8')) as { context: object };
  const result = spawnSync(process.execPath, [require.resolve('tsx/cli'), 'bin/bulwark.ts'], {
    cwd: ROOT,
    encoding: 'utf8',
    env: {
      ...process.env,
      ...env,
      CDK_OUTDIR: outdir,
      // cfn-guard costs tens of CPU seconds per deployment: test/compliance/cfn-guard.test.ts covers that
      // gate, and `npm run synth` (CI) runs it through this entry point.
      CDK_CONTEXT_JSON: JSON.stringify({
        ...cdkJson.context,
        'aws:cdk:bundling-stacks': [],
        [CONTROL_TOWER_GATE_CONTEXT]: false,
        ...context,
      }),
    },
  });
  return { ...result, outdir };
}

describe('bin/bulwark.ts', () => {
  it('synthesizes only the selected deployment and prints a summary from cdk.out', () => {
    const r = runApp({ deployments: 'prod-eu', account: '123456789012' });
    expect(r.stderr).not.toMatch(/Error/);
    expect(r.status).toBe(0);
    const summary = summarise(r.outdir);
    expect(summary.map((d) => d.deployment)).toEqual(['prod-eu']);
    const eu = summary[0];
    expect(eu).toMatchObject({ region: 'eu-west-1', residency: 'eu', account: '123456789012', findings: 0 });
    expect(eu?.packs).toEqual([
      'AwsSolutions',
      'HIPAA.Security',
      'NIST.800.53.R5',
      'PCI.DSS.321',
      'Serverless',
      'Bulwark',
      'Bulwark-Residency',
    ]);
    expect(eu?.stacks.every((s) => s.resources > 0)).toBe(true);
    const text = renderSummary(summary);
    expect(text).toMatch(/^Bulwark synth: 1 deployment\(s\)/);
    expect(text).toMatch(/prod-eu-Operations\s+eu-west-1\s+\d+ resources/);
    expect(text).not.toMatch(/placeholder account/);
  });

  it('fails before building anything when the configuration is invalid, naming deployment and field', () => {
    const r = runApp({}, { BULWARK_ACCOUNT_PROD_EU: 'not-an-account' });
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('prod-eu.account: must be a 12-digit AWS account id');
    expect(fs.readdirSync(r.outdir)).toEqual([]);
  });

  it('refuses an unknown deployment selection', () => {
    const r = runApp({ deployments: 'prod-moon' });
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('deployments: prod-moon is not in the catalogue');
  });
});
