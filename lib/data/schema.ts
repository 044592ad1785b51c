import * as path from 'node:path';
import { CustomResource, Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import type * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as kms from 'aws-cdk-lib/aws-kms';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as nodejs from 'aws-cdk-lib/aws-lambda-nodejs';
import * as logs from 'aws-cdk-lib/aws-logs';
import type * as rds from 'aws-cdk-lib/aws-rds';
import type * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { Construct, type IConstruct } from 'constructs';
import { loadMigrations } from '../../lambda/shared/migrations';
import { BOOTSTRAP_VERSION } from '../../lambda/tenant-guard/bootstrap';
import { acknowledge } from '../compliance/acknowledge';
import { deadLetterQueue } from '../observability/dead-letter-queue';
import { allowLogsToUseKey } from '../observability/keys';
import type { DatabaseUserSecrets } from './database';

const MIGRATIONS_DIR = path.join(__dirname, '..', '..', 'migrations');

export interface DatabaseSchemaProps {
  /**
   * The database instance. Only the migration function connects here (as the master user to
   * bootstrap the roles, then as the migrator): the proxy admits IAM tokens only.
   */
  readonly instance: rds.IDatabaseInstance;
  readonly databaseName: string;
  /** The master user's secret (`{username, password}`); read only by the migration function. */
  readonly masterSecret: secretsmanager.ISecret;
  /** One secret per login role; the bootstrap sets each role's password from its secret. */
  readonly users: DatabaseUserSecrets;
  readonly vpc: ec2.IVpc;
  readonly vpcSubnets: ec2.SubnetSelection;
  /** A security group the database instance admits. */
  readonly securityGroup: ec2.ISecurityGroup;
  /** Encrypts the migration function's logs, environment and dead-letter queue. */
  readonly encryptionKey: kms.IKey;
}

/**
 * The database schema, owned by the data tier: the `Custom::BulwarkSchema` resource whose function
 * bootstraps the login roles and applies `migrations/*.sql` at deploy time. Everything that runs
 * against the schema waits for it (`requiredBy`), so new code never meets an old schema.
 */
export class DatabaseSchema extends Construct {
  /** The migration function (the custom resource's provider). */
  public readonly migrationFunction: lambda.IFunction;
  /** The `Custom::BulwarkSchema` resource. */
  public readonly resource: CustomResource;

  constructor(scope: Construct, id: string, props: DatabaseSchemaProps) {
    super(scope, id);
    const stack = Stack.of(this);
    const key = props.encryptionKey;
    allowLogsToUseKey(key);
    const logGroup = new logs.LogGroup(this, 'MigrateLogs', {
      encryptionKey: key,
      retention: logs.RetentionDays.ONE_YEAR,
      removalPolicy: RemovalPolicy.RETAIN,
    });
    const dlq = deadLetterQueue(this, 'MigrateDlq', { encryptionKey: key, deadLetterOf: 'the Migrate function' });
    const migrator = new nodejs.NodejsFunction(this, 'Migrate', {
      entry: path.join(__dirname, '..', '..', 'lambda', 'tenant-guard', 'migrate.ts'),
      runtime: lambda.Runtime.NODEJS_22_X,
      architecture: lambda.Architecture.ARM_64,
      memorySize: 512,
      timeout: Duration.minutes(5),
      reservedConcurrentExecutions: 1,
      vpc: props.vpc,
      vpcSubnets: props.vpcSubnets,
      securityGroups: [props.securityGroup],
      tracing: lambda.Tracing.ACTIVE,
      logGroup,
      deadLetterQueue: dlq,
      environment: {
        // The instance itself, TLS verified against the RDS CA bundle the runtime ships (Node.js
        // 20+ runtimes load it only when asked). The proxy would refuse passwords.
        DB_HOST: props.instance.dbInstanceEndpointAddress,
        DB_PORT: props.instance.dbInstanceEndpointPort,
        DB_NAME: props.databaseName,
        MASTER_SECRET_ARN: props.masterSecret.secretArn,
        MIGRATOR_SECRET_ARN: props.users.migrator.secretArn,
        APP_SECRET_ARN: props.users.app.secretArn,
        AUDIT_SHIPPER_SECRET_ARN: props.users.auditShipper.secretArn,
        NODE_EXTRA_CA_CERTS: '/var/runtime/ca-cert.pem',
      },
      bundling: {
        minify: true,
        sourceMap: true,
        target: 'node22',
        commandHooks: {
          beforeBundling: () => [],
          beforeInstall: () => [],
          afterBundling: (_input: string, output: string) => [`cp -r "${MIGRATIONS_DIR}" "${output}/migrations"`],
        },
      },
    });
    const secrets = [props.masterSecret, ...Object.values(props.users)];
    migrator.addToRolePolicy(
      new iam.PolicyStatement({
        actions: ['secretsmanager:GetSecretValue', 'secretsmanager:DescribeSecret'],
        resources: secrets.map((x) => x.secretArn),
      }),
    );
    const keys = [...new Set(secrets.flatMap((x) => (x.encryptionKey ? [x.encryptionKey.keyArn] : [])))];
    if (keys.length > 0) {
      migrator.addToRolePolicy(
        new iam.PolicyStatement({
          actions: ['kms:Decrypt'],
          resources: keys,
          conditions: { StringEquals: { 'kms:ViaService': `secretsmanager.${stack.region}.amazonaws.com` } },
        }),
      );
    }
    acknowledgeOld(migrator);
    this.migrationFunction = migrator;

    const resource = new CustomResource(this, 'Resource', {
      serviceToken: migrator.functionArn,
      resourceType: 'Custom::BulwarkSchema',
      // A new migration set, a replaced secret or a new bootstrap re-runs the resource (both steps
      // are idempotent). Rotations need no re-run: they change the password in the database themselves.
      properties: {
        Migrations: loadMigrations(MIGRATIONS_DIR)
          .map((m) => `${m.version}:${m.checksum}`)
          .join(','),
        Bootstrap: BOOTSTRAP_VERSION,
        Secrets: secrets.map((x) => x.secretArn),
      },
    });
    resource.node.addDependency(migrator);
    this.resource = resource;
  }

  /**
   * Makes `constructs` deploy only after the migrations ran: in this stack, a resource dependency;
   * in another stack, that stack depends on this one (so it deploys after it).
   */
  public requiredBy(...constructs: IConstruct[]): void {
    const own = Stack.of(this);
    for (const c of constructs) {
      const stack = Stack.of(c);
      if (stack === own) c.node.addDependency(this.resource);
      else stack.addDependency(own, `${c.node.path} runs against the database schema`);
    }
  }
}

function acknowledgeOld(fn: nodejs.NodejsFunction): void {
  const role = fn.role!.node.defaultChild as iam.CfnRole;
  const policy = fn.role!.node.findChild('DefaultPolicy');
  acknowledge(
    role,
    'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]',
    'Lets the function write only to its own KMS-encrypted log group; the AWS-maintained policy tracks Lambda logging changes.',
  );
  acknowledge(
    role,
    'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole]',
    'Required for a function in a VPC to manage its network interfaces; the AWS-maintained policy is the documented minimum.',
  );
  acknowledge(
    policy,
    'AwsSolutions-IAM5[Resource::*]',
    'X-Ray PutTraceSegments/PutTelemetryRecords support no resource-level permissions; every other statement names its resource.',
  );
  for (const id of [
    'HIPAA.Security-IAMNoInlinePolicy',
    'NIST.800.53.R5-IAMNoInlinePolicy',
    'PCI.DSS.321-IAMNoInlinePolicy',
  ]) {
    acknowledge(
      policy,
      id,
      'The CDK-generated default policy is scoped to this one role and its grants (secret, DLQ, tracing); it is never shared.',
    );
  }
  for (const id of ['AwsSolutions-L1', 'Serverless-LambdaLatestVersion']) {
    acknowledge(
      fn,
      id,
      'Node.js 22 is the platform-wide pinned runtime (LTS, supported by Lambda); upgrades are made fleet-wide, not per function.',
    );
  }
}
