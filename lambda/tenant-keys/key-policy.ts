/**
 * Naming, tagging and the key policy of a tenant key, plus the checks a bring-your-own key must pass.
 *
 * The policy is the real boundary, independent of IAM: the API role may use a tenant's key only
 * with the encryption context `org_id = <that tenant>`, nobody may use it with any other `org_id`,
 * and no grant can be created except by an AWS service acting for a resource.
 */
import {
  TAG_DEPLOYMENT,
  TAG_KEY_CLASS,
  TAG_ORG,
  TENANT_KEY_CLASS,
  TENANT_KEY_USER_TAG,
  FILES_KEY_POLICY_VERSION,
  aliasPrefix,
} from '../../contracts/tenant-keys';
import { FILES_ROOT } from '../../contracts/tenant-files';

export function aliasName(deployment: string, orgId: string): string {
  return `${aliasPrefix(deployment)}${orgId}`;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const DEPLOYMENT = /^[a-z][a-z0-9-]{1,30}[a-z0-9]$/;

/** Organisation ids are UUIDs; anything else could escape the alias prefix or the policy condition. */
export function assertOrgId(orgId: string): void {
  if (!UUID.test(orgId)) throw new TypeError(`org id must be a lower-case UUID, got ${JSON.stringify(orgId)}`);
}

export function assertDeployment(deployment: string): void {
  if (!DEPLOYMENT.test(deployment)) throw new TypeError(`invalid deployment name ${JSON.stringify(deployment)}`);
}

export function tenantKeyTags(deployment: string, orgId: string): { TagKey: string; TagValue: string }[] {
  return [
    { TagKey: TAG_DEPLOYMENT, TagValue: deployment },
    { TagKey: TAG_ORG, TagValue: orgId },
    { TagKey: TAG_KEY_CLASS, TagValue: TENANT_KEY_CLASS },
  ];
}

/** Encryption context keys. `purpose` is one of `SECRET_PURPOSES` or `export`. */
export const CONTEXT_ORG = 'org_id';
export const CONTEXT_PURPOSE = 'purpose';
/** The context key S3 adds under SSE-KMS: the object's ARN (docs/tenant-files.md). */
export const CONTEXT_S3_ARN = 'aws:s3:arn';

/** What the tenant's application role may do with the key (envelope encryption only). */
export const TENANT_USE_ACTIONS = ['kms:GenerateDataKey', 'kms:Decrypt'] as const;

/** Every cryptographic operation: none may run under another tenant's context. */
export const CRYPTO_ACTIONS = ['kms:Encrypt', 'kms:Decrypt', 'kms:ReEncrypt*', 'kms:GenerateDataKey*'] as const;

/**
 * Administration delegated to the account's IAM (so the provisioner and lifecycle roles, and break-
 * glass administrators, work through IAM policies) - but no cryptographic operation: using the key
 * is only ever granted by this policy itself, to the API role, under the tenant's context.
 */
export const ADMIN_ACTIONS = [
  'kms:DescribeKey',
  'kms:GetKeyPolicy',
  'kms:PutKeyPolicy',
  'kms:GetKeyRotationStatus',
  'kms:EnableKeyRotation',
  'kms:ListResourceTags',
  'kms:TagResource',
  'kms:UntagResource',
  'kms:CreateAlias',
  'kms:UpdateAlias',
  'kms:DeleteAlias',
  'kms:ScheduleKeyDeletion',
  'kms:CancelKeyDeletion',
] as const;

export interface TenantKeyPolicyInput {
  readonly partition?: string;
  readonly account: string;
  readonly deployment: string;
  readonly orgId: string;
}

export interface PolicyStatement {
  readonly Sid?: string;
  readonly Effect: 'Allow' | 'Deny';
  readonly Principal?:
    '*' | { readonly AWS?: string | readonly string[]; readonly Service?: string | readonly string[] };
  readonly Action: string | readonly string[];
  readonly Resource?: string | readonly string[];
  readonly Condition?: Readonly<Record<string, Readonly<Record<string, string | boolean | readonly string[]>>>>;
}

export interface PolicyDocument {
  readonly Version: string;
  readonly Statement: readonly PolicyStatement[];
}

/**
 * The version of the policy `tenantKeyPolicy` renders. Raise it with every change to the rendering
 * and list the previous rendering in `KNOWN_POLICY_VERSIONS`: the provisioner's refresh brings every
 * managed key up to it, once (docs/tenant-keys.md, "Key policy refresh").
 *
 *   1. keys created before migrations/0408: no `TenantFilesThroughS3UnderItsOwnPrefix`;
 *   2. + `TenantFilesThroughS3UnderItsOwnPrefix` (tenant files, docs/tenant-files.md).
 */
export const KEY_POLICY_VERSION = 2;

/** The Sid of the statement version 2 added: BYOK keys need it too before files can use them. */
export const FILES_STATEMENT_SID = 'TenantFilesThroughS3UnderItsOwnPrefix';

/** Every rendering a managed key may carry, by version (the refresh replaces only these). */
export const KNOWN_POLICY_VERSIONS: Readonly<Record<number, (input: TenantKeyPolicyInput) => PolicyDocument>> = {
  [FILES_KEY_POLICY_VERSION - 1]: (input) => {
    const current = tenantKeyPolicy(input);
    return { ...current, Statement: current.Statement.filter((s) => s.Sid !== FILES_STATEMENT_SID) };
  },
  [KEY_POLICY_VERSION]: (input) => tenantKeyPolicy(input),
};

/** JSON with object keys sorted: two documents that differ only in key order compare equal. */
function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (v !== null && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    return `{${Object.keys(o)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical(o[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(v);
}

/**
 * Which known rendering `policyJson` is, for this tenant (null: none, e.g. edited by hand, or
 * rendered for another organisation or deployment). Compared as parsed JSON, keys in any order.
 */
export function recognisePolicyVersion(policyJson: string, input: TenantKeyPolicyInput): number | null {
  let parsed: unknown;
  try {
    parsed = JSON.parse(policyJson);
  } catch {
    return null;
  }
  const seen = canonical(parsed);
  for (const [version, render] of Object.entries(KNOWN_POLICY_VERSIONS)) {
    if (canonical(render(input)) === seen) return Number(version);
  }
  return null;
}

export function tenantKeyPolicy(input: TenantKeyPolicyInput): PolicyDocument {
  assertOrgId(input.orgId);
  const partition = input.partition ?? 'aws';
  return {
    Version: '2012-10-17',
    Statement: [
      {
        Sid: 'AccountAdministrationWithoutUse',
        Effect: 'Allow',
        Principal: { AWS: `arn:${partition}:iam::${input.account}:root` },
        Action: [...ADMIN_ACTIONS],
        Resource: '*',
      },
      {
        // The API's roles (tagged as tenant-key users of this deployment, and granted by IAM too),
        // only with this tenant's org_id, and only with the context keys envelope encryption uses.
        Sid: 'TenantUseOnlyUnderItsOwnContext',
        Effect: 'Allow',
        Principal: { AWS: `arn:${partition}:iam::${input.account}:root` },
        Action: [...TENANT_USE_ACTIONS],
        Resource: '*',
        Condition: {
          StringEquals: {
            [`kms:EncryptionContext:${CONTEXT_ORG}`]: input.orgId,
            [`aws:PrincipalTag/${TENANT_KEY_USER_TAG}`]: input.deployment,
          },
          'ForAllValues:StringEquals': { 'kms:EncryptionContextKeys': [CONTEXT_ORG, CONTEXT_PURPOSE] },
        },
      },
      {
        // Tenant files (docs/tenant-files.md): S3 encrypts each object under its tenant's key with
        // the context {aws:s3:arn: <object>, org_id: <tenant>}; only through S3, only for an object
        // under the tenant's own prefix, only for the tagged roles (the files role's sessions).
        Sid: FILES_STATEMENT_SID,
        Effect: 'Allow',
        Principal: { AWS: `arn:${partition}:iam::${input.account}:root` },
        Action: [...TENANT_USE_ACTIONS],
        Resource: '*',
        Condition: {
          StringEquals: {
            [`kms:EncryptionContext:${CONTEXT_ORG}`]: input.orgId,
            [`aws:PrincipalTag/${TENANT_KEY_USER_TAG}`]: input.deployment,
          },
          StringLike: {
            'kms:ViaService': 's3.*.amazonaws.com',
            [`kms:EncryptionContext:${CONTEXT_S3_ARN}`]: `arn:${partition}:s3:::*/${FILES_ROOT}${input.orgId}/*`,
          },
          'ForAllValues:StringEquals': { 'kms:EncryptionContextKeys': [CONTEXT_ORG, CONTEXT_S3_ARN] },
        },
      },
      {
        // Belt and braces: even an IAM policy added later cannot use this key for another tenant.
        Sid: 'DenyUseUnderAnyOtherTenantContext',
        Effect: 'Deny',
        Principal: '*',
        Action: [...CRYPTO_ACTIONS],
        Resource: '*',
        Condition: { StringNotEquals: { [`kms:EncryptionContext:${CONTEXT_ORG}`]: input.orgId } },
      },
      {
        // BoolIfExists also denies when the key is absent, i.e. any grant not made by an AWS service.
        Sid: 'DenyGrantsExceptForAwsResources',
        Effect: 'Deny',
        Principal: '*',
        Action: 'kms:CreateGrant',
        Resource: '*',
        Condition: { BoolIfExists: { 'kms:GrantIsForAWSResource': 'false' } },
      },
    ],
  };
}

// ---------------------------------------------------------------------------------------------
// Bring your own key: the same expectations, checked on a policy we did not write.

const CONCRETE_CRYPTO_ACTIONS = [
  'kms:Encrypt',
  'kms:Decrypt',
  'kms:ReEncryptFrom',
  'kms:ReEncryptTo',
  'kms:GenerateDataKey',
  'kms:GenerateDataKeyWithoutPlaintext',
  'kms:GenerateDataKeyPair',
] as const;

export type ByokProblem =
  | 'policy_not_json'
  | 'api_role_not_allowed'
  | 'use_not_bound_to_org'
  | 'open_to_everyone'
  | 'grants_not_restricted'
  | 'deletion_not_delegated'
  | 'files_not_allowed';

/**
 * What the lifecycle needs on a bring-your-own key to shred its tenant: read the tags (ownership
 * check) and schedule the deletion, through this account's IAM.
 */
export const SHRED_ACTIONS = ['kms:ListResourceTags', 'kms:ScheduleKeyDeletion'] as const;

export interface ByokFinding {
  readonly problem: ByokProblem;
  readonly detail: string;
}

function asList(v: string | readonly string[] | undefined): string[] {
  if (v === undefined) return [];
  return typeof v === 'string' ? [v] : [...v];
}

function principalsOf(s: PolicyStatement): string[] {
  if (s.Principal === '*') return ['*'];
  return [...asList(s.Principal?.AWS), ...asList(s.Principal?.Service)];
}

/** Does an IAM action pattern (e.g. `kms:*`, `kms:GenerateDataKey*`) cover `action`? */
export function actionMatches(pattern: string, action: string): boolean {
  const re = new RegExp(
    '^' +
      pattern
        .split('*')
        .map((p) => p.replace(/[.+?^${}()|[\]\\]/g, '\\$&'))
        .join('.*') +
      '$',
    'i',
  );
  return re.test(action);
}

function grants(s: PolicyStatement, action: string): boolean {
  return asList(s.Action as string | string[]).some((p) => actionMatches(p, action));
}

/** Is `key` required, by StringEquals (or `operator`), to be exactly `value`? */
function requires(s: PolicyStatement, key: string, value: string, operator = 'StringEquals'): boolean {
  for (const [op, values] of Object.entries(s.Condition ?? {})) {
    if (op !== operator) continue;
    const v = Object.entries(values).find(([k]) => k.toLowerCase() === key.toLowerCase())?.[1];
    if (v === undefined || typeof v === 'boolean') continue;
    const list = asList(v);
    if (list.length === 1 && list[0] === value) return true;
  }
  return false;
}

export interface ByokExpectations {
  readonly account: string;
  readonly deployment: string;
  readonly orgId: string;
  readonly partition?: string;
}

/**
 * Checks an external key's policy against what Bulwark requires of a tenant key. Returns every
 * problem found (empty = acceptable). Conservative: a policy that reaches the same effect through
 * constructs this checker does not understand is refused, not guessed at.
 *
 *   - the API (principals tagged `bulwark:tenant-key-user = <deployment>` in this account) is
 *     allowed kms:GenerateDataKey and kms:Decrypt under `kms:EncryptionContext:org_id = <org>`;
 *   - every statement allowing a cryptographic operation requires that same org_id;
 *   - no statement allows any principal unconditionally;
 *   - kms:CreateGrant is denied to everyone unless kms:GrantIsForAWSResource;
 *   - the account's IAM may read the tags and schedule deletion (`SHRED_ACTIONS`), unconditioned,
 *     and no Deny covers either: shredding the tenant must be able to destroy the key;
 *   - tenant files (`files_not_allowed`): kms:GenerateDataKey and kms:Decrypt allowed to the same
 *     tagged principals under the same org_id, through S3 (`kms:ViaService` `s3.*.amazonaws.com`)
 *     and for an object under `orgs/<org>/` (`kms:EncryptionContext:aws:s3:arn`), as
 *     `TenantFilesThroughS3UnderItsOwnPrefix` does. Without it S3 cannot encrypt the tenant's
 *     files under the key, so the file routes refuse the tenant (FILES_KEY_UNSUPPORTED).
 */
export function checkByokPolicy(policyJson: string, expect: ByokExpectations): ByokFinding[] {
  let doc: PolicyDocument;
  try {
    doc = JSON.parse(policyJson) as PolicyDocument;
    if (!Array.isArray(doc.Statement)) throw new Error('no Statement list');
  } catch (e) {
    return [{ problem: 'policy_not_json', detail: (e as Error).message }];
  }
  const findings: ByokFinding[] = [];
  const allows = doc.Statement.filter((s) => s.Effect === 'Allow');
  const root = `arn:${expect.partition ?? 'aws'}:iam::${expect.account}:root`;
  const orgKey = `kms:EncryptionContext:${CONTEXT_ORG}`;
  const tagKey = `aws:PrincipalTag/${TENANT_KEY_USER_TAG}`;

  for (const action of TENANT_USE_ACTIONS) {
    const forApi = allows.some(
      (s) =>
        principalsOf(s).some((p) => p === root || p === expect.account) &&
        grants(s, action) &&
        requires(s, orgKey, expect.orgId) &&
        requires(s, tagKey, expect.deployment),
    );
    if (!forApi) {
      findings.push({
        problem: 'api_role_not_allowed',
        detail: `${action} must be allowed to ${root} with StringEquals ${tagKey} = ${expect.deployment} and ${orgKey} = ${expect.orgId}`,
      });
    }
  }
  for (const s of allows) {
    if (CONCRETE_CRYPTO_ACTIONS.some((a) => grants(s, a)) && !requires(s, orgKey, expect.orgId)) {
      findings.push({
        problem: 'use_not_bound_to_org',
        detail: `statement ${s.Sid ?? '(no Sid)'} allows cryptographic use without ${orgKey} = ${expect.orgId}`,
      });
    }
    const everyone = principalsOf(s).some((p) => p === '*' || /^arn:[^:]+:iam::\*:/.test(p));
    if (everyone && !s.Condition) {
      findings.push({ problem: 'open_to_everyone', detail: `statement ${s.Sid ?? '(no Sid)'} allows any principal` });
    }
  }

  for (const action of SHRED_ACTIONS) {
    const delegated = allows.some(
      (s) => principalsOf(s).some((p) => p === root || p === expect.account) && grants(s, action) && !s.Condition,
    );
    const denied = doc.Statement.some((s) => s.Effect === 'Deny' && grants(s, action));
    if (!delegated || denied) {
      findings.push({
        problem: 'deletion_not_delegated',
        detail: `${action} must be allowed to ${root} without conditions, and not denied, so that shredding the tenant can delete the key`,
      });
    }
  }

  const partition = expect.partition ?? 'aws';
  const objects = `arn:${partition}:s3:::*/${FILES_ROOT}${expect.orgId}/*`;
  for (const action of TENANT_USE_ACTIONS) {
    const forFiles = allows.some(
      (s) =>
        principalsOf(s).some((p) => p === root || p === expect.account) &&
        grants(s, action) &&
        requires(s, orgKey, expect.orgId) &&
        requires(s, tagKey, expect.deployment) &&
        requires(s, 'kms:ViaService', 's3.*.amazonaws.com', 'StringLike') &&
        requires(s, `kms:EncryptionContext:${CONTEXT_S3_ARN}`, objects, 'StringLike'),
    );
    if (!forFiles) {
      findings.push({
        problem: 'files_not_allowed',
        detail: `${action} must be allowed to ${root} as in ${FILES_STATEMENT_SID}: ${tagKey} = ${expect.deployment}, ${orgKey} = ${expect.orgId}, StringLike kms:ViaService = s3.*.amazonaws.com and kms:EncryptionContext:${CONTEXT_S3_ARN} = ${objects}`,
      });
    }
  }

  const grantDeny = doc.Statement.some((s) => {
    if (s.Effect !== 'Deny' || !grants(s, 'kms:CreateGrant')) return false;
    if (!principalsOf(s).includes('*')) return false;
    const cond = s.Condition ?? {};
    const ifExists = cond['BoolIfExists']?.['kms:GrantIsForAWSResource'];
    const notEq = cond['StringNotEquals']?.['kms:GrantIsForAWSResource'];
    return String(ifExists) === 'false' || String(notEq) === 'true';
  });
  if (!grantDeny) {
    findings.push({
      problem: 'grants_not_restricted',
      detail: 'needs a Deny of kms:CreateGrant to Principal "*" with BoolIfExists kms:GrantIsForAWSResource = false',
    });
  }
  return findings;
}
