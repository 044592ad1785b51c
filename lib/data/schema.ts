import * as path from 'node:path';
import { CustomResource, Duration, Stack } from 'aws-cdk-lib';
import type * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as kms from 'aws-cdk-lib/aws-kms';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import type * as rds from 'aws-cdk-lib/aws-rds';
import type * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { Construct, type IConstruct } from 'constructs';
import { BOOTSTRAP_VERSION } from '../../contracts/database';
import { loadMigrations } from '../../contracts/migrations';
import { BulwarkFunction } from '../shared/function';
import { GateKey } from '../tenant-guard/gate-key';
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
  /**
   * The key gate tickets are signed (authorizer) and verified (database) with; the migration
   * function installs it into `app_private.gate_keys`.
   */
  public readonly gateKey: GateKey;

  constructor(scope: Construct, id: string, props: DatabaseSchemaProps) {
    super(scope, id);
    const stack = Stack.of(this);
    const secrets = [props.masterSecret, ...Object.values(props.users)];
    const secretKeys = [...new Set(secrets.flatMap((x) => (x.encryptionKey ? [x.encryptionKey.keyArn] : [])))];
    const gateKey = new GateKey(this, 'GateKey');
    this.gateKey = gateKey;
    const migrator = new BulwarkFunction(this, 'Migrate', {
      entry: path.join(__dirname, '..', '..', 'lambda', 'tenant-guard', 'migrate.ts'),
      description: 'Bootstraps the database login roles and applies migrations (Custom::BulwarkSchema)',
      // CloudFormation invokes custom resources asynchronously.
      invocation: { kind: 'asynchronous' },
      reservedConcurrentExecutions: 1,
      encryptionKey: props.encryptionKey,
      memorySize: 512,
      timeout: Duration.minutes(5),
      network: { vpc: props.vpc, vpcSubnets: props.vpcSubnets, securityGroups: [props.securityGroup] },
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
        WEBHOOKS_SECRET_ARN: props.users.webhooks.secretArn,
        KEY_PROVISIONER_SECRET_ARN: props.users.keyProvisioner.secretArn,
        LIFECYCLE_SECRET_ARN: props.users.lifecycle.secretArn,
        FILE_CHECKER_SECRET_ARN: props.users.fileChecker.secretArn,
        GATE_KEY_SECRET_ARN: gateKey.secret.secretArn,
        NODE_EXTRA_CA_CERTS: '/var/runtime/ca-cert.pem',
      },
      copyIntoBundle: { migrations: MIGRATIONS_DIR },
      statements: [
        new iam.PolicyStatement({
          sid: 'ReadDatabaseSecrets',
          actions: ['secretsmanager:GetSecretValue', 'secretsmanager:DescribeSecret'],
          resources: secrets.map((x) => x.secretArn),
        }),
        ...(secretKeys.length > 0
          ? [
              new iam.PolicyStatement({
                sid: 'DecryptDatabaseSecrets',
                actions: ['kms:Decrypt'],
                resources: secretKeys,
                conditions: { StringEquals: { 'kms:ViaService': `secretsmanager.${stack.region}.amazonaws.com` } },
              }),
            ]
          : []),
        // The migration function installs the gate key into the database (app_private.gate_keys).
        ...gateKey.readStatements(),
      ],
    }).function;
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
      else stack.addStackDependency(own, `${c.node.path} runs against the database schema`);
    }
  }
}
