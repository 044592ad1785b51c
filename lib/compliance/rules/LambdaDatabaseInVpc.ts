import * as path from 'node:path';
import { asArray, type Json } from '../rule-helpers';
import { CrossStackReferences, refKey, type ResourceRef, type SynthesizedStack } from '../templates';

const DB_TYPES = new Set([
  'AWS::RDS::DBInstance',
  'AWS::RDS::DBCluster',
  'AWS::RDS::DBProxy',
  'AWS::RDS::DBProxyEndpoint',
]);
const POLICY_TYPES = new Set(['AWS::IAM::Policy', 'AWS::IAM::ManagedPolicy']);

/** A rule over every synthesized template of a deployment: returns the resources that break it. */
export interface StageRule {
  readonly name: string;
  (stacks: readonly SynthesizedStack[]): ResourceRef[];
}

/**
 * No Lambda function outside the VPC can reach the database, in any stack of the deployment: a
 * function without `VpcConfig` subnets must not be handed a database or proxy endpoint, be granted
 * `rds-db:connect`, or be able to read a secret attached to the database or registered with its
 * proxy. References into another stack (`Fn::GetStackOutput`, `Fn::ImportValue`) are followed to the
 * resource they name, so a caller in Edge of the database in Data is checked like one in Data.
 * @param stacks the synthesized templates of one deployment
 */
const rule = (stacks: readonly SynthesizedStack[]): ResourceRef[] => {
  const refs = new CrossStackReferences(stacks);
  const all = [...refs.all()];
  const databases = new Set(all.filter((r) => DB_TYPES.has(r.resource.Type)).map((r) => refKey(r.ref)));
  const secrets = new Set<string>();
  for (const r of all) {
    const p = r.resource.Properties ?? {};
    if (r.resource.Type === 'AWS::SecretsManager::SecretTargetAttachment') {
      // Grants name either the secret or its attachment (whose Ref is the same secret ARN).
      secrets.add(refKey(r.ref));
      for (const s of refs.resourcesIn(p['SecretId'], r.stack)) secrets.add(refKey(s));
    }
    if (r.resource.Type === 'AWS::RDS::DBProxy') {
      for (const auth of asArray(p['Auth'])) {
        for (const s of refs.resourcesIn((auth as Json)['SecretArn'], r.stack)) secrets.add(refKey(s));
      }
    }
  }
  const names = (value: unknown, stack: SynthesizedStack, set: Set<string>) =>
    refs.resourcesIn(value, stack).some((x) => set.has(refKey(x)));

  const offending: ResourceRef[] = [];
  for (const fn of all.filter((r) => r.resource.Type === 'AWS::Lambda::Function')) {
    const p = fn.resource.Properties ?? {};
    if (asArray(((p['VpcConfig'] ?? {}) as Json)['SubnetIds']).length > 0) continue;
    const env = ((p['Environment'] ?? {}) as Json)['Variables'];
    const roles = new Set(refs.resourcesIn(p['Role'], fn.stack).map(refKey));
    const documents: { doc: unknown; stack: SynthesizedStack }[] = [];
    for (const r of all) {
      const rp = r.resource.Properties ?? {};
      if (r.resource.Type === 'AWS::IAM::Role' && roles.has(refKey(r.ref))) {
        for (const pol of asArray(rp['Policies']))
          documents.push({ doc: (pol as Json)['PolicyDocument'], stack: r.stack });
      }
      if (POLICY_TYPES.has(r.resource.Type) && names(rp['Roles'], r.stack, roles)) {
        documents.push({ doc: rp['PolicyDocument'], stack: r.stack });
      }
    }
    const reaches = documents.some(({ doc, stack }) =>
      (asArray(((doc ?? {}) as Json)['Statement']) as Json[]).some((st) => {
        if (st['Effect'] !== 'Allow') return false;
        const actions = asArray(st['Action']).map(String);
        if (actions.some((a) => /^rds-db:/i.test(a) || a === '*')) return true;
        if (!actions.some((a) => /^secretsmanager:(GetSecretValue|\*)$/i.test(a))) return false;
        return asArray(st['Resource']).includes('*') || names(st['Resource'], stack, secrets);
      }),
    );
    if (reaches || names(env, fn.stack, databases)) offending.push(fn.ref);
  }
  return offending;
};

export default Object.defineProperty(rule, 'name', { value: path.parse(__filename).name }) as StageRule;
