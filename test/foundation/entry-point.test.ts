import { spawnSync } from 'node:child_process';
import { CONTROL_TOWER_GATE_CONTEXT } from '../../lib/compliance';
import { envKey } from '../../lib/config';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { renderSummary, summarise } from '../../tools/compliance/summary';
import { EU } from '../support/catalogue';

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
    const r = runApp({ deployments: EU.name });
    expect(r.stderr).not.toMatch(/Error/);
    expect(r.status).toBe(0);
    const summary = summarise(r.outdir);
    expect(summary.map((d) => d.deployment)).toEqual([EU.name]);
    const eu = summary[0];
    expect(eu).toMatchObject({ region: EU.region, residency: EU.residency, account: '000000000000', findings: 0 });
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
    expect(text).toMatch(new RegExp(`${EU.name}-Operations\\s+${EU.region}\\s+\\d+ resources`));
    // The shipped catalogue is all placeholders: the summary names every one of them.
    expect(text).toContain(
      'note: placeholders in account, edge.domainName, edge.certificateArn, alarms.email; not deployable',
    );
  });

  it('refuses the placeholders once a real account is passed, naming each field, before building anything', () => {
    const r = runApp({ deployments: EU.name, account: '123456789012' });
    expect(r.status).toBe(1);
    for (const field of ['edge.certificateArn', 'edge.domainName', 'alarms.email']) {
      expect(r.stderr).toContain(`${EU.name}.${field}: `);
    }
    expect(fs.readdirSync(r.outdir)).toEqual([]);
  });

  it('fails before building anything when the configuration is invalid, naming deployment and field', () => {
    const r = runApp({}, { [envKey(EU.name)]: 'not-an-account' });
    expect(r.status).toBe(1);
    expect(r.stderr).toContain(
      `${EU.name}.account: must be a 12-digit AWS account id (from environment ${envKey(EU.name)})`,
    );
    expect(fs.readdirSync(r.outdir)).toEqual([]);
  });

  it('refuses an unknown deployment selection', () => {
    const r = runApp({ deployments: 'prod-moon' });
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('deployments: prod-moon is not in the catalogue');
  });
});
