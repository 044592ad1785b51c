import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import type * as kms from 'aws-cdk-lib/aws-kms';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import type { Construct } from 'constructs';
import { acknowledge } from '../compliance/acknowledge';

export interface DeadLetterQueueProps {
  /** Key the queue is encrypted with. */
  readonly encryptionKey: kms.IKey;
  /** What dead-letters into this queue, for the acknowledgement reason, e.g. "the alarm e-mail subscription". */
  readonly deadLetterOf: string;
  /** How long undelivered messages are kept. @default Duration.days(14) */
  readonly retention?: Duration;
  /**
   * A Lambda function of the same stack names this queue as its dead-letter target. cdk-nag's
   * AwsSolutions-SQS3 then recognises the queue as a DLQ by itself, so no acknowledgement is made
   * for it (the gate fails on an acknowledgement that matches no finding).
   * @default false
   */
  readonly servesFunction?: boolean;
}

/**
 * A KMS-encrypted, TLS-only dead-letter queue, retained with the stack gone. cdk-nag recognises a
 * queue as a DLQ only when another SQS queue or a Lambda function of its stack dead-letters into it
 * (Serverless-SQSRedrivePolicy never does), so the "has no DLQ" findings it does report are accepted
 * here, on this queue only, with the reason naming what it serves.
 */
export function deadLetterQueue(scope: Construct, id: string, props: DeadLetterQueueProps): sqs.Queue {
  const queue = new sqs.Queue(scope, id, {
    encryption: sqs.QueueEncryption.KMS,
    encryptionMasterKey: props.encryptionKey,
    enforceSSL: true,
    retentionPeriod: props.retention ?? Duration.days(14),
    removalPolicy: RemovalPolicy.RETAIN,
  });
  const reason = `This queue is the dead-letter queue of ${props.deadLetterOf}; a dead-letter queue needs no dead-letter queue of its own.`;
  if (!props.servesFunction) acknowledge(queue, 'AwsSolutions-SQS3', reason);
  acknowledge(queue, 'Serverless-SQSRedrivePolicy', reason);
  return queue;
}

/**
 * An alarm on any message waiting in a dead-letter queue: something that should have reached its
 * target (an invocation, a scheduled event, an alarm notification) did not. The caller adds its
 * actions.
 */
export function undeliveredAlarm(
  scope: Construct,
  id: string,
  queue: sqs.IQueue,
  description: string,
): cloudwatch.Alarm {
  return new cloudwatch.Alarm(scope, id, {
    alarmDescription: description,
    metric: queue.metricApproximateNumberOfMessagesVisible({ period: Duration.minutes(5), statistic: 'Maximum' }),
    threshold: 1,
    comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
    evaluationPeriods: 1,
    treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
  });
}
