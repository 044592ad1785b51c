import { Fn, RemovalPolicy, Stack } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as iam from 'aws-cdk-lib/aws-iam';
import { Construct } from 'constructs';
import { acknowledge } from '../compliance/acknowledge';
import { allowLogsToUseKey } from '../observability/keys';
import { ServiceRole } from './roles';

/** Subnet group names; other capabilities select subnets by these. */
export const DATA_SUBNETS = 'data';
export const APP_SUBNETS = 'app';

/**
 * Interface endpoints every deployment gets: what the VPC functions call (the tenant API invokes the
 * tenant-keys provisioner through Lambda; rotation, restore drill and tenant keys use the rest).
 */
export const INTERFACE_ENDPOINTS = {
  Kms: ec2.InterfaceVpcEndpointAwsService.KMS,
  SecretsManager: ec2.InterfaceVpcEndpointAwsService.SECRETS_MANAGER,
  Sts: ec2.InterfaceVpcEndpointAwsService.STS,
  Logs: ec2.InterfaceVpcEndpointAwsService.CLOUDWATCH_LOGS,
  Monitoring: ec2.InterfaceVpcEndpointAwsService.CLOUDWATCH_MONITORING,
  Rds: ec2.InterfaceVpcEndpointAwsService.RDS,
  Lambda: ec2.InterfaceVpcEndpointAwsService.LAMBDA,
  // S3 as an interface endpoint (not a gateway): security groups can then name it, so no function
  // needs egress to S3's public ranges (whose prefix-list id synth cannot know without a lookup).
  S3: ec2.InterfaceVpcEndpointAwsService.S3,
  // The tenant API's per-tenant budget counters (docs/rate-limits.md "Per tenant"). An interface
  // endpoint for the same reason as S3: a gateway endpoint would need egress to a prefix list.
  DynamoDb: ec2.InterfaceVpcEndpointAwsService.DYNAMODB,
} as const;

/**
 * Endpoints whose service offers no private DNS name (AWS PrivateLink for DynamoDB): clients address
 * them by the endpoint's own DNS name (`DataNetwork.dynamoDbEndpointUrl`).
 */
const WITHOUT_PRIVATE_DNS: ReadonlySet<keyof typeof INTERFACE_ENDPOINTS> = new Set(['DynamoDb']);

/**
 * Actions the VPC's workloads call that name no resource, so AWS sends no `aws:ResourceAccount` with
 * them: allowed through the endpoint to this account's principals only. Every other request must
 * name a resource of this account.
 */
export const RESOURCELESS_ENDPOINT_ACTIONS: Readonly<
  Partial<Record<keyof typeof INTERFACE_ENDPOINTS, readonly string[]>>
> = {
  // The tenant-keys provisioner creates each tenant's key: the key does not exist yet (Resource "*").
  // Only CreateKey: TagResource and the rest name a key, whose account the first statement checks.
  Kms: ['kms:CreateKey'],
  // The rotation functions generate each new password.
  SecretsManager: ['secretsmanager:GetRandomPassword'],
  // SDK identity checks (no resource).
  Sts: ['sts:GetCallerIdentity'],
  // Metrics are written per namespace, not per resource.
  Monitoring: ['cloudwatch:PutMetricData'],
};

/**
 * The endpoint policy every VPC endpoint of the deployment carries: requests by this account's
 * principals to this account's resources, and nothing else. A compromised function cannot use an
 * endpoint to reach another account's bucket, key, secret or function (exfiltration), and stolen
 * credentials of another account cannot use it either. One AWS-owned resource is reached: the S3
 * endpoint lets the migration function answer CloudFormation (`s3ResponseBucketRegion`). Lambda
 * fetches function code and layers outside the function's network and nothing in the VPC pulls
 * images or packages, so no other AWS-owned bucket (ECR layers, yum mirrors) needs an exception.
 */
export function accountOnlyEndpointStatements(
  account: string,
  resourceless: readonly string[] = [],
  s3ResponseBucketRegion?: string,
): iam.PolicyStatement[] {
  const principalAccount = { 'aws:PrincipalAccount': account };
  return [
    new iam.PolicyStatement({
      sid: 'ThisAccountsPrincipalsToThisAccountsResources',
      principals: [new iam.AnyPrincipal()],
      actions: ['*'],
      resources: ['*'],
      conditions: { StringEquals: { ...principalAccount, 'aws:ResourceAccount': account } },
    }),
    ...(s3ResponseBucketRegion
      ? [
          // CloudFormation's custom-resource response bucket (AWS-owned): the migration custom
          // resource answers CloudFormation with a PUT to the presigned URL it was given. The URL is
          // signed by CloudFormation, so neither account condition can hold; only that PUT is let out.
          new iam.PolicyStatement({
            sid: 'CloudFormationCustomResourceResponses',
            principals: [new iam.AnyPrincipal()],
            actions: ['s3:PutObject'],
            resources: [
              `arn:aws:s3:::cloudformation-custom-resource-response-${s3ResponseBucketRegion.replace(/-/g, '')}/*`,
            ],
          }),
        ]
      : []),
    ...(resourceless.length > 0
      ? [
          new iam.PolicyStatement({
            sid: 'ThisAccountsPrincipalsResourcelessActions',
            principals: [new iam.AnyPrincipal()],
            actions: [...resourceless],
            resources: ['*'],
            conditions: { StringEquals: principalAccount },
          }),
        ]
      : []),
  ];
}

export interface DataNetworkProps {
  /** Availability zones, listed explicitly so synth makes no lookups. At least 2. */
  readonly availabilityZones: readonly string[];
  /** Key for the flow-log group. */
  readonly logKey: kms.IKey;
  /** @default 10.40.0.0/16 */
  readonly cidr?: string;
  /** Flow-log retention. @default 1 year */
  readonly flowLogRetention?: logs.RetentionDays;
}

/**
 * The deployment's VPC. There is no internet gateway and no NAT gateway: both subnet groups are
 * isolated, and every AWS API the workloads call is reached through a VPC endpoint. A compromised
 * function therefore has no network path out of the VPC except to AWS services, and there is no
 * NAT bill. `data` subnets hold PostgreSQL and the RDS Proxy; `app` subnets hold the Lambda
 * functions and the endpoint network interfaces.
 */
export class DataNetwork extends Construct {
  public readonly vpc: ec2.IVpc;
  /** The VPC CIDR as a literal, for rules that compliance checks must be able to read. */
  public readonly cidr: string;
  public readonly endpointSecurityGroup: ec2.ISecurityGroup;
  public readonly endpoints: Readonly<Record<keyof typeof INTERFACE_ENDPOINTS, ec2.InterfaceVpcEndpoint>>;
  public readonly flowLogGroup: logs.ILogGroup;
  /** `https://<the DynamoDB endpoint's regional DNS name>`, for clients in the VPC (no private DNS). */
  public readonly dynamoDbEndpointUrl: string;

  constructor(scope: Construct, id: string, props: DataNetworkProps) {
    super(scope, id);
    if (props.availabilityZones.length < 2) {
      throw new Error(`DataNetwork needs at least 2 availability zones, got ${props.availabilityZones.length}`);
    }

    const cidr = props.cidr ?? '10.40.0.0/16';
    const vpc = new ec2.Vpc(this, 'Vpc', {
      ipAddresses: ec2.IpAddresses.cidr(cidr),
      availabilityZones: [...props.availabilityZones],
      natGateways: 0,
      createInternetGateway: false,
      restrictDefaultSecurityGroup: true,
      subnetConfiguration: [
        { name: DATA_SUBNETS, subnetType: ec2.SubnetType.PRIVATE_ISOLATED, cidrMask: 24 },
        { name: APP_SUBNETS, subnetType: ec2.SubnetType.PRIVATE_ISOLATED, cidrMask: 22 },
      ],
    });
    // The AZs come from the deployment config on purpose: synth must make no lookups.
    for (const subnet of vpc.isolatedSubnets) {
      acknowledge(
        subnet,
        'CloudFormation-Validate::W3010',
        'Availability zones are listed explicitly in the deployment config so that synth needs no context lookup.',
      );
    }

    const flowLogGroup = recordFlows(this, vpc, {
      logKey: props.logKey,
      retention: props.flowLogRetention,
      description: 'VPC flow logs: write to the flow-log group',
    });

    const { account, region } = Stack.of(this);

    // Endpoints accept HTTPS from inside the VPC only; nothing else can reach them anyway.
    const endpointSecurityGroup = new ec2.SecurityGroup(this, 'EndpointSecurityGroup', {
      vpc,
      description: 'AWS service interface endpoints: HTTPS from inside the VPC',
      allowAllOutbound: false,
    });
    endpointSecurityGroup.addIngressRule(ec2.Peer.ipv4(cidr), ec2.Port.tcp(443), 'HTTPS from the VPC');

    const endpoints = {} as Record<keyof typeof INTERFACE_ENDPOINTS, ec2.InterfaceVpcEndpoint>;
    for (const [name, service] of Object.entries(INTERFACE_ENDPOINTS) as [
      keyof typeof INTERFACE_ENDPOINTS,
      ec2.InterfaceVpcEndpointAwsService,
    ][]) {
      endpoints[name] = vpc.addInterfaceEndpoint(name, {
        service,
        subnets: { subnetGroupName: APP_SUBNETS },
        securityGroups: [endpointSecurityGroup],
        privateDnsEnabled: !WITHOUT_PRIVATE_DNS.has(name),
        open: false,
      });
      const responses = name === 'S3' ? region : undefined;
      for (const statement of accountOnlyEndpointStatements(account, RESOURCELESS_ENDPOINT_ACTIONS[name], responses)) {
        endpoints[name].addToPolicy(statement);
      }
    }

    this.vpc = vpc;
    this.cidr = cidr;
    this.endpointSecurityGroup = endpointSecurityGroup;
    this.endpoints = endpoints;
    this.flowLogGroup = flowLogGroup;
    // DnsEntries: `<hosted zone id>:<DNS name>`, the regional name first.
    const regional = Fn.select(0, endpoints.DynamoDb.vpcEndpointDnsEntries);
    this.dynamoDbEndpointUrl = `https://${Fn.select(1, Fn.split(':', regional))}`;
  }
}

/** What `recordFlows` needs: the key its log group is encrypted with, and how long it keeps flows. */
export interface FlowLogProps {
  readonly logKey: kms.IKey;
  /** @default logs.RetentionDays.ONE_YEAR */
  readonly retention?: logs.RetentionDays;
  /** The delivery role's description. */
  readonly description: string;
}

/**
 * Records every flow of `vpc` (accepted and rejected, one-minute aggregation) into a retained log
 * group under `logKey`, delivered by a role only this account's flow-log service can assume. The
 * one recipe for every VPC of a deployment (ids `FlowLogs`, `FlowLogRole`, `FlowLog` under `scope`).
 */
export function recordFlows(scope: Construct, vpc: ec2.IVpc, props: FlowLogProps): logs.LogGroup {
  allowLogsToUseKey(props.logKey);
  const flowLogGroup = new logs.LogGroup(scope, 'FlowLogs', {
    encryptionKey: props.logKey,
    retention: props.retention ?? logs.RetentionDays.ONE_YEAR,
    removalPolicy: RemovalPolicy.RETAIN,
  });
  const flowLogRole = new ServiceRole(scope, 'FlowLogRole', {
    assumedBy: new iam.ServicePrincipal('vpc-flow-logs.amazonaws.com').withConditions({
      StringEquals: { 'aws:SourceAccount': Stack.of(scope).account },
    }),
    description: props.description,
    statements: [
      new iam.PolicyStatement({
        actions: ['logs:CreateLogStream', 'logs:PutLogEvents', 'logs:DescribeLogStreams'],
        resources: [flowLogGroup.logGroupArn],
      }),
    ],
  });
  const flowLog = new ec2.CfnFlowLog(scope, 'FlowLog', {
    resourceId: vpc.vpcId,
    resourceType: 'VPC',
    trafficType: 'ALL',
    logDestinationType: 'cloud-watch-logs',
    logGroupName: flowLogGroup.logGroupName,
    deliverLogsPermissionArn: flowLogRole.role.roleArn,
    maxAggregationInterval: 60,
  });
  flowLogRole.requiredBy(flowLog);
  return flowLogGroup;
}
