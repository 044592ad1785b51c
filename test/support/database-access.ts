/** A DatabaseAccess over imported stand-ins for the data tier (the stage wires the real one). */
import type * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as rds from 'aws-cdk-lib/aws-rds';
import type { Construct } from 'constructs';
import { PROXY_PORT } from '../../lib/data/database';
import { DatabaseAccess } from '../../lib/data/database-access';

export const PROXY_ID = 'prx-0123456789abcdef0';

export function importedDatabaseAccess(
  scope: Construct,
  o: {
    readonly role: string;
    readonly region: string;
    readonly account: string;
    readonly vpc: ec2.IVpc;
    readonly securityGroup: ec2.ISecurityGroup;
    readonly vpcSubnets?: ec2.SubnetSelection;
  },
): DatabaseAccess {
  // One imported proxy per scope, shared by every role's access (as the data tier's one proxy is).
  const proxy =
    (scope.node.tryFindChild('Proxy') as rds.IDatabaseProxy | undefined) ??
    rds.DatabaseProxy.fromDatabaseProxyAttributes(scope, 'Proxy', {
      dbProxyName: 'bulwark',
      dbProxyArn: `arn:aws:rds:${o.region}:${o.account}:db-proxy:${PROXY_ID}`,
      endpoint: `bulwark.proxy-abc.${o.region}.rds.amazonaws.com`,
      securityGroups: [],
    });
  return new DatabaseAccess({
    proxy,
    port: PROXY_PORT,
    databaseName: 'bulwark',
    role: o.role,
    vpc: o.vpc,
    vpcSubnets: o.vpcSubnets ?? {},
    securityGroups: [o.securityGroup],
  });
}
