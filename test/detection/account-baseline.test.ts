import { Capture, Match } from 'aws-cdk-lib/assertions';
import { GUARDDUTY_ALARM_SEVERITY } from '../../lib/detection/account-baseline';
import { buildTestStages, templateOf } from '../support/cdk';
import { defined } from '../support/defined';

// prod-eu is a production deployment without `accountBaseline`: the baseline is on by default.
const { app, stages } = buildTestStages(['prod-eu']);
const stage = defined(stages[0]);
const baseline = defined(stage.accountBaseline, 'the account baseline of prod-eu');
const template = templateOf(baseline);

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

  it('runs an account IAM Access Analyzer', () => {
    template.hasResourceProperties('AWS::AccessAnalyzer::Analyzer', {
      Type: 'ACCOUNT',
      AnalyzerName: 'bulwark-prod-eu',
    });
  });
});
