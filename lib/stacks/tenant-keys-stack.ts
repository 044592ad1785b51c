import { Stack, type StackProps } from 'aws-cdk-lib';
import type * as sns from 'aws-cdk-lib/aws-sns';
import type { Construct } from 'constructs';
import type { DeploymentConfig } from '../config';
import { TenantFileStore } from '../tenant-files/file-store';
import { TenantKeys, type TenantKeysDatabases } from '../tenant-keys/tenant-keys';

export interface TenantKeysStackProps extends StackProps {
  readonly deployment: DeploymentConfig;
  readonly alarmTopic: sns.ITopic;
  /** Each function's database access (the data tier's). @default - not wired (see TenantKeysProps.databases) */
  readonly databases?: TenantKeysDatabases;
}

/**
 * Per-tenant KMS keys, the tenant lifecycle (cancel, grace, crypto-shredding), tenant exports, and
 * the tenant file store whose objects those keys encrypt (erased and exported with their tenant).
 */
export class TenantKeysStack extends Stack {
  public readonly tenantKeys: TenantKeys;
  public readonly files: TenantFileStore;

  constructor(scope: Construct, id: string, props: TenantKeysStackProps) {
    super(scope, id, props);
    this.files = new TenantFileStore(this, 'Files', { deployment: props.deployment.name });
    this.tenantKeys = new TenantKeys(this, 'TenantKeys', {
      deployment: props.deployment.name,
      alarmTopic: props.alarmTopic,
      databases: props.databases,
      filesBucket: this.files.bucket,
    });
  }
}
