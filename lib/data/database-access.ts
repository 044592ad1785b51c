import type * as ec2 from 'aws-cdk-lib/aws-ec2';
import type * as rds from 'aws-cdk-lib/aws-rds';
import type { BulwarkFunction, FunctionNetwork } from '../shared/function';
import { proxyConnectStatement } from './proxy-connect';
import type { DatabaseSchema } from './schema';

export interface DatabaseAccessProps {
  /** The RDS Proxy (TLS + IAM authentication required). */
  readonly proxy: rds.IDatabaseProxy;
  /** The port the proxy listens on (PROXY_PORT). */
  readonly port: number;
  readonly databaseName: string;
  /** The login role the function connects as (one of DATABASE_ROLES); never a superuser or BYPASSRLS role. */
  readonly role: string;
  readonly vpc: ec2.IVpc;
  /** Subnets the proxy is reachable from (the data tier's `functionSubnets`). */
  readonly vpcSubnets: ec2.SubnetSelection;
  /** Security groups the proxy admits. */
  readonly securityGroups: readonly ec2.ISecurityGroup[];
  /**
   * The schema the role works against: a connected function deploys only after it.
   * @default - no ordering (a test double without a schema)
   */
  readonly schema?: DatabaseSchema;
}

/**
 * The one contract for "this function talks to the database": through the RDS Proxy, as one login
 * role, with an IAM token (lambda/shared/db.ts `parseDatabaseEnv` + `createProxyPool`), from the
 * data tier's VPC, after the schema was migrated. Created by the data tier
 * (`DataStack.databaseAccess(role)`); `connect(fn)` does all of it for one function.
 */
export class DatabaseAccess {
  public readonly proxy: rds.IDatabaseProxy;
  public readonly port: number;
  public readonly databaseName: string;
  public readonly role: string;
  /** Where a connected function must run. */
  public readonly network: FunctionNetwork;
  private readonly schema?: DatabaseSchema;

  constructor(props: DatabaseAccessProps) {
    if (!/^[a-z_][a-z0-9_]{0,62}$/.test(props.role)) {
      throw new Error(`DatabaseAccess: "${props.role}" is not a PostgreSQL role name`);
    }
    this.proxy = props.proxy;
    this.port = props.port;
    this.databaseName = props.databaseName;
    this.role = props.role;
    this.network = { vpc: props.vpc, vpcSubnets: props.vpcSubnets, securityGroups: props.securityGroups };
    this.schema = props.schema;
  }

  /** The variables `parseDatabaseEnv` reads (AWS_REGION is set by Lambda). */
  public get environment(): Readonly<Record<string, string>> {
    return {
      DB_HOST: this.proxy.endpoint,
      DB_PORT: String(this.port),
      DB_NAME: this.databaseName,
      DB_USER: this.role,
    };
  }

  /**
   * Connects `fn` (which must run in `network`): its environment, `rds-db:connect` for this role
   * only in its one policy, and its deployment after the schema.
   */
  public connect(fn: BulwarkFunction): void {
    if (!fn.inVpc) throw new Error(`${fn.node.path}: a function with database access runs in the data tier's VPC`);
    for (const [name, value] of Object.entries(this.environment)) fn.addEnvironment(name, value);
    fn.addToPolicy(proxyConnectStatement(fn, this.proxy, this.role, 'ConnectToDatabase'));
    this.schema?.requiredBy(fn.function);
  }
}
