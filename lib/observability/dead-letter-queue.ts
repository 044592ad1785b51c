import { Duration, RemovalPolicy } from 'aws-cdk-lib';
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
}

/**
 * A KMS-encrypted, TLS-only dead-letter queue, retained with the stack gone. cdk-nag only recognises a
 * queue as a DLQ when another SQS queue redrives into it, so the two "has no DLQ" findings are accepted
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
  acknowledge(queue, 'AwsSolutions-SQS3', reason);
  acknowledge(queue, 'Serverless-SQSRedrivePolicy', reason);
  return queue;
}
