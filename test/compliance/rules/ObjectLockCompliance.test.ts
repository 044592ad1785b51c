import { Duration, Tags } from 'aws-cdk-lib';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { AUDIT_BUCKET_TAG } from '../../../lib/compliance';
import { findingsOf, fixtureStack } from './support';

const RULE = 'Bulwark-ObjectLockCompliance';

describe(RULE, () => {
  it('flags GOVERNANCE mode, short retention, and an audit bucket without Object Lock', () => {
    const s = fixtureStack();
    new s3.Bucket(s, 'Governance', {
      objectLockEnabled: true,
      objectLockDefaultRetention: s3.ObjectLockRetention.governance(Duration.days(400)),
    });
    new s3.Bucket(s, 'Short', {
      objectLockEnabled: true,
      objectLockDefaultRetention: s3.ObjectLockRetention.compliance(Duration.days(30)),
    });
    new s3.Bucket(s, 'NoDefault', { objectLockEnabled: true });
    const audit = new s3.Bucket(s, 'AuditUnlocked');
    Tags.of(audit).add(AUDIT_BUCKET_TAG, 'audit');
    expect(findingsOf(s, RULE)).toEqual([
      'S/AuditUnlocked/Resource',
      'S/Governance/Resource',
      'S/NoDefault/Resource',
      'S/Short/Resource',
    ]);
  });

  it('accepts COMPLIANCE mode with at least 12 months, and ignores ordinary buckets', () => {
    const s = fixtureStack();
    const audit = new s3.Bucket(s, 'Audit', {
      objectLockEnabled: true,
      objectLockDefaultRetention: s3.ObjectLockRetention.compliance(Duration.days(365)),
    });
    Tags.of(audit).add(AUDIT_BUCKET_TAG, 'audit');
    new s3.Bucket(s, 'Plain');
    expect(findingsOf(s, RULE)).toEqual([]);
  });
});
