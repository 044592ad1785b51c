import * as fs from 'node:fs';
import * as path from 'node:path';
import { CfnElement, Duration } from 'aws-cdk-lib';
import { Capture, Match, Template } from 'aws-cdk-lib/assertions';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import type { IConstruct } from 'constructs';
import { CATALOGUE } from '../../lib/config';
import { regionInZone } from '../../lib/config/regions';
import { AUDIT_PARAMETERS, DEFAULT_DATABASE_PORT, PROXY_PORT } from '../../lib/data/database';
import { buildTestStages, stacksOf, templateOf } from '../support/cdk';
import { defined } from '../support/defined';
import { CATALOGUE_NAMES } from '../support/catalogue';

type Resources = Record<string, { Type: string; Properties?: Record<string, unknown> }>;

const resourcesOf = (t: Template): Resources => t.toJSON().Resources as Resources;
const ofType = (t: Template, type: string) => Object.entries(resourcesOf(t)).filter(([, r]) => r.Type === type);

/** The Properties of every resource of `type`, collected with a Capture. */
function propertiesOf(t: Template, type: string): Record<string, unknown>[] {
  if (ofType(t, type).length === 0) return [];
  const props = new Capture();
  t.allResourcesProperties(type, props);
  const out: Record<string, unknown>[] = [];
  do out.push(props.asObject());
  while (props.next());
  return out;
}

/** Every ingress rule in a template, inline or standalone. */
export function ingressRules(t: Template): Record<string, unknown>[] {
  return [
    ...propertiesOf(t, 'AWS::EC2::SecurityGroupIngress'),
    ...propertiesOf(t, 'AWS::EC2::SecurityGroup').flatMap(
      (p) => (p.SecurityGroupIngress as Record<string, unknown>[] | undefined) ?? [],
    ),
  ];
}

const WORLD = new Set(['0.0.0.0/0', '::/0']);

/** Ingress rules admitting the whole internet (on any port: no group of ours should). */
export function worldOpenIngress(t: Template): string[] {
  return ingressRules(t)
    .filter((rule) => WORLD.has(String(rule.CidrIp)) || WORLD.has(String(rule.CidrIpv6)))
    .map((rule) => `${String(rule.CidrIp ?? rule.CidrIpv6)}:${String(rule.FromPort)}`);
}

/** A KMS key reference is customer-managed when it points at an AWS::KMS::Key of the template. */
function isCustomerKey(t: Template, ref: unknown): boolean {
  const id = (ref as { 'Fn::GetAtt'?: [string, string] } | undefined)?.['Fn::GetAtt']?.[0];
  return id !== undefined && resourcesOf(t)[id]?.Type === 'AWS::KMS::Key';
}

/** Log groups and buckets not encrypted with a customer-managed key of the template. */
/** Whether the bucket's policy denies every PUT that does not name a KMS key of this account. */
function requiresNamedKey(t: Template, bucketId: string): boolean {
  return Object.values(t.findResources('AWS::S3::BucketPolicy')).some((policy) => {
    const props = policy['Properties'] as { Bucket: unknown; PolicyDocument: { Statement: Record<string, any>[] } }; // eslint-disable-line @typescript-eslint/no-explicit-any
    if (JSON.stringify(props.Bucket) !== JSON.stringify({ Ref: bucketId })) return false;
    return props.PolicyDocument.Statement.some(
      (st) =>
        st['Effect'] === 'Deny' &&
        st['Action'] === 's3:PutObject' &&
        /^arn:aws:kms:[a-z0-9-]+:\d{12}:key\/\*$/.test(
          String(st['Condition']?.['StringNotLike']?.['s3:x-amz-server-side-encryption-aws-kms-key-id'] ?? ''),
        ),
    );
  });
}

export function unencryptedStores(t: Template): string[] {
  const bad: string[] = [];
  for (const p of propertiesOf(t, 'AWS::Logs::LogGroup')) {
    if (!isCustomerKey(t, p.KmsKeyId)) bad.push(`log group ${JSON.stringify(p.LogGroupName ?? '?')}`);
  }
  const buckets = Object.entries(t.findResources('AWS::S3::Bucket')) as [
    string,
    { Properties?: Record<string, unknown> },
  ][];
  // S3 server access logs can only be delivered to SSE-S3 buckets (AWS documents SSE-KMS as
  // unsupported for log destinations), so a bucket that other buckets log into may use AES256.
  const logTargets = new Set(
    buckets.map(([, b]) =>
      JSON.stringify(
        (b.Properties?.['LoggingConfiguration'] as { DestinationBucketName?: unknown })?.DestinationBucketName,
      ),
    ),
  );
  for (const [id, b] of buckets) {
    const p = (b.Properties ?? {}) as Record<string, unknown>;
    const sse = (
      p.BucketEncryption as
        | {
            ServerSideEncryptionConfiguration?: {
              ServerSideEncryptionByDefault?: { SSEAlgorithm?: string; KMSMasterKeyID?: unknown };
            }[];
          }
        | undefined
    )?.ServerSideEncryptionConfiguration?.[0]?.ServerSideEncryptionByDefault;
    if (sse?.SSEAlgorithm === 'AES256' && logTargets.has(JSON.stringify({ Ref: id }))) continue;
    // Per-object keys (the tenant file store: each object under its tenant's key): the bucket's policy
    // refuses every PUT that does not name a customer key of this account.
    if (sse?.SSEAlgorithm === 'aws:kms' && sse.KMSMasterKeyID === undefined && requiresNamedKey(t, id)) continue;
    if (!sse?.SSEAlgorithm?.startsWith('aws:kms') || !isCustomerKey(t, sse.KMSMasterKeyID)) {
      bad.push(`bucket ${JSON.stringify(p['BucketName'] ?? '?')}`);
    }
  }
  return bad;
}

// Constructed at load (it.each needs the names); synthesized once, in beforeAll.
const { app, stages } = buildTestStages();
const data = new Map<string, Template>();
const vault = new Map<string, Template>();

let assembly: ReturnType<typeof app.synth>;

beforeAll(() => {
  // The compliance gate runs when the app synthesizes: any unacknowledged finding throws here.
  assembly = app.synth();
  for (const stage of stages) {
    data.set(stage.deployment.name, templateOf(stage.data));
    vault.set(stage.deployment.name, templateOf(stage.backupVault));
  }
});

const each = () => stages.map((s) => [s.deployment.name, s] as const);

describe('fleet-wide invariants (every stack of every shipped deployment)', () => {
  it('passes the compliance gate and admits nothing from 0.0.0.0/0 or ::/0, on any port', () => {
    expect(stages.map((s) => s.deployment.name)).toEqual(CATALOGUE_NAMES);
    let rules = 0;
    for (const stage of stages) {
      for (const stack of stacksOf(stage)) {
        const t = templateOf(stack);
        rules += ingressRules(t).length;
        expect(worldOpenIngress(t)).toEqual([]);
      }
    }
    expect(rules).toBeGreaterThan(0);
  });

  it('encrypts every log group and bucket with a customer-managed key', () => {
    let groups = 0;
    for (const stage of stages) {
      for (const stack of stacksOf(stage)) {
        const t = templateOf(stack);
        groups += propertiesOf(t, 'AWS::Logs::LogGroup').length;
        expect(unencryptedStores(t)).toEqual([]);
      }
    }
    expect(groups).toBeGreaterThan(0);
  });

  it('the invariant checks flag violations', () => {
    const bad = Template.fromJSON({
      Resources: {
        Sg: {
          Type: 'AWS::EC2::SecurityGroup',
          Properties: { SecurityGroupIngress: [{ CidrIpv6: '::/0', FromPort: 5439, ToPort: 5439, IpProtocol: 'tcp' }] },
        },
        Open: { Type: 'AWS::EC2::SecurityGroupIngress', Properties: { CidrIp: '0.0.0.0/0', FromPort: 6390 } },
        Aws: { Type: 'AWS::Logs::LogGroup', Properties: { LogGroupName: 'a', KmsKeyId: 'alias/aws/logs' } },
        Plain: { Type: 'AWS::Logs::LogGroup', Properties: { LogGroupName: 'b' } },
        Bucket: {
          Type: 'AWS::S3::Bucket',
          Properties: {
            BucketEncryption: {
              ServerSideEncryptionConfiguration: [{ ServerSideEncryptionByDefault: { SSEAlgorithm: 'AES256' } }],
            },
          },
        },
      },
    });
    expect(worldOpenIngress(bad).sort()).toEqual(['0.0.0.0/0:6390', '::/0:5439']);
    expect(unencryptedStores(bad)).toHaveLength(3);
  });

  it('the compliance gate refuses a data port opened to the world', () => {
    const {
      app: bad,
      stages: [stage],
    } = buildTestStages(['prod-eu']);
    const sg = defined(stage).data.apiSecurityGroup as ec2.SecurityGroup;
    sg.addIngressRule(ec2.Peer.anyIpv4(), ec2.Port.tcp(DEFAULT_DATABASE_PORT), 'violation under test');
    let report = '';
    try {
      bad.synth();
    } catch (e) {
      const file = /found in: (\S+validation-report\.json)/.exec(String(e))?.[1];
      report = file ? fs.readFileSync(file, 'utf8') : String(e);
    }
    expect(report).toContain('AwsSolutions-EC23');
    expect(report).toContain('prod-eu/Data/ApiSecurityGroup');
  });

  it('needs no context lookups (synth works without credentials)', () => {
    for (const stage of stages) {
      const nested = assembly.getNestedAssembly(stage.artifactId);
      expect(nested.manifest.missing ?? []).toEqual([]);
    }
  });

  it('keeps the data stack well under the 500-resource CloudFormation limit', () => {
    for (const t of data.values()) expect(Object.keys(resourcesOf(t)).length).toBeLessThan(300);
  });
});

describe('network', () => {
  it.each(CATALOGUE_NAMES.map((n) => [n, defined(CATALOGUE[n]).availabilityZones.length] as const))(
    '%s: isolated subnets in every listed AZ, no internet or NAT gateway, no route out',
    (name, azs) => {
      const t = defined(data.get(name));
      const stage = defined(stages.find((s) => s.deployment.name === name));
      t.resourceCountIs('AWS::EC2::InternetGateway', 0);
      t.resourceCountIs('AWS::EC2::NatGateway', 0);
      t.resourceCountIs('AWS::EC2::EgressOnlyInternetGateway', 0);
      t.resourceCountIs('AWS::EC2::Route', 0);
      t.resourceCountIs('AWS::EC2::Subnet', azs * 2);
      const az = new Capture();
      t.allResourcesProperties('AWS::EC2::Subnet', { AvailabilityZone: az, MapPublicIpOnLaunch: false });
      const seen = new Set<string>();
      do seen.add(az.asString());
      while (az.next());
      expect([...seen].sort()).toEqual([...stage.deployment.availabilityZones].sort());
    },
  );

  it.each(each())('%s: VPC flow logs (all traffic) go to a KMS-encrypted log group', (name) => {
    const t = defined(data.get(name));
    t.hasResourceProperties('AWS::EC2::FlowLog', {
      ResourceType: 'VPC',
      TrafficType: 'ALL',
      LogDestinationType: 'cloud-watch-logs',
      LogGroupName: { Ref: Match.stringLikeRegexp('NetworkFlowLogs') },
    });
    const [, group] = defined(ofType(t, 'AWS::Logs::LogGroup').find(([id]) => id.startsWith('NetworkFlowLogs')));
    expect(group.Properties?.KmsKeyId).toEqual({ 'Fn::GetAtt': [expect.stringMatching(/^LogKey/), 'Arn'] });
  });

  it.each(each())(
    '%s: KMS, Secrets Manager, STS, Logs, Monitoring, RDS, Lambda, S3 and DynamoDB interface endpoints',
    (name) => {
      const t = defined(data.get(name));
      const names = propertiesOf(t, 'AWS::EC2::VPCEndpoint').map((p) => JSON.stringify(p.ServiceName));
      for (const svc of ['kms', 'secretsmanager', 'sts', 'logs', 'monitoring', 'rds', 'lambda', 's3', 'dynamodb']) {
        expect(names.filter((n) => n.endsWith(`.${svc}"`))).toHaveLength(1);
      }
      t.resourceCountIs('AWS::EC2::VPCEndpoint', 9);
      t.resourcePropertiesCountIs(
        'AWS::EC2::VPCEndpoint',
        { VpcEndpointType: 'Interface', PrivateDnsEnabled: true },
        8,
      );
      // PrivateLink for DynamoDB has no private DNS: the tenant API is given the endpoint's own name.
      t.resourcePropertiesCountIs(
        'AWS::EC2::VPCEndpoint',
        { VpcEndpointType: 'Interface', PrivateDnsEnabled: false, ServiceName: Match.stringLikeRegexp('dynamodb$') },
        1,
      );
    },
  );

  it.each(each())(
    "%s: every endpoint admits only this account's principals to this account's resources",
    (name, stage) => {
      const t = defined(data.get(name));
      const { account, region } = stage.deployment;
      for (const p of propertiesOf(t, 'AWS::EC2::VPCEndpoint')) {
        const statements = (p.PolicyDocument as { Statement: Record<string, unknown>[] }).Statement;
        expect(statements.length).toBeGreaterThan(0);
        for (const st of statements) {
          expect(st.Effect).toBe('Allow');
          const conditions = (st.Condition ?? {}) as { StringEquals?: Record<string, string> };
          if (st.Sid === 'CloudFormationCustomResourceResponses') {
            // The one AWS-owned resource: CloudFormation's response bucket of this region, PUT only.
            expect(String(p.ServiceName)).toBe(`com.amazonaws.${region}.s3`);
            expect(st.Action).toBe('s3:PutObject');
            expect(st.Resource).toBe(
              `arn:aws:s3:::cloudformation-custom-resource-response-${region.replace(/-/g, '')}/*`,
            );
            continue;
          }
          expect(conditions.StringEquals?.['aws:PrincipalAccount']).toBe(account);
          if (st.Action === '*') expect(conditions.StringEquals?.['aws:ResourceAccount']).toBe(account);
          else expect(st.Action).not.toContain('*');
        }
      }
    },
  );

  it.each(each())('%s: the default security group is stripped of its rules', (name) => {
    defined(data.get(name)).resourceCountIs('Custom::VpcRestrictDefaultSG', 1);
  });
});

describe('security groups (walked from the synthesized templates)', () => {
  type Ref = string;
  interface Edge {
    readonly group: Ref;
    /** The other side: a security group logical id, or a CIDR. */
    readonly peer: Ref;
    readonly from: number;
    readonly to: number;
  }
  const idOf = (v: unknown): string | undefined =>
    (v as { 'Fn::GetAtt'?: string[] } | undefined)?.['Fn::GetAtt']?.[0] ?? (v as { Ref?: string } | undefined)?.Ref;

  /** Every ingress and egress rule of a template, inline or standalone, as edges between groups. */
  function edges(t: Template): { ingress: Edge[]; egress: Edge[] } {
    const ingress: Edge[] = [];
    const egress: Edge[] = [];
    const edge = (group: string | undefined, rule: Record<string, unknown>, peerKey: string): Edge => ({
      group: defined(group),
      peer: idOf(rule[peerKey]) ?? String(rule.CidrIp ?? rule.CidrIpv6 ?? rule.DestinationPrefixListId),
      from: rule.IpProtocol === '-1' ? 0 : Number(rule.FromPort),
      to: rule.IpProtocol === '-1' ? 65535 : Number(rule.ToPort),
    });
    for (const [id, r] of Object.entries(resourcesOf(t))) {
      const p = r.Properties ?? {};
      if (r.Type === 'AWS::EC2::SecurityGroup') {
        for (const rule of (p.SecurityGroupIngress as Record<string, unknown>[] | undefined) ?? []) {
          ingress.push(edge(id, rule, 'SourceSecurityGroupId'));
        }
        for (const rule of (p.SecurityGroupEgress as Record<string, unknown>[] | undefined) ?? []) {
          egress.push(edge(id, rule, 'DestinationSecurityGroupId'));
        }
      }
      if (r.Type === 'AWS::EC2::SecurityGroupIngress') ingress.push(edge(idOf(p.GroupId), p, 'SourceSecurityGroupId'));
      if (r.Type === 'AWS::EC2::SecurityGroupEgress')
        egress.push(edge(idOf(p.GroupId), p, 'DestinationSecurityGroupId'));
    }
    return { ingress, egress };
  }

  const covers = (e: Edge, peer: string, port: number, vpcCidr: string): boolean =>
    e.from <= port && port <= e.to && (e.peer === peer || e.peer === vpcCidr || e.peer === '0.0.0.0/0');

  /** The groups that can open a connection to `target` on `port`: egress allows it and ingress admits it. */
  function reaching(t: Template, target: string, port: number, vpcCidr: string): string[] {
    const { ingress, egress } = edges(t);
    const groups = ofType(t, 'AWS::EC2::SecurityGroup').map(([id]) => id);
    return groups
      .filter((g) => g !== target)
      .filter((g) => egress.some((e) => e.group === g && covers(e, target, port, vpcCidr)))
      .filter((g) => ingress.some((e) => e.group === target && covers(e, g, port, vpcCidr)))
      .sort();
  }

  const groupId = (t: Template, prefix: string): string =>
    defined(ofType(t, 'AWS::EC2::SecurityGroup').find(([id]) => id.startsWith(prefix)))[0];

  it.each(each())(
    '%s: only the migration function, the proxy and secret rotation reach the instance',
    (name, stage) => {
      const t = defined(data.get(name));
      const cidr = stage.deployment.data.vpcCidr;
      expect(reaching(t, groupId(t, 'DatabaseSecurityGroup'), DEFAULT_DATABASE_PORT, cidr)).toEqual(
        [
          groupId(t, 'DatabaseProxySecurityGroup'),
          groupId(t, 'DatabaseRotationSecurityGroup'),
          groupId(t, 'MigrationSecurityGroup'),
        ].sort(),
      );
      // The API functions reach the proxy, never the instance.
      const api = groupId(t, 'ApiSecurityGroup');
      expect(reaching(t, groupId(t, 'DatabaseProxySecurityGroup'), PROXY_PORT, cidr)).toEqual([api]);
      // ...and nothing else in the VPC: the proxy and the AWS endpoints are their only destinations.
      const endpoints = groupId(t, 'NetworkEndpointSecurityGroup');
      const proxy = groupId(t, 'DatabaseProxySecurityGroup');
      expect(
        edges(t)
          .egress.filter((e) => e.group === api)
          .map((e) => `${e.peer}:${e.from}`)
          .sort(),
      ).toEqual([`${endpoints}:443`, `${proxy}:${PROXY_PORT}`].sort());
    },
  );

  it.each(each())('%s: the migration function alone runs in the migration group', (name, stage) => {
    const t = defined(data.get(name));
    const migration = groupId(t, 'MigrationSecurityGroup');
    const rotation = groupId(t, 'DatabaseRotationSecurityGroup');
    // Every function of every stack, with the Data stack's groups it runs in (cross-stack references
    // are the Data stack's outputs).
    const outputs = (t.toJSON().Outputs ?? {}) as Record<string, { Value: unknown }>;
    const users = new Map<string, string[]>();
    for (const stack of stacksOf(stage)) {
      const template = templateOf(stack);
      for (const [id, fn] of ofType(template, 'AWS::Lambda::Function')) {
        const vpc = fn.Properties?.VpcConfig as { SecurityGroupIds?: unknown[] } | undefined;
        for (const ref of vpc?.SecurityGroupIds ?? []) {
          const output = (ref as { 'Fn::GetStackOutput'?: { OutputName: string } })['Fn::GetStackOutput'];
          const group = defined(idOf(output ? defined(outputs[output.OutputName]).Value : ref));
          users.set(group, [...(users.get(group) ?? []), `${stack.stackName}/${id}`]);
        }
      }
      // Secret rotation (AWS-published applications) names its group as a parameter.
      for (const [, app] of ofType(template, 'AWS::Serverless::Application')) {
        const group = idOf((app.Properties?.Parameters as Record<string, unknown>).vpcSecurityGroupIds);
        expect(group).toBe(rotation);
      }
    }
    expect(users.get(migration)).toEqual([expect.stringMatching(new RegExp(`^${stage.data.stackName}/SchemaMigrate`))]);
    expect(users.get(groupId(t, 'ApiSecurityGroup'))?.length).toBeGreaterThanOrEqual(5);
  });

  it.each(each())('%s: no security group of any stack has egress to 0.0.0.0/0 or ::/0', (_name, stage) => {
    let groups = 0;
    for (const stack of stacksOf(stage)) {
      const t = templateOf(stack);
      groups += ofType(t, 'AWS::EC2::SecurityGroup').length;
      const open = edges(t).egress.filter((e) => WORLD.has(e.peer));
      expect(open.map((e) => `${stack.stackName}/${e.group}`)).toEqual([]);
    }
    expect(groups).toBeGreaterThan(5);
  });

  it.each(each())('%s: function groups reach AWS only through the endpoints (S3 included)', (name) => {
    const t = defined(data.get(name));
    const endpoints = groupId(t, 'NetworkEndpointSecurityGroup');
    for (const prefix of ['ApiSecurityGroup', 'MigrationSecurityGroup']) {
      const out = edges(t).egress.filter((e) => e.group === groupId(t, prefix));
      expect(out.filter((e) => e.from === 443)).toEqual([
        { group: groupId(t, prefix), peer: endpoints, from: 443, to: 443 },
      ]);
    }
  });

  it.each(each())('%s: the data groups have no egress beyond what they need', (name) => {
    const t = defined(data.get(name));
    for (const id of ['DatabaseSecurityGroup']) {
      const [, sg] = defined(ofType(t, 'AWS::EC2::SecurityGroup').find(([k]) => k.startsWith(id)));
      // CDK renders "no egress" as a single rule to an unroutable address.
      expect(sg.Properties?.SecurityGroupEgress).toEqual([
        expect.objectContaining({ CidrIp: '255.255.255.255/32', IpProtocol: 'icmp' }),
      ]);
    }
  });

  it('the walk finds a group that is let in', () => {
    const bad = Template.fromJSON({
      Resources: {
        Target: { Type: 'AWS::EC2::SecurityGroup', Properties: {} },
        Rogue: {
          Type: 'AWS::EC2::SecurityGroup',
          Properties: { SecurityGroupEgress: [{ CidrIp: '0.0.0.0/0', IpProtocol: '-1' }] },
        },
        In: {
          Type: 'AWS::EC2::SecurityGroupIngress',
          Properties: {
            GroupId: { 'Fn::GetAtt': ['Target', 'GroupId'] },
            SourceSecurityGroupId: { 'Fn::GetAtt': ['Rogue', 'GroupId'] },
            IpProtocol: 'tcp',
            FromPort: 5439,
            ToPort: 5439,
          },
        },
      },
    });
    expect(reaching(bad, 'Target', 5439, '10.40.0.0/16')).toEqual(['Rogue']);
    expect(reaching(bad, 'Target', 5432, '10.40.0.0/16')).toEqual([]);
  });
});

describe('PostgreSQL', () => {
  it.each(each())('%s: PostgreSQL 17, Multi-AZ, private, non-default port, encrypted, IAM auth, protected', (name) => {
    const t = defined(data.get(name));
    t.resourceCountIs('AWS::RDS::DBInstance', 1);
    t.hasResource('AWS::RDS::DBInstance', {
      DeletionPolicy: 'Snapshot',
      UpdateReplacePolicy: 'Snapshot',
      Properties: Match.objectLike({
        Engine: 'postgres',
        EngineVersion: Match.stringLikeRegexp('^17\\.'),
        MultiAZ: true,
        PubliclyAccessible: false,
        Port: String(DEFAULT_DATABASE_PORT),
        StorageEncrypted: true,
        KmsKeyId: { 'Fn::GetAtt': [Match.stringLikeRegexp('^DataKey'), 'Arn'] },
        EnablePerformanceInsights: true,
        PerformanceInsightsKMSKeyId: { 'Fn::GetAtt': [Match.stringLikeRegexp('^DataKey'), 'Arn'] },
        EnableIAMDatabaseAuthentication: true,
        EnableCloudwatchLogsExports: ['postgresql', 'upgrade'],
        MonitoringInterval: 60,
        DeletionProtection: true,
        BackupRetentionPeriod: 30,
        PreferredBackupWindow: Match.stringLikeRegexp('^02:00-'),
        AutoMinorVersionUpgrade: true,
        DBSubnetGroupName: { Ref: Match.stringLikeRegexp('^DatabaseSubnets') },
      }),
    });
    expect(Number(DEFAULT_DATABASE_PORT)).not.toBe(5432);
  });

  it.each(each())('%s: the subnet group uses the isolated data subnets only', (name) => {
    const t = defined(data.get(name));
    const subnets = new Capture();
    t.hasResourceProperties('AWS::RDS::DBSubnetGroup', { SubnetIds: subnets });
    for (const ref of subnets.asArray() as { Ref: string }[]) expect(ref.Ref).toMatch(/Vpcdata/i);
  });

  it.each(each())('%s: TLS 1.2+ is forced and connections, DDL and role changes are logged', (name) => {
    const t = defined(data.get(name));
    t.hasResourceProperties('AWS::RDS::DBParameterGroup', {
      Family: 'postgres17',
      Parameters: Match.objectEquals({ ...AUDIT_PARAMETERS }),
    });
    expect(AUDIT_PARAMETERS).toMatchObject({
      'rds.force_ssl': '1',
      ssl_min_protocol_version: 'TLSv1.2',
      log_connections: '1',
      log_disconnections: '1',
      'pgaudit.log_parameter': '0',
    });
  });

  it.each(each())('%s: exported logs land in pre-created, KMS-encrypted log groups', (name) => {
    const t = defined(data.get(name));
    for (const type of ['postgresql', 'upgrade']) {
      t.hasResourceProperties('AWS::Logs::LogGroup', {
        LogGroupName: `/aws/rds/instance/bulwark-${name}/${type}`,
        KmsKeyId: Match.anyValue(),
      });
    }
    t.hasResource('AWS::RDS::DBInstance', {
      DependsOn: Match.arrayWith([Match.stringLikeRegexp('^DatabaseLogpostgresql')]),
    });
  });

  it.each(each())('%s: master secret on a customer key, rotated every 30 days in the VPC', (name) => {
    const t = defined(data.get(name));
    t.hasResourceProperties('AWS::SecretsManager::Secret', {
      KmsKeyId: { 'Fn::GetAtt': [Match.stringLikeRegexp('^DataKey'), 'Arn'] },
      GenerateSecretString: Match.objectLike({ GenerateStringKey: 'password' }),
    });
    t.hasResourceProperties('AWS::SecretsManager::RotationSchedule', {
      RotationRules: { ScheduleExpression: 'rate(30 days)' },
    });
    t.hasResourceProperties('AWS::Serverless::Application', {
      Parameters: Match.objectLike({
        vpcSubnetIds: Match.anyValue(),
        endpoint: Match.anyValue(),
      }),
    });
  });

  it.each(each())('%s: RDS Proxy requires TLS and IAM authentication for every user, in the data subnets', (name) => {
    const t = defined(data.get(name));
    const auth = (secret: string) => ({
      AuthScheme: 'SECRETS',
      IAMAuth: 'REQUIRED',
      SecretArn: { Ref: Match.stringLikeRegexp(`^Database${secret}SecretAttachment`) },
    });
    t.hasResourceProperties('AWS::RDS::DBProxy', {
      EngineFamily: 'POSTGRESQL',
      RequireTLS: true,
      // The master user and the migrator are not registered: no IAM token can log in as them.
      Auth: [
        auth('App'),
        auth('AuditShipper'),
        auth('Webhooks'),
        auth('KeyProvisioner'),
        auth('Lifecycle'),
        auth('FileChecker'),
      ],
      VpcSubnetIds: Match.arrayWith([{ Ref: Match.stringLikeRegexp('Vpcdata') }]),
    });
  });

  it.each(each())('%s: one retained secret per login role, on the data key, rotated single-user in the VPC', (name) => {
    const t = defined(data.get(name));
    for (const [id, username] of [
      ['Migrator', 'bulwark_migrator'],
      ['App', 'bulwark_app'],
      ['AuditShipper', 'bulwark_audit_shipper'],
      ['Webhooks', 'bulwark_webhooks'],
      ['KeyProvisioner', 'bulwark_key_provisioner'],
      ['Lifecycle', 'bulwark_lifecycle'],
      ['FileChecker', 'bulwark_file_checker'],
    ] as const) {
      const [secretId] = defined(
        ofType(t, 'AWS::SecretsManager::Secret').find(([k]) => k.startsWith(`Database${id}Secret`)),
      );
      t.hasResource('AWS::SecretsManager::Secret', {
        DeletionPolicy: 'Retain',
        UpdateReplacePolicy: 'Retain',
        Properties: {
          KmsKeyId: { 'Fn::GetAtt': [Match.stringLikeRegexp('^DataKey'), 'Arn'] },
          GenerateSecretString: Match.objectLike({
            GenerateStringKey: 'password',
            PasswordLength: 30,
            SecretStringTemplate: JSON.stringify({ username, dbname: 'bulwark' }),
          }),
        },
      });
      const [attachmentId] = defined(
        ofType(t, 'AWS::SecretsManager::SecretTargetAttachment').find(
          ([, r]) => JSON.stringify(r.Properties?.['SecretId']) === JSON.stringify({ Ref: secretId }),
        ),
      );
      t.hasResourceProperties('AWS::SecretsManager::RotationSchedule', {
        SecretId: { Ref: attachmentId },
        RotationRules: { ScheduleExpression: 'rate(30 days)' },
        // Not before the bootstrap has created the role (it runs in the Edge stack, later).
        RotateImmediatelyOnUpdate: false,
      });
      const [, app] = defined(
        ofType(t, 'AWS::Serverless::Application').find(([k]) => k.startsWith(`Database${id}Rotation`)),
      );
      const mapName = (app.Properties?.['Location'] as { ApplicationId: { 'Fn::FindInMap': [string] } }).ApplicationId[
        'Fn::FindInMap'
      ][0];
      const mapping = (t.toJSON().Mappings as Record<string, Record<string, { applicationId: string }>>)[mapName];
      expect(mapping?.['aws']?.applicationId).toMatch(/SecretsManagerRDSPostgreSQLRotationSingleUser$/);
      t.hasResourceProperties('AWS::Serverless::Application', {
        Parameters: Match.objectLike({
          vpcSubnetIds: Match.anyValue(),
          endpoint: Match.anyValue(),
          kmsKeyArn: { 'Fn::GetAtt': [Match.stringLikeRegexp('^DataKey'), 'Arn'] },
          functionName: Match.stringLikeRegexp(`${id}Rotation`),
        }),
      });
    }
    // The proxy's role reads exactly the secrets it registers: the function login roles, not the
    // master user or the migrator (test/access: administrator-connects-as-master/-migrator).
    t.hasResourceProperties('AWS::IAM::ManagedPolicy', {
      Description: 'RDS Proxy: read the secrets of the function login roles',
      PolicyDocument: {
        Statement: Match.arrayWith([
          {
            Action: ['secretsmanager:DescribeSecret', 'secretsmanager:GetSecretValue'],
            Effect: 'Allow',
            Resource: ['App', 'AuditShipper', 'FileChecker', 'KeyProvisioner', 'Lifecycle', 'Webhooks'].map((s) => ({
              Ref: Match.stringLikeRegexp(`^Database${s}SecretAttachment`),
            })),
          },
        ]),
      },
    });
  });
});

describe('no cache cluster', () => {
  // Rate limits are API Gateway's and WAF's, the webhook negative cache is in-process: nothing needs
  // a shared cache, so none is deployed or billed (docs/rate-limits.md).
  it.each(each())('%s: no ElastiCache resource in any stack', (_name, stage) => {
    for (const stack of stacksOf(stage)) {
      const types = Object.values(templateOf(stack).toJSON().Resources ?? {}).map((r) => (r as { Type: string }).Type);
      expect(types.filter((type) => type.startsWith('AWS::ElastiCache::'))).toEqual([]);
    }
  });
});

describe('backups', () => {
  it.each(each())('%s: daily 02:00 UTC, 30 days, continuous (PITR), copied to the backup region', (name, stage) => {
    const t = defined(data.get(name));
    const { backupRegion, account, residency, region } = stage.deployment;
    t.hasResourceProperties('AWS::Backup::BackupPlan', {
      BackupPlan: {
        BackupPlanRule: [
          Match.objectLike({
            ScheduleExpression: 'cron(0 2 * * ? *)',
            EnableContinuousBackup: true,
            Lifecycle: { DeleteAfterDays: 30 },
            CopyActions: [
              {
                DestinationBackupVaultArn: `arn:aws:backup:${backupRegion}:${account}:backup-vault:bulwark-${name}-copies`,
                Lifecycle: { DeleteAfterDays: 30 },
              },
            ],
          }),
        ],
      },
    });
    expect(backupRegion).not.toBe(region);
    expect(regionInZone(backupRegion, residency)).toBe(true);
    const selection = propertiesOf(t, 'AWS::Backup::BackupSelection');
    expect(selection).toHaveLength(1);
    expect(JSON.stringify(selection[0])).toContain(':db:",{"Ref":"DatabaseInstance');
    t.hasResourceProperties('AWS::Backup::BackupVault', {
      EncryptionKeyArn: { 'Fn::GetAtt': [Match.stringLikeRegexp('^BackupKey'), 'Arn'] },
    });
  });

  it.each(each())('%s: the copy vault lives in the backup region, on its own key, locked', (name, stage) => {
    expect(stage.backupVault.region).toBe(stage.deployment.backupRegion);
    const t = defined(vault.get(name));
    t.hasResource('AWS::Backup::BackupVault', {
      DeletionPolicy: 'Retain',
      Properties: Match.objectLike({
        BackupVaultName: `bulwark-${name}-copies`,
        EncryptionKeyArn: { 'Fn::GetAtt': [Match.stringLikeRegexp('^Key'), 'Arn'] },
        LockConfiguration: { MinRetentionDays: 30, ChangeableForDays: 3 },
        AccessPolicy: Match.objectLike({
          Statement: Match.arrayWith([
            Match.objectLike({ Effect: 'Deny', Action: Match.arrayWith(['backup:DeleteRecoveryPoint']) }),
          ]),
        }),
      }),
    });
    t.hasResourceProperties('AWS::KMS::Key', { EnableKeyRotation: true });
    // The primary stack never references the backup region's key: a copy is re-encrypted there.
    expect(JSON.stringify(defined(data.get(name)).toJSON())).not.toContain(`kms:${stage.deployment.backupRegion}`);
  });
});

describe('backups are watched', () => {
  /** Lock of every vault by ARN-ish name, and every retention a job may ask of it. */
  it.each(each())('%s: both vaults are locked, and every plan retention fits its target lock', (name) => {
    const primary = defined(data.get(name));
    const copies = defined(vault.get(name));
    const locks = [
      ...propertiesOf(primary, 'AWS::Backup::BackupVault'),
      ...propertiesOf(copies, 'AWS::Backup::BackupVault'),
    ];
    expect(locks).toHaveLength(2);
    for (const v of locks) {
      expect(v.LockConfiguration).toEqual({ MinRetentionDays: 30, MaxRetentionDays: 35, ChangeableForDays: 3 });
    }
    const [primaryLock, copyLock] = locks.map(
      (v) => v.LockConfiguration as { MinRetentionDays: number; MaxRetentionDays: number },
    );
    const fits = (days: number, lock: { MinRetentionDays: number; MaxRetentionDays: number }) =>
      days >= lock.MinRetentionDays && days <= lock.MaxRetentionDays;
    const rules = propertiesOf(primary, 'AWS::Backup::BackupPlan').flatMap(
      (p) =>
        (p.BackupPlan as { BackupPlanRule: Record<string, unknown>[] }).BackupPlanRule as {
          Lifecycle: { DeleteAfterDays: number };
          EnableContinuousBackup?: boolean;
          CopyActions?: { Lifecycle: { DeleteAfterDays: number } }[];
        }[],
    );
    expect(rules.length).toBeGreaterThan(0);
    for (const rule of rules) {
      expect(fits(rule.Lifecycle.DeleteAfterDays, defined(primaryLock))).toBe(true);
      // Continuous backup (PITR) is kept at most 35 days by AWS Backup: the lock must admit it.
      if (rule.EnableContinuousBackup) expect(rule.Lifecycle.DeleteAfterDays).toBeLessThanOrEqual(35);
      for (const copy of rule.CopyActions ?? [])
        expect(fits(copy.Lifecycle.DeleteAfterDays, defined(copyLock))).toBe(true);
    }
  });

  it.each(each())('%s: failed, aborted, expired and partial backup and copy jobs reach the alarm topic', (name) => {
    const t = defined(data.get(name));
    t.hasResourceProperties('AWS::Events::Rule', {
      EventPattern: {
        source: ['aws.backup'],
        'detail-type': ['Backup Job State Change', 'Copy Job State Change'],
        detail: { state: ['FAILED', 'ABORTED', 'EXPIRED', 'PARTIAL'] },
      },
      Targets: [
        Match.objectLike({
          Arn: { 'Fn::GetStackOutput': Match.objectLike({ OutputName: Match.stringLikeRegexp('AlarmsTopic') }) },
          DeadLetterConfig: { Arn: { 'Fn::GetAtt': [Match.stringLikeRegexp('^BackupJobFailureDeadLetters'), 'Arn'] } },
        }),
      ],
    });
  });
});

describe('restore drill', () => {
  it.each(each())('%s: a scheduled state machine drives the drill function in the VPC', (name) => {
    const t = defined(data.get(name));
    t.hasResourceProperties('AWS::Events::Rule', {
      ScheduleExpression: 'cron(0 4 ? * SUN *)',
      Targets: [
        Match.objectLike({
          Arn: { Ref: Match.stringLikeRegexp('^RestoreDrillStateMachine') },
          DeadLetterConfig: Match.anyValue(),
        }),
      ],
    });
    t.hasResourceProperties('AWS::Lambda::Function', {
      Runtime: 'nodejs24.x',
      VpcConfig: Match.objectLike({ SubnetIds: Match.arrayWith([{ Ref: Match.stringLikeRegexp('Vpcapp') }]) }),
      Environment: {
        Variables: Match.objectLike({
          RTO_SECONDS: '3600',
          TIMEOUT_SECONDS: '7200',
          TARGET_PREFIX: `bulwark-${name}-drill`,
        }),
      },
    });
    t.hasResourceProperties('AWS::StepFunctions::StateMachine', {
      TracingConfiguration: { Enabled: true },
      LoggingConfiguration: Match.objectLike({ Level: 'ALL' }),
    });
  });

  it.each(each())('%s: the drill can delete only its own temporary instances', (name) => {
    const t = defined(data.get(name));
    const statements = new Capture();
    t.hasResourceProperties('AWS::IAM::ManagedPolicy', {
      Description: Match.stringLikeRegexp('^Restore drill function'),
      PolicyDocument: { Statement: statements, Version: '2012-10-17' },
    });
    const all = statements.asArray() as { Action: string | string[]; Resource: unknown; Sid?: string }[];
    const deleting = all.filter((s) => [s.Action].flat().includes('rds:DeleteDBInstance'));
    expect(deleting).toHaveLength(1);
    const { account, region } = defined(stages.find((s) => s.deployment.name === name)).deployment;
    expect(defined(deleting[0]).Resource).toBe(`arn:aws:rds:${region}:${account}:db:bulwark-${name}-drill-*`);
    // Nothing else in the stack may delete a database instance either.
    const everyPolicy = JSON.stringify(
      propertiesOf(t, 'AWS::IAM::ManagedPolicy').concat(propertiesOf(t, 'AWS::IAM::Policy')),
    );
    expect(everyPolicy.match(/rds:DeleteDBInstance/g)).toHaveLength(1);
  });

  it.each(each())('%s: the drill role allows every RDS call the drill code makes', (name) => {
    const t = defined(data.get(name));
    const policy = defined(
      propertiesOf(t, 'AWS::IAM::ManagedPolicy').find((p) =>
        String(p.Description).startsWith('Restore drill function'),
      ),
    );
    const granted = new Set(
      (policy.PolicyDocument as { Statement: { Action: string | string[] }[] }).Statement.flatMap((s) =>
        [s.Action].flat(),
      ),
    );
    const source = fs.readFileSync(path.join(__dirname, '../../lambda/restore-drill/drill.ts'), 'utf8');
    const commands = [...source.matchAll(/new (\w+)Command\(/g)].map((m) => `rds:${m[1]}`);
    // The code of both drills; the weekly (point-in-time) drill makes these calls, the monthly
    // drill from the backup copy the others (test/data/backup-region-drill.test.ts).
    const weekly = ['rds:DescribeDBInstances', 'rds:RestoreDBInstanceToPointInTime', 'rds:DeleteDBInstance'];
    expect(new Set(commands)).toEqual(
      new Set([...weekly, 'rds:DescribeDBSnapshots', 'rds:RestoreDBInstanceFromDBSnapshot']),
    );
    for (const action of [...weekly, 'rds:AddTagsToResource', 'kms:CreateGrant']) expect(granted).toContain(action);
    expect(granted).not.toContain('rds:RestoreDBInstanceFromDBSnapshot');
  });

  it.each(each())('%s: alarms on failure, RTO exceeded, failed execution and an undeliverable schedule', (name) => {
    const t = defined(data.get(name));
    const alarms = propertiesOf(t, 'AWS::CloudWatch::Alarm');
    for (const a of alarms) {
      expect(a.AlarmActions).toHaveLength(1);
      expect(JSON.stringify(a.AlarmActions)).toContain('AlarmsTopic');
      expect(a.OKActions).toEqual(a.AlarmActions);
    }
    t.hasResourceProperties('AWS::CloudWatch::Alarm', {
      Namespace: 'Bulwark/DataTier',
      MetricName: 'RestoreDrillFailed',
      Dimensions: [{ Name: 'Deployment', Value: name }],
      Threshold: 1,
    });
    t.hasResourceProperties('AWS::CloudWatch::Alarm', {
      Namespace: 'Bulwark/DataTier',
      MetricName: 'RestoreDrillSeconds',
      ComparisonOperator: 'GreaterThanThreshold',
      Threshold: Duration.hours(1).toSeconds(),
    });
    t.hasResourceProperties('AWS::CloudWatch::Alarm', {
      Metrics: Match.arrayWith([Match.objectLike({ Expression: 'failed + timedOut + aborted' })]),
    });
    // Four of the drill, one of the backup job-failure rule's dead letters.
    t.resourceCountIs('AWS::CloudWatch::Alarm', 5);
  });
});

describe('schema', () => {
  type Res = { Type: string; Properties: Record<string, unknown>; DependsOn?: string[] };
  it.each(each())('%s: applies migrations at deploy through a custom resource keyed by their checksums', (name) => {
    const t = data.get(name)!;
    t.resourceCountIs('Custom::BulwarkSchema', 1);
    t.hasResourceProperties('Custom::BulwarkSchema', {
      Migrations: Match.stringLikeRegexp('^1:[0-9a-f]{64},2:'),
      Bootstrap: '4',
      // A replaced role secret re-runs the bootstrap.
      Secrets: [
        'DatabaseInstanceSecret',
        'DatabaseMigratorSecret',
        'DatabaseAppSecret',
        'DatabaseAuditShipperSecret',
        'DatabaseWebhooksSecret',
        'DatabaseKeyProvisionerSecret',
        'DatabaseLifecycleSecret',
        'DatabaseFileCheckerSecret',
      ].map((id) => Match.objectLike({ Ref: Match.stringLikeRegexp(`^${id}`) })),
    });
  });

  it.each(each())(
    '%s: the migration function reads the master and role secrets and reaches the instance, never the proxy',
    (name) => {
      const all = resourcesOf(data.get(name)!) as Record<string, Res>;
      const [schemaId, schema] = Object.entries(all).find(([, r]) => r.Type === 'Custom::BulwarkSchema')!;
      const providerId = (schema.Properties['ServiceToken'] as { 'Fn::GetAtt': [string] })['Fn::GetAtt'][0];
      expect(providerId).toMatch(/^SchemaMigrate/);
      expect(schema.DependsOn).toEqual(expect.arrayContaining([providerId]));
      const fn = all[providerId]!;
      expect(fn.Properties['Environment']).toEqual({
        Variables: expect.objectContaining({
          DB_HOST: { 'Fn::GetAtt': [expect.stringMatching(/^DatabaseInstance/), 'Endpoint.Address'] },
          DB_PORT: { 'Fn::GetAtt': [expect.stringMatching(/^DatabaseInstance/), 'Endpoint.Port'] },
          DB_NAME: 'bulwark',
          MASTER_SECRET_ARN: { Ref: expect.stringMatching(/^DatabaseInstanceSecret/) },
          MIGRATOR_SECRET_ARN: { Ref: expect.stringMatching(/^DatabaseMigratorSecret/) },
          APP_SECRET_ARN: { Ref: expect.stringMatching(/^DatabaseAppSecret/) },
          AUDIT_SHIPPER_SECRET_ARN: { Ref: expect.stringMatching(/^DatabaseAuditShipperSecret/) },
          WEBHOOKS_SECRET_ARN: { Ref: expect.stringMatching(/^DatabaseWebhooksSecret/) },
          KEY_PROVISIONER_SECRET_ARN: { Ref: expect.stringMatching(/^DatabaseKeyProvisionerSecret/) },
          LIFECYCLE_SECRET_ARN: { Ref: expect.stringMatching(/^DatabaseLifecycleSecret/) },
          // The gate key it installs into the database (migrations/0400).
          GATE_KEY_SECRET_ARN: { Ref: expect.stringMatching(/^SchemaGateKeySecret/) },
          NODE_EXTRA_CA_CERTS: '/var/runtime/ca-cert.pem',
        }),
      });
      expect(fn.Properties['ReservedConcurrentExecutions']).toBe(1);
      const roleId = (fn.Properties['Role'] as { 'Fn::GetAtt': [string] })['Fn::GetAtt'][0];
      const attached = JSON.stringify(all[roleId]!.Properties['ManagedPolicyArns'] ?? []);
      const statements = Object.entries(all)
        .filter(
          ([id, r]) =>
            (r.Type === 'AWS::IAM::Policy' || r.Type === 'AWS::IAM::ManagedPolicy') &&
            (JSON.stringify(r.Properties['Roles'] ?? []).includes(`"${roleId}"`) || attached.includes(`"${id}"`)),
        )
        .flatMap(([, r]) => (r.Properties['PolicyDocument'] as { Statement: Record<string, unknown>[] }).Statement);
      const read = JSON.stringify(statements.filter((st) => JSON.stringify(st['Action']).includes('GetSecretValue')));
      for (const id of [
        'DatabaseInstanceSecret',
        'DatabaseMigratorSecret',
        'DatabaseAppSecret',
        'DatabaseAuditShipperSecret',
        'DatabaseWebhooksSecret',
        'DatabaseKeyProvisionerSecret',
        'DatabaseLifecycleSecret',
        'SchemaGateKeySecret',
      ]) {
        expect(read).toContain(id);
      }
      expect(JSON.stringify(statements)).not.toContain('rds-db:connect');
      expect(schemaId).toMatch(/^Schema/);
    },
  );
});

describe('contract for other capabilities', () => {
  it('exposes interfaces, not ARNs', () => {
    const [stage] = stages;
    if (!stage) throw new Error('no deployment');
    const stack = stage.data;
    /** `value` resolves to a reference to `target`'s own resource in this stack. */
    const refersTo = (value: unknown, target: IConstruct): void => {
      const child = target.node.defaultChild;
      if (!CfnElement.isCfnElement(child)) throw new Error(`${target.node.path} has no CloudFormation resource`);
      expect(JSON.stringify(stack.resolve(value))).toContain(`"${stack.getLogicalId(child)}"`);
    };
    refersTo(stack.vpc.vpcId, stack.vpc);
    expect(stack.vpc.selectSubnets(stack.functionSubnets).subnetIds).toHaveLength(
      stage.deployment.availabilityZones.length,
    );
    refersTo(stack.apiSecurityGroup.securityGroupId, stack.apiSecurityGroup);
    refersTo(stack.database.instanceEndpoint.hostname, stack.database);
    refersTo(stack.proxy.endpoint, stack.proxy);
    refersTo(stack.databaseSecret.secretArn, stack.databaseSecret);
    expect(Object.keys(stack.databaseUsers).sort()).toEqual([
      'app',
      'auditShipper',
      'fileChecker',
      'keyProvisioner',
      'lifecycle',
      'migrator',
      'webhooks',
    ]);
    for (const secret of Object.values(stack.databaseUsers)) refersTo(secret.secretArn, secret);
    refersTo(stack.dataKey.keyArn, stack.dataKey);
    refersTo(stack.schema.migrationFunction.functionArn, stack.schema.migrationFunction);
  });
});
