import type { CfnResource } from 'aws-cdk-lib';
import { NagRuleCompliance, type NagRuleResult } from 'cdk-nag';
import { isRef, rendered, ruleFromFile, stackResources, type Json, type Rendered } from '../rule-helpers';

const forcesSsl = (g: Rendered) => String(((g.properties['Parameters'] ?? {}) as Json)['rds.force_ssl']) === '1';

/**
 * PostgreSQL instances and clusters use a parameter group (in the same stack) that sets
 * `rds.force_ssl = 1`, and every PostgreSQL parameter group sets it: a default parameter group
 * accepts plaintext connections.
 * @param node the CfnResource to check
 */
export default ruleFromFile(__filename, (node: CfnResource): NagRuleResult => {
  const type = node.cfnResourceType;
  const isInstance = type === 'AWS::RDS::DBInstance';
  const isCluster = type === 'AWS::RDS::DBCluster';
  const isGroup = type === 'AWS::RDS::DBParameterGroup' || type === 'AWS::RDS::DBClusterParameterGroup';
  if (!isInstance && !isCluster && !isGroup) return NagRuleCompliance.NOT_APPLICABLE;
  const r = rendered(node);
  if (isGroup) {
    if (!/postgres/i.test(String(r.properties['Family'] ?? ''))) return NagRuleCompliance.NOT_APPLICABLE;
    return forcesSsl(r) ? NagRuleCompliance.COMPLIANT : NagRuleCompliance.NON_COMPLIANT;
  }
  if (!/postgres/i.test(String(r.properties['Engine'] ?? ''))) return NagRuleCompliance.NOT_APPLICABLE;
  // A cluster member inherits the cluster's parameter group.
  if (isInstance && r.properties['DBClusterIdentifier'] !== undefined) return NagRuleCompliance.NOT_APPLICABLE;
  const ref = r.properties[isCluster ? 'DBClusterParameterGroupName' : 'DBParameterGroupName'];
  if (ref === undefined) return NagRuleCompliance.NON_COMPLIANT;
  const group = stackResources(node).find((g) => isRef(ref, g.logicalId));
  return group && forcesSsl(group) ? NagRuleCompliance.COMPLIANT : NagRuleCompliance.NON_COMPLIANT;
});
