import { Capture, Match } from 'aws-cdk-lib/assertions';
import { TRAIL_ALARM_IDS, type TrailAlarmId } from '../../lib/audit/trail-alarms';
import { buildTestStages, templateOf } from '../support/cdk';
import { defined } from '../support/defined';
import { filterMatches, parseFilterPattern } from '../support/filter-pattern';

// prod-eu, synthesized once (compliance gate included). Patterns are read back from the template and
// run against CloudTrail events in the shapes CloudTrail records them.
const { stages } = buildTestStages(['prod-eu']);
const stage = defined(stages[0]);
const audit = stage.audit;
const template = templateOf(audit);
const ACCOUNT = audit.account;

/** Concrete values for the tokens a pattern references (buckets, roles of other stacks). */
const names = new Map<string, string>();
const nameOf = (token: string, value: string): string => {
  names.set(JSON.stringify(audit.resolve(token)), value);
  return value;
};
const archiveBucket = nameOf(audit.archiveBucket.bucketName, 'prod-eu-audit-archivebucket-1a2b3c');
const provisionerRole = nameOf(
  defined(stage.tenantKeys.tenantKeys.provisioner.role).roleArn,
  `arn:aws:iam::${ACCOUNT}:role/prod-eu-TenantKeys-ProvisionerRole-AAAA`,
);
const lifecycleRole = nameOf(
  defined(stage.tenantKeys.tenantKeys.lifecycle.role).roleArn,
  `arn:aws:iam::${ACCOUNT}:role/prod-eu-TenantKeys-LifecycleRole-BBBB`,
);

/** Resolves the Fn::Join CloudFormation makes of a pattern with tokens, with the values above. */
function resolvePattern(value: unknown): string {
  if (typeof value === 'string') return value;
  const known = names.get(JSON.stringify(value));
  if (known !== undefined) return known;
  const join = (value as { 'Fn::Join'?: [string, unknown[]] })['Fn::Join'];
  if (join) return join[1].map(resolvePattern).join(join[0]);
  if (JSON.stringify(value) === '{"Ref":"AWS::AccountId"}') return ACCOUNT;
  // Any other bucket of the stack (trail bucket, access logs): a stable stand-in name.
  const ref = (value as { Ref?: string }).Ref;
  if (ref) return `bucket-${ref.toLowerCase()}`;
  throw new Error(`unresolved token in a filter pattern: ${JSON.stringify(value)}`);
}

const patterns = {} as Record<TrailAlarmId, string>;
for (const name of TRAIL_ALARM_IDS) {
  const capture = new Capture();
  template.hasResourceProperties('AWS::Logs::MetricFilter', {
    FilterPattern: capture,
    MetricTransformations: [Match.objectLike({ MetricName: name, MetricValue: '1' })],
  });
  let captured: unknown;
  try {
    captured = capture.asString();
  } catch {
    captured = capture.asObject(); // a Fn::Join: the pattern names resources
  }
  patterns[name] = resolvePattern(captured);
}
function patternOf(name: TrailAlarmId): string {
  return patterns[name];
}

// --- CloudTrail events, in the shapes CloudTrail records ---------------------------------------------
const base = { eventVersion: '1.09', eventTime: '2026-01-01T00:00:00Z', recipientAccountId: ACCOUNT };
function assumedRole(roleName: string, arn = `arn:aws:iam::${ACCOUNT}:role/${roleName}`) {
  return {
    type: 'AssumedRole',
    principalId: 'AROAEXAMPLE:session',
    arn: `arn:aws:sts::${ACCOUNT}:assumed-role/${roleName}/session`,
    accountId: ACCOUNT,
    sessionContext: {
      sessionIssuer: { type: 'Role', principalId: 'AROAEXAMPLE', arn, accountId: ACCOUNT, userName: roleName },
      attributes: { creationDate: '2026-01-01T00:00:00Z', mfaAuthenticated: 'false' },
    },
  };
}
const roleNameOf = (arn: string): string => defined(arn.split('/').pop());
const breakGlass = assumedRole('bulwark-break-glass');
const admin = assumedRole('AWSReservedSSO_AdministratorAccess_0123456789abcdef');
const deploy = assumedRole(`cdk-hnb659fds-cfn-exec-role-${ACCOUNT}-eu-central-1`);
const lifecycle = assumedRole(roleNameOf(lifecycleRole), lifecycleRole);
const provisioner = assumedRole(roleNameOf(provisionerRole), provisionerRole);
const root = { type: 'Root', principalId: ACCOUNT, arn: `arn:aws:iam::${ACCOUNT}:root`, accountId: ACCOUNT };
const iamUser = {
  type: 'IAMUser',
  principalId: 'AIDAEXAMPLE',
  arn: `arn:aws:iam::${ACCOUNT}:user/ops`,
  accountId: ACCOUNT,
  userName: 'ops',
};

const api = (userIdentity: object, eventSource: string, eventName: string, extra: object = {}) => ({
  ...base,
  userIdentity,
  eventSource,
  eventName,
  awsRegion: eventSource === 'iam.amazonaws.com' ? 'us-east-1' : 'eu-west-1',
  sourceIPAddress: '198.51.100.7',
  userAgent: 'aws-cli/2.17.0',
  eventType: 'AwsApiCall',
  managementEvent: true,
  eventCategory: 'Management',
  ...extra,
});
const keyArn = `arn:aws:kms:eu-west-1:${ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab`;
const kms = (who: object, eventName: string, extra: object = {}) =>
  api(who, 'kms.amazonaws.com', eventName, {
    requestParameters: { keyId: keyArn, ...(eventName === 'ScheduleKeyDeletion' ? { pendingWindowInDays: 7 } : {}) },
    resources: [{ accountId: ACCOUNT, type: 'AWS::KMS::Key', ARN: keyArn }],
    ...extra,
  });
const denied = { errorCode: 'AccessDeniedException', errorMessage: 'not authorized' };
const iamCall = (who: object, eventName: string, roleName: string) =>
  api(who, 'iam.amazonaws.com', eventName, {
    requestParameters: { roleName, policyArn: 'arn:aws:iam::aws:policy/AdministratorAccess' },
  });
const s3Call = (who: object, eventName: string, bucketName: string) =>
  api(who, 's3.amazonaws.com', eventName, {
    requestParameters: { bucketName, Host: `${bucketName}.s3.eu-west-1.amazonaws.com`, policy: '' },
  });
const trailArn = `arn:aws:cloudtrail:eu-west-1:${ACCOUNT}:trail/prod-eu-Audit-CloudTrail`;
const trailCall = (who: object, eventName: string) =>
  api(who, 'cloudtrail.amazonaws.com', eventName, { requestParameters: { name: trailArn } });

type Case = [string, object, boolean];
const CASES: Record<TrailAlarmId, Case[]> = {
  RootActivity: [
    [
      'root console sign-in (us-east-1)',
      {
        ...base,
        userIdentity: root,
        eventSource: 'signin.amazonaws.com',
        eventName: 'ConsoleLogin',
        awsRegion: 'us-east-1',
        eventType: 'AwsConsoleSignIn',
        responseElements: { ConsoleLogin: 'Success' },
      },
      true,
    ],
    ['root API call', api(root, 'iam.amazonaws.com', 'CreateAccessKey'), true],
    [
      'a service acting for root',
      api({ ...root, invokedBy: 'support.amazonaws.com' }, 'iam.amazonaws.com', 'GetAccountSummary'),
      false,
    ],
    ['an AWS service event', { ...api(root, 'kms.amazonaws.com', 'RotateKey'), eventType: 'AwsServiceEvent' }, false],
    ['an administrator role', api(admin, 'iam.amazonaws.com', 'CreateAccessKey'), false],
  ],
  PlatformKeyChanges: [
    ['break-glass disables a key', kms(breakGlass, 'DisableKey'), true],
    ['break-glass schedules deletion', kms(breakGlass, 'ScheduleKeyDeletion'), true],
    ['an administrator is denied PutKeyPolicy', kms(admin, 'PutKeyPolicy', denied), true],
    ['root disables a key', kms(root, 'DisableKey'), true],
    ['an IAM user schedules deletion', kms(iamUser, 'ScheduleKeyDeletion'), true],
    ['the lifecycle shreds a tenant key', kms(lifecycle, 'ScheduleKeyDeletion'), false],
    ['the provisioner sets a tenant key policy', kms(provisioner, 'PutKeyPolicy'), false],
    ['the lifecycle is denied on a platform key', kms(lifecycle, 'ScheduleKeyDeletion', denied), true],
    ['a deployment updates a key policy', kms(deploy, 'PutKeyPolicy'), false],
    ['reads are not changes', kms(admin, 'DescribeKey'), false],
    ['EnableKey is not watched', kms(admin, 'EnableKey'), false],
  ],
  RoleChanges: [
    [
      'policy attached to a Bulwark role',
      iamCall(admin, 'AttachRolePolicy', 'prod-eu-Edge-WebhooksFunctionRole-1A2B3C'),
      true,
    ],
    ['inline policy on a Bulwark role', iamCall(admin, 'PutRolePolicy', 'prod-eu-Data-MigrateRole-9Z8Y'), true],
    ['trust policy of a Bulwark role', iamCall(root, 'UpdateAssumeRolePolicy', 'prod-eu-Audit-ShipperRole-X'), true],
    ['tag removed from a Bulwark role', iamCall(admin, 'UntagRole', 'prod-eu-Edge-TenantGuardApiRole-Q'), true],
    ['break-glass role retagged', iamCall(admin, 'TagRole', 'bulwark-break-glass'), true],
    ['a deployment changes a Bulwark role', iamCall(deploy, 'PutRolePolicy', 'prod-eu-Data-MigrateRole-9Z8Y'), false],
    ['another deployment’s role', iamCall(admin, 'PutRolePolicy', 'prod-ap-south-1-Data-MigrateRole-9Z8Y'), false],
    ['a role outside Bulwark', iamCall(admin, 'AttachRolePolicy', 'team-analytics'), false],
    ['reading a role', iamCall(admin, 'GetRolePolicy', 'prod-eu-Data-MigrateRole-9Z8Y'), false],
  ],
  TrailTampering: [
    ['StopLogging', trailCall(admin, 'StopLogging'), true],
    ['DeleteTrail, even by a deployment', trailCall(deploy, 'DeleteTrail'), true],
    ['UpdateTrail outside a deployment', trailCall(breakGlass, 'UpdateTrail'), true],
    ['event selectors changed', trailCall(admin, 'PutEventSelectors'), true],
    ['a deployment updates the trail', trailCall(deploy, 'UpdateTrail'), false],
    ['DescribeTrails', trailCall(admin, 'DescribeTrails'), false],
  ],
  AuditBucketPolicyChanges: [
    ['archive bucket policy replaced', s3Call(admin, 'PutBucketPolicy', archiveBucket), true],
    ['archive bucket policy deleted by root', s3Call(root, 'DeleteBucketPolicy', archiveBucket), true],
    ['public access block removed', s3Call(breakGlass, 'DeleteBucketPublicAccessBlock', archiveBucket), true],
    ['a deployment updates the policy', s3Call(deploy, 'PutBucketPolicy', archiveBucket), false],
    ['another bucket', s3Call(admin, 'PutBucketPolicy', 'someone-elses-bucket'), false],
    ['reading the policy', s3Call(admin, 'GetBucketPolicy', archiveBucket), false],
  ],
  AuthorizationFailures: [
    ['S3 AccessDenied', { ...s3Call(admin, 'GetObject', archiveBucket), errorCode: 'AccessDenied' }, true],
    ['KMS AccessDeniedException', kms(admin, 'Decrypt', denied), true],
    [
      'EC2 UnauthorizedOperation',
      { ...api(admin, 'ec2.amazonaws.com', 'RunInstances'), errorCode: 'Client.UnauthorizedOperation' },
      true,
    ],
    ['throttling is not a failure', { ...kms(admin, 'Decrypt'), errorCode: 'ThrottlingException' }, false],
    ['a successful call', kms(admin, 'Decrypt'), false],
  ],
};

describe('trail alarms (prod-eu)', () => {
  it.each([...TRAIL_ALARM_IDS])('%s: the filter pattern matches exactly the events it is for', (name) => {
    const pattern = patternOf(name);
    const results = CASES[name].map(([what, event]) => [what, filterMatches(pattern, event)]);
    expect(results).toEqual(CASES[name].map(([what, , expected]) => [what, expected]));
  });

  it('watches the three audit buckets and the two tenant-key functions by name', () => {
    const buckets = JSON.stringify(
      parseFilterPattern(patternOf('AuditBucketPolicyChanges')),
      (_k, v: unknown) => v,
    ).match(/requestParameters\.bucketName","value":"[^"]+"/g);
    expect(buckets).toHaveLength(3);
    expect(patternOf('PlatformKeyChanges')).toContain(provisionerRole);
    expect(patternOf('PlatformKeyChanges')).toContain(lifecycleRole);
  });

  it('pages the alarm topic: one event is enough, except a burst of authorization failures', () => {
    for (const name of TRAIL_ALARM_IDS) {
      template.hasResourceProperties('AWS::CloudWatch::Alarm', {
        MetricName: name,
        Namespace: 'Bulwark/prod-eu/Trail',
        Statistic: 'Sum',
        Period: 300,
        EvaluationPeriods: 1,
        ComparisonOperator: 'GreaterThanOrEqualToThreshold',
        Threshold: name === 'AuthorizationFailures' ? 10 : 1,
        TreatMissingData: 'notBreaching',
        AlarmActions: [Match.anyValue()],
      });
    }
    const alarms = Object.values(template.findResources('AWS::CloudWatch::Alarm')).filter((a) =>
      (TRAIL_ALARM_IDS as readonly string[]).includes(
        (a as { Properties: { MetricName?: string } }).Properties.MetricName ?? '',
      ),
    );
    expect(alarms).toHaveLength(TRAIL_ALARM_IDS.length);
    // Cross-stack: the Operations stack's alarm topic, and nothing else.
    for (const a of alarms) {
      expect((a as { Properties: { AlarmActions: unknown } }).Properties.AlarmActions).toEqual([
        {
          'Fn::GetStackOutput': expect.objectContaining({
            StackName: stage.operations.stackName,
            OutputName: expect.stringMatching(/^PublishOutputRefAlarmsTopic/),
          }),
        },
      ]);
    }
  });

  it('filters the multi-region trail’s log group', () => {
    const groups = Object.keys(template.findResources('AWS::Logs::LogGroup'));
    const filters = Object.values(template.findResources('AWS::Logs::MetricFilter')) as {
      Properties: { LogGroupName: { Ref: string } };
    }[];
    expect(filters).toHaveLength(TRAIL_ALARM_IDS.length);
    const trail = Object.values(template.findResources('AWS::CloudTrail::Trail'))[0] as {
      Properties: { CloudWatchLogsLogGroupArn: { 'Fn::GetAtt': [string, string] } };
    };
    const trailGroup = trail.Properties.CloudWatchLogsLogGroupArn['Fn::GetAtt'][0];
    expect(groups).toContain(trailGroup);
    for (const f of filters) expect(f.Properties.LogGroupName).toEqual({ Ref: trailGroup });
  });
});

describe('filter pattern evaluator', () => {
  it('refuses && and || mixed without parentheses, and reads what CDK writes', () => {
    expect(() => parseFilterPattern('{ $.a = "1" && $.b = "2" || $.c = "3" }')).toThrow(/parentheses/);
    expect(filterMatches('{ ($.a = "x*") && (($.b NOT EXISTS) || ($.b != "y")) }', { a: 'xyz' })).toBe(true);
    expect(filterMatches('{ ($.a = "x*") && (($.b NOT EXISTS) || ($.b != "y")) }', { a: 'xyz', b: 'y' })).toBe(false);
    // A missing field satisfies no comparison, not even !=.
    expect(filterMatches('{ $.b != "y" }', {})).toBe(false);
    expect(filterMatches('{ $.r[0].ARN = "k" }', { r: [{ ARN: 'k' }] })).toBe(true);
  });
});
