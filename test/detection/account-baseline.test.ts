import { Capture, Match } from 'aws-cdk-lib/assertions';
import { ALARM_STATE_CHANGE, GUARDDUTY_ALARM_SEVERITY } from '../../lib/detection/account-baseline';
import { backupRegionConfigBucketName } from '../../lib/stacks/account-baseline-stack';
import { buildTestStages, templateOf } from '../support/cdk';
import { defined } from '../support/defined';

// prod-eu is a production deployment without `accountBaseline`: the baseline is on by default.
const { app, stages } = buildTestStages(['prod-eu']);
const stage = defined(stages[0]);
const baseline = defined(stage.accountBaseline, 'the account baseline of prod-eu');
const template = templateOf(baseline);
const backup = defined(stage.backupRegionBaseline, 'the backup-region baseline of prod-eu');
const backupTemplate = templateOf(backup);

/** The one resource of `type` whose logical id starts with `prefix`. */
function only(t: typeof template, type: string, prefix: string): { Properties: Record<string, unknown> } {
  const found = Object.entries(t.findResources(type)).filter(([id]) => id.startsWith(prefix));
  expect(found).toHaveLength(1);
  return found[0]![1] as { Properties: Record<string, unknown> };
}

/** A CloudWatch alarm's state change as EventBridge delivers it. */
const alarmChange = (region: string, alarmName: string, value: string) => ({
  version: '0',
  id: 'c4c1c1c9-6542-e61b-6ef0-8c4d36933a92',
  'detail-type': ALARM_STATE_CHANGE,
  source: 'aws.cloudwatch',
  account: baseline.account,
  time: '2026-01-01T00:00:00Z',
  region,
  resources: [`arn:aws:cloudwatch:${region}:${baseline.account}:alarm:${alarmName}`],
  detail: { alarmName, state: { value, reason: 'Threshold Crossed' }, previousState: { value: 'OK' } },
});

/** EventBridge's matching for the operators the rule uses: value lists and numeric ranges. */
function eventMatches(pattern: unknown, event: unknown): boolean {
  if (Array.isArray(pattern)) {
    return pattern.some((p) => {
      if (p !== null && typeof p === 'object' && 'numeric' in p) {
        const [op, n] = (p as { numeric: [string, number] }).numeric;
        if (typeof event !== 'number') return false;
        return op === '>=' ? event >= n : op === '>' ? event > n : op === '<' ? event < n : op === '=' && event === n;
      }
      return p === event;
    });
  }
  if (pattern === null || typeof pattern !== 'object') throw new Error(`unsupported pattern ${String(pattern)}`);
  return Object.entries(pattern).every(([k, p]) => {
    const v = (event as Record<string, unknown> | undefined)?.[k];
    return v !== undefined && eventMatches(p, v);
  });
}

/** A GuardDuty finding as EventBridge delivers it ("GuardDuty Finding", detail = the finding). */
const finding = (severity: number, type = 'UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration.OutsideAWS') => ({
  version: '0',
  id: 'c8c4daa7-a20c-2f03-0070-b7393dd542ad',
  'detail-type': 'GuardDuty Finding',
  source: 'aws.guardduty',
  account: baseline.account,
  time: '2026-01-01T00:00:00Z',
  region: 'eu-west-1',
  resources: [],
  detail: {
    schemaVersion: '2.0',
    accountId: baseline.account,
    region: 'eu-west-1',
    partition: 'aws',
    id: '16afba5c5c43e07c9e3e5e2e544e95df',
    type,
    severity,
    title: 'Credentials for instance role used from an external IP address.',
    resource: { resourceType: 'AccessKey' },
    service: { serviceName: 'guardduty', count: 1 },
  },
});

describe('account baseline (prod-eu)', () => {
  it('passes the compliance gate and the residency guard with the baseline in place', () => {
    expect(() => app.synth()).not.toThrow();
  });

  it('runs GuardDuty with the S3, RDS and Lambda protections', () => {
    template.resourceCountIs('AWS::GuardDuty::Detector', 1);
    template.hasResourceProperties('AWS::GuardDuty::Detector', {
      Enable: true,
      Features: Match.arrayEquals([
        { Name: 'S3_DATA_EVENTS', Status: 'ENABLED' },
        { Name: 'RDS_LOGIN_EVENTS', Status: 'ENABLED' },
        { Name: 'LAMBDA_NETWORK_LOGS', Status: 'ENABLED' },
      ]),
    });
  });

  it(`pages the alarm topic for GuardDuty findings of severity ${GUARDDUTY_ALARM_SEVERITY} and up`, () => {
    const pattern = new Capture();
    const targets = new Capture();
    template.hasResourceProperties('AWS::Events::Rule', { EventPattern: pattern, Targets: targets, State: 'ENABLED' });
    const p = pattern.asObject();
    expect(eventMatches(p, finding(8.0))).toBe(true);
    expect(eventMatches(p, finding(9.5, 'CryptoCurrency:Runtime/BitcoinTool.B'))).toBe(true);
    expect(eventMatches(p, finding(GUARDDUTY_ALARM_SEVERITY))).toBe(true);
    expect(eventMatches(p, finding(5.0))).toBe(false);
    expect(eventMatches(p, { ...finding(8.0), source: 'aws.securityhub' })).toBe(false);
    // The only target is the Operations stack's alarm topic, without a role (SNS takes events directly).
    expect(targets.asArray()).toEqual([
      {
        Id: 'Target0',
        DeadLetterConfig: { Arn: { 'Fn::GetAtt': [expect.stringMatching(/UndeliveredFindings/), 'Arn'] } },
        RetryPolicy: { MaximumRetryAttempts: 185, MaximumEventAgeInSeconds: 86_400 },
        Arn: {
          'Fn::GetStackOutput': expect.objectContaining({
            StackName: stage.operations.stackName,
            OutputName: expect.stringMatching(/^PublishOutputRefAlarmsTopic/),
          }),
        },
      },
    ]);
  });

  it('enables Security Hub with the Foundational Security Best Practices standard only', () => {
    template.hasResourceProperties('AWS::SecurityHub::Hub', {
      EnableDefaultStandards: false,
      ControlFindingGenerator: 'SECURITY_CONTROL',
    });
    const standards = template.findResources('AWS::SecurityHub::Standard');
    expect(Object.values(standards).map((s) => (s as { Properties: unknown }).Properties)).toEqual([
      {
        StandardsArn: 'arn:aws:securityhub:eu-west-1::standards/aws-foundational-security-best-practices/v/1.0.0',
      },
    ]);
  });

  it('records every resource with AWS Config into an encrypted bucket in the region', () => {
    template.hasResourceProperties('AWS::Config::ConfigurationRecorder', {
      RoleARN: `arn:aws:iam::${baseline.account}:role/aws-service-role/config.amazonaws.com/AWSServiceRoleForConfig`,
      RecordingGroup: { AllSupported: true, IncludeGlobalResourceTypes: true },
    });
    const channel = new Capture();
    template.hasResourceProperties('AWS::Config::DeliveryChannel', {
      S3BucketName: channel,
      S3KmsKeyArn: Match.objectLike({ 'Fn::GetAtt': Match.anyValue() }),
    });
    const bucketId = (channel.asObject() as { Ref: string }).Ref;
    const bucket = template.toJSON().Resources[bucketId] as {
      Properties: Record<string, unknown>;
      DeletionPolicy: string;
    };
    expect(bucket.DeletionPolicy).toBe('Retain');
    expect(bucket.Properties).toMatchObject({
      BucketEncryption: {
        ServerSideEncryptionConfiguration: [
          { ServerSideEncryptionByDefault: { SSEAlgorithm: 'aws:kms', KMSMasterKeyID: expect.anything() } },
        ],
      },
      VersioningConfiguration: { Status: 'Enabled' },
    });
  });

  it('records object-level access to the Config bucket in the trail', () => {
    const selectors = JSON.stringify(templateOf(stage.audit).findResources('AWS::CloudTrail::Trail'));
    expect(selectors).toContain(baseline.stackName);
  });

  it('records IAM global resources in the home region only', () => {
    template.hasResourceProperties('AWS::Config::ConfigurationRecorder', {
      RecordingGroup: { AllSupported: true, IncludeGlobalResourceTypes: true },
    });
    backupTemplate.hasResourceProperties('AWS::Config::ConfigurationRecorder', {
      RecordingGroup: { AllSupported: true, IncludeGlobalResourceTypes: false },
    });
  });

  it('runs an account IAM Access Analyzer', () => {
    template.hasResourceProperties('AWS::AccessAnalyzer::Analyzer', {
      Type: 'ACCOUNT',
      AnalyzerName: 'bulwark-prod-eu',
    });
  });
});

describe('account baseline of the backup region (prod-eu)', () => {
  it('deploys the same detectors in the backup region', () => {
    expect(backup.region).toBe(stage.deployment.backupRegion);
    expect(backup.region).not.toBe(baseline.region);
    backupTemplate.hasResourceProperties('AWS::GuardDuty::Detector', {
      Enable: true,
      Features: Match.arrayEquals([
        { Name: 'S3_DATA_EVENTS', Status: 'ENABLED' },
        { Name: 'RDS_LOGIN_EVENTS', Status: 'ENABLED' },
        { Name: 'LAMBDA_NETWORK_LOGS', Status: 'ENABLED' },
      ]),
    });
    backupTemplate.hasResourceProperties('AWS::SecurityHub::Standard', {
      StandardsArn: `arn:aws:securityhub:${backup.region}::standards/aws-foundational-security-best-practices/v/1.0.0`,
    });
    backupTemplate.resourceCountIs('AWS::SecurityHub::Hub', 1);
    backupTemplate.hasResourceProperties('AWS::AccessAnalyzer::Analyzer', { Type: 'ACCOUNT' });
    backupTemplate.hasResourceProperties('AWS::S3::Bucket', {
      BucketName: backupRegionConfigBucketName(stage.deployment),
    });
  });

  it("forwards high-severity findings to the home region's default bus with a role", () => {
    const rule = only(backupTemplate, 'AWS::Events::Rule', 'BaselineHighSeverityFindings').Properties;
    expect(eventMatches(rule['EventPattern'], { ...finding(8.0), region: backup.region })).toBe(true);
    expect(eventMatches(rule['EventPattern'], { ...finding(5.0), region: backup.region })).toBe(false);
    const homeBus = `arn:aws:events:${baseline.region}:${baseline.account}:event-bus/default`;
    expect(rule['Targets']).toEqual([
      {
        Id: 'Target0',
        Arn: homeBus,
        RoleArn: { 'Fn::GetAtt': [expect.stringMatching(/^BaselineForwardRole/), 'Arn'] },
        DeadLetterConfig: { Arn: { 'Fn::GetAtt': [expect.stringMatching(/UndeliveredFindings/), 'Arn'] } },
      },
    ]);
    // EventBridge of this account only may assume it, and it may put events on that one bus.
    const role = only(backupTemplate, 'AWS::IAM::Role', 'BaselineForwardRole').Properties;
    expect(role['AssumeRolePolicyDocument']).toMatchObject({
      Statement: [
        {
          Effect: 'Allow',
          Action: 'sts:AssumeRole',
          Principal: { Service: 'events.amazonaws.com' },
          Condition: { StringEquals: { 'aws:SourceAccount': baseline.account } },
        },
      ],
    });
    const policy = only(backupTemplate, 'AWS::IAM::ManagedPolicy', 'BaselineForwardPolicy').Properties;
    expect((policy['PolicyDocument'] as { Statement: unknown[] }).Statement).toEqual([
      { Effect: 'Allow', Action: 'events:PutEvents', Resource: homeBus },
    ]);
  });

  it("forwards its own alarm, and the home region's rule pages the topic with it", () => {
    const alarmId = Object.keys(backupTemplate.findResources('AWS::CloudWatch::Alarm'));
    expect(alarmId).toHaveLength(1);
    const forward = only(backupTemplate, 'AWS::Events::Rule', 'BaselineForwardAlarms').Properties;
    const pattern = forward['EventPattern'] as { detail: { alarmName: unknown[] } };
    expect(pattern.detail.alarmName).toEqual([{ Ref: alarmId[0] }]);
    const name = 'prod-eu-BackupRegionBaseline-UndeliveredFindingsAlarm';
    const resolved = { ...pattern, detail: { ...pattern.detail, alarmName: [name] } };
    expect(eventMatches(resolved, alarmChange(backup.region, name, 'ALARM'))).toBe(true);
    expect(eventMatches(resolved, alarmChange(backup.region, name, 'OK'))).toBe(false);
    expect(eventMatches(resolved, alarmChange(backup.region, 'some-other-alarm', 'ALARM'))).toBe(false);

    const home = only(template, 'AWS::Events::Rule', 'BaselineOtherRegionAlarms').Properties;
    expect(eventMatches(home['EventPattern'], alarmChange(backup.region, name, 'ALARM'))).toBe(true);
    expect(eventMatches(home['EventPattern'], alarmChange(backup.region, name, 'OK'))).toBe(false);
    // The home region's own alarms page through their alarm actions, not twice through this rule.
    expect(eventMatches(home['EventPattern'], alarmChange(baseline.region, name, 'ALARM'))).toBe(false);
    expect(home['Targets']).toEqual([
      expect.objectContaining({
        Arn: {
          'Fn::GetStackOutput': expect.objectContaining({ StackName: stage.operations.stackName }),
        },
      }),
    ]);
    // Forwarded findings arrive on the home bus with their region: the home findings rule takes them.
    const findings = only(template, 'AWS::Events::Rule', 'BaselineHighSeverityFindings').Properties;
    expect(eventMatches(findings['EventPattern'], { ...finding(8.0), region: backup.region })).toBe(true);
  });

  it("records object-level access to the backup region's Config bucket in the trail", () => {
    const selectors = JSON.stringify(templateOf(stage.audit).findResources('AWS::CloudTrail::Trail'));
    expect(selectors).toContain(`arn:aws:s3:::${backupRegionConfigBucketName(stage.deployment)}/`);
  });
});
