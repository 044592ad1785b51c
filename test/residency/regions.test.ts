import { isRegionName, regionOfArn, regionsReferenced } from '../../tools/residency/regions';

describe('regions a resource references (ARNs and region fields only)', () => {
  it('reads the region field of literal, joined and substituted ARNs', () => {
    expect(regionOfArn('arn:aws:logs:eu-central-1:123456789012:log-group:x')).toBe('eu-central-1');
    expect(regionOfArn('arn:aws:s3:::bucket')).toBeUndefined();
    expect(regionOfArn('prod-ap-south-1-vault')).toBeUndefined();
    expect(
      regionsReferenced({
        Target: {
          'Fn::Join': [
            '',
            ['arn:', { Ref: 'AWS::Partition' }, ':backup:ap-south-2:', { Ref: 'AWS::AccountId' }, ':backup-vault:v'],
          ],
        },
        Other: { 'Fn::Sub': 'arn:${AWS::Partition}:sqs:us-east-1:${AWS::AccountId}:q' },
      }),
    ).toEqual(['ap-south-2', 'us-east-1']);
  });

  it('reads fields named as regions, and nothing from names, tags or descriptions', () => {
    expect(
      regionsReferenced({
        BackupVaultName: 'bulwark-prod-ap-south-1-copies',
        Description: 'copies from eu-west-1',
        Tags: [{ Key: 'bulwark:deployment', Value: 'prod-ap-south-1' }],
        CopyActions: [{ DestinationRegion: 'eu-central-1', Region: 'not-a-region' }],
      }),
    ).toEqual(['eu-central-1']);
  });

  it('resolves Fn::FindInMap with the stack’s partition and region', () => {
    const ctx = {
      region: 'eu-west-1',
      mappings: { Apps: { aws: { id: 'arn:aws:serverlessrepo:us-east-1:297356227824:applications/Rotation' } } },
    };
    const props = { Location: { ApplicationId: { 'Fn::FindInMap': ['Apps', { Ref: 'AWS::Partition' }, 'id'] } } };
    expect(regionsReferenced(props, ctx)).toEqual(['us-east-1']);
    expect(regionsReferenced(props)).toEqual([]);
  });

  it('accepts only the exact shape of a region name', () => {
    expect(['ap-south-2', 'us-gov-west-1', 'cn-northwest-1'].every(isRegionName)).toBe(true);
    expect(['prod-ap-south-1', 'ap-south-1a', 'ap-south', ''].some(isRegionName)).toBe(false);
  });
});
