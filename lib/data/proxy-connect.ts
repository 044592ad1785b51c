import { Arn, ArnFormat, Stack } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as rds from 'aws-cdk-lib/aws-rds';
import type { Construct } from 'constructs';

/**
 * `rds-db:connect` through `proxy` as one database user, and no other. For functions whose
 * permissions are written out in one customer-managed policy (`proxy.grantConnect` would add an
 * inline policy to the role instead).
 */
export function proxyConnectStatement(
  scope: Construct,
  proxy: rds.IDatabaseProxy,
  user: string,
  sid?: string,
): iam.PolicyStatement {
  const proxyResourceId = Arn.split(proxy.dbProxyArn, ArnFormat.COLON_RESOURCE_NAME).resourceName;
  return new iam.PolicyStatement({
    ...(sid ? { sid } : {}),
    actions: ['rds-db:connect'],
    resources: [
      Stack.of(scope).formatArn({
        service: 'rds-db',
        resource: 'dbuser',
        resourceName: `${proxyResourceId}/${user}`,
        arnFormat: ArnFormat.COLON_RESOURCE_NAME,
      }),
    ],
  });
}
