/**
 * The audit archive survives a region or a key (issue 15): replication into Object Lock buckets of
 * the backup region under that region's key, keys nobody but break-glass deletes or disables, and
 * an expiration that never comes before any plan's retention.
 */
import type { Template } from 'aws-cdk-lib/assertions';
import { auditReplicaTargets } from '../../lib/audit/audit-replicas';
import { EXPIRATION_MARGIN_DAYS, expirationDays, retentionDays } from '../../lib/audit/locked-bucket';
import { PLANS } from '../../contracts/plans';
import { regionInZone } from '../../lib/config/regions';
import { BREAK_GLASS_ROLE_NAME } from '../../lib/observability/keys';
import { buildTestStages, stacksOf, templateOf } from '../support/cdk';
import { defined } from '../support/defined';

type Json = Record<string, unknown>;
type Resources = Record<string, { Type: string; Properties?: Json }>;

const { app, stages } = buildTestStages();
beforeAll(() => {
  app.synth();
});
const each = () => stages.map((s) => [s.deployment.name, s] as const);
const resourcesOf = (t: Template): Resources => t.toJSON().Resources as Resources;
const ofType = (t: Template, type: string) => Object.entries(resourcesOf(t)).filter(([, r]) => r.Type === type);

describe('audit replication', () => {
  it.each(each())('%s: archive and trail buckets replicate every version into the backup region', (_name, stage) => {
    const { deployment } = stage;
    const targets = auditReplicaTargets(deployment.name, deployment.account, deployment.backupRegion);
    const audit = templateOf(stage.audit);
    const replicated = ofType(audit, 'AWS::S3::Bucket').filter(([, b]) => b.Properties?.ReplicationConfiguration);
    const destinations = replicated.map(([id, b]) => {
      const config = b.Properties?.ReplicationConfiguration as { Role: unknown; Rules: Json[] };
      expect(config.Role).toEqual({ 'Fn::GetAtt': [expect.stringMatching(/^ReplicationRole/), 'Arn'] });
      expect(config.Rules).toEqual([
        {
          Id: 'backup-region',
          Status: 'Enabled',
          Priority: 1,
          Filter: { Prefix: '' },
          // Deleting (or hiding behind a delete marker) in the primary region never reaches the replica.
          DeleteMarkerReplication: { Status: 'Disabled' },
          SourceSelectionCriteria: { SseKmsEncryptedObjects: { Status: 'Enabled' } },
          Destination: {
            Bucket: expect.any(String),
            EncryptionConfiguration: {
              ReplicaKmsKeyID: `arn:aws:kms:${deployment.backupRegion}:${deployment.account}:${targets.keyAlias}`,
            },
          },
        },
      ]);
      return [id.replace(/[0-9A-F]{8}$/, ''), (defined(config.Rules[0]).Destination as { Bucket: string }).Bucket];
    });
    expect(Object.fromEntries(destinations)).toEqual({
      ArchiveBucket: `arn:aws:s3:::${targets.archiveBucketName}`,
      CloudTrailLogsBucket: `arn:aws:s3:::${targets.trailBucketName}`,
    });
    expect(regionInZone(deployment.backupRegion, deployment.residency)).toBe(true);
  });

  it.each(each())(
    '%s: the replicas are locked like their sources, under a key of the backup region',
    (_name, stage) => {
      const { deployment } = stage;
      const targets = auditReplicaTargets(deployment.name, deployment.account, deployment.backupRegion);
      expect(stage.backupVault.region).toBe(deployment.backupRegion);
      const t = templateOf(stage.backupVault);
      const locked = ofType(t, 'AWS::S3::Bucket').filter(([, b]) => b.Properties?.ObjectLockEnabled === true);
      expect(locked.map(([, b]) => b.Properties?.BucketName).sort()).toEqual(
        [targets.archiveBucketName, targets.trailBucketName].sort(),
      );
      const [aliasId, alias] = defined(ofType(t, 'AWS::KMS::Alias')[0]);
      expect(aliasId).toMatch(/^AuditReplicas/);
      expect(alias.Properties?.AliasName).toBe(targets.keyAlias);
      const keyId = (alias.Properties?.TargetKeyId as { 'Fn::GetAtt': string[] })['Fn::GetAtt'][0];
      expect(resourcesOf(t)[defined(keyId)]?.Type).toBe('AWS::KMS::Key');
      for (const [, b] of locked) {
        expect(b.Properties?.ObjectLockConfiguration).toEqual({
          ObjectLockEnabled: 'Enabled',
          Rule: { DefaultRetention: { Mode: 'COMPLIANCE', Days: retentionDays(12) } },
        });
        expect(b.Properties?.VersioningConfiguration).toEqual({ Status: 'Enabled' });
        const sse = JSON.stringify(b.Properties?.BucketEncryption);
        expect(sse).toContain(`"Fn::GetAtt":["${keyId}","Arn"]`);
        // Not replicated back: the replica is the last copy.
        expect(b.Properties?.ReplicationConfiguration).toBeUndefined();
      }
    },
  );

  it.each(each())('%s: the replication role reads the sources and writes the replicas, never deletes', (_n, stage) => {
    const audit = templateOf(stage.audit);
    const [, policy] = defined(
      ofType(audit, 'AWS::IAM::ManagedPolicy').find(([id]) => id.startsWith('ReplicationRolePolicy')),
    );
    const statements = (policy.Properties?.PolicyDocument as { Statement: Json[] }).Statement;
    const actions = new Set(statements.flatMap((s) => [s.Action].flat() as string[]));
    expect([...actions].sort()).toEqual(
      [
        'kms:Decrypt',
        'kms:Encrypt',
        'kms:GenerateDataKey',
        's3:GetObjectLegalHold',
        's3:GetObjectRetention',
        's3:GetObjectVersionAcl',
        's3:GetObjectVersionForReplication',
        's3:GetObjectVersionTagging',
        's3:GetReplicationConfiguration',
        's3:ListBucket',
        's3:ReplicateObject',
        's3:ReplicateTags',
      ].sort(),
    );
    // Every KMS grant goes through S3 only, for the replicated buckets' encryption context only.
    for (const s of statements.filter((x) => String([x.Action].flat()[0]).startsWith('kms:'))) {
      const c = s.Condition as { StringEquals: Json; StringLike: Json };
      expect(c.StringEquals['kms:ViaService']).toMatch(/^s3\.[a-z0-9-]+\.amazonaws\.com$/);
      expect(c.StringLike['kms:EncryptionContext:aws:s3:arn']).toHaveLength(2);
    }
    const [, role] = defined(ofType(audit, 'AWS::IAM::Role').find(([id]) => id.startsWith('ReplicationRole')));
    expect(JSON.stringify(role.Properties?.AssumeRolePolicyDocument)).toContain('s3.amazonaws.com');
    expect(JSON.stringify(role.Properties?.AssumeRolePolicyDocument)).toContain('aws:SourceAccount');
  });
});

describe('keys of the audit records', () => {
  it.each(each())('%s: archive, trail and replica keys: deletion and disabling only by break-glass', (_n, stage) => {
    const keys = [
      ...ofType(templateOf(stage.audit), 'AWS::KMS::Key').filter(([id]) => /^(ArchiveKey|CloudTrailKey)/.test(id)),
      ...ofType(templateOf(stage.backupVault), 'AWS::KMS::Key').filter(([id]) => id.startsWith('AuditReplicasKey')),
    ];
    expect(keys).toHaveLength(3);
    for (const [, key] of keys) {
      const statements = (key.Properties?.KeyPolicy as { Statement: Json[] }).Statement;
      const deny = defined(statements.find((s) => s.Sid === 'DenyDeletionAndDisablingExceptBreakGlass'));
      expect(deny).toMatchObject({ Effect: 'Deny', Principal: { AWS: '*' }, Resource: '*' });
      expect([deny.Action].flat().sort()).toEqual(['kms:DisableKey', 'kms:ScheduleKeyDeletion']);
      // Break-glass alone: not even the deploy role is exempt.
      const exempt = JSON.stringify((deny.Condition as Json).ArnNotEquals);
      expect(exempt).toContain(`:role/${BREAK_GLASS_ROLE_NAME}`);
      expect(exempt).not.toContain('cfn-exec-role');
    }
  });
});

describe('expiration never comes before a lock ends', () => {
  it.each(each())('%s: every Object Lock bucket expires after every plan retention and its own default', (_n, s) => {
    let locked = 0;
    for (const stack of stacksOf(s)) {
      for (const [id, b] of ofType(templateOf(stack), 'AWS::S3::Bucket')) {
        if (b.Properties?.ObjectLockEnabled !== true) continue;
        locked += 1;
        const rules = (b.Properties?.LifecycleConfiguration as { Rules: Json[] }).Rules;
        const days = rules.flatMap((r) => (typeof r.ExpirationInDays === 'number' ? [r.ExpirationInDays] : []));
        expect({ id, days }).toEqual({ id, days: [expirationDays(84)] });
        const expiry = defined(days[0]);
        for (const plan of PLANS) {
          expect(expiry).toBeGreaterThanOrEqual(retentionDays(s.deployment.auditRetentionMonths[plan]));
        }
        const lock = b.Properties?.ObjectLockConfiguration as { Rule: { DefaultRetention: { Days: number } } };
        expect(expiry).toBeGreaterThanOrEqual(lock.Rule.DefaultRetention.Days);
        // A noncurrent version goes one day after it became noncurrent, never while locked (S3 skips those).
        expect(rules).toContainEqual(
          expect.objectContaining({ NoncurrentVersionExpiration: { NoncurrentDays: 1 }, Status: 'Enabled' }),
        );
      }
    }
    expect(locked).toBe(4); // archive, trail and their replicas
  });

  it('the margin is added to the longest plan, in days that never fall short of the months', () => {
    expect(expirationDays(84)).toBe(retentionDays(84) + EXPIRATION_MARGIN_DAYS);
    // 84 calendar months never exceed 84 * 31 days; retentionDays rounds every month up to 30.5 days.
    for (const months of [12, 24, 84, 120]) {
      const latest = new Date(Date.UTC(2024, 0, 31));
      latest.setUTCMonth(latest.getUTCMonth() + months);
      const calendarDays = Math.ceil((latest.getTime() - Date.UTC(2024, 0, 31)) / 86_400_000);
      expect(expirationDays(months)).toBeGreaterThan(calendarDays);
    }
  });
});
