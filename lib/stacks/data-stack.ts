import { Stack, type StackProps } from 'aws-cdk-lib';
import type * as backup from 'aws-cdk-lib/aws-backup';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import type * as kms from 'aws-cdk-lib/aws-kms';
import type * as rds from 'aws-cdk-lib/aws-rds';
import type * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import type * as sns from 'aws-cdk-lib/aws-sns';
import type { Construct } from 'constructs';
import type { DeploymentConfig } from '../config';
import { DatabaseBackup } from '../data/backup';
import { PROXY_PORT, PostgresDatabase, databaseInstanceIdentifier, type DatabaseUserSecrets } from '../data/database';
import { DatabaseAccess } from '../data/database-access';
import { customerKey } from '../observability/keys';
import { APP_SUBNETS, DataNetwork } from '../data/network';
import { RestoreDrill } from '../data/restore-drill';
import { DatabaseSchema } from '../data/schema';

export interface DataStackProps extends StackProps {
  readonly deployment: DeploymentConfig;
  /** Receives the restore-drill and backup-job alarms. */
  readonly alarmTopic: sns.ITopic;
  /** The locked vault in the backup region (BackupVaultStack). */
  readonly copyVault: backup.IBackupVault;
}

/**
 * The data tier: VPC with endpoints, PostgreSQL + RDS Proxy, AWS Backup with cross-region
 * copies, and the scheduled restore drill. Other capabilities consume the public properties.
 */
export class DataStack extends Stack {
  public readonly vpc: ec2.IVpc;
  /** Where functions that use the data tier run: the isolated `app` subnets, which reach AWS via endpoints. */
  public readonly functionSubnets: ec2.SubnetSelection = { subnetGroupName: APP_SUBNETS };
  /** Security group of the API functions; the database proxy admits only it. */
  public readonly apiSecurityGroup: ec2.ISecurityGroup;
  public readonly database: rds.IDatabaseInstance;
  public readonly proxy: rds.IDatabaseProxy;
  /** Name of the application database behind `proxy`. */
  public readonly databaseName: string;
  /** The master user's secret; only the database bootstrap (migration custom resource) reads it. */
  public readonly databaseSecret: secretsmanager.ISecret;
  /**
   * One secret per login role, registered with `proxy` (IAM auth required): functions connect as
   * `bulwark_app` / `bulwark_audit_shipper` with `proxy.grantConnect(fn, user)`; the migrator's
   * password is used only by the migration custom resource, directly against `database`.
   */
  public readonly databaseUsers: DatabaseUserSecrets;
  /**
   * The schema (role bootstrap and migrations, applied at deploy). Everything that runs against
   * the database waits for it: `schema.requiredBy(fn)`.
   */
  public readonly schema: DatabaseSchema;
  /** Encrypts the database and its secrets. */
  public readonly dataKey: kms.IKey;
  /** Encrypts the data tier's log groups. */
  public readonly logKey: kms.IKey;
  /** The DynamoDB interface endpoint's URL, for functions in the VPC (DataNetwork.dynamoDbEndpointUrl). */
  public readonly dynamoDbEndpointUrl: string;

  private readonly zones: readonly string[];

  constructor(scope: Construct, id: string, props: DataStackProps) {
    super(scope, id, props);
    const { deployment } = props;
    this.zones = deployment.availabilityZones;
    const cfg = deployment.data;

    const dataKey = customerKey(this, 'DataKey', `Encrypts ${deployment.name} PostgreSQL and its secrets`);
    const logKey = customerKey(this, 'LogKey', `Encrypts ${deployment.name} data-tier log groups`);
    const backupKey = customerKey(this, 'BackupKey', `Encrypts ${deployment.name} primary-region backup vault`);

    const network = new DataNetwork(this, 'Network', {
      availabilityZones: deployment.availabilityZones,
      logKey,
      cidr: cfg.vpcCidr,
    });

    // No function needs the internet (and the subnets have no route out anyway): each group's
    // egress names exactly its targets. The API functions reach the database only through the proxy.
    const apiSecurityGroup = new ec2.SecurityGroup(this, 'ApiSecurityGroup', {
      vpc: network.vpc,
      description: 'API Lambda functions: the only client of the RDS Proxy',
      allowAllOutbound: false,
    });
    // The migration function alone logs in to the instance itself (as the schema owner, by password).
    const migrationSecurityGroup = new ec2.SecurityGroup(this, 'MigrationSecurityGroup', {
      vpc: network.vpc,
      description: 'Migration function: PostgreSQL directly, the Secrets Manager endpoint, CloudFormation responses',
      allowAllOutbound: false,
    });
    for (const group of [apiSecurityGroup, migrationSecurityGroup]) {
      group.addEgressRule(network.endpointSecurityGroup, ec2.Port.tcp(443), 'AWS service endpoints (S3 included)');
    }

    const database = new PostgresDatabase(this, 'Database', {
      vpc: network.vpc,
      vpcCidr: network.cidr,
      key: dataKey,
      logKey,
      clients: [apiSecurityGroup],
      instanceClients: [migrationSecurityGroup],
      endpointSecurityGroup: network.endpointSecurityGroup,
      instanceIdentifier: databaseInstanceIdentifier(deployment.name),
      secretsManagerEndpoint: network.endpoints.SecretsManager,
      instanceType: new ec2.InstanceType(cfg.databaseInstanceType),
      allocatedStorageGiB: cfg.allocatedStorageGiB,
      maxAllocatedStorageGiB: cfg.allocatedStorageGiB * 10,
    });

    apiSecurityGroup.addEgressRule(database.proxySecurityGroup, ec2.Port.tcp(PROXY_PORT), 'RDS Proxy');
    migrationSecurityGroup.addEgressRule(database.securityGroup, ec2.Port.tcp(database.port), 'PostgreSQL');

    new DatabaseBackup(this, 'Backup', {
      database: database.instance,
      key: backupKey,
      copyVault: props.copyVault,
      alarmTopic: props.alarmTopic,
      deadLetterKey: logKey,
    });

    new RestoreDrill(this, 'RestoreDrill', {
      deployment: deployment.name,
      vpc: network.vpc,
      vpcCidr: network.cidr,
      database: database.instance,
      subnetGroup: database.subnetGroup,
      parameterGroup: database.parameterGroup,
      databaseKey: dataKey,
      logKey,
      alarmTopic: props.alarmTopic,
      targetPrefix: `bulwark-${deployment.name}-drill`,
    });

    this.schema = new DatabaseSchema(this, 'Schema', {
      instance: database.instance,
      databaseName: database.databaseName,
      masterSecret: database.secret,
      users: database.users,
      vpc: network.vpc,
      vpcSubnets: this.functionSubnets,
      securityGroup: migrationSecurityGroup,
      encryptionKey: logKey,
    });

    this.vpc = network.vpc;
    this.apiSecurityGroup = apiSecurityGroup;
    this.database = database.instance;
    this.proxy = database.proxy;
    this.databaseName = database.databaseName;
    this.databaseSecret = database.secret;
    this.databaseUsers = database.users;
    this.dataKey = dataKey;
    this.logKey = logKey;
    this.dynamoDbEndpointUrl = network.dynamoDbEndpointUrl;
  }

  /**
   * Database access as `role` (one of DATABASE_ROLES): through the proxy, from the function subnets
   * with the API security group, after the schema. `access.connect(fn)` wires one function.
   */
  public databaseAccess(role: string): DatabaseAccess {
    return new DatabaseAccess({
      proxy: this.proxy,
      port: PROXY_PORT,
      databaseName: this.databaseName,
      role,
      vpc: this.vpc,
      vpcSubnets: this.functionSubnets,
      securityGroups: [this.apiSecurityGroup],
      schema: this.schema,
    });
  }

  /**
   * The deployment's listed zones. `ec2.Vpc` checks its zones against this, and the default
   * would be a context lookup (needing credentials at synth).
   */
  public override get availabilityZones(): string[] {
    return [...this.zones];
  }
}
