import { ArnFormat, Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import type * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as kms from 'aws-cdk-lib/aws-kms';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as destinations from 'aws-cdk-lib/aws-lambda-destinations';
import * as nodejs from 'aws-cdk-lib/aws-lambda-nodejs';
import * as logs from 'aws-cdk-lib/aws-logs';
import type * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { acknowledge } from '../compliance/acknowledge';
import { deadLetterQueue } from '../observability/dead-letter-queue';
import { allowLogsToUseKey } from '../observability/keys';

/** The runtime every Bulwark function runs on, and the matching esbuild target. */
export const FUNCTION_RUNTIME = lambda.Runtime.NODEJS_24_X;
export const BUNDLE_TARGET = 'node24';

/**
 * Left out of every bundle because the Lambda Node.js runtime provides them: the AWS SDK for
 * JavaScript v3 service clients, `@aws-sdk/client-*`, and nothing else. The runtime's own copies of
 * the SDK's utilities are not importable (`@smithy/*` is not, on nodejs24.x: aws/aws-sdk-js-v3#6169),
 * and helpers such as `@aws-sdk/s3-request-presigner`, `lib-storage` or `rds-signer` are not
 * documented as included: a function that needs one bundles it (none does today: presigned URLs
 * and database tokens are signed with node:crypto, lambda/shared/s3-presigner.ts and rds-auth-token.ts). test/shared/bundles.test.ts bundles every function
 * and fails on any other module left to the runtime.
 */
export const RUNTIME_PROVIDED_MODULES: readonly string[] = ['@aws-sdk/client-*'];
/** pg's optional native binding: required only when asked for (`pg.native`), which no function does. */
export const NEVER_LOADED_MODULES: readonly string[] = ['pg-native'];

/**
 * The modules a function's bundle leaves out. The recipe offers no other way to set esbuild's
 * externals: replacing them (as `externalModules` does in NodejsFunction) once left a function
 * bundling what the runtime provides, or requiring at run time what it does not.
 */
export function bundleExternals(bundleAwsSdk: boolean): string[] {
  return [...(bundleAwsSdk ? [] : RUNTIME_PROVIDED_MODULES), ...NEVER_LOADED_MODULES];
}

/** Lambda's network-interface actions for a function in a VPC; none supports resource-level permissions. */
const VPC_ACTIONS = [
  'ec2:CreateNetworkInterface',
  'ec2:DescribeNetworkInterfaces',
  'ec2:DescribeSubnets',
  'ec2:DeleteNetworkInterface',
  'ec2:AssignPrivateIpAddresses',
  'ec2:UnassignPrivateIpAddresses',
];

/** Where a function runs in a VPC. */
export interface FunctionNetwork {
  readonly vpc: ec2.IVpc;
  /** @default - the VPC's private subnets; never public */
  readonly vpcSubnets?: ec2.SubnetSelection;
  readonly securityGroups: readonly ec2.ISecurityGroup[];
}

/**
 * How the function is invoked, which decides its failure handling:
 * - `synchronous`: the caller (API Gateway, Step Functions) receives every error and owns retries,
 *   so no dead-letter queue (it would never receive anything);
 * - `asynchronous` (schedules, CloudFormation, `Event` invocations): failed invocations land in a
 *   dead-letter queue, as the function's DLQ and its on-failure destination, which the function's
 *   role can write to and encrypt for.
 */
export type FunctionInvocation =
  | {
      readonly kind: 'synchronous';
      /** Who invokes the function, for the acknowledgement, e.g. 'API Gateway'. */
      readonly caller: string;
    }
  | {
      readonly kind: 'asynchronous';
      /** @default - a new queue encrypted with the function's key */
      readonly deadLetterQueue?: sqs.IQueue;
      /** @default 2 */
      readonly retryAttempts?: number;
      /** @default 6 hours (Lambda's maximum) */
      readonly maxEventAge?: Duration;
    };

export interface BulwarkFunctionProps {
  /** The handler file (TypeScript), bundled with esbuild. */
  readonly entry: string;
  /** Exported handler. @default 'handler' */
  readonly handler?: string;
  readonly description: string;
  readonly invocation: FunctionInvocation;
  /** Reserved concurrency: bounds what the function can cost and what it can do to its dependencies. */
  readonly reservedConcurrentExecutions: number;
  /** Encrypts the function's log group, environment and (new) dead-letter queue. */
  readonly encryptionKey: kms.IKey;
  /** @default 256 */
  readonly memorySize?: number;
  /** @default Duration.seconds(30) */
  readonly timeout?: Duration;
  readonly environment?: Readonly<Record<string, string>>;
  /** VPC placement. Without it, `outsideVpc` must say why the function needs none. @default - outside any VPC */
  readonly network?: FunctionNetwork;
  /** Why this function runs outside the VPC (acknowledged on it). Required without `network`. */
  readonly outsideVpc?: string;
  /** What the function may do beyond the recipe (logs, tracing, VPC, environment, dead letters). */
  readonly statements?: readonly iam.PolicyStatement[];
  /**
   * Why statements of `statements` need `Resource: "*"`, added to the recipe's acknowledgement.
   * @default - only the recipe's own actions use "*"
   */
  readonly wildcardReason?: string;
  /** @default logs.RetentionDays.ONE_YEAR */
  readonly logRetention?: logs.RetentionDays;
  /** Ship source maps in the asset and enable them (`--enable-source-maps`). @default false */
  readonly sourceMap?: boolean;
  /**
   * Bundle the AWS SDK clients pinned in package.json instead of using the runtime's, for a
   * function that needs a client version the runtime does not have. @default false
   */
  readonly bundleAwsSdk?: boolean;
  /** Directories copied into the bundle: bundle-relative name -> absolute source path. @default - none */
  readonly copyIntoBundle?: Readonly<Record<string, string>>;
}

const WILDCARD_REASON =
  'Only actions that support no resource-level permissions use "*": X-Ray trace upload ' +
  '(xray:PutTraceSegments/PutTelemetryRecords) and, for a function in a VPC, Lambda network-interface ' +
  'management (ec2:CreateNetworkInterface and friends).';

/**
 * The one Lambda function recipe: Node.js 24 on ARM64, minified bundle, X-Ray tracing, JSON logs
 * into its own KMS-encrypted log group, environment encrypted with the same key, reserved
 * concurrency, VPC placement when given, a dead-letter queue for asynchronous invocations, and a
 * role whose every permission is in ONE customer-managed policy scoped to this function's own
 * resources (no AWS-managed policies, no inline policy). Capabilities add statements with
 * `addToPolicy`; grants by other constructs are dropped (the function holds an immutable role).
 */
export class BulwarkFunction extends Construct {
  public readonly function: nodejs.NodejsFunction;
  /** The function's role (real, for tagging and attaching policies built elsewhere). */
  public readonly role: iam.Role;
  /** The function's one customer-managed policy. */
  public readonly policy: iam.ManagedPolicy;
  public readonly logGroup: logs.LogGroup;
  /** Where failed asynchronous invocations go; none for a synchronous function. */
  public readonly deadLetterQueue?: sqs.IQueue;
  /** Whether the function runs in a VPC. */
  public readonly inVpc: boolean;
  /** How the function is bundled (bench/bundles.ts and test/shared/bundles.test.ts bundle it alike). */
  public readonly bundling: {
    readonly entry: string;
    readonly external: readonly string[];
    readonly sourceMap: boolean;
  };

  constructor(scope: Construct, id: string, props: BulwarkFunctionProps) {
    super(scope, id);
    const stack = Stack.of(this);
    if (!props.network && !props.outsideVpc) {
      throw new Error(`${this.node.path}: a function outside the VPC must say why (outsideVpc)`);
    }
    this.inVpc = props.network !== undefined;
    const key = props.encryptionKey;
    allowLogsToUseKey(key);
    this.logGroup = new logs.LogGroup(this, 'Logs', {
      encryptionKey: key,
      retention: props.logRetention ?? logs.RetentionDays.ONE_YEAR,
      removalPolicy: RemovalPolicy.RETAIN,
    });

    const invocation = props.invocation;
    const dlq =
      invocation.kind === 'asynchronous'
        ? (invocation.deadLetterQueue ??
          deadLetterQueue(this, 'DeadLetters', {
            encryptionKey: key,
            deadLetterOf: `the ${id} function`,
            servesFunction: true,
          }))
        : undefined;
    this.deadLetterQueue = dlq;

    this.policy = new iam.ManagedPolicy(this, 'Policy', {
      description: props.description,
      statements: [
        new iam.PolicyStatement({
          sid: 'WriteOwnLogs',
          actions: ['logs:CreateLogStream', 'logs:PutLogEvents'],
          // The log group's Arn attribute already ends in `:*`, covering its streams.
          resources: [this.logGroup.logGroupArn],
        }),
        new iam.PolicyStatement({
          sid: 'Tracing',
          actions: ['xray:PutTraceSegments', 'xray:PutTelemetryRecords'],
          resources: ['*'],
        }),
        new iam.PolicyStatement({
          // Lambda decrypts the environment under the function's ARN as encryption context.
          sid: 'ReadEnvironment',
          actions: ['kms:Decrypt'],
          resources: [key.keyArn],
          conditions: {
            StringLike: {
              'kms:EncryptionContext:aws:lambda:FunctionArn': stack.formatArn({
                service: 'lambda',
                resource: 'function',
                resourceName: '*',
                arnFormat: ArnFormat.COLON_RESOURCE_NAME,
              }),
            },
          },
        }),
        ...(props.network
          ? [new iam.PolicyStatement({ sid: 'VpcNetworkInterfaces', actions: VPC_ACTIONS, resources: ['*'] })]
          : []),
        ...(dlq
          ? [
              new iam.PolicyStatement({ sid: 'DeadLetter', actions: ['sqs:SendMessage'], resources: [dlq.queueArn] }),
              ...(dlq.encryptionMasterKey
                ? [
                    // Lambda sends dead letters with the function's role: SQS encrypts them with the queue's key.
                    new iam.PolicyStatement({
                      sid: 'EncryptDeadLetters',
                      actions: ['kms:GenerateDataKey', 'kms:Decrypt'],
                      resources: [dlq.encryptionMasterKey.keyArn],
                      conditions: { StringEquals: { 'kms:ViaService': `sqs.${stack.region}.amazonaws.com` } },
                    }),
                  ]
                : []),
            ]
          : []),
        ...(props.statements ?? []),
      ],
    });
    acknowledge(
      this.policy,
      'AwsSolutions-IAM5[Resource::*]',
      props.wildcardReason ? `${WILDCARD_REASON} ${props.wildcardReason}` : WILDCARD_REASON,
    );
    // Attached through the role's ManagedPolicyArns, so the function (which needs the VPC and
    // logging permissions at creation) is created only once its policy exists.
    this.role = new iam.Role(this, 'Role', {
      assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
      description: props.description,
      managedPolicies: [this.policy],
    });

    const copies = Object.entries(props.copyIntoBundle ?? {});
    const sourceMap = props.sourceMap ?? false;
    const external = bundleExternals(props.bundleAwsSdk ?? false);
    this.bundling = { entry: props.entry, external, sourceMap };
    // The function itself is the default child, so its logical id is the one `id` always gave it.
    this.function = new nodejs.NodejsFunction(this, 'Default', {
      entry: props.entry,
      handler: props.handler ?? 'handler',
      description: props.description,
      runtime: FUNCTION_RUNTIME,
      architecture: lambda.Architecture.ARM_64,
      memorySize: props.memorySize ?? 256,
      timeout: props.timeout ?? Duration.seconds(30),
      // Every permission is in `policy`: CDK's automatic grants must not add an inline policy.
      role: this.role.withoutPolicyUpdates(),
      reservedConcurrentExecutions: props.reservedConcurrentExecutions,
      tracing: lambda.Tracing.ACTIVE,
      logGroup: this.logGroup,
      loggingFormat: lambda.LoggingFormat.JSON,
      environmentEncryption: key,
      environment: {
        ...props.environment,
        ...(sourceMap ? { NODE_OPTIONS: '--enable-source-maps' } : {}),
      },
      ...(props.network
        ? {
            vpc: props.network.vpc,
            vpcSubnets: props.network.vpcSubnets,
            securityGroups: [...props.network.securityGroups],
            allowPublicSubnet: false,
          }
        : {}),
      ...(invocation.kind === 'asynchronous' && dlq
        ? {
            deadLetterQueue: dlq,
            onFailure: new destinations.SqsDestination(dlq),
            retryAttempts: invocation.retryAttempts ?? 2,
            ...(invocation.maxEventAge ? { maxEventAge: invocation.maxEventAge } : {}),
          }
        : {}),
      bundling: {
        minify: true,
        sourceMap,
        // esbuild's per-bundle size report is noise in `npm run synth`; warnings and errors still print.
        logLevel: nodejs.LogLevel.WARNING,
        target: BUNDLE_TARGET,
        externalModules: [...external],
        ...(copies.length > 0
          ? {
              commandHooks: {
                beforeBundling: () => [],
                beforeInstall: () => [],
                afterBundling: (_input: string, output: string) =>
                  copies.map(([name, source]) => `cp -r "${source}" "${output}/${name}"`),
              },
            }
          : {}),
      },
    });

    if (invocation.kind === 'synchronous') {
      const reason =
        `${invocation.caller} invokes this function synchronously only and receives its errors; a dead-letter ` +
        'queue would hold failed asynchronous invocations, which never happen here.';
      for (const rule of ['HIPAA.Security-LambdaDLQ', 'NIST.800.53.R5-LambdaDLQ', 'Serverless-LambdaDLQ']) {
        acknowledge(this.function, rule, reason);
      }
    }
    if (!props.network && props.outsideVpc) {
      for (const rule of [
        'HIPAA.Security-LambdaInsideVPC',
        'NIST.800.53.R5-LambdaInsideVPC',
        'PCI.DSS.321-LambdaInsideVPC',
      ]) {
        acknowledge(this.function, rule, props.outsideVpc);
      }
    }
  }

  /** Adds statements to the function's one policy. */
  public addToPolicy(...statements: iam.PolicyStatement[]): void {
    this.policy.addStatements(...statements);
  }

  /** Adds an environment variable (encrypted with the function's key like the others). */
  public addEnvironment(name: string, value: string): void {
    this.function.addEnvironment(name, value);
  }
}
