import { RemovalPolicy } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as elasticache from 'aws-cdk-lib/aws-elasticache';
import type * as kms from 'aws-cdk-lib/aws-kms';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { Construct } from 'constructs';
import { acknowledge } from '../compliance/acknowledge';
import { allowLogsToUseKey } from '../observability/keys';
import { DATA_SUBNETS } from './network';

/** Valkey listens here rather than on 6379. */
export const DEFAULT_CACHE_PORT = 6390;

/** What a client needs to reach the cache: TLS endpoint and the AUTH token secret (key `token`). */
export interface CacheEndpoint {
  readonly host: string;
  readonly port: number;
  readonly authSecret: secretsmanager.ISecret;
  /** Always true: the cache only accepts TLS. */
  readonly tls: true;
}

export interface RedisCacheProps {
  readonly vpc: ec2.IVpc;
  /** Encrypts data at rest and the AUTH token secret. */
  readonly key: kms.IKey;
  readonly logKey: kms.IKey;
  /** The only security groups that may connect. */
  readonly clients: readonly ec2.ISecurityGroup[];
  /** Number of AZs to place nodes in (one primary, the rest replicas). At least 2. */
  readonly nodeCount: number;
  /** @default cache.r7g.large */
  readonly nodeType?: string;
  /** @default 6390 */
  readonly port?: number;
  /** @default 1 year */
  readonly logRetention?: logs.RetentionDays;
}

/**
 * A Valkey (Redis OSS compatible) replication group across the data subnets: Multi-AZ with
 * automatic failover, encrypted at rest with a customer-managed key and in transit (TLS only),
 * AUTH token required. Holds only reconstructible data (sessions, rate-limit counters), so it is
 * not part of the backup plan; daily snapshots are kept 15 days for operational recovery.
 */
export class RedisCache extends Construct {
  public readonly replicationGroup: elasticache.CfnReplicationGroup;
  public readonly securityGroup: ec2.ISecurityGroup;
  public readonly authSecret: secretsmanager.ISecret;
  public readonly endpoint: CacheEndpoint;

  constructor(scope: Construct, id: string, props: RedisCacheProps) {
    super(scope, id);
    if (props.nodeCount < 2) throw new Error(`RedisCache needs at least 2 nodes for Multi-AZ, got ${props.nodeCount}`);
    const port = props.port ?? DEFAULT_CACHE_PORT;

    const securityGroup = new ec2.SecurityGroup(this, 'SecurityGroup', {
      vpc: props.vpc,
      description: 'Valkey: admits the API functions only',
      allowAllOutbound: false,
    });
    for (const client of props.clients) {
      securityGroup.addIngressRule(client, ec2.Port.tcp(port), 'Valkey from the API functions');
    }

    const authSecret = new secretsmanager.Secret(this, 'AuthToken', {
      description: 'Valkey AUTH token (JSON key "token")',
      encryptionKey: props.key,
      generateSecretString: {
        secretStringTemplate: '{}',
        generateStringKey: 'token',
        passwordLength: 64,
        excludePunctuation: true,
      },
      removalPolicy: RemovalPolicy.RETAIN,
    });
    for (const rule of [
      'AwsSolutions-SMG4',
      'HIPAA.Security-SecretsManagerRotationEnabled',
      'NIST.800.53.R5-SecretsManagerRotationEnabled',
    ]) {
      acknowledge(
        authSecret,
        rule,
        'ElastiCache AUTH tokens rotate only through ModifyReplicationGroup (ROTATE then SET) and Secrets Manager has no rotation template for them; rotation is a documented runbook step (docs/data-tier.md).',
      );
    }
    const subnetGroup = new elasticache.CfnSubnetGroup(this, 'Subnets', {
      description: 'Isolated data subnets',
      subnetIds: props.vpc.selectSubnets({ subnetGroupName: DATA_SUBNETS }).subnetIds,
    });

    allowLogsToUseKey(props.logKey);
    const slowLog = new logs.LogGroup(this, 'SlowLog', {
      encryptionKey: props.logKey,
      retention: props.logRetention ?? logs.RetentionDays.ONE_YEAR,
      removalPolicy: RemovalPolicy.RETAIN,
    });

    const group = new elasticache.CfnReplicationGroup(this, 'ReplicationGroup', {
      replicationGroupDescription: 'Bulwark sessions and rate limits',
      engine: 'valkey',
      engineVersion: '8.0',
      cacheNodeType: props.nodeType ?? 'cache.r7g.large',
      numCacheClusters: props.nodeCount,
      automaticFailoverEnabled: true,
      multiAzEnabled: true,
      port,
      cacheSubnetGroupName: subnetGroup.ref,
      securityGroupIds: [securityGroup.securityGroupId],
      atRestEncryptionEnabled: true,
      kmsKeyId: props.key.keyArn,
      transitEncryptionEnabled: true,
      transitEncryptionMode: 'required',
      authToken: authSecret.secretValueFromJson('token').unsafeUnwrap(),
      autoMinorVersionUpgrade: true,
      snapshotRetentionLimit: 15,
      snapshotWindow: '03:00-04:00',
      preferredMaintenanceWindow: 'sun:04:30-sun:05:30',
      logDeliveryConfigurations: [
        {
          destinationType: 'cloudwatch-logs',
          logFormat: 'json',
          logType: 'slow-log',
          destinationDetails: { cloudWatchLogsDetails: { logGroup: slowLog.logGroupName } },
        },
      ],
    });
    group.applyRemovalPolicy(RemovalPolicy.SNAPSHOT);

    this.replicationGroup = group;
    this.securityGroup = securityGroup;
    this.authSecret = authSecret;
    this.endpoint = {
      host: group.attrPrimaryEndPointAddress,
      port,
      authSecret,
      tls: true,
    };
  }
}
