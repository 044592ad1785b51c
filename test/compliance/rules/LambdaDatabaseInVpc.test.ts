import { App, Stack } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as rds from 'aws-cdk-lib/aws-rds';
import { findingsOf, fixtureStack } from './support';

const RULE = 'Bulwark-LambdaDatabaseInVpc';
const code = lambda.Code.fromInline('exports.handler = async () => ({})');
const env = { account: '123456789012', region: 'eu-west-1' };

/** A data tier: VPC, PostgreSQL with its generated secret, and an RDS Proxy in front of it. */
function dataTier(s: Stack) {
  const vpc = new ec2.Vpc(s, 'Vpc', {
    maxAzs: 2,
    natGateways: 0,
    subnetConfiguration: [{ name: 'db', subnetType: ec2.SubnetType.PRIVATE_ISOLATED }],
  });
  const engine = rds.DatabaseInstanceEngine.postgres({ version: rds.PostgresEngineVersion.VER_17 });
  const db = new rds.DatabaseInstance(s, 'Db', {
    engine,
    vpc,
    vpcSubnets: { subnetType: ec2.SubnetType.PRIVATE_ISOLATED },
  });
  const proxy = db.addProxy('Proxy', { vpc, secrets: [db.secret!], iamAuth: true });
  return { vpc, db, proxy };
}

function fn(s: Stack, id: string, vpc?: ec2.IVpc) {
  return new lambda.Function(s, id, {
    runtime: lambda.Runtime.NODEJS_22_X,
    handler: 'index.handler',
    code,
    ...(vpc ? { vpc, vpcSubnets: { subnetType: ec2.SubnetType.PRIVATE_ISOLATED } } : {}),
  });
}

describe(`${RULE} within one stack`, () => {
  it('flags out-of-VPC functions given the endpoint, rds-db:connect, or the database secret', () => {
    const s = fixtureStack();
    const { db } = dataTier(s);
    fn(s, 'WithEndpoint').addEnvironment('DB_HOST', db.dbInstanceEndpointAddress);
    db.grantConnect(fn(s, 'WithConnect'), 'app');
    db.secret?.grantRead(fn(s, 'WithSecret'));
    fn(s, 'Unrelated');
    expect(findingsOf(s, RULE)).toEqual(['S/WithConnect/Resource', 'S/WithEndpoint/Resource', 'S/WithSecret/Resource']);
  });

  it('accepts in-VPC functions with database access', () => {
    const s = fixtureStack();
    const { vpc, db } = dataTier(s);
    const inside = fn(s, 'Inside', vpc);
    inside.addEnvironment('DB_HOST', db.dbInstanceEndpointAddress);
    db.grantConnect(inside, 'app');
    db.secret?.grantRead(inside);
    expect(findingsOf(s, RULE)).toEqual([]);
  });
});

// The database lives in Data, its callers in other stacks: the rule must follow the reference there.
describe.each([
  ['exports (Fn::ImportValue)', 'strong'],
  ['stack outputs (Fn::GetStackOutput)', 'weak'],
])(`${RULE} across stacks, references through %s`, (_how, strength) => {
  function stage() {
    const app = new App({
      builtinCloudFormationValidation: false,
      context: { '@aws-cdk/core:defaultCrossStackReferences': strength },
    });
    const data = new Stack(app, 'Data', { env });
    const tier = dataTier(data);
    const edge = new Stack(app, 'Edge', { env });
    return { app, edge, ...tier };
  }

  it('flags an out-of-VPC function in another stack given the proxy endpoint or the database secret', () => {
    const { app, edge, db, proxy } = stage();
    fn(edge, 'Endpoint').addEnvironment('DB_HOST', proxy.endpoint);
    db.secret?.grantRead(fn(edge, 'Secret'));
    proxy.grantConnect(fn(edge, 'Connect'), 'app');
    fn(edge, 'Unrelated');
    expect(findingsOf(app, RULE)).toEqual(['Edge/Connect/Resource', 'Edge/Endpoint/Resource', 'Edge/Secret/Resource']);
  });

  it('accepts the same function in the VPC', () => {
    const { app, edge, vpc, db, proxy } = stage();
    const inside = fn(edge, 'Inside', vpc);
    inside.addEnvironment('DB_HOST', proxy.endpoint);
    db.secret?.grantRead(inside);
    proxy.grantConnect(inside, 'app');
    expect(findingsOf(app, RULE)).toEqual([]);
  });
});
