/**
 * The synthesized templates of one stage, read the way IAM reads them: every role with the identity
 * policies attached to it, and every resource policy by the ARN it protects. Intrinsics are resolved
 * with the stage's (placeholder) account and each stack's region; physical names CloudFormation would
 * generate are replaced by deterministic ones, so ARNs built by `Ref`/`Fn::GetAtt`/`Fn::Join` agree.
 */
import { createHash } from 'node:crypto';
import { CfnResource, Stack, type Stage } from 'aws-cdk-lib';
import type { IConstruct } from 'constructs';
// `aws iam get-policy-version` output, verbatim: version v30 (2026-02-23), as recorded by
// github.com/zoph-io/MAMIP policies/AWSBackupServiceRolePolicyForBackup (commit 89fd7c5f).
import backupPolicy from './aws-managed/AWSBackupServiceRolePolicyForBackup.json';

/** A policy document as IAM reads it (JSON), with where it came from. */
export interface NamedPolicy {
  /** Construct path (relative to the stage) of the resource that carries the policy. */
  readonly name: string;
  readonly document: PolicyJson;
}

export interface PolicyJson {
  readonly Version?: string;
  readonly Statement: unknown[] | unknown;
}

export interface RoleModel {
  readonly path: string;
  readonly name: string;
  readonly arn: string;
  readonly account: string;
  readonly tags: Readonly<Record<string, string>>;
  readonly policies: readonly NamedPolicy[];
  /** AWS managed policy ARNs whose documents this model does not hold. */
  readonly unknownManagedPolicies: readonly string[];
  /** The trust policy: the resource policy of `sts:AssumeRole` and `sts:TagSession` on this role. */
  readonly trustPolicy?: NamedPolicy;
  /** The VPC (physical id) of the function that runs with this role, if that function is in one. */
  vpc?: string;
}

/** An interface or gateway endpoint: what a request from its VPC to its service must also pass. */
export interface EndpointModel {
  readonly path: string;
  /** `vpce-...` */
  readonly id: string;
  readonly vpc: string;
  /** The service part of `com.amazonaws.<region>.<service>`, e.g. `s3`, `kms`. */
  readonly service: string;
  readonly region: string;
  /** The endpoint policy; an endpoint without one admits every request (AWS's default). */
  readonly policy?: NamedPolicy;
}

/** A Lambda function that answers a CloudFormation custom resource. */
export interface CustomResourceFunctionModel {
  /** Construct path of the function. */
  readonly path: string;
  /** Construct path of its role. */
  readonly role: string;
  readonly region: string;
  /** Its VPC, if it runs in one: then its answer to CloudFormation leaves through that VPC's S3 endpoint. */
  readonly vpc?: string;
}

export interface ResourceModel {
  readonly path: string;
  readonly type: string;
  /** The ARN a request names (for log groups: the group, without `:*`). */
  readonly arn: string;
  readonly name: string;
  readonly region: string;
  readonly account: string;
  readonly tags: Readonly<Record<string, string>>;
  /** Resource policy, if the service has one and the template sets it. */
  policy?: NamedPolicy;
}

export interface StageModel {
  readonly stageName: string;
  readonly account: string;
  readonly region: string;
  readonly roles: ReadonlyMap<string, RoleModel>;
  readonly resources: ReadonlyMap<string, ResourceModel>;
  /** Database users each RDS Proxy registers (by proxy resource id `prx-...`). */
  readonly proxyUsers: ReadonlyMap<string, readonly string[]>;
  /** VPC endpoints by VPC id, then by service (`s3`, `kms`, ...). */
  readonly endpoints: ReadonlyMap<string, ReadonlyMap<string, EndpointModel>>;
  readonly customResourceFunctions: readonly CustomResourceFunctionModel[];
}

/**
 * AWS managed policies still attached by CDK defaults, with their published documents. Any other
 * managed policy is reported as unknown: a verdict over it would be a guess.
 */
const AWS_MANAGED_POLICIES: Readonly<Record<string, PolicyJson>> = {
  'service-role/AWSLambdaBasicExecutionRole': {
    Version: '2012-10-17',
    Statement: [
      {
        Effect: 'Allow',
        Action: ['logs:CreateLogGroup', 'logs:CreateLogStream', 'logs:PutLogEvents'],
        Resource: '*',
      },
    ],
  },
  'service-role/AWSLambdaVPCAccessExecutionRole': {
    Version: '2012-10-17',
    Statement: [
      {
        Effect: 'Allow',
        Action: [
          'logs:CreateLogGroup',
          'logs:CreateLogStream',
          'logs:PutLogEvents',
          'ec2:CreateNetworkInterface',
          'ec2:DescribeNetworkInterfaces',
          'ec2:DescribeSubnets',
          'ec2:DeleteNetworkInterface',
          'ec2:AssignPrivateIpAddresses',
          'ec2:UnassignPrivateIpAddresses',
        ],
        Resource: '*',
      },
    ],
  },
  // The AWS Backup selection role (lib/data/backup.ts). A new published version replaces the file.
  'service-role/AWSBackupServiceRolePolicyForBackup': backupPolicy.PolicyVersion.Document,
};

interface Cfn {
  readonly Type: string;
  readonly Properties?: Record<string, unknown>;
}

interface Template {
  readonly Resources?: Record<string, Cfn>;
  readonly Outputs?: Record<string, { Value: unknown; Export?: { Name: unknown } }>;
  readonly Parameters?: Record<string, { Default?: unknown }>;
  readonly Mappings?: Record<string, Record<string, Record<string, unknown>>>;
}

interface StackCtx {
  readonly stackName: string;
  readonly region: string;
  readonly account: string;
  readonly template: Template;
  /** logical id -> construct path relative to the stage */
  readonly paths: Map<string, string>;
}

const hash = (s: string, n: number): string => createHash('sha256').update(s).digest('hex').slice(0, n);

/** Deterministic stand-in for a name CloudFormation generates. */
function generatedName(ctx: StackCtx, logicalId: string, max = 64): string {
  return `${ctx.stackName}-${logicalId}`.slice(0, max - 9) + `-${hash(ctx.stackName + logicalId, 8)}`;
}

/** `v`, or an error naming `what` is missing. */
function defined<T>(v: T | undefined, what: string): T {
  if (v === undefined) throw new Error(`access proof: ${what} is missing`);
  return v;
}

function str(v: unknown, what: string): string {
  if (typeof v !== 'string') throw new Error(`${what}: expected a string, got ${JSON.stringify(v)}`);
  return v;
}

class Resolver {
  private readonly stacks = new Map<string, StackCtx>();
  constructor(stacks: readonly StackCtx[]) {
    for (const s of stacks) this.stacks.set(s.stackName, s);
  }

  ctxs(): StackCtx[] {
    return [...this.stacks.values()];
  }

  resolve(value: unknown, ctx: StackCtx): unknown {
    if (Array.isArray(value)) return value.map((v) => this.resolve(v, ctx)).filter((v) => v !== NO_VALUE);
    if (value === null || typeof value !== 'object') return value;
    const entries = Object.entries(value as Record<string, unknown>);
    const [entry, ...rest] = entries;
    if (entry && rest.length === 0) {
      const [fn, arg] = entry;
      switch (fn) {
        case 'Ref':
          return this.ref(str(arg, 'Ref'), ctx);
        case 'Fn::GetAtt': {
          const [lid, attr] = Array.isArray(arg) ? arg : str(arg, 'GetAtt').split(/\.(.*)/);
          return this.getAtt(str(lid, 'GetAtt'), str(attr, 'GetAtt'), ctx);
        }
        case 'Fn::Join': {
          const [sep, parts] = arg as [string, unknown[]];
          const list = this.resolve(parts, ctx) as unknown[];
          return list.map((p) => str(p, 'Join')).join(sep);
        }
        case 'Fn::Select': {
          const [i, list] = arg as [number, unknown];
          return (this.resolve(list, ctx) as unknown[])[Number(this.resolve(i, ctx))];
        }
        case 'Fn::Split': {
          const [sep, s] = arg as [string, unknown];
          return str(this.resolve(s, ctx), 'Split').split(sep);
        }
        case 'Fn::Sub': {
          const [text, vars] = Array.isArray(arg) ? (arg as [string, Record<string, unknown>]) : [str(arg, 'Sub'), {}];
          return text.replace(/\$\{([^}!]+)\}/g, (_m, name: string) => {
            if (name in vars) return str(this.resolve(vars[name], ctx), 'Sub');
            const dot = name.indexOf('.');
            return str(
              dot > 0 ? this.getAtt(name.slice(0, dot), name.slice(dot + 1), ctx) : this.ref(name, ctx),
              'Sub',
            );
          });
        }
        case 'Fn::FindInMap': {
          const [m, k1, k2] = this.resolve(arg, ctx) as string[];
          const map = defined(m, 'Fn::FindInMap map name');
          const top = defined(k1, 'Fn::FindInMap top-level key');
          const second = defined(k2, 'Fn::FindInMap second-level key');
          return this.resolve(ctx.template.Mappings?.[map]?.[top]?.[second], ctx);
        }
        case 'Fn::GetStackOutput': {
          const { StackName, OutputName } = arg as { StackName: string; OutputName: string };
          const other = this.stacks.get(StackName);
          const out = other?.template.Outputs?.[OutputName];
          if (!other || !out) throw new Error(`no output ${OutputName} in stack ${StackName}`);
          return this.resolve(out.Value, other);
        }
        case 'Fn::ImportValue': {
          const name = this.resolve(arg, ctx);
          for (const other of this.stacks.values()) {
            for (const out of Object.values(other.template.Outputs ?? {})) {
              if (out.Export && this.resolve(out.Export.Name, other) === name) return this.resolve(out.Value, other);
            }
          }
          throw new Error(`no export ${String(name)}`);
        }
        default:
          if (fn.startsWith('Fn::')) throw new Error(`unsupported intrinsic ${fn}`);
      }
    }
    return Object.fromEntries(entries.map(([k, v]) => [k, this.resolve(v, ctx)]));
  }

  resource(lid: string, ctx: StackCtx): Cfn {
    const r = ctx.template.Resources?.[lid];
    if (!r) throw new Error(`${ctx.stackName}: no resource ${lid}`);
    return r;
  }

  prop(lid: string, name: string, ctx: StackCtx): unknown {
    const v = this.resource(lid, ctx).Properties?.[name];
    return v === undefined ? undefined : this.resolve(v, ctx);
  }

  ref(name: string, ctx: StackCtx): unknown {
    switch (name) {
      case 'AWS::Region':
        return ctx.region;
      case 'AWS::AccountId':
        return ctx.account;
      case 'AWS::Partition':
        return 'aws';
      case 'AWS::URLSuffix':
        return 'amazonaws.com';
      case 'AWS::StackName':
        return ctx.stackName;
      case 'AWS::NoValue':
        return NO_VALUE;
    }
    const param = ctx.template.Parameters?.[name];
    if (param) return param.Default ?? `param-${name}`;
    return this.physical(name, ctx).ref;
  }

  getAtt(lid: string, attr: string, ctx: StackCtx): unknown {
    const p = this.physical(lid, ctx);
    const v = p.atts[attr] ?? (p.arn ? undefined : `${p.ref}.${attr}`);
    if (v === undefined) throw new Error(`${ctx.stackName}: unsupported Fn::GetAtt ${lid}.${attr} (${p.type})`);
    return v;
  }

  /** Ref and attributes of a resource, as CloudFormation would return them. */
  physical(lid: string, ctx: StackCtx): { type: string; ref: string; atts: Record<string, string>; arn?: string } {
    const r = this.resource(lid, ctx);
    const { region, account } = ctx;
    const named = (prop: string, lower = false, max = 64): string => {
      const given = r.Properties?.[prop];
      if (given !== undefined) return str(this.resolve(given, ctx), prop);
      const g = generatedName(ctx, lid, max);
      return lower ? g.toLowerCase() : g;
    };
    const id = hash(`${ctx.stackName}/${lid}`, 32);
    const arnOf = (service: string, rest: string): string => `arn:aws:${service}:${region}:${account}:${rest}`;
    switch (r.Type) {
      case 'AWS::IAM::Role': {
        const name = named('RoleName');
        const arn = `arn:aws:iam::${account}:role${(r.Properties?.Path as string | undefined) ?? '/'}${name}`;
        return { type: r.Type, ref: name, atts: { Arn: arn, RoleId: `AROA${id.toUpperCase()}` }, arn };
      }
      case 'AWS::IAM::ManagedPolicy': {
        const arn = `arn:aws:iam::${account}:policy/${named('ManagedPolicyName')}`;
        return { type: r.Type, ref: arn, atts: { PolicyArn: arn }, arn };
      }
      case 'AWS::IAM::Policy':
        return { type: r.Type, ref: named('PolicyName'), atts: {} };
      case 'AWS::KMS::Key': {
        const keyId = `${id.slice(0, 8)}-${id.slice(8, 12)}-4${id.slice(13, 16)}-8${id.slice(17, 20)}-${id.slice(20, 32)}`;
        const arn = arnOf('kms', `key/${keyId}`);
        return { type: r.Type, ref: keyId, atts: { Arn: arn, KeyId: keyId }, arn };
      }
      case 'AWS::KMS::Alias':
        return { type: r.Type, ref: named('AliasName'), atts: {} };
      case 'AWS::S3::Bucket': {
        const name = named('BucketName', true, 63);
        const arn = `arn:aws:s3:::${name}`;
        return {
          type: r.Type,
          ref: name,
          atts: {
            Arn: arn,
            DomainName: `${name}.s3.amazonaws.com`,
            RegionalDomainName: `${name}.s3.${region}.amazonaws.com`,
          },
          arn,
        };
      }
      case 'AWS::SNS::Topic': {
        const name = named('TopicName', false, 256);
        const arn = arnOf('sns', name);
        return { type: r.Type, ref: arn, atts: { TopicArn: arn, TopicName: name }, arn };
      }
      case 'AWS::SQS::Queue': {
        const name = named('QueueName', false, 80);
        const arn = arnOf('sqs', name);
        const url = `https://sqs.${region}.amazonaws.com/${account}/${name}`;
        return { type: r.Type, ref: url, atts: { Arn: arn, QueueName: name, QueueUrl: url }, arn };
      }
      case 'AWS::Logs::LogGroup': {
        const name = named('LogGroupName', false, 512);
        const arn = arnOf('logs', `log-group:${name}`);
        return { type: r.Type, ref: name, atts: { Arn: `${arn}:*` }, arn };
      }
      case 'AWS::Lambda::Function': {
        const name = named('FunctionName');
        const arn = arnOf('lambda', `function:${name}`);
        return { type: r.Type, ref: name, atts: { Arn: arn }, arn };
      }
      case 'AWS::CloudTrail::Trail': {
        const name = named('TrailName', false, 128);
        const arn = arnOf('cloudtrail', `trail/${name}`);
        return { type: r.Type, ref: name, atts: { Arn: arn }, arn };
      }
      case 'AWS::Backup::BackupVault': {
        const name = named('BackupVaultName');
        const arn = arnOf('backup', `backup-vault:${name}`);
        return { type: r.Type, ref: name, atts: { BackupVaultArn: arn, BackupVaultName: name }, arn };
      }
      case 'AWS::Backup::BackupPlan': {
        const arn = arnOf('backup', `backup-plan:${id}`);
        return { type: r.Type, ref: id, atts: { BackupPlanArn: arn, BackupPlanId: id }, arn };
      }
      case 'AWS::Backup::BackupSelection':
        return { type: r.Type, ref: id, atts: { SelectionId: id } };
      case 'AWS::RDS::DBProxy': {
        const name = named('DBProxyName');
        const arn = arnOf('rds', `db-proxy:prx-${id.slice(0, 17)}`);
        return {
          type: r.Type,
          ref: name,
          atts: { DBProxyArn: arn, Endpoint: `${name}.proxy.${region}.rds.amazonaws.com` },
          arn,
        };
      }
      case 'AWS::RDS::DBInstance': {
        const name = named('DBInstanceIdentifier', true, 63);
        const arn = arnOf('rds', `db:${name}`);
        return {
          type: r.Type,
          ref: name,
          atts: {
            DbiResourceId: `db-${id.slice(0, 26).toUpperCase()}`,
            DBInstanceArn: arn,
            'Endpoint.Address': `${name}.${region}.rds.amazonaws.com`,
            'Endpoint.Port': '5432',
          },
          arn,
        };
      }
      case 'AWS::RDS::DBSubnetGroup': {
        const name = named('DBSubnetGroupName', true, 255);
        return { type: r.Type, ref: name, atts: {}, arn: arnOf('rds', `subgrp:${name}`) };
      }
      case 'AWS::RDS::DBParameterGroup': {
        const name = named('DBParameterGroupName', true, 255);
        return { type: r.Type, ref: name, atts: {}, arn: arnOf('rds', `pg:${name}`) };
      }
      case 'AWS::SecretsManager::Secret': {
        const arn = arnOf('secretsmanager', `secret:${named('Name', false, 256)}-${id.slice(0, 6)}`);
        return { type: r.Type, ref: arn, atts: { Id: arn }, arn };
      }
      case 'AWS::SecretsManager::SecretTargetAttachment': {
        const secret = str(this.prop(lid, 'SecretId', ctx), 'SecretId');
        return { type: r.Type, ref: secret, atts: {} };
      }
      case 'AWS::Events::Rule': {
        const name = named('Name');
        const arn = arnOf('events', `rule/${name}`);
        return { type: r.Type, ref: name, atts: { Arn: arn }, arn };
      }
      case 'AWS::Scheduler::Schedule': {
        const name = named('Name');
        const arn = arnOf('scheduler', `schedule/default/${name}`);
        return { type: r.Type, ref: name, atts: { Arn: arn }, arn };
      }
      case 'AWS::StepFunctions::StateMachine': {
        const name = named('StateMachineName');
        const arn = arnOf('states', `stateMachine:${name}`);
        return { type: r.Type, ref: arn, atts: { Arn: arn, Name: name }, arn };
      }
      case 'AWS::CloudWatch::Alarm': {
        const name = named('AlarmName', false, 255);
        const arn = arnOf('cloudwatch', `alarm:${name}`);
        return { type: r.Type, ref: name, atts: { Arn: arn }, arn };
      }
      case 'AWS::ApiGateway::RestApi': {
        const apiId = id.slice(0, 10);
        const arn = `arn:aws:apigateway:${region}::/restapis/${apiId}`;
        return { type: r.Type, ref: apiId, atts: { RootResourceId: id.slice(10, 20) }, arn };
      }
      case 'AWS::ApiGateway::Stage':
        return { type: r.Type, ref: named('StageName'), atts: {} };
      case 'AWS::Cognito::UserPool': {
        const poolId = `${region}_${id.slice(0, 9)}`;
        const arn = arnOf('cognito-idp', `userpool/${poolId}`);
        return {
          type: r.Type,
          ref: poolId,
          atts: { Arn: arn, ProviderName: `cognito-idp.${region}.amazonaws.com/${poolId}` },
          arn,
        };
      }
      case 'AWS::EC2::SecurityGroup':
        return { type: r.Type, ref: `sg-${id.slice(0, 17)}`, atts: { GroupId: `sg-${id.slice(0, 17)}` } };
      case 'AWS::EC2::VPC':
        return { type: r.Type, ref: `vpc-${id.slice(0, 17)}`, atts: {} };
      case 'AWS::EC2::Subnet':
        return { type: r.Type, ref: `subnet-${id.slice(0, 17)}`, atts: { SubnetId: `subnet-${id.slice(0, 17)}` } };
      case 'AWS::EC2::VPCEndpoint':
        return { type: r.Type, ref: `vpce-${id.slice(0, 17)}`, atts: { Id: `vpce-${id.slice(0, 17)}` } };
      case 'AWS::DynamoDB::Table': {
        const name = named('TableName', false, 255);
        const arn = arnOf('dynamodb', `table/${name}`);
        return { type: r.Type, ref: name, atts: { Arn: arn }, arn };
      }
      default:
        // Names and ids only (subnets, endpoints, ...): nothing a policy matches on.
        return {
          type: r.Type,
          ref: `${(r.Type.split('::').pop() ?? 'resource').toLowerCase()}-${id.slice(0, 17)}`,
          atts: {},
        };
    }
  }
}

const NO_VALUE = Symbol('AWS::NoValue');

function tagsOf(v: unknown): Record<string, string> {
  if (!Array.isArray(v)) return {};
  return Object.fromEntries(v.map((t: { Key: string; Value: string }) => [t.Key, t.Value]));
}

/**
 * An endpoint policy as the simulator reads it: CDK writes `AnyPrincipal` as `{"AWS": "*"}`, which
 * means `"*"`, the one principal the simulator accepts in an endpoint policy (it matches principals
 * through the conditions, `aws:PrincipalAccount` here). Any other principal is left for it to refuse.
 */
function endpointPolicy(doc: PolicyJson | undefined): PolicyJson | undefined {
  if (!doc) return undefined;
  const statements = asList(doc.Statement) as Record<string, unknown>[];
  return {
    ...doc,
    Statement: statements.map((st) =>
      JSON.stringify(st['Principal']) === JSON.stringify({ AWS: '*' }) ? { ...st, Principal: '*' } : st,
    ),
  };
}

const asList = (v: unknown): unknown[] => (v === undefined ? [] : Array.isArray(v) ? v : [v]);

/** Construct path relative to the stage, without the L1 `Resource`/`Default` leaf. */
function relativePath(stage: Stage, c: IConstruct): string {
  return c.node.path.slice(stage.node.path.length + 1).replace(/\/(Resource|Default)$/, '');
}

/**
 * Builds the model of a synthesized stage. The stage must already be synthesized (its assembly is
 * read back), so the compliance gate has run over exactly these templates.
 */
export function stageModel(stage: Stage): StageModel {
  const assembly = stage.synth();
  const stacks = stage.node.findAll().filter((c): c is Stack => Stack.isStack(c));
  const ctxs: StackCtx[] = stacks.map((stack) => {
    const paths = new Map<string, string>();
    for (const c of stack.node.findAll()) {
      if (CfnResource.isCfnResource(c) && Stack.of(c) === stack) {
        paths.set(stack.resolve(c.logicalId) as string, relativePath(stage, c));
      }
    }
    return {
      stackName: stack.stackName,
      region: stack.region,
      account: stack.account,
      template: assembly.getStackByName(stack.stackName).template as Template,
      paths,
    };
  });
  const resolver = new Resolver(ctxs);
  const roles = new Map<string, RoleModel>();
  const resources = new Map<string, ResourceModel>();
  const rolesByName = new Map<string, { policies: NamedPolicy[]; unknown: string[] }>();
  const managed = new Map<string, NamedPolicy>();
  const proxyUsers = new Map<string, string[]>();
  const secretUsers = new Map<string, string>();
  const attachments: { roles: string[]; policy: NamedPolicy }[] = [];
  const permissions: { fn: string; statement: Record<string, unknown>; path: string }[] = [];
  const resourcePolicies: { arns: string[]; policy: NamedPolicy }[] = [];
  const subnetVpcs = new Map<string, string>();
  const functions: { path: string; arn: string; role: string; region: string; subnets: string[] }[] = [];
  const serviceTokens: string[] = [];
  const endpointList: EndpointModel[] = [];

  for (const ctx of ctxs) {
    for (const [lid, r] of Object.entries(ctx.template.Resources ?? {})) {
      const path = ctx.paths.get(lid) ?? `${ctx.stackName}/${lid}`;
      const prop = (name: string): unknown => resolver.prop(lid, name, ctx);
      const physical = resolver.physical(lid, ctx);
      const arn = (): string => defined(physical.arn, `ARN of ${path} (${r.Type})`);
      if (physical.arn && r.Type !== 'AWS::IAM::Role' && r.Type !== 'AWS::IAM::ManagedPolicy') {
        resources.set(path, {
          path,
          type: r.Type,
          arn: physical.arn,
          name: physical.ref,
          region: ctx.region,
          account: ctx.account,
          tags: tagsOf(prop('Tags')),
        });
      }
      if (r.Type === 'AWS::CloudFormation::CustomResource' || r.Type.startsWith('Custom::')) {
        serviceTokens.push(str(prop('ServiceToken'), 'ServiceToken'));
      }
      switch (r.Type) {
        case 'AWS::IAM::Role': {
          const entry = { policies: [] as NamedPolicy[], unknown: [] as string[] };
          rolesByName.set(physical.ref, entry);
          for (const p of asList(prop('Policies')) as { PolicyName: string; PolicyDocument: PolicyJson }[]) {
            entry.policies.push({ name: `${path}#${p.PolicyName}`, document: p.PolicyDocument });
          }
          roles.set(path, {
            path,
            name: physical.ref,
            arn: arn(),
            account: ctx.account,
            tags: tagsOf(prop('Tags')),
            policies: entry.policies,
            unknownManagedPolicies: entry.unknown,
            trustPolicy: { name: `${path} trust policy`, document: prop('AssumeRolePolicyDocument') as PolicyJson },
          });
          for (const arn of asList(prop('ManagedPolicyArns')) as string[]) {
            attachments.push({ roles: [physical.ref], policy: { name: arn, document: { Statement: [] } } });
          }
          break;
        }
        case 'AWS::IAM::Policy':
        case 'AWS::IAM::ManagedPolicy': {
          const policy = { name: path, document: prop('PolicyDocument') as PolicyJson };
          if (r.Type === 'AWS::IAM::ManagedPolicy') managed.set(arn(), policy);
          attachments.push({ roles: asList(prop('Roles')) as string[], policy });
          break;
        }
        case 'AWS::KMS::Key':
          resourcePolicies.push({
            arns: [arn()],
            policy: { name: path, document: prop('KeyPolicy') as PolicyJson },
          });
          break;
        case 'AWS::S3::BucketPolicy':
          resourcePolicies.push({
            arns: [`arn:aws:s3:::${str(prop('Bucket'), 'Bucket')}`],
            policy: { name: path, document: prop('PolicyDocument') as PolicyJson },
          });
          break;
        case 'AWS::SNS::TopicPolicy':
          resourcePolicies.push({
            arns: asList(prop('Topics')) as string[],
            policy: { name: path, document: prop('PolicyDocument') as PolicyJson },
          });
          break;
        case 'AWS::SQS::QueuePolicy':
          resourcePolicies.push({
            arns: (asList(prop('Queues')) as string[]).map((url) => {
              const m = /^https:\/\/sqs\.([^.]+)\.amazonaws\.com\/(\d+)\/(.+)$/.exec(url);
              if (!m) throw new Error(`unexpected queue url ${url}`);
              return `arn:aws:sqs:${m[1]}:${m[2]}:${m[3]}`;
            }),
            policy: { name: path, document: prop('PolicyDocument') as PolicyJson },
          });
          break;
        case 'AWS::Backup::BackupVault': {
          const doc = prop('AccessPolicy');
          if (doc) resourcePolicies.push({ arns: [arn()], policy: { name: path, document: doc as PolicyJson } });
          break;
        }
        case 'AWS::Lambda::Permission': {
          // Lambda turns each permission into one statement of the function's resource policy.
          const principal = str(prop('Principal'), 'Principal');
          const condition: Record<string, Record<string, string>> = {};
          const sourceArn = prop('SourceArn');
          const sourceAccount = prop('SourceAccount');
          if (sourceArn !== undefined) condition['ArnLike'] = { 'AWS:SourceArn': str(sourceArn, 'SourceArn') };
          if (sourceAccount !== undefined) {
            condition['StringEquals'] = { 'AWS:SourceAccount': str(sourceAccount, 'SourceAccount') };
          }
          const fnRef = str(prop('FunctionName'), 'FunctionName');
          const fn = fnRef.startsWith('arn:') ? fnRef : `arn:aws:lambda:${ctx.region}:${ctx.account}:function:${fnRef}`;
          permissions.push({
            fn,
            path,
            statement: {
              Sid: path,
              Effect: 'Allow',
              Principal: principal.includes('.amazonaws.com') ? { Service: principal } : { AWS: principal },
              Action: str(prop('Action'), 'Action'),
              Resource: fn,
              ...(Object.keys(condition).length ? { Condition: condition } : {}),
            },
          });
          break;
        }
        case 'AWS::EC2::Subnet':
          subnetVpcs.set(physical.ref, str(prop('VpcId'), 'VpcId'));
          break;
        case 'AWS::Lambda::Function': {
          const vpcConfig = prop('VpcConfig') as { SubnetIds?: string[] } | undefined;
          functions.push({
            path,
            arn: arn(),
            role: str(prop('Role'), 'Role'),
            region: ctx.region,
            subnets: vpcConfig?.SubnetIds ?? [],
          });
          break;
        }
        case 'AWS::EC2::VPCEndpoint': {
          const serviceName = str(prop('ServiceName'), 'ServiceName');
          const service = new RegExp(`^com\\.amazonaws\\.${ctx.region}\\.(.+)$`).exec(serviceName)?.[1];
          if (!service) throw new Error(`${path}: unexpected endpoint service ${serviceName}`);
          const document = endpointPolicy(prop('PolicyDocument') as PolicyJson | undefined);
          endpointList.push({
            path,
            id: physical.ref,
            vpc: str(prop('VpcId'), 'VpcId'),
            service,
            region: ctx.region,
            ...(document ? { policy: { name: path, document } } : {}),
          });
          break;
        }
        case 'AWS::SecretsManager::Secret': {
          const template = (r.Properties?.GenerateSecretString as { SecretStringTemplate?: string } | undefined)
            ?.SecretStringTemplate;
          const username = template ? (JSON.parse(template) as { username?: string }).username : undefined;
          if (username) secretUsers.set(arn(), username);
          break;
        }
      }
    }
  }

  // Proxies after secrets: a proxy registers the users whose secrets its Auth lists.
  for (const ctx of ctxs) {
    for (const [lid, r] of Object.entries(ctx.template.Resources ?? {})) {
      if (r.Type !== 'AWS::RDS::DBProxy') continue;
      const path = ctx.paths.get(lid) ?? `${ctx.stackName}/${lid}`;
      const arn = defined(resolver.physical(lid, ctx).arn, `ARN of ${path} (${r.Type})`);
      const auth = asList(resolver.prop(lid, 'Auth', ctx)) as { SecretArn: string }[];
      proxyUsers.set(
        defined(arn.split(':')[6], `proxy id in ${arn}`),
        auth.map((a) => secretUsers.get(a.SecretArn) ?? `unknown secret ${a.SecretArn}`),
      );
    }
  }

  for (const { roles: names, policy } of attachments) {
    for (const name of names) {
      const role = rolesByName.get(name);
      if (!role) throw new Error(`${policy.name} is attached to unknown role ${name}`);
      if (policy.name.startsWith('arn:')) {
        const arn = policy.name;
        const own = managed.get(arn);
        const aws = /^arn:aws:iam::aws:policy\/(.+)$/.exec(arn)?.[1];
        if (own) role.policies.push(own);
        else if (aws && AWS_MANAGED_POLICIES[aws])
          role.policies.push({ name: arn, document: AWS_MANAGED_POLICIES[aws] });
        else role.unknown.push(arn);
      } else {
        role.policies.push(policy);
      }
    }
  }

  const byArn = new Map([...resources.values()].map((r) => [r.arn, r]));
  for (const { arns, policy } of resourcePolicies) {
    for (const arn of arns) {
      const target = byArn.get(arn);
      if (!target) throw new Error(`${policy.name} protects unknown resource ${arn}`);
      target.policy = policy;
    }
  }
  for (const { fn, statement, path } of permissions) {
    const target = byArn.get(fn);
    if (!target) throw new Error(`${path} names unknown function ${fn}`);
    const statements = (target.policy?.document.Statement as unknown[] | undefined) ?? [];
    target.policy = {
      name: `${target.path} (resource policy from AWS::Lambda::Permission)`,
      document: { Version: '2012-10-17', Statement: [...statements, statement] },
    };
  }

  // A function's VPC is its subnets'; its role sends from there (one role per function: BulwarkFunction).
  const rolesByArn = new Map([...roles.values()].map((r) => [r.arn, r]));
  const vpcOf = (fn: (typeof functions)[number]): string | undefined => {
    const vpcs = new Set(fn.subnets.map((s) => defined(subnetVpcs.get(s), `VPC of subnet ${s} (${fn.path})`)));
    if (vpcs.size > 1) throw new Error(`${fn.path} has subnets in ${vpcs.size} VPCs`);
    return [...vpcs][0];
  };
  for (const fn of functions) {
    const role = rolesByArn.get(fn.role);
    const vpc = vpcOf(fn);
    if (!role || !vpc) continue;
    if (role.vpc !== undefined && role.vpc !== vpc) throw new Error(`${role.path} runs functions in two VPCs`);
    role.vpc = vpc;
  }
  const customResourceFunctions: CustomResourceFunctionModel[] = [];
  for (const fn of functions.filter((f) => serviceTokens.includes(f.arn))) {
    const role = defined(rolesByArn.get(fn.role), `role of ${fn.path}`);
    const vpc = vpcOf(fn);
    customResourceFunctions.push({ path: fn.path, role: role.path, region: fn.region, ...(vpc ? { vpc } : {}) });
  }
  const endpoints = new Map<string, Map<string, EndpointModel>>();
  for (const e of endpointList) {
    const inVpc = endpoints.get(e.vpc) ?? new Map<string, EndpointModel>();
    if (inVpc.has(e.service)) throw new Error(`${e.path}: a second ${e.service} endpoint in ${e.vpc}`);
    inVpc.set(e.service, e);
    endpoints.set(e.vpc, inVpc);
  }

  const home = defined(stacks.find((s) => s.node.id === 'Data') ?? stacks[0], `a stack in ${stage.stageName}`);
  return {
    stageName: stage.stageName,
    account: home.account,
    region: home.region,
    roles,
    resources,
    proxyUsers,
    endpoints,
    customResourceFunctions,
  };
}
