import * as iam from 'aws-cdk-lib/aws-iam';
import { Construct, type IConstruct } from 'constructs';

export interface ServiceRoleProps {
  readonly assumedBy: iam.IPrincipal;
  readonly description: string;
  /** Statements of the role's customer-managed policy; more can be added to `policy`. */
  readonly statements?: iam.PolicyStatement[];
}

/**
 * A role whose permissions live in one customer-managed policy instead of CDK's inline
 * DefaultPolicy (HIPAA/NIST/PCI IAMNoInlinePolicy). The role handed to other constructs is
 * immutable, so their automatic grants are dropped: every permission the role needs is written
 * out explicitly in `policy`, where a reviewer can read it in one place.
 */
export class ServiceRole extends Construct {
  /** Pass this to constructs: grants on it are no-ops. */
  public readonly role: iam.IRole;
  public readonly policy: iam.ManagedPolicy;

  constructor(scope: Construct, id: string, props: ServiceRoleProps) {
    super(scope, id);
    const role = new iam.Role(this, 'Role', { assumedBy: props.assumedBy, description: props.description });
    this.policy = new iam.ManagedPolicy(this, 'Policy', {
      description: props.description,
      statements: props.statements,
      roles: [role],
    });
    this.role = role.withoutPolicyUpdates();
  }

  /** Makes `resource` wait for the policy, for services that check permissions at creation. */
  public requiredBy(...resources: IConstruct[]): void {
    for (const r of resources) r.node.addDependency(this.policy);
  }
}
