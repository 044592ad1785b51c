/**
 * Secure defaults for customer-managed keys, in one place: rotation on, 30-day deletion window,
 * retained with the stack gone, an immutable `platform` class tag, and a key policy that denies
 * deletion, disabling, policy and tag changes to everyone but the deploy role and the break-glass
 * role. Service grants are idempotent and scoped to this account and region.
 */
import { ArnFormat, DefaultStackSynthesizer, Duration, RemovalPolicy, Stack, Tags } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import { Construct } from 'constructs';
import { PLATFORM_KEY_CLASS, TAG_KEY_CLASS } from '../../contracts/tenant-keys';

/**
 * The role an operator assumes to manage a platform key outside a deployment (docs/break-glass.md).
 * Bulwark does not create it: it exists only where an account owner has made it, MFA-gated.
 */
export const BREAK_GLASS_ROLE_NAME = 'bulwark-break-glass';

/**
 * What nobody but the deploy role and the break-glass role may do to a platform key: each of these
 * would destroy data, cut off a service, or (tags) make the key look like a tenant key.
 */
export const PLATFORM_KEY_PROTECTED_ACTIONS = [
  'kms:ScheduleKeyDeletion',
  'kms:DisableKey',
  'kms:DisableKeyRotation',
  'kms:PutKeyPolicy',
  'kms:TagResource',
  'kms:UntagResource',
] as const;

/**
 * ARNs of the principals that may still change a platform key: CloudFormation's execution role of
 * the CDK bootstrap (the qualifier is the stack synthesizer's, so it follows
 * `@aws-cdk/core:bootstrapQualifier`) and the named break-glass role.
 */
export function keyAdministratorArns(scope: Construct): string[] {
  const stack = Stack.of(scope);
  const qualifier = stack.synthesizer.bootstrapQualifier ?? DefaultStackSynthesizer.DEFAULT_QUALIFIER;
  const role = (name: string) => stack.formatArn({ service: 'iam', region: '', resource: 'role', resourceName: name });
  return [role(`cdk-${qualifier}-cfn-exec-role-${stack.account}-${stack.region}`), role(BREAK_GLASS_ROLE_NAME)];
}

/** What not even the deploy role may do to a key whose loss would lose records that must be kept. */
export const RECORD_KEY_PROTECTED_ACTIONS = ['kms:ScheduleKeyDeletion', 'kms:DisableKey'] as const;

/**
 * For keys of records that must outlive any deployment (the audit archive, the trail, their
 * replicas): deleting or disabling the key is denied to every principal but the break-glass role,
 * the deploy role included (it never needs to: the keys are retained). Stacks on `customerKey`'s guard.
 */
export function denyKeyLossExceptBreakGlass(key: kms.IKey): void {
  const stack = Stack.of(key);
  key.addToResourcePolicy(
    new iam.PolicyStatement({
      sid: 'DenyDeletionAndDisablingExceptBreakGlass',
      effect: iam.Effect.DENY,
      principals: [new iam.AnyPrincipal()],
      actions: [...RECORD_KEY_PROTECTED_ACTIONS],
      resources: ['*'],
      conditions: {
        ArnNotEquals: {
          'aws:PrincipalArn': stack.formatArn({
            service: 'iam',
            region: '',
            resource: 'role',
            resourceName: BREAK_GLASS_ROLE_NAME,
          }),
        },
      },
    }),
  );
}

/** A customer-managed key with rotation on, retained on stack deletion, guarded as a platform key. */
export function customerKey(scope: Construct, id: string, description: string): kms.Key {
  const key = new kms.Key(scope, id, {
    description,
    enableKeyRotation: true,
    pendingWindow: Duration.days(30),
    removalPolicy: RemovalPolicy.RETAIN,
  });
  // The class tag tells every tag-conditioned IAM statement that this is not a tenant key; the
  // Deny below keeps anyone but the exempt roles from changing it, and the priority keeps a wider
  // Tags.of() from overriding it.
  Tags.of(key).add(TAG_KEY_CLASS, PLATFORM_KEY_CLASS, { priority: 1000 });
  key.addToResourcePolicy(
    new iam.PolicyStatement({
      sid: 'DenyLifecyclePolicyAndTagChangesExceptDeployAndBreakGlass',
      effect: iam.Effect.DENY,
      principals: [new iam.AnyPrincipal()],
      actions: [...PLATFORM_KEY_PROTECTED_ACTIONS],
      resources: ['*'],
      conditions: { ArnNotEquals: { 'aws:PrincipalArn': keyAdministratorArns(key) } },
    }),
  );
  // AWS Control Tower CT.KMS.PR.3: grants only for AWS resources (RDS, Logs, Backup, ...) or by
  // AWS services themselves; nobody can hand the key to an arbitrary grantee.
  key.addToResourcePolicy(
    new iam.PolicyStatement({
      sid: 'DenyGrantsExceptForAwsResources',
      effect: iam.Effect.DENY,
      principals: [new iam.AnyPrincipal()],
      actions: ['kms:CreateGrant'],
      resources: ['*'],
      conditions: {
        BoolIfExists: { 'kms:GrantIsForAWSResource': 'false', 'aws:PrincipalIsAWSService': 'false' },
      },
    }),
  );
  return key;
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
