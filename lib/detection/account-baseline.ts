import { Duration, Stack } from 'aws-cdk-lib';
import * as accessanalyzer from 'aws-cdk-lib/aws-accessanalyzer';
import * as config from 'aws-cdk-lib/aws-config';
import * as actions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import * as guardduty from 'aws-cdk-lib/aws-guardduty';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as kms from 'aws-cdk-lib/aws-kms';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as securityhub from 'aws-cdk-lib/aws-securityhub';
import type * as sns from 'aws-cdk-lib/aws-sns';
import { Construct } from 'constructs';
import { acknowledge } from '../compliance/acknowledge';
import type { GuardExemption } from '../compliance/cfn-guard';
import { deadLetterQueue, undeliveredAlarm } from '../observability/dead-letter-queue';
import { allowEventsToUseKey, customerKey } from '../observability/keys';
import { ServiceRole } from '../data/roles';
import { SECURE_BUCKET_DEFAULTS } from '../shared/bucket';

/** GuardDuty protections beyond the foundational sources (CloudTrail, VPC Flow Logs, DNS). */
export const GUARDDUTY_FEATURES = ['S3_DATA_EVENTS', 'RDS_LOGIN_EVENTS', 'LAMBDA_NETWORK_LOGS'] as const;

/** GuardDuty severities from here up page the alarm topic (7.0-8.9 High, 9.0+ Critical). */
export const GUARDDUTY_ALARM_SEVERITY = 7;

/** EventBridge's detail type of a CloudWatch alarm's state change. */
export const ALARM_STATE_CHANGE = 'CloudWatch Alarm State Change';

/**
 * Control Tower rules that do not fit the baseline, each on its one resource (paths relative to the
 * stage; the stage applies them only where the baseline exists), for the baseline stack `stackId`.
 */
function accountBaselineGuardExemptions(stackId: string): GuardExemption[] {
  return ACCOUNT_BASELINE_GUARD_EXEMPTIONS.map((e) => ({
    ...e,
    path: e.path.replace(/^AccountBaseline\//, `${stackId}/`),
  }));
}

/**
 * The exemptions of a baseline in another region than the alarm topic's: its undelivered-findings
 * alarm has no action (an alarm action reaches only a topic of its own region) and is forwarded.
 */
export function forwardingBaselineGuardExemptions(stackId: string): GuardExemption[] {
  return [
    ...accountBaselineGuardExemptions(stackId),
    {
      path: `${stackId}/Baseline/UndeliveredFindingsAlarm`,
      rule: 'cloudwatch_alarm_action_check',
      reason:
        "A CloudWatch alarm action reaches only an SNS topic of its own region, and the alarm topic is in the deployment's home region: the ForwardAlarms rule sends this alarm's ALARM state change to that region's default event bus, where the OtherRegionAlarms rule publishes it to the alarm topic.",
    },
  ];
}

/** The exemptions of the home region's baseline (`AccountBaseline`). */
export const ACCOUNT_BASELINE_GUARD_EXEMPTIONS: readonly GuardExemption[] = [
  {
    path: 'AccountBaseline/Baseline/GuardDuty',
    rule: 'guardduty_s3_protection_enabled_check',
    reason:
      "S3 Protection is on, through the detector's Features (S3_DATA_EVENTS), the API that replaced DataSources; this rule reads only the legacy DataSources.S3Logs property, and CloudFormation refuses a detector that sets both.",
  },
  {
    path: 'AccountBaseline/Baseline/ConfigBucket',
    rule: 's3_bucket_logging_enabled_check',
    reason:
      "Every object-level call on this bucket is recorded by the deployment's multi-region CloudTrail as S3 data events, into the trail's Object Lock bucket; server access logs would record the same calls with less detail.",
  },
  {
    path: 'AccountBaseline/Baseline/ConfigBucket',
    rule: 's3_event_notifications_enabled_check',
    reason:
      "Nothing consumes this bucket's object events: AWS Config history and snapshots are read in Config and by Security Hub, not processed on arrival. A notification target would be a new delivery path with nothing behind it.",
  },
  {
    path: 'AccountBaseline/Baseline/ConfigBucket',
    rule: 's3_bucket_object_lock_enabled_check',
    reason:
      'AWS Config history is operational state, not audit evidence under a retention promise; the audit record of every change to a resource is CloudTrail, in its own Object Lock (COMPLIANCE) bucket.',
  },
  {
    path: 'AccountBaseline/Baseline/UndeliveredFindings',
    rule: 'sqs_dlq_check',
    reason:
      'This queue is the dead-letter queue of the GuardDuty findings rule; a dead-letter queue of a dead-letter queue would only move its messages again.',
  },
];

/** Where the baseline's findings and alarms go. */
export type BaselineAlarms =
  /**
   * The deployment's home region: high-severity findings page the alarm topic, and so do the alarm
   * state changes that the baselines of `otherRegions` forward to this region's default event bus.
   */
  | { readonly alarmTopic: sns.ITopic; readonly otherRegions?: readonly string[] }
  /**
   * Another region of the deployment (the backup region): CloudWatch alarm actions and EventBridge's
   * SNS targets reach only topics of their own region, so high-severity findings and this baseline's
   * alarms are forwarded to the home region's default event bus, whose rules page the alarm topic.
   */
  | { readonly homeRegion: string };

export interface AccountBaselineProps {
  /** The deployment's name, for names and descriptions. */
  readonly deployment: string;
  readonly alarms: BaselineAlarms;
  /**
   * Name of the Config bucket, for a bucket another region's stack must name (the home region's trail
   * records its data events). @default generated by CloudFormation
   */
  readonly configBucketName?: string;
}

/**
 * The account's managed detectors in one region of the deployment: GuardDuty (with S3, RDS and Lambda
 * protections), Security Hub with the AWS Foundational Security Best Practices standard, AWS Config
 * recording every supported resource into an encrypted bucket in the region (IAM's global resources
 * in the home region only: recorded once, not once per region), and an account IAM Access Analyzer.
 * Each exists once per account and region, so a deployment whose organisation already runs them
 * (delegated administrator) turns this off (`accountBaseline: false`).
 */
export class AccountBaseline extends Construct {
  public readonly detector: guardduty.CfnDetector;
  /** Configuration snapshots and history; the trail records object-level access to it. */
  public readonly configBucket: s3.IBucket;
  /** Encrypts the Config bucket and the undelivered-findings queue. */
  public readonly key: kms.IKey;
  /** Routes high-severity GuardDuty findings to the alarm topic (home region) or the home region's bus. */
  public readonly findingsRule: events.Rule;
  /** Home region: pages the alarm states other regions' baselines forward. Backup region: forwards them. */
  public readonly alarmsRule?: events.Rule;
  /** Backup region: the role EventBridge forwards to the home region's default event bus with. */
  public readonly forwardRole?: iam.IRole;

  constructor(scope: Construct, id: string, props: AccountBaselineProps) {
    super(scope, id);
    const stack = Stack.of(this);
    const { account, partition, region } = stack;

    // --- GuardDuty ------------------------------------------------------------------------------
    this.detector = new guardduty.CfnDetector(this, 'GuardDuty', {
      enable: true,
      findingPublishingFrequency: 'FIFTEEN_MINUTES',
      features: GUARDDUTY_FEATURES.map((name) => ({ name, status: 'ENABLED' })),
    });
    // --- the key of this stack: Config's history and undelivered findings ----------------------
    const key = customerKey(
      this,
      'Key',
      `Bulwark ${props.deployment}: AWS Config snapshots and history, undelivered GuardDuty findings`,
    );

    // Findings reach EventBridge in this region. A finding (or alarm) the target does not take is
    // kept, and that alarms too.
    allowEventsToUseKey(key);
    const undelivered = deadLetterQueue(this, 'UndeliveredFindings', {
      encryptionKey: key,
      deadLetterOf: 'the GuardDuty findings rule (an alarm watches it)',
    });
    this.findingsRule = new events.Rule(this, 'HighSeverityFindings', {
      description:
        'alarmTopic' in props.alarms
          ? `Bulwark ${props.deployment}: GuardDuty findings of severity ${GUARDDUTY_ALARM_SEVERITY}+ to the alarm topic`
          : `Bulwark ${props.deployment}: GuardDuty findings of severity ${GUARDDUTY_ALARM_SEVERITY}+ to the home region (${props.alarms.homeRegion})`,
      eventPattern: {
        source: ['aws.guardduty'],
        detailType: ['GuardDuty Finding'],
        detail: { severity: [{ numeric: ['>=', GUARDDUTY_ALARM_SEVERITY] }] },
      },
    });
    const undeliveredAlarmOfThis = undeliveredAlarm(
      this,
      'UndeliveredFindingsAlarm',
      undelivered,
      `Bulwark ${props.deployment}: a GuardDuty finding could not be delivered to the alarm topic`,
    );
    const retryPolicy = { maximumRetryAttempts: 185, maximumEventAgeInSeconds: 86_400 };

    if ('alarmTopic' in props.alarms) {
      const topic = props.alarms.alarmTopic;
      // Not events_targets.SnsTopic: it would add an unconditioned events.amazonaws.com grant to the
      // topic; the AlarmTopic's own statement is scoped to this account's rules of this region.
      const toTopic: events.IRuleTarget = {
        bind: (rule) => {
          targets.addToDeadLetterQueueResourcePolicy(rule, undelivered);
          return { arn: topic.topicArn, deadLetterConfig: { arn: undelivered.queueArn }, retryPolicy };
        },
      };
      // Findings forwarded from the other regions arrive on this region's default bus and match here too.
      this.findingsRule.addTarget(toTopic);
      undeliveredAlarmOfThis.addAlarmAction(new actions.SnsAction(topic));
      const otherRegions = props.alarms.otherRegions ?? [];
      if (otherRegions.length > 0) {
        this.alarmsRule = new events.Rule(this, 'OtherRegionAlarms', {
          description: `Bulwark ${props.deployment}: alarms of the baseline in ${otherRegions.join(', ')} to the alarm topic`,
          eventPattern: {
            source: ['aws.cloudwatch'],
            detailType: [ALARM_STATE_CHANGE],
            region: [...otherRegions],
            detail: { state: { value: ['ALARM'] } },
          },
        });
        this.alarmsRule.addTarget(toTopic);
      }
    } else {
      // Same account, another region: EventBridge needs a role allowed to put events on the home
      // region's default bus (no bus policy: that is only for other accounts).
      const homeBus = events.EventBus.fromEventBusArn(
        this,
        'HomeBus',
        `arn:${partition}:events:${props.alarms.homeRegion}:${account}:event-bus/default`,
      );
      const forward = new ServiceRole(this, 'Forward', {
        assumedBy: new iam.ServicePrincipal('events.amazonaws.com').withConditions({
          StringEquals: { 'aws:SourceAccount': account },
        }),
        description: `Bulwark ${props.deployment}: EventBridge forwards findings and alarms to ${props.alarms.homeRegion}`,
        statements: [new iam.PolicyStatement({ actions: ['events:PutEvents'], resources: [homeBus.eventBusArn] })],
      });
      const toHome = new targets.EventBus(homeBus, { role: forward.role, deadLetterQueue: undelivered });
      this.findingsRule.addTarget(toHome);
      // Its own alarm cannot page a topic of another region: its state change is forwarded instead.
      this.alarmsRule = new events.Rule(this, 'ForwardAlarms', {
        description: `Bulwark ${props.deployment}: this baseline's alarms to the home region (${props.alarms.homeRegion})`,
        eventPattern: {
          source: ['aws.cloudwatch'],
          detailType: [ALARM_STATE_CHANGE],
          detail: { alarmName: [undeliveredAlarmOfThis.alarmName], state: { value: ['ALARM'] } },
        },
      });
      this.alarmsRule.addTarget(toHome);
      this.forwardRole = forward.role;
      for (const rule of ['HIPAA.Security-CloudWatchAlarmAction', 'NIST.800.53.R5-CloudWatchAlarmAction']) {
        acknowledge(
          undeliveredAlarmOfThis,
          rule,
          `A CloudWatch alarm action reaches only an SNS topic of its own region and the alarm topic is in ${props.alarms.homeRegion}: the ForwardAlarms rule sends this alarm's ALARM state change to that region's default bus, where the OtherRegionAlarms rule publishes it to the alarm topic.`,
        );
      }
    }

    // --- AWS Config -----------------------------------------------------------------------------
    const sourceAccount = { StringEquals: { 'aws:SourceAccount': account } };
    const configService = new iam.ServicePrincipal('config.amazonaws.com');
    key.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: 'ConfigDeliversForThisAccount',
        principals: [configService],
        actions: ['kms:Decrypt', 'kms:GenerateDataKey'],
        resources: ['*'],
        conditions: sourceAccount,
      }),
    );
    const bucket = new s3.Bucket(this, 'ConfigBucket', {
      ...SECURE_BUCKET_DEFAULTS,
      bucketName: props.configBucketName,
      encryptionKey: key,
      bucketKeyEnabled: true,
      lifecycleRules: [
        {
          id: 'colder-storage',
          transitions: [
            { storageClass: s3.StorageClass.GLACIER_INSTANT_RETRIEVAL, transitionAfter: Duration.days(90) },
          ],
          noncurrentVersionExpiration: Duration.days(90),
        },
      ],
    });
    // The service-linked role delivers as the Config service principal (docs: "Permissions for the
    // Amazon S3 Bucket for the AWS Config Delivery Channel").
    bucket.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: 'ConfigChecksTheBucket',
        principals: [configService],
        actions: ['s3:GetBucketAcl', 's3:ListBucket'],
        resources: [bucket.bucketArn],
        conditions: sourceAccount,
      }),
    );
    bucket.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: 'ConfigDeliversIntoThisAccountsPrefix',
        principals: [configService],
        actions: ['s3:PutObject'],
        resources: [bucket.arnForObjects(`AWSLogs/${account}/Config/*`)],
        conditions: { StringEquals: { 's3:x-amz-acl': 'bucket-owner-full-control', 'aws:SourceAccount': account } },
      }),
    );
    const accessByTrail =
      "S3 server access logging is not enabled on this bucket: the deployment's multi-region CloudTrail records " +
      "every object-level call on it as S3 data events (AuditStack dataEventBuckets), into the trail's Object Lock bucket.";
    for (const rule of [
      'AwsSolutions-S1',
      'HIPAA.Security-S3BucketLoggingEnabled',
      'NIST.800.53.R5-S3BucketLoggingEnabled',
      'PCI.DSS.321-S3BucketLoggingEnabled',
    ]) {
      acknowledge(bucket, rule, accessByTrail);
    }
    for (const rule of [
      'HIPAA.Security-S3BucketReplicationEnabled',
      'NIST.800.53.R5-S3BucketReplicationEnabled',
      'PCI.DSS.321-S3BucketReplicationEnabled',
    ]) {
      acknowledge(
        bucket,
        rule,
        'AWS Config history describes resources of this region and is kept in it (residency); losing the region loses the history of resources that are lost with it, and the recorder re-records the region when it returns.',
      );
    }

    // The service-linked role, not a role of ours: it carries AWS's own AWSConfigServiceRolePolicy and
    // exists once per account (docs/security-baseline.md says how it is created).
    const recorder = new config.CfnConfigurationRecorder(this, 'Recorder', {
      roleArn: `arn:${partition}:iam::${account}:role/aws-service-role/config.amazonaws.com/AWSServiceRoleForConfig`,
      // IAM users, roles, groups and policies are global: recorded in the home region only (once per
      // account is what Config's own guidance asks; duplicates would double the items and their cost).
      recordingGroup: { allSupported: true, includeGlobalResourceTypes: 'alarmTopic' in props.alarms },
    });
    const channel = new config.CfnDeliveryChannel(this, 'DeliveryChannel', {
      s3BucketName: bucket.bucketName,
      s3KmsKeyArn: key.keyArn,
      configSnapshotDeliveryProperties: { deliveryFrequency: 'TwentyFour_Hours' },
    });
    channel.node.addDependency(recorder);

    // --- Security Hub ---------------------------------------------------------------------------
    const hub = new securityhub.CfnHub(this, 'SecurityHub', {
      enableDefaultStandards: false,
      controlFindingGenerator: 'SECURITY_CONTROL',
      autoEnableControls: true,
    });
    const fsbp = new securityhub.CfnStandard(this, 'FoundationalBestPractices', {
      standardsArn: `arn:${partition}:securityhub:${region}::standards/aws-foundational-security-best-practices/v/1.0.0`,
    });
    fsbp.node.addDependency(hub);
    // Most of its controls evaluate AWS Config's recorded items.
    fsbp.node.addDependency(recorder);

    // --- IAM Access Analyzer -------------------------------------------------------------------
    new accessanalyzer.CfnAnalyzer(this, 'AccessAnalyzer', {
      type: 'ACCOUNT',
      analyzerName: `bulwark-${props.deployment}`,
    });

    this.configBucket = bucket;
    this.key = key;
  }
}
