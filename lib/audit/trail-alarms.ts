import { DefaultStackSynthesizer, Duration, Stack } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as actions from 'aws-cdk-lib/aws-cloudwatch-actions';
import type * as iam from 'aws-cdk-lib/aws-iam';
import * as logs from 'aws-cdk-lib/aws-logs';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import type * as sns from 'aws-cdk-lib/aws-sns';
import { Construct } from 'constructs';
import { BREAK_GLASS_ROLE_NAME } from '../observability/keys';

/** What each trail alarm watches; the ids name the metric filter, metric and alarm. */
export const TRAIL_ALARM_IDS = [
  'RootActivity',
  'PlatformKeyChanges',
  'RoleChanges',
  'TrailTampering',
  'AuditBucketPolicyChanges',
  'AuthorizationFailures',
] as const;
export type TrailAlarmId = (typeof TRAIL_ALARM_IDS)[number];

export interface TrailAlarmsProps {
  /** The multi-region trail's log group: every region's and the global services' events. */
  readonly logGroup: logs.ILogGroup;
  readonly alarmTopic: sns.ITopic;
  /** The deployment's name: its stacks, and so the roles CloudFormation names, start with `<name>-`. */
  readonly deployment: string;
  /** Buckets whose policy (and public access block) must not change outside a deployment. */
  readonly auditBuckets: readonly s3.IBucket[];
  /**
   * Roles that legitimately schedule deletion of and set policies on tenant keys (the provisioner
   * and the lifecycle). Platform keys deny them; their failures still alarm.
   * @default - none
   */
  readonly tenantKeyOperators?: readonly iam.IRole[];
  /**
   * Authorization failures (AccessDenied, UnauthorizedOperation) in five minutes that page.
   * @default 10
   */
  readonly authorizationFailureThreshold?: number;
}

const F = logs.FilterPattern;
const ISSUER_ARN = '$.userIdentity.sessionContext.sessionIssuer.arn';
const ISSUER_NAME = '$.userIdentity.sessionContext.sessionIssuer.userName';
const anyOf = (field: string, values: readonly string[]): logs.JsonPattern =>
  F.any(...values.map((v) => F.stringValue(field, '=', v)));

/**
 * Alarms on the trail's log group, to the deployment's alarm topic: root activity, changes to
 * platform keys, Bulwark roles, the trail itself and the audit buckets' policies, and bursts of
 * authorization failures.
 *
 * Metric filters rather than EventBridge rules: EventBridge delivers an API call's event only in the
 * region where it happened, so IAM, STS and sign-in events (us-east-1) and calls in other regions
 * would need rules outside the residency zone. The multi-region trail delivers all of them to this
 * one log group in the home region, where a filter sees every one.
 *
 * Changes made by the CDK deploy role (CloudFormation executing a reviewed deployment) do not alarm,
 * except stopping or deleting a trail; anything else, including the break-glass role, does.
 */
export class TrailAlarms extends Construct {
  public readonly alarms: Readonly<Record<TrailAlarmId, cloudwatch.Alarm>>;
  /** The filter pattern of each alarm, as CloudWatch Logs reads it. */
  public readonly patterns: Readonly<Record<TrailAlarmId, string>>;

  constructor(scope: Construct, id: string, props: TrailAlarmsProps) {
    super(scope, id);
    const stack = Stack.of(this);
    const qualifier = stack.synthesizer.bootstrapQualifier ?? DefaultStackSynthesizer.DEFAULT_QUALIFIER;
    // The CloudFormation execution role of any region's bootstrap (the backup region's stacks too).
    const deployRole = `cdk-${qualifier}-cfn-exec-role-${stack.account}-*`;
    const notDeploy = F.any(F.notExists(ISSUER_NAME), F.stringValue(ISSUER_NAME, '!=', deployRole));

    const patterns: Record<TrailAlarmId, logs.JsonPattern> = {
      // CIS AWS Foundations 3.3: any use of the root user that is not a service acting for it.
      RootActivity: F.all(
        F.stringValue('$.userIdentity.type', '=', 'Root'),
        F.notExists('$.userIdentity.invokedBy'),
        F.stringValue('$.eventType', '!=', 'AwsServiceEvent'),
      ),
      // Platform keys deny these to all but the deploy and break-glass roles: a success is break-glass
      // in use, a failure is someone trying. The tenant-key functions do them to tenant keys daily.
      PlatformKeyChanges: F.all(
        F.stringValue('$.eventSource', '=', 'kms.amazonaws.com'),
        anyOf('$.eventName', ['ScheduleKeyDeletion', 'DisableKey', 'PutKeyPolicy']),
        F.any(
          F.exists('$.errorCode'),
          F.notExists(ISSUER_ARN),
          F.all(
            ...(props.tenantKeyOperators ?? []).map((r) => F.stringValue(ISSUER_ARN, '!=', r.roleArn)),
            F.stringValue(ISSUER_NAME, '!=', deployRole),
          ),
        ),
      ),
      // CloudFormation names a stack's roles `<stack name>-...`, and every stack is `<deployment>-<Stack>`.
      RoleChanges: F.all(
        F.stringValue('$.eventSource', '=', 'iam.amazonaws.com'),
        anyOf('$.eventName', [
          'PutRolePolicy',
          'DeleteRolePolicy',
          'AttachRolePolicy',
          'DetachRolePolicy',
          'UpdateAssumeRolePolicy',
          'PutRolePermissionsBoundary',
          'DeleteRolePermissionsBoundary',
          'TagRole',
          'UntagRole',
        ]),
        anyOf('$.requestParameters.roleName', [`${props.deployment}-*`, BREAK_GLASS_ROLE_NAME]),
        notDeploy,
      ),
      // Stopping or deleting any trail always alarms; updates only outside a deployment.
      TrailTampering: F.all(
        F.stringValue('$.eventSource', '=', 'cloudtrail.amazonaws.com'),
        F.any(
          anyOf('$.eventName', ['StopLogging', 'DeleteTrail']),
          F.all(anyOf('$.eventName', ['UpdateTrail', 'PutEventSelectors', 'PutInsightSelectors']), notDeploy),
        ),
      ),
      AuditBucketPolicyChanges: F.all(
        F.stringValue('$.eventSource', '=', 's3.amazonaws.com'),
        anyOf('$.eventName', [
          'PutBucketPolicy',
          'DeleteBucketPolicy',
          'PutBucketPublicAccessBlock',
          'DeleteBucketPublicAccessBlock',
          'PutObjectLockConfiguration',
        ]),
        anyOf(
          '$.requestParameters.bucketName',
          props.auditBuckets.map((b) => b.bucketName),
        ),
        notDeploy,
      ),
      // CIS AWS Foundations 3.1 (unauthorized API calls), as a burst rather than each one.
      AuthorizationFailures: anyOf('$.errorCode', ['*UnauthorizedOperation', 'AccessDenied*']),
    };

    const namespace = `Bulwark/${props.deployment}/Trail`;
    const action = new actions.SnsAction(props.alarmTopic);
    const alarms = {} as Record<TrailAlarmId, cloudwatch.Alarm>;
    const strings = {} as Record<TrailAlarmId, string>;
    for (const name of TRAIL_ALARM_IDS) {
      const filter = new logs.MetricFilter(this, `${name}Filter`, {
        logGroup: props.logGroup,
        filterPattern: patterns[name],
        metricNamespace: namespace,
        metricName: name,
        metricValue: '1',
        defaultValue: 0,
      });
      const burst = name === 'AuthorizationFailures';
      const alarm = new cloudwatch.Alarm(this, name, {
        metric: filter.metric({ statistic: cloudwatch.Stats.SUM, period: Duration.minutes(5) }),
        threshold: burst ? (props.authorizationFailureThreshold ?? 10) : 1,
        evaluationPeriods: 1,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
        alarmDescription: `CloudTrail (${props.deployment}, every region): ${DESCRIPTIONS[name]}`,
      });
      alarm.addAlarmAction(action);
      alarms[name] = alarm;
      strings[name] = patterns[name].logPatternString;
    }
    this.alarms = alarms;
    this.patterns = strings;
  }
}

const DESCRIPTIONS: Readonly<Record<TrailAlarmId, string>> = {
  RootActivity: 'the root user made a call (docs/detection.md "Root activity")',
  PlatformKeyChanges:
    'ScheduleKeyDeletion, DisableKey or PutKeyPolicy outside a deployment and outside the tenant-key functions',
  RoleChanges: 'a policy, trust policy, boundary or tag of a Bulwark role changed outside a deployment',
  TrailTampering: 'a trail was stopped, deleted, or updated outside a deployment',
  AuditBucketPolicyChanges: "an audit bucket's policy, public access block or Object Lock changed outside a deployment",
  AuthorizationFailures: 'a burst of AccessDenied/UnauthorizedOperation errors in five minutes',
};
