import type { Stack } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as rds from 'aws-cdk-lib/aws-rds';
import { findingsOf, fixtureStack } from './support';

const RULE = 'Bulwark-RdsForceSsl';

function db(s: Stack, id: string, parameters?: Record<string, string>) {
  const vpc = new ec2.Vpc(s, `${id}Vpc`, {
    maxAzs: 2,
    natGateways: 0,
    subnetConfiguration: [{ name: 'db', subnetType: ec2.SubnetType.PRIVATE_ISOLATED }],
  });
  const engine = rds.DatabaseInstanceEngine.postgres({ version: rds.PostgresEngineVersion.VER_17 });
  return new rds.DatabaseInstance(s, id, {
    engine,
    vpc,
    vpcSubnets: { subnetType: ec2.SubnetType.PRIVATE_ISOLATED },
    parameterGroup: parameters ? new rds.ParameterGroup(s, `${id}Params`, { engine, parameters }) : undefined,
  });
}

describe(RULE, () => {
  it('flags a default parameter group and one without rds.force_ssl = 1', () => {
    const s = fixtureStack();
    db(s, 'Default');
    db(s, 'Lax', { 'rds.force_ssl': '0' });
    expect(findingsOf(s, RULE)).toEqual(['S/Default/Resource', 'S/Lax/Resource', 'S/LaxParams/Resource']);
  });

  it('accepts an instance whose parameter group forces TLS', () => {
    const s = fixtureStack();
    db(s, 'Strict', { 'rds.force_ssl': '1' });
    expect(findingsOf(s, RULE)).toEqual([]);
  });
});
