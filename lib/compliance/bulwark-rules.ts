/**
 * Bulwark's own rules: the promises the standard packs do not check. Each rule inspects the
 * CloudFormation a resource renders (so raw overrides are seen too), in the shape of cdk-nag rules:
 * `(node) => NagRuleCompliance`, with the function's `name` as the rule id suffix.
 */
import { CfnResource, Stack } from 'aws-cdk-lib';
import { NagRuleCompliance, type NagRuleResult } from 'cdk-nag';

import { HSTS_MAX_AGE_SECONDS, HSTS_VALUE } from '../../contracts/security-headers';

export { HSTS_MAX_AGE_SECONDS, HSTS_VALUE };

type Json = Record<string, unknown>;

interface Rendered {
  readonly logicalId: string;
  readonly type: string;
  readonly properties: Json;
}

/** The resource as CloudFormation will see it, tokens resolved within its stack. */
export function rendered(node: CfnResource): Rendered {
  const stack = Stack.of(node);
  const out = stack.resolve((node as unknown as { _toCloudFormation(): object })._toCloudFormation()) as {
    Resources: Record<string, { Type: string; Properties?: Json }>;
  };
  const [logicalId, res] = Object.entries(out.Resources)[0] ?? ['', { Type: '', Properties: {} }];
  return { logicalId, type: res.Type, properties: res.Properties ?? {} };
}

/** Every CfnResource in the node's stack, rendered. */
function stackResources(node: CfnResource): Rendered[] {
  return Stack.of(node)
    .node.findAll()
    .filter((c): c is CfnResource => CfnResource.isCfnResource(c))
    .map(rendered);
}

function named<T extends (node: CfnResource) => NagRuleResult>(name: string, fn: T): T {
  return Object.defineProperty(fn, 'name', { value: name });
}

function asArray(v: unknown): unknown[] {
  return Array.isArray(v) ? v : v === undefined ? [] : [v];
}

function isRef(v: unknown, logicalId: string): boolean {
  if (typeof v !== 'object' || v === null) return false;
  const o = v as Json;
  if (o['Ref'] === logicalId) return true;
  const getAtt = o['Fn::GetAtt'];
  return Array.isArray(getAtt) && getAtt[0] === logicalId;
}

function mentions(v: unknown, logicalId: string): boolean {
  return JSON.stringify(v ?? null).includes(`"${logicalId}"`);
}

function tagValue(props: Json, key: string): unknown {
  const tags = props['Tags'];
  if (Array.isArray(tags)) return (tags as Json[]).find((t) => t['Key'] === key)?.['Value'];
  if (tags && typeof tags === 'object') return (tags as Json)[key];
  return undefined;
}

/** Tag that marks a bucket as holding audit records; such a bucket must be Object Locked. */
export const AUDIT_BUCKET_TAG = 'bulwark:data-class';
export const AUDIT_BUCKET_TAG_VALUE = 'audit';

/**
 * Object Lock in COMPLIANCE mode with a default retention of at least `minimumDays`, on every bucket
 * that enables Object Lock or is tagged as audit storage. GOVERNANCE mode can be lifted by a
 * privileged user, so it does not meet the audit promise.
 */
export function objectLockCompliance(minimumDays: number) {
  return named('ObjectLockCompliance', (node: CfnResource): NagRuleResult => {
    if (node.cfnResourceType !== 'AWS::S3::Bucket') return NagRuleCompliance.NOT_APPLICABLE;
    const p = rendered(node).properties;
    const isAudit = tagValue(p, AUDIT_BUCKET_TAG) === AUDIT_BUCKET_TAG_VALUE;
    if (p['ObjectLockEnabled'] !== true) {
      return isAudit ? NagRuleCompliance.NON_COMPLIANT : NagRuleCompliance.NOT_APPLICABLE;
    }
    const cfg = (p['ObjectLockConfiguration'] ?? {}) as Json;
    const retention = ((cfg['Rule'] as Json | undefined)?.['DefaultRetention'] ?? {}) as Json;
    if (cfg['ObjectLockEnabled'] !== 'Enabled' || retention['Mode'] !== 'COMPLIANCE') {
      return NagRuleCompliance.NON_COMPLIANT;
    }
    const days =
      typeof retention['Days'] === 'number'
        ? retention['Days']
        : typeof retention['Years'] === 'number'
          ? retention['Years'] * 365
          : 0;
    return days >= minimumDays ? NagRuleCompliance.COMPLIANT : NagRuleCompliance.NON_COMPLIANT;
  });
}

/**
 * Every PostgreSQL instance or cluster uses a parameter group (in the same stack) that sets
 * `rds.force_ssl = 1`; a default parameter group allows plaintext connections.
 */
export const RdsForceSsl = named('RdsForceSsl', (node: CfnResource): NagRuleResult => {
  const type = node.cfnResourceType;
  const isInstance = type === 'AWS::RDS::DBInstance';
  const isCluster = type === 'AWS::RDS::DBCluster';
  const isGroup = type === 'AWS::RDS::DBParameterGroup' || type === 'AWS::RDS::DBClusterParameterGroup';
  if (!isInstance && !isCluster && !isGroup) return NagRuleCompliance.NOT_APPLICABLE;
  const r = rendered(node);
  const forcesSsl = (g: Rendered) => String(((g.properties['Parameters'] ?? {}) as Json)['rds.force_ssl']) === '1';
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

function hstsHeaderValue(v: unknown): string | undefined {
  if (typeof v !== 'string') return undefined;
  // API Gateway header mappings quote static values: "'max-age=...'".
  return v.replace(/^'(.*)'$/, '$1');
}

/**
 * The exact HSTS value wherever CloudFormation sets the header: CloudFront response headers
 * policies (max-age 63072000, includeSubDomains, preload, overriding the origin), API Gateway
 * gateway responses, and method/integration response mappings.
 */
export const HstsPreload = named('HstsPreload', (node: CfnResource): NagRuleResult => {
  const type = node.cfnResourceType;
  const p = rendered(node).properties;
  if (type === 'AWS::CloudFront::ResponseHeadersPolicy') {
    const cfg = (p['ResponseHeadersPolicyConfig'] ?? {}) as Json;
    const sts = ((cfg['SecurityHeadersConfig'] ?? {}) as Json)['StrictTransportSecurity'] as Json | undefined;
    const ok =
      sts !== undefined &&
      sts['AccessControlMaxAgeSec'] === HSTS_MAX_AGE_SECONDS &&
      sts['IncludeSubdomains'] === true &&
      sts['Preload'] === true &&
      sts['Override'] === true;
    return ok ? NagRuleCompliance.COMPLIANT : NagRuleCompliance.NON_COMPLIANT;
  }
  if (type === 'AWS::ApiGateway::GatewayResponse' || type === 'AWS::ApiGateway::Method') {
    const values: unknown[] = [];
    const collect = (params: unknown) => {
      for (const [k, v] of Object.entries((params ?? {}) as Json)) {
        if (/strict-transport-security$/i.test(k)) values.push(v);
      }
    };
    if (type === 'AWS::ApiGateway::GatewayResponse') collect(p['ResponseParameters']);
    else {
      for (const ir of asArray(((p['Integration'] ?? {}) as Json)['IntegrationResponses'])) {
        collect((ir as Json)['ResponseParameters']);
      }
    }
    if (values.length === 0) return NagRuleCompliance.NOT_APPLICABLE;
    return values.every((v) => hstsHeaderValue(v) === HSTS_VALUE)
      ? NagRuleCompliance.COMPLIANT
      : NagRuleCompliance.NON_COMPLIANT;
  }
  return NagRuleCompliance.NOT_APPLICABLE;
});

/** Every WAFv2 web ACL has at least one rate-based rule, so no single client can flood the API. */
export const WafRateBasedRule = named('WafRateBasedRule', (node: CfnResource): NagRuleResult => {
  if (node.cfnResourceType !== 'AWS::WAFv2::WebACL') return NagRuleCompliance.NOT_APPLICABLE;
  const rules = asArray(rendered(node).properties['Rules']) as Json[];
  const hasRate = rules.some((r) => ((r['Statement'] ?? {}) as Json)['RateBasedStatement'] !== undefined);
  return hasRate ? NagRuleCompliance.COMPLIANT : NagRuleCompliance.NON_COMPLIANT;
});

const KMS_DATA_ACTIONS = /^kms:(Encrypt|Decrypt|ReEncrypt\*?|ReEncryptFrom|ReEncryptTo|GenerateDataKey.*|\*)$/i;

function statementUsesTenantContext(st: Json): boolean {
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

/** Tag that marks a KMS key as a tenant key. */
export const TENANT_KEY_TAG = 'bulwark:key-class';
export const TENANT_KEY_TAG_VALUE = 'tenant';

/**
 * Tenant keys are only usable within their tenant: every identity policy that grants KMS data
 * actions on arbitrary keys (`*` or `key/*`, which is how a role reaches runtime-provisioned
 * tenant keys) must require the `org_id` encryption context, and every key tagged as a tenant key
 * must condition its policy's data-action grants on it.
 */
export const TenantKeyEncryptionContext = named('TenantKeyEncryptionContext', (node: CfnResource): NagRuleResult => {
  const type = node.cfnResourceType;
  const p = rendered(node).properties;
  if (type === 'AWS::KMS::Key') {
    if (tagValue(p, TENANT_KEY_TAG) !== TENANT_KEY_TAG_VALUE) return NagRuleCompliance.NOT_APPLICABLE;
    const statements = asArray(((p['KeyPolicy'] ?? {}) as Json)['Statement']) as Json[];
    const grants = statements.filter(allowsKmsDataActions);
    if (grants.length === 0) return NagRuleCompliance.NON_COMPLIANT;
    // The account root statement (key administration) is the one exception AWS requires.
    const offending = grants.filter(
      (st) => !statementUsesTenantContext(st) && !/:root"?\]?$/.test(JSON.stringify(st['Principal'] ?? '')),
    );
    return offending.length === 0 ? NagRuleCompliance.COMPLIANT : NagRuleCompliance.NON_COMPLIANT;
  }
  const documents: unknown[] = [];
  if (type === 'AWS::IAM::Policy' || type === 'AWS::IAM::ManagedPolicy') documents.push(p['PolicyDocument']);
  else if (type === 'AWS::IAM::Role') {
    for (const pol of asArray(p['Policies'])) documents.push((pol as Json)['PolicyDocument']);
  } else return NagRuleCompliance.NOT_APPLICABLE;
  const statements = documents.flatMap((d) => asArray(((d ?? {}) as Json)['Statement'])) as Json[];
  const relevant = statements.filter((st) => allowsKmsDataActions(st) && coversArbitraryKeys(st));
  if (relevant.length === 0) return NagRuleCompliance.NOT_APPLICABLE;
  return relevant.every(statementUsesTenantContext) ? NagRuleCompliance.COMPLIANT : NagRuleCompliance.NON_COMPLIANT;
});

const DB_TYPES = new Set(['AWS::RDS::DBInstance', 'AWS::RDS::DBCluster', 'AWS::RDS::DBProxy']);

/**
 * No Lambda function outside the VPC can reach the database: a function without `VpcConfig` must
 * not be handed a database endpoint, be granted `rds-db:connect`, or be able to read a secret
 * attached to a database.
 */
export const LambdaDatabaseInVpc = named('LambdaDatabaseInVpc', (node: CfnResource): NagRuleResult => {
  if (node.cfnResourceType !== 'AWS::Lambda::Function') return NagRuleCompliance.NOT_APPLICABLE;
  const fn = rendered(node);
  const vpc = (fn.properties['VpcConfig'] ?? {}) as Json;
  if (asArray(vpc['SubnetIds']).length > 0) return NagRuleCompliance.COMPLIANT;

  const all = stackResources(node);
  const dbIds = all.filter((r) => DB_TYPES.has(r.type)).map((r) => r.logicalId);
  const dbSecretIds = all
    .filter((r) => r.type === 'AWS::SecretsManager::SecretTargetAttachment')
    .flatMap((r) => {
      const id = r.properties['SecretId'];
      // Grants reference either the secret or its attachment (whose Ref is the same secret ARN).
      const secrets = all.filter((s) => s.type === 'AWS::SecretsManager::Secret' && isRef(id, s.logicalId));
      return [r.logicalId, ...secrets.map((s) => s.logicalId)];
    });
  const env = ((fn.properties['Environment'] ?? {}) as Json)['Variables'];
  if (dbIds.some((id) => mentions(env, id))) return NagRuleCompliance.NON_COMPLIANT;

  const role = fn.properties['Role'];
  const roleIds = all.filter((r) => r.type === 'AWS::IAM::Role' && isRef(role, r.logicalId)).map((r) => r.logicalId);
  const policies = all.filter(
    (r) =>
      (r.type === 'AWS::IAM::Policy' || r.type === 'AWS::IAM::ManagedPolicy') &&
      asArray(r.properties['Roles']).some((x) => roleIds.some((id) => isRef(x, id))),
  );
  const inline = all
    .filter((r) => roleIds.includes(r.logicalId))
    .flatMap((r) => asArray(r.properties['Policies']).map((x) => (x as Json)['PolicyDocument']));
  const statements = [...policies.map((x) => x.properties['PolicyDocument']), ...inline].flatMap(
    (d) => asArray(((d ?? {}) as Json)['Statement']) as Json[],
  );
  const reaches = statements.some((st) => {
    if (st['Effect'] !== 'Allow') return false;
    const actions = asArray(st['Action']).map(String);
    if (actions.some((a) => /^rds-db:/i.test(a) || a === '*')) return true;
    const readsSecrets = actions.some((a) => /^secretsmanager:(GetSecretValue|\*)$/i.test(a));
    return readsSecrets && dbSecretIds.some((id) => mentions(st['Resource'], id));
  });
  return reaches ? NagRuleCompliance.NON_COMPLIANT : NagRuleCompliance.COMPLIANT;
});
