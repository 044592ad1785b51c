import { BulwarkStage } from '../../lib/bulwark-stage';
import {
  CATALOGUE,
  ConfigError,
  deploysAccountBaseline,
  parseDeployment,
  type DeploymentInput,
} from '../../lib/config';
import { testApp } from '../support/cdk';

const prodEu = CATALOGUE['prod-eu'] as DeploymentInput;
const parse = (patch: Partial<DeploymentInput>) => parseDeployment('prod-eu', { ...prodEu, ...patch });

describe('accountBaseline', () => {
  it('defaults to on in production and off elsewhere; an explicit value wins', () => {
    expect(deploysAccountBaseline(parse({}))).toBe(true);
    expect(deploysAccountBaseline(parse({ environment: 'staging' }))).toBe(false);
    expect(deploysAccountBaseline(parse({ environment: 'development' }))).toBe(false);
    expect(deploysAccountBaseline(parse({ accountBaseline: false }))).toBe(false);
    expect(deploysAccountBaseline(parse({ environment: 'staging', accountBaseline: true }))).toBe(true);
  });

  it('is a boolean', () => {
    expect(() => parse({ accountBaseline: 'yes' as unknown as boolean })).toThrow(ConfigError);
  });

  it('decides whether the stage has an AccountBaseline stack', () => {
    const app = testApp();
    const on = new BulwarkStage(app, { deployment: parse({}) });
    const off = new BulwarkStage(app, { deployment: { ...parse({ accountBaseline: false }), name: 'prod-eu-org' } });
    expect(on.accountBaseline?.node.id).toBe('AccountBaseline');
    expect(off.accountBaseline).toBeUndefined();
    expect(off.node.tryFindChild('AccountBaseline')).toBeUndefined();
    // The backup region's baseline comes and goes with it.
    expect(on.backupRegionBaseline?.region).toBe(on.deployment.backupRegion);
    expect(off.backupRegionBaseline).toBeUndefined();
  });
});
