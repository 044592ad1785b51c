import { Tags } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import { TAG_KEY_CLASS, TENANT_KEY_CLASS } from '../../../contracts/tenant-keys';
import { findingsOf, fixtureStack } from './support';

const RULE = 'Bulwark-TenantKeyEncryptionContext';
const crypto = ['kms:Encrypt', 'kms:Decrypt', 'kms:GenerateDataKey'];

describe(RULE, () => {
  it('flags a role that may use any key without the org_id encryption context', () => {
    const s = fixtureStack();
    const role = new iam.Role(s, 'Api', { assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com') });
    role.addToPolicy(
      new iam.PolicyStatement({ actions: crypto, resources: [`arn:aws:kms:eu-west-1:123456789012:key/*`] }),
    );
    expect(findingsOf(s, RULE)).toEqual(['S/Api/DefaultPolicy/Resource']);
  });

  it('flags a tenant-tagged key whose policy grants data actions without the condition', () => {
    const s = fixtureStack();
    const key = new kms.Key(s, 'Tenant');
    Tags.of(key).add(TAG_KEY_CLASS, TENANT_KEY_CLASS);
    key.addToResourcePolicy(
      new iam.PolicyStatement({
        actions: crypto,
        principals: [new iam.ArnPrincipal('arn:aws:iam::123456789012:role/api')],
        resources: ['*'],
      }),
    );
    expect(findingsOf(s, RULE)).toEqual(['S/Tenant/Resource']);
  });

  it('accepts grants conditioned on kms:EncryptionContext:org_id and grants on one specific key', () => {
    const s = fixtureStack();
    const role = new iam.Role(s, 'Api', { assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com') });
    role.addToPolicy(
      new iam.PolicyStatement({
        actions: crypto,
        resources: [`arn:aws:kms:eu-west-1:123456789012:key/*`],
        conditions: { StringEquals: { 'kms:EncryptionContext:org_id': '${aws:PrincipalTag/org_id}' } },
      }),
    );
    const own = new kms.Key(s, 'Own');
    own.grantEncryptDecrypt(role);
    expect(findingsOf(s, RULE)).toEqual([]);
  });
});
