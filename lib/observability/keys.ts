/**
 * Secure defaults for customer-managed keys, in one place: rotation on, 30-day deletion window,
 * retained with the stack gone. Service grants are idempotent and scoped to this account and region.
 */
import { ArnFormat, Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import { Construct } from 'constructs';

/** A customer-managed key with rotation on, retained on stack deletion. */
export function customerKey(scope: Construct, id: string, description: string): kms.Key {
  return new kms.Key(scope, id, {
    description,
    enableKeyRotation: true,
    pendingWindow: Duration.days(30),
    removalPolicy: RemovalPolicy.RETAIN,
  });
}

const LOGS_GRANTED = new WeakSet<kms.IKey>();

/**
 * Lets CloudWatch Logs in this region encrypt log groups of this account with `key` (idempotent).
 * Scoped by encryption context to log groups of the key's own account and region, so the key
 * cannot be borrowed to encrypt anything else.
 */
export function allowLogsToUseKey(key: kms.IKey): void {
  if (LOGS_GRANTED.has(key)) return;
  LOGS_GRANTED.add(key);
  const stack = Stack.of(key);
  key.addToResourcePolicy(
    new iam.PolicyStatement({
      principals: [new iam.ServicePrincipal(`logs.${stack.region}.amazonaws.com`)],
      actions: ['kms:Encrypt*', 'kms:Decrypt*', 'kms:ReEncrypt*', 'kms:GenerateDataKey*', 'kms:Describe*'],
      resources: ['*'],
      conditions: {
        ArnLike: {
          'kms:EncryptionContext:aws:logs:arn': stack.formatArn({
            service: 'logs',
            resource: 'log-group',
            resourceName: '*',
            arnFormat: ArnFormat.COLON_RESOURCE_NAME,
          }),
        },
      },
    }),
  );
}

const EVENTS_GRANTED = new WeakSet<kms.IKey>();

/** Lets EventBridge write dead-lettered events to queues encrypted with `key` (idempotent). */
export function allowEventsToUseKey(key: kms.IKey): void {
  if (EVENTS_GRANTED.has(key)) return;
  EVENTS_GRANTED.add(key);
  key.addToResourcePolicy(
    new iam.PolicyStatement({
      principals: [new iam.ServicePrincipal('events.amazonaws.com')],
      actions: ['kms:Decrypt', 'kms:GenerateDataKey*'],
      resources: ['*'],
      conditions: { StringEquals: { 'aws:SourceAccount': Stack.of(key).account } },
    }),
  );
}

export interface LogKeyProps {
  /** What the key encrypts, for the key's description. */
  readonly description: string;
}

/** A customer-managed key that CloudWatch Logs of this account and region may use, and nothing else. */
export class LogKey extends Construct {
  public readonly key: kms.Key;

  constructor(scope: Construct, id: string, props: LogKeyProps) {
    super(scope, id);
    this.key = customerKey(this, 'Key', props.description);
    allowLogsToUseKey(this.key);
  }
}
