import { Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as cloudwatchActions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as kms from 'aws-cdk-lib/aws-kms';
import type * as sns from 'aws-cdk-lib/aws-sns';
import { Construct } from 'constructs';
import { TENANT_BUDGET_ITEM, TENANT_BUDGET_METRICS } from '../../contracts/rate-limits';
import { acknowledge } from '../compliance/acknowledge';
import { customerKey } from '../observability/keys';

/**
 * The shape of a counter item's partition key, `<org_id>#<window start>`: the API role may update
 * items of this shape only (`dynamodb:LeadingKeys`).
 */
export const BUDGET_KEY_PATTERN = '????????-????-????-????-????????????#*';

export interface TenantBudgetTableProps {
  /** The role that spends budgets (the tenant API's): UpdateItem on counter items, nothing else. */
  readonly spender: iam.IRole;
  /**
   * Where the alarm goes when requests pass uncounted (DynamoDB failing, throttling or slow: the
   * budget fails open). @default - no alarm
   */
  readonly alarmTopic?: sns.ITopic;
}

const COUNTERS_ONLY =
  'Counters of one-minute windows, each useless a minute after it ends and removed by TTL: a restored copy would only refuse requests that were within budget, and losing the table loses nothing (the budget fails open, docs/rate-limits.md).';

/**
 * The per-tenant budget's counter table (docs/rate-limits.md "Per tenant"): one item per
 * organisation per window, created and incremented by one conditional UpdateItem of the tenant API
 * (lambda/tenant-guard/tenant-budget.ts). On demand, so it needs no capacity planning and cannot
 * throttle below DynamoDB's per-partition limits; encrypted with a customer-managed key the spender
 * may use only through DynamoDB; TTL removes past windows; retained.
 */
export class TenantBudgetTable extends Construct {
  public readonly table: dynamodb.Table;
  public readonly key: kms.Key;
  /**
   * The spender's permission, attached to its role from the policy's side: the key policy names the
   * role, so a policy the role listed itself would close a cycle (role, policy, table, key, role).
   * Functions that spend should depend on it.
   */
  public readonly spendPolicy: iam.ManagedPolicy;
  /** Requests passed uncounted (TenantBudgetUnavailable), when `alarmTopic` is set. */
  public readonly unavailableAlarm?: cloudwatch.Alarm;

  constructor(scope: Construct, id: string, props: TenantBudgetTableProps) {
    super(scope, id);
    const stack = Stack.of(this);
    this.key = customerKey(this, 'Key', 'Encrypts the per-tenant budget counters');
    this.table = new dynamodb.Table(this, 'Table', {
      partitionKey: { name: TENANT_BUDGET_ITEM.partitionKey, type: dynamodb.AttributeType.STRING },
      billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
      encryption: dynamodb.TableEncryption.CUSTOMER_MANAGED,
      encryptionKey: this.key,
      timeToLiveAttribute: TENANT_BUDGET_ITEM.expiresAt,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: false },
      deletionProtection: true,
      removalPolicy: RemovalPolicy.RETAIN,
    });
    for (const rule of [
      'AwsSolutions-DDB3',
      'HIPAA.Security-DynamoDBPITREnabled',
      'NIST.800.53.R5-DynamoDBPITREnabled',
      'HIPAA.Security-DynamoDBInBackupPlan',
      'NIST.800.53.R5-DynamoDBInBackupPlan',
    ]) {
      acknowledge(this.table, rule, COUNTERS_ONLY);
    }

    // Counting is the one thing the spender does: UpdateItem on counter items (org-id-shaped keys).
    // No read, query, scan, put or delete: a compromised API function can waste an organisation's
    // budget (availability, bounded to one window), never read or remove anything.
    this.spendPolicy = new iam.ManagedPolicy(this, 'SpendPolicy', {
      description: 'Tenant API: spend per-tenant budgets (UpdateItem on counter items only)',
      roles: [props.spender],
      statements: [
        new iam.PolicyStatement({
          sid: 'SpendTenantBudgets',
          actions: ['dynamodb:UpdateItem'],
          resources: [this.table.tableArn],
          conditions: {
            'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': [BUDGET_KEY_PATTERN] },
            // ForAllValues holds for an empty set too: the key must be there.
            Null: { 'dynamodb:LeadingKeys': 'false' },
          },
        }),
      ],
    });
    if (props.alarmTopic) {
      const alarm = new cloudwatch.Alarm(this, 'UnavailableAlarm', {
        alarmDescription:
          'Tenant API requests passed without counting against their organisation budget (TENANT_BUDGET_UNAVAILABLE): ' +
          'DynamoDB failing, throttling or slower than the timeout; tenants are bounded only by the per-credential, ' +
          'per-IP and stage limits until it recovers (docs/rate-limits.md).',
        metric: new cloudwatch.Metric({
          namespace: TENANT_BUDGET_METRICS.namespace,
          metricName: TENANT_BUDGET_METRICS.unavailable,
          statistic: cloudwatch.Stats.SUM,
          period: Duration.minutes(5),
        }),
        threshold: 10,
        evaluationPeriods: 1,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      });
      alarm.addAlarmAction(new cloudwatchActions.SnsAction(props.alarmTopic));
      this.unavailableAlarm = alarm;
    }

    // DynamoDB uses the table key on the caller's behalf: admitted in the key policy, for the spender,
    // through DynamoDB in this region only.
    this.key.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: 'SpenderThroughDynamoDbOnly',
        principals: [new iam.ArnPrincipal(props.spender.roleArn)],
        actions: ['kms:Decrypt', 'kms:Encrypt', 'kms:GenerateDataKey*', 'kms:ReEncrypt*', 'kms:DescribeKey'],
        resources: ['*'],
        conditions: {
          StringEquals: {
            'kms:ViaService': `dynamodb.${stack.region}.amazonaws.com`,
            'kms:CallerAccount': stack.account,
          },
        },
      }),
    );
  }
}
