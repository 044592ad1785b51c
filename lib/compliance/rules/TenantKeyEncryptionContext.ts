import type { CfnResource } from 'aws-cdk-lib';
import { NagRuleCompliance, type NagRuleResult } from 'cdk-nag';
import { TAG_KEY_CLASS, TENANT_KEY_CLASS } from '../../../contracts/tenant-keys';
import { asArray, identityStatements, rendered, ruleFromFile, tagValue, type Json } from '../rule-helpers';

const KMS_DATA_ACTIONS = /^kms:(Encrypt|Decrypt|ReEncrypt\*?|ReEncryptFrom|ReEncryptTo|GenerateDataKey.*|\*)$/i;

function usesTenantContext(st: Json): boolean {
  const cond = (st['Condition'] ?? {}) as Record<string, Json>;
  return Object.values(cond).some((byKey) =>
    Object.keys(byKey ?? {}).some((k) => k.toLowerCase() === 'kms:encryptioncontext:org_id'),
  );
}

function allowsKmsDataActions(st: Json): boolean {
  if (st['Effect'] !== 'Allow') return false;
  return asArray(st['Action']).some((a) => typeof a === 'string' && (a === '*' || KMS_DATA_ACTIONS.test(a)));
}

/** Resource patterns that can match tenant keys: any key (`*`, `key/*`) rather than one named key. */
function coversArbitraryKeys(st: Json): boolean {
  return asArray(st['Resource']).some((r) => {
    if (typeof r === 'string') return r === '*' || /:key\/\*$/.test(r);
    // `Fn::Join` building `arn:...:key/*`
    return /key\/\*/.test(JSON.stringify(r));
  });
}

/**
 * Tenant keys are only usable within their tenant: every identity policy that grants KMS data
 * actions on arbitrary keys (`*` or `key/*`, which is how a role reaches runtime-provisioned
 * tenant keys) requires the `org_id` encryption context, and every key tagged as a tenant key
 * conditions its policy's data-action grants on it.
 * @param node the CfnResource to check
 */
export default ruleFromFile(__filename, (node: CfnResource): NagRuleResult => {
  const type = node.cfnResourceType;
  if (type === 'AWS::KMS::Key') {
    const p = rendered(node).properties;
    if (tagValue(p, TAG_KEY_CLASS) !== TENANT_KEY_CLASS) return NagRuleCompliance.NOT_APPLICABLE;
    const statements = asArray(((p['KeyPolicy'] ?? {}) as Json)['Statement']) as Json[];
    const grants = statements.filter(allowsKmsDataActions);
    if (grants.length === 0) return NagRuleCompliance.NON_COMPLIANT;
    // The account root statement (key administration) is the one exception AWS requires.
    const offending = grants.filter(
      (st) => !usesTenantContext(st) && !/:root"?\]?$/.test(JSON.stringify(st['Principal'] ?? '')),
    );
    return offending.length === 0 ? NagRuleCompliance.COMPLIANT : NagRuleCompliance.NON_COMPLIANT;
  }
  if (type !== 'AWS::IAM::Policy' && type !== 'AWS::IAM::ManagedPolicy' && type !== 'AWS::IAM::Role') {
    return NagRuleCompliance.NOT_APPLICABLE;
  }
  const relevant = identityStatements(rendered(node)).filter(
    (st) => allowsKmsDataActions(st) && coversArbitraryKeys(st),
  );
  if (relevant.length === 0) return NagRuleCompliance.NOT_APPLICABLE;
  return relevant.every(usesTenantContext) ? NagRuleCompliance.COMPLIANT : NagRuleCompliance.NON_COMPLIANT;
});
