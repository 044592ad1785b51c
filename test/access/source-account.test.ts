import { App, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { limitLambdaPermissionsToOwnAccount } from '../../lib/lambda/source-account';

describe('limitLambdaPermissionsToOwnAccount', () => {
  function permissions(): Record<string, { Properties: Record<string, unknown> }> {
    const app = new App();
    const stack = new Stack(app, 'S', { env: { account: '123456789012', region: 'eu-west-1' } });
    const fn = new lambda.Function(stack, 'Fn', {
      runtime: lambda.Runtime.NODEJS_22_X,
      handler: 'index.handler',
      code: lambda.Code.fromInline('exports.handler = async () => {}'),
    });
    fn.addPermission('FromApi', {
      principal: new iam.ServicePrincipal('apigateway.amazonaws.com'),
      sourceArn: 'arn:aws:execute-api:eu-west-1:123456789012:abc/v1/GET/x',
    });
    fn.addPermission('FromEvents', {
      principal: new iam.ServicePrincipal('events.amazonaws.com'),
      sourceAccount: '123456789012',
    });
    fn.addPermission('FromAccount', { principal: new iam.AccountPrincipal('210987654321') });
    limitLambdaPermissionsToOwnAccount(app);
    return Template.fromStack(stack).findResources('AWS::Lambda::Permission') as Record<
      string,
      { Properties: Record<string, unknown> }
    >;
  }

  it('adds SourceAccount to permissions for AWS service principals only', () => {
    const byPrincipal = Object.fromEntries(
      Object.values(permissions()).map((p) => [p.Properties['Principal'], p.Properties['SourceAccount']]),
    );
    expect(byPrincipal).toEqual({
      'apigateway.amazonaws.com': '123456789012',
      'events.amazonaws.com': '123456789012',
      '210987654321': undefined,
    });
  });
});
