/**
 * The deploy-order check (test/support/deploy-order.ts) on small fixtures: it must find a function
 * that reaches the database by its environment or by its policy, and flag it when its stack could
 * deploy before the schema's stack, or when it shares the schema's stack without waiting for it.
 */
import { App, CfnResource, Stack, Stage } from 'aws-cdk-lib';
import { schemaOrder } from '../support/deploy-order';

function fixture(wire: (s: { data: Stack; edge: Stack; inData: CfnResource; schema: CfnResource }) => void) {
  // Raw fixture resources, not deployable templates: only the ordering is under test.
  const app = new App({ builtinCloudFormationValidation: false });
  const stage = new Stage(app, 'Fixture', { env: { account: '111111111111', region: 'eu-west-1' } });
  const data = new Stack(stage, 'Data');
  const provider = new CfnResource(data, 'Migrate', {
    type: 'AWS::Lambda::Function',
    properties: { Environment: { Variables: { DB_HOST: 'instance' } } },
  });
  const schema = new CfnResource(data, 'Schema', {
    type: 'Custom::BulwarkSchema',
    properties: { ServiceToken: provider.getAtt('Arn') },
  });
  const inData = new CfnResource(data, 'Reader', {
    type: 'AWS::Lambda::Function',
    properties: { Environment: { Variables: { DB_HOST: 'proxy' } } },
  });
  const edge = new Stack(stage, 'Edge');
  // Reaches the database only through its policy (no endpoint in its environment).
  const role = new CfnResource(edge, 'Role', { type: 'AWS::IAM::Role', properties: {} });
  new CfnResource(edge, 'Policy', {
    type: 'AWS::IAM::ManagedPolicy',
    properties: {
      Roles: [role.ref],
      PolicyDocument: { Statement: [{ Effect: 'Allow', Action: 'rds-db:connect', Resource: '*' }] },
    },
  });
  new CfnResource(edge, 'Api', { type: 'AWS::Lambda::Function', properties: { Role: role.getAtt('Arn') } });
  new CfnResource(edge, 'Authorizer', { type: 'AWS::Lambda::Function', properties: {} });
  wire({ data, edge, inData, schema });
  return schemaOrder(app.synth().getNestedAssembly(stage.artifactId));
}

describe('schemaOrder', () => {
  it('flags a function in another stack that may deploy first, and one in the same stack not waiting', () => {
    const { functions, violations } = fixture(() => undefined);
    expect(functions).toEqual(['Fixture-Data/Reader', 'Fixture-Edge/Api']);
    expect(violations).toEqual([
      'Fixture-Data/Reader does not depend on Schema in its own stack',
      expect.stringMatching(/^Fixture-Edge\/Api: stack \S+ does not deploy after \S+ \(holds Schema\)$/),
    ]);
  });

  it('passes once the stacks are ordered, directly or transitively, and the same-stack function waits', () => {
    const { violations } = fixture(({ data, edge, inData, schema }) => {
      const middle = new Stack(data.node.scope!, 'Middle');
      new CfnResource(middle, 'Nothing', { type: 'AWS::SNS::Topic' });
      middle.addStackDependency(data);
      edge.addStackDependency(middle);
      inData.addResourceDependency(schema);
    });
    expect(violations).toEqual([]);
  });
});
