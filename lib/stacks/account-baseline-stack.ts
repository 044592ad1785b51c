import { Stack, type StackProps } from 'aws-cdk-lib';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import type * as sns from 'aws-cdk-lib/aws-sns';
import type { Construct } from 'constructs';
import type { DeploymentConfig } from '../config';
import { AccountBaseline } from '../detection/account-baseline';

export interface AccountBaselineStackProps extends StackProps {
  readonly deployment: DeploymentConfig;
  /** The deployment's alarm channel (OperationsStack). */
  readonly alarmTopic: sns.ITopic;
}

/**
 * The account baseline of the deployment's region: GuardDuty, Security Hub, AWS Config and IAM Access
 * Analyzer (docs/security-baseline.md). Only in deployments with `accountBaseline` on.
 */
export class AccountBaselineStack extends Stack {
  public readonly baseline: AccountBaseline;
  /** AWS Config's delivery bucket; the trail records its data events. */
  public readonly configBucket: s3.IBucket;

  constructor(scope: Construct, id: string, props: AccountBaselineStackProps) {
    super(scope, id, props);
    this.baseline = new AccountBaseline(this, 'Baseline', {
      deployment: props.deployment.name,
      alarmTopic: props.alarmTopic,
    });
    this.configBucket = this.baseline.configBucket;
  }
}
