import { Stack, type StackProps } from 'aws-cdk-lib';
import type * as sns from 'aws-cdk-lib/aws-sns';
import type { Construct } from 'constructs';
import type { DeploymentConfig } from '../config';
import type { DatabaseAccess } from '../data/database-access';
import { TenantFileStore } from '../tenant-files/file-store';
import { TenantKeys, type TenantKeysDatabases } from '../tenant-keys/tenant-keys';

export interface TenantKeysStackProps extends StackProps {
  readonly deployment: DeploymentConfig;
  readonly alarmTopic: sns.ITopic;
  /** Each function's database access (the data tier's). @default - not wired (see TenantKeysProps.databases) */
  readonly databases?: TenantKeysDatabases;
  /**
   * The tenant-file quarantine checker's database access (as `bulwark_file_checker`); without it no
   * checker is deployed and no upload is ever released.
   * @default - no checker
   */
  readonly fileCheckerDatabase?: DatabaseAccess;
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
    this.files = new TenantFileStore(this, 'Files', {
      deployment: props.deployment.name,
      ...(props.fileCheckerDatabase
        ? {
            checker: {
              database: props.fileCheckerDatabase,
              alarmTopic: props.alarmTopic,
            },
          }
        : {}),
    });
    this.tenantKeys = new TenantKeys(this, 'TenantKeys', {
      deployment: props.deployment.name,
      alarmTopic: props.alarmTopic,
      databases: props.databases,
      filesBucket: this.files.bucket,
    });
    // The checker decrypts each upload through S3: the tenant key policies admit tenant-key users
    // only, each for its own org_id and prefix (its own policy confines it to S3 and orgs/).
    if (this.files.checker) this.tenantKeys.tagAsTenantKeyUser(this.files.checker.role);
  }
}
