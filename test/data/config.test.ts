import { parseDeployment } from '../../lib/config';
import { EU, shippedInput } from '../support/catalogue';

const base = shippedInput(EU);

describe('data tier configuration', () => {
  it('defaults sizing when a deployment says nothing', () => {
    expect(parseDeployment('prod-eu', base).data).toEqual({
      vpcCidr: '10.40.0.0/16',
      databaseInstanceType: 'r6g.large',
      allocatedStorageGiB: 100,
    });
  });

  it('accepts overrides', () => {
    const d = parseDeployment('staging-eu', {
      ...base,
      data: { vpcCidr: '10.50.0.0/18', databaseInstanceType: 't4g.medium' },
    });
    expect(d.data).toMatchObject({
      vpcCidr: '10.50.0.0/18',
      databaseInstanceType: 't4g.medium',
      allocatedStorageGiB: 100,
    });
  });

  it.each([
    [{ vpcCidr: '10.0.0.0/8' }, 'prod-eu.data.vpcCidr'],
    [{ databaseInstanceType: 'db.r6g.large' }, 'prod-eu.data.databaseInstanceType'],
    [{ allocatedStorageGiB: 10 }, 'prod-eu.data.allocatedStorageGiB'],
    // The Valkey cache is gone (docs/rate-limits.md): a catalogue still sizing it is told so, not ignored.
    [{ cacheNodeType: 'cache.r7g.large' }, 'cacheNodeType'],
    [{ natGateways: 1 }, 'prod-eu.data'],
  ])('rejects %j naming %s', (data, field) => {
    expect(() => parseDeployment('prod-eu', { ...base, data })).toThrow(field);
  });
});
