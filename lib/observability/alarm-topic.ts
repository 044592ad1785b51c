import { Stack } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import type * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as subscriptions from 'aws-cdk-lib/aws-sns-subscriptions';
import { Construct } from 'constructs';
import { deadLetterQueue } from './dead-letter-queue';
import { allowEventsToUseKey, customerKey } from './keys';

export interface AlarmTopicProps {
  /** Address that receives every alarm of the deployment. */
  readonly email: string;
}

/**
 * The deployment's alarm channel: an SNS topic encrypted with its own customer-managed key,
 * TLS-only, with the deployment's alarm contact subscribed. Every capability's alarms publish here.
 */
export class AlarmTopic extends Construct {
  public readonly topic: sns.ITopic;
  public readonly key: kms.IKey;

  constructor(scope: Construct, id: string, props: AlarmTopicProps) {
    super(scope, id);

    const { account, region, partition } = Stack.of(this);
    const sourceAccount = { 'aws:SourceAccount': account };
    const key = customerKey(this, 'Key', 'Encrypts the alarm topic');
    // CloudWatch publishes to the topic, and SNS writes undeliverable alarms to the dead-letter queue;
    // both only on behalf of this account's resources (confused deputy).
    key.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: 'AlarmDeliveryForThisAccount',
        principals: [
          new iam.ServicePrincipal('cloudwatch.amazonaws.com'),
          new iam.ServicePrincipal('sns.amazonaws.com'),
        ],
        actions: ['kms:Decrypt', 'kms:GenerateDataKey*'],
        resources: ['*'],
        conditions: { StringEquals: sourceAccount },
      }),
    );

    const topic = new sns.Topic(this, 'Topic', {
      masterKey: key,
      enforceSSL: true,
    });
    // enforceSSL creates the topic policy, which replaces SNS's default one: without this Allow,
    // CloudWatch could not publish and every alarm would be silent.
    topic.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: 'CloudWatchAlarmsOfThisAccount',
        principals: [new iam.ServicePrincipal('cloudwatch.amazonaws.com')],
        actions: ['sns:Publish'],
        resources: [topic.topicArn],
        conditions: {
          StringEquals: sourceAccount,
          ArnLike: { 'aws:SourceArn': `arn:${partition}:cloudwatch:${region}:${account}:alarm:*` },
        },
      }),
    );
    // EventBridge rules of this account and region (AWS Backup job failures, GuardDuty findings)
    // publish too, and need the key for it; any other account's rule is refused (confused deputy).
    // Targets use `AlarmTopicTarget`, which adds no statement of its own (the default SNS target
    // would add one without any condition).
    topic.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: 'EventBridgeRulesOfThisAccount',
        principals: [new iam.ServicePrincipal('events.amazonaws.com')],
        actions: ['sns:Publish'],
        resources: [topic.topicArn],
        conditions: {
          StringEquals: sourceAccount,
          ArnLike: { 'aws:SourceArn': `arn:${partition}:events:${region}:${account}:rule/*` },
        },
      }),
    );
    allowEventsToUseKey(key);
    // An alarm that cannot be delivered is kept for 14 days instead of vanishing.
    const undelivered = deadLetterQueue(this, 'Undelivered', {
      encryptionKey: key,
      deadLetterOf: 'the alarm e-mail subscription (SNS redrive)',
    });
    topic.addSubscription(new subscriptions.EmailSubscription(props.email, { deadLetterQueue: undelivered }));

    this.topic = topic;
    this.key = key;
  }
}

export interface AlarmTopicTargetProps extends targets.TargetBaseProps {
  /** What the rule publishes. @default - the matched event */
  readonly message?: events.RuleTargetInput;
}

/**
 * An EventBridge rule target that publishes to the alarm topic. Unlike `targets.SnsTopic` it grants
 * nothing: the topic policy and key of `AlarmTopic` already admit rules of this account and region.
 */
export class AlarmTopicTarget implements events.IRuleTarget {
  constructor(
    private readonly topic: sns.ITopic,
    private readonly props: AlarmTopicTargetProps = {},
  ) {}

  public bind(rule: Parameters<events.IRuleTarget['bind']>[0]): events.RuleTargetConfig {
    if (this.props.deadLetterQueue) targets.addToDeadLetterQueueResourcePolicy(rule, this.props.deadLetterQueue);
    return {
      ...targets.bindBaseTargetConfig(this.props),
      arn: this.topic.topicArn,
      input: this.props.message,
      targetResource: this.topic,
    };
  }
}
