import { Stack, type StackProps } from 'aws-cdk-lib';
import type * as kms from 'aws-cdk-lib/aws-kms';
import type * as sns from 'aws-cdk-lib/aws-sns';
import type { Construct } from 'constructs';
import type { DeploymentConfig } from '../config';
import { AlarmTopic } from '../observability/alarm-topic';

export interface OperationsStackProps extends StackProps {
  readonly deployment: DeploymentConfig;
}

/** Deployment-wide operations: the alarm channel every other capability reports to. */
export class OperationsStack extends Stack {
  public readonly alarmTopic: sns.ITopic;
  public readonly alarmKey: kms.IKey;

  constructor(scope: Construct, id: string, props: OperationsStackProps) {
    super(scope, id, props);
    const alarms = new AlarmTopic(this, 'Alarms', { email: props.deployment.alarms.email });
    this.alarmTopic = alarms.topic;
    this.alarmKey = alarms.key;
  }
}
