import { Duration, RemovalPolicy, Stack, Token } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as kms from 'aws-cdk-lib/aws-kms';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as rds from 'aws-cdk-lib/aws-rds';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { Construct } from 'constructs';
import { DATABASE_ROLES, type RolePurpose } from '../../contracts/database';
import { acknowledge } from '../compliance/acknowledge';
import { allowLogsToUseKey } from '../observability/keys';
import { allowSecretRotationApplication } from '../residency/guard';
import { APP_SUBNETS, DATA_SUBNETS } from './network';
import { ServiceRole } from './roles';

/** PostgreSQL listens here, not on 5432, so scanners for the default port find nothing. */
export const DEFAULT_DATABASE_PORT = 5439;
/** RDS Proxy always listens on the engine's default port. */
export const PROXY_PORT = 5432;
export const POSTGRES_VERSION = rds.PostgresEngineVersion.VER_17_6;
/** Log types RDS exports to CloudWatch Logs. */
export const EXPORTED_LOGS = ['postgresql', 'upgrade'] as const;

/**
 * Server parameters. TLS 1.2+ is mandatory for every connection; connections, disconnections, DDL
 * and role changes are logged (pgaudit), but never statement parameters, which carry tenant data.
 * Only members of `rds_password` (the master, through rds_superuser) may set passwords, so SQL on a
 * function's connection cannot change the password RDS Proxy logs in with (docs/tenancy.md).
 */
export const AUDIT_PARAMETERS: Readonly<Record<string, string>> = {
  'rds.force_ssl': '1',
  'rds.restrict_password_commands': '1',
  ssl_min_protocol_version: 'TLSv1.2',
  password_encryption: 'scram-sha-256',
  log_connections: '1',
  log_disconnections: '1',
  log_statement: 'ddl',
  shared_preload_libraries: 'pg_stat_statements,pgaudit',
  'pgaudit.log': 'ddl,role',
  'pgaudit.log_parameter': '0',
  'pgaudit.role': 'rds_pgaudit',
};

/** The application database every function connects to (migrations create its schema). */
export const APPLICATION_DATABASE = 'bulwark';

/** Characters left out of generated passwords (they break connection strings and shell quoting). */
const EXCLUDED_PASSWORD_CHARACTERS = ' %+~`#$&*()|[]{}:;<>?!\'/@"\\';

/**
 * One secret per database login role (`{username, password, host, port, dbname, engine}`), each
 * registered with the RDS Proxy so functions log in as that user with an IAM token. The passwords
 * are set in PostgreSQL by the migration custom resource's bootstrap and rotated in place.
 */
export type DatabaseUserSecrets = Readonly<Record<RolePurpose, secretsmanager.ISecret>>;

export interface PostgresDatabaseProps {
  readonly vpc: ec2.IVpc;
  /** Literal VPC CIDR (endpoint traffic). */
  readonly vpcCidr: string;
  /** Encrypts storage, Performance Insights and the master secret. */
  readonly key: kms.IKey;
  /** Encrypts the exported log groups. */
  readonly logKey: kms.IKey;
  /** The security groups that may connect to the RDS Proxy: every function that uses the database. */
  readonly clients: readonly ec2.ISecurityGroup[];
  /**
   * The only security groups (besides the proxy and secret rotation) that may connect to the
   * instance itself: the migration function, which needs the schema owner's password login.
   */
  readonly instanceClients: readonly ec2.ISecurityGroup[];
  /** The interface endpoints' security group: the rotation functions reach Secrets Manager there. */
  readonly endpointSecurityGroup: ec2.ISecurityGroup;
  /**
   * Instance identifier. Set explicitly so the exported log groups can be created (encrypted)
   * before RDS would create them unencrypted.
   */
  readonly instanceIdentifier: string;
  /** Secrets Manager endpoint the rotation function uses. */
  readonly secretsManagerEndpoint: ec2.IInterfaceVpcEndpoint;
  /** @default db.r6g.large */
  readonly instanceType?: ec2.InstanceType;
  /** @default 100 */
  readonly allocatedStorageGiB?: number;
  /** Storage autoscaling ceiling. @default 1000 */
  readonly maxAllocatedStorageGiB?: number;
  /** @default 5439 */
  readonly port?: number;
  /** @default 30 days */
  readonly backupRetention?: Duration;
  /** @default 30 days */
  readonly rotateEvery?: Duration;
  /** @default 1 year */
  readonly logRetention?: logs.RetentionDays;
}

/**
 * RDS for PostgreSQL 17, Multi-AZ in the isolated data subnets, encrypted with a customer-managed
 * key, IAM authentication on, TLS required, audit logging exported to encrypted log groups, with
 * an RDS Proxy (TLS + IAM) in front for Lambda and the master secret rotated in the VPC.
 */
export class PostgresDatabase extends Construct {
  public readonly instance: rds.DatabaseInstance;
  public readonly proxy: rds.DatabaseProxy;
  /** The master user's secret: only the bootstrap (and rotation) use it. */
  public readonly secret: secretsmanager.ISecret;
  /** Per-role secrets (`bulwark_migrator`, `bulwark_app`, `bulwark_audit_shipper`). */
  public readonly users: DatabaseUserSecrets;
  public readonly securityGroup: ec2.ISecurityGroup;
  public readonly proxySecurityGroup: ec2.ISecurityGroup;
  public readonly parameterGroup: rds.ParameterGroup;
  public readonly subnetGroup: rds.SubnetGroup;
  public readonly port: number;
  public readonly databaseName = APPLICATION_DATABASE;

  constructor(scope: Construct, id: string, props: PostgresDatabaseProps) {
    super(scope, id);
    const port = props.port ?? DEFAULT_DATABASE_PORT;
    const engine = rds.DatabaseInstanceEngine.postgres({ version: POSTGRES_VERSION });

    const securityGroup = new ec2.SecurityGroup(this, 'SecurityGroup', {
      vpc: props.vpc,
      description: 'PostgreSQL: admits the API functions, the RDS Proxy and secret rotation only',
      allowAllOutbound: false,
    });
    const proxySecurityGroup = new ec2.SecurityGroup(this, 'ProxySecurityGroup', {
      vpc: props.vpc,
      description: 'RDS Proxy: admits the API functions only',
      allowAllOutbound: false,
    });
    for (const client of props.clients) {
      proxySecurityGroup.addIngressRule(client, ec2.Port.tcp(PROXY_PORT), 'RDS Proxy from the API functions');
    }
    for (const client of props.instanceClients) {
      securityGroup.addIngressRule(client, ec2.Port.tcp(port), 'PostgreSQL from the migration function');
    }
    // One group for every rotation function: PostgreSQL (to change its own password) and the
    // Secrets Manager endpoint, nothing else (CDK's default group would allow all outbound).
    const rotationSecurityGroup = new ec2.SecurityGroup(this, 'RotationSecurityGroup', {
      vpc: props.vpc,
      description: 'Secret rotation functions: PostgreSQL and the Secrets Manager endpoint only',
      allowAllOutbound: false,
    });
    rotationSecurityGroup.addEgressRule(securityGroup, ec2.Port.tcp(port), 'PostgreSQL (password change)');
    rotationSecurityGroup.addEgressRule(props.endpointSecurityGroup, ec2.Port.tcp(443), 'Secrets Manager endpoint');
    // The proxy adds its own rule pair (proxy -> PostgreSQL) when it binds to the instance.
    proxySecurityGroup.addEgressRule(
      ec2.Peer.ipv4(props.vpcCidr),
      ec2.Port.tcp(443),
      'RDS Proxy to the Secrets Manager endpoint',
    );

    const parameterGroup = new rds.ParameterGroup(this, 'Parameters', {
      engine,
      description: 'Bulwark PostgreSQL: TLS 1.2+ only, audit logging',
      parameters: { ...AUDIT_PARAMETERS },
    });
    const subnetGroup = new rds.SubnetGroup(this, 'Subnets', {
      vpc: props.vpc,
      description: 'Isolated data subnets',
      vpcSubnets: { subnetGroupName: DATA_SUBNETS },
      removalPolicy: RemovalPolicy.RETAIN,
    });

    // RDS creates these on first export, unencrypted; creating them first keeps them on our key.
    allowLogsToUseKey(props.logKey);
    const logGroups = EXPORTED_LOGS.map(
      (type) =>
        new logs.LogGroup(this, `Log-${type}`, {
          logGroupName: `/aws/rds/instance/${props.instanceIdentifier}/${type}`,
          encryptionKey: props.logKey,
          retention: props.logRetention ?? logs.RetentionDays.ONE_YEAR,
          removalPolicy: RemovalPolicy.RETAIN,
        }),
    );

    const instance = new rds.DatabaseInstance(this, 'Instance', {
      engine,
      instanceIdentifier: props.instanceIdentifier,
      instanceType: props.instanceType ?? ec2.InstanceType.of(ec2.InstanceClass.R6G, ec2.InstanceSize.LARGE),
      vpc: props.vpc,
      subnetGroup,
      securityGroups: [securityGroup],
      port,
      multiAz: true,
      publiclyAccessible: false,
      storageType: rds.StorageType.GP3,
      allocatedStorage: props.allocatedStorageGiB ?? 100,
      maxAllocatedStorage: props.maxAllocatedStorageGiB ?? 1000,
      storageEncrypted: true,
      storageEncryptionKey: props.key,
      iamAuthentication: true,
      databaseName: APPLICATION_DATABASE,
      credentials: rds.Credentials.fromGeneratedSecret('bulwark_admin', {
        encryptionKey: props.key,
        excludeCharacters: EXCLUDED_PASSWORD_CHARACTERS,
      }),
      parameterGroup,
      caCertificate: rds.CaCertificate.RDS_CA_RSA2048_G1,
      cloudwatchLogsExports: [...EXPORTED_LOGS],
      enablePerformanceInsights: true,
      performanceInsightEncryptionKey: props.key,
      monitoringInterval: Duration.seconds(60),
      deletionProtection: true,
      removalPolicy: RemovalPolicy.SNAPSHOT,
      backupRetention: props.backupRetention ?? Duration.days(30),
      preferredBackupWindow: '02:00-02:30',
      preferredMaintenanceWindow: 'sun:03:30-sun:04:30',
      autoMinorVersionUpgrade: true,
      copyTagsToSnapshot: true,
    });
    for (const group of logGroups) instance.node.addDependency(group);
    const secret = instance.secret;
    if (!secret) throw new Error('generated credentials always produce a secret');

    // Rotation runs in the app subnets and reaches Secrets Manager through its endpoint.
    const rotateEvery = props.rotateEvery ?? Duration.days(30);
    const masterRotation = instance.addRotationSingleUser({
      automaticallyAfter: rotateEvery,
      vpcSubnets: { subnetGroupName: APP_SUBNETS },
      endpoint: props.secretsManagerEndpoint,
      securityGroup: rotationSecurityGroup,
    });
    allowSecretRotationApplication(masterRotation);

    // Each login role rotates its own password (single-user: it may change only its own), so the
    // rotation function never holds the master password. The proxy reads the current value.
    const users = {} as Record<RolePurpose, secretsmanager.ISecret>;
    for (const purpose of Object.keys(DATABASE_ROLES) as RolePurpose[]) {
      const id = `${purpose.charAt(0).toUpperCase()}${purpose.slice(1)}`;
      const userSecret = new rds.DatabaseSecret(this, `${id}Secret`, {
        username: DATABASE_ROLES[purpose],
        dbname: APPLICATION_DATABASE,
        encryptionKey: props.key,
        excludeCharacters: EXCLUDED_PASSWORD_CHARACTERS,
      });
      userSecret.applyRemovalPolicy(RemovalPolicy.RETAIN);
      const attached = userSecret.attach(instance);
      const rotation = new secretsmanager.SecretRotation(this, `${id}Rotation`, {
        application: secretsmanager.SecretRotationApplication.POSTGRES_ROTATION_SINGLE_USER,
        secret: attached,
        target: instance,
        vpc: props.vpc,
        vpcSubnets: { subnetGroupName: APP_SUBNETS },
        endpoint: props.secretsManagerEndpoint,
        securityGroup: rotationSecurityGroup,
        automaticallyAfter: rotateEvery,
        // The role exists only once the schema resource (lib/data/schema.ts) bootstrapped it;
        // an immediate first rotation would fail to log in. The first rotation runs after `rotateEvery`.
        rotateImmediatelyOnUpdate: false,
      });
      allowSecretRotationApplication(rotation);
      users[purpose] = attached;
    }

    // The proxy registers only the functions' login roles. The master user and the schema owner
    // (migrator) are used by the migration custom resource directly against the instance; registered
    // here, `rds-db:connect` for their names would be an administrator path into the database.
    const proxied = (Object.keys(DATABASE_ROLES) as RolePurpose[])
      .filter((purpose) => purpose !== 'migrator')
      .map((purpose) => users[purpose]);
    const proxyRole = new ServiceRole(this, 'ProxyRole', {
      assumedBy: new iam.ServicePrincipal('rds.amazonaws.com'),
      description: 'RDS Proxy: read the secrets of the function login roles',
      statements: [
        new iam.PolicyStatement({
          actions: ['secretsmanager:GetSecretValue', 'secretsmanager:DescribeSecret'],
          resources: proxied.map((u) => u.secretArn),
        }),
        new iam.PolicyStatement({
          actions: ['kms:Decrypt'],
          resources: [props.key.keyArn],
          conditions: { StringEquals: { 'kms:ViaService': `secretsmanager.${Stack.of(this).region}.amazonaws.com` } },
        }),
      ],
    });
    const proxy = new rds.DatabaseProxy(this, 'Proxy', {
      role: proxyRole.role,
      proxyTarget: rds.ProxyTarget.fromInstance(instance),
      // Every registered user gets IAMAuth REQUIRED: clients log in with a token, never a password.
      secrets: proxied,
      vpc: props.vpc,
      vpcSubnets: { subnetGroupName: DATA_SUBNETS },
      securityGroups: [proxySecurityGroup],
      requireTLS: true,
      iamAuth: true,
      debugLogging: false,
    });
    proxyRole.requiredBy(proxy);

    // The proxy and rotation rules use the instance's port attribute (a token); the port is known,
    // so pin it, which also lets the compliance rules evaluate these rules instead of erroring.
    for (const child of [
      ...securityGroup.node.children,
      ...proxySecurityGroup.node.children,
      ...rotationSecurityGroup.node.children,
    ]) {
      const rule =
        child instanceof ec2.CfnSecurityGroupIngress || child instanceof ec2.CfnSecurityGroupEgress ? child : null;
      if (rule && Token.isUnresolved(rule.fromPort)) {
        rule.fromPort = port;
        rule.toPort = port;
      }
    }

    const monitoringRole = instance.node.tryFindChild('MonitoringRole');
    if (monitoringRole) {
      acknowledge(
        monitoringRole,
        'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AmazonRDSEnhancedMonitoringRole]',
        'Enhanced Monitoring requires exactly this AWS-managed service-role policy; it grants only CloudWatch Logs writes to RDSOSMetrics.',
      );
    }

    this.instance = instance;
    this.proxy = proxy;
    this.secret = secret;
    this.users = users;
    this.securityGroup = securityGroup;
    this.proxySecurityGroup = proxySecurityGroup;
    this.parameterGroup = parameterGroup;
    this.subnetGroup = subnetGroup;
    this.port = port;
  }
}
