import { BulwarkStage } from '../../lib/bulwark-stage';
import { CATALOGUE, ConfigError, parseDeployment, type DeploymentInput } from '../../lib/config';
import { testApp } from '../support/cdk';

const prodEu = CATALOGUE['prod-eu'] as DeploymentInput;
const parse = (patch: Partial<DeploymentInput>) => parseDeployment('prod-eu', { ...prodEu, ...patch });

describe('tenantFiles.requireMalwareScan', () => {
  it('defaults to off, and is a boolean', () => {
    expect(parse({}).tenantFiles).toEqual({ requireMalwareScan: false });
    expect(parse({ tenantFiles: { requireMalwareScan: true } }).tenantFiles.requireMalwareScan).toBe(true);
    expect(() => parse({ tenantFiles: { requireMalwareScan: 'yes' as unknown as boolean } })).toThrow(ConfigError);
    expect(() => parse({ tenantFiles: { scan: true } as unknown as { requireMalwareScan: boolean } })).toThrow(
      ConfigError,
    );
  });

  it("decides whether the quarantine checker waits for GuardDuty's verdict", () => {
    const app = testApp();
    const off = new BulwarkStage(app, { deployment: parse({}) });
    const on = new BulwarkStage(app, {
      deployment: { ...parse({ tenantFiles: { requireMalwareScan: true } }), name: 'prod-eu-scan' },
    });
    expect(off.tenantKeys.files.checker?.rules).toHaveLength(1);
    expect(on.tenantKeys.files.checker?.rules).toHaveLength(2);
  });
});
