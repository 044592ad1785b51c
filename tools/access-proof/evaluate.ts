/**
 * Evaluates access-proof rows against a stage model with `@cloud-copilot/iam-simulate` (AGPL-3.0, a
 * dev-only dependency: only tools/ and test/ may import it, never lib/ or lambda/).
 *
 * Each request is first validated by `runSimulation` (policy grammar, action, resource type); the
 * verdict then comes from the same engine's `authorize` with the full request context, because the
 * validating entry point drops `kms:EncryptionContext:<key>` context keys (it only expands
 * `prefix/variable` keys), and those are exactly the keys tenant isolation rests on.
 */
import * as path from 'node:path';
import { runSimulation, type RequestAnalysis, type Simulation } from '@cloud-copilot/iam-simulate';
import type { StatementAnalysis } from '@cloud-copilot/iam-simulate/dist/cjs/StatementAnalysis';
import { tenantKeyPolicy, tenantKeyTags } from '../../lambda/tenant-keys/key-policy';
import type { EndpointModel, NamedPolicy, PolicyJson, ResourceModel, RoleModel, StageModel } from './model';
import type { AccessRow, Verdict } from './rows';

/* eslint-disable @typescript-eslint/no-require-imports */
// The engine behind runSimulation; the package exports only its root, so it is loaded by file.
const engineDir = path.dirname(require.resolve('@cloud-copilot/iam-simulate'));
const { authorize } = require(path.join(engineDir, 'core_engine', 'CoreSimulatorEngine.js')) as {
  authorize(input: unknown): RequestAnalysis;
};
const { AwsRequestImpl } = require(path.join(engineDir, 'request', 'request.js')) as {
  AwsRequestImpl: new (
    principal: string,
    resource: { resource: string; accountId: string },
    action: string,
    ctx: unknown,
  ) => unknown;
};
const { RequestContextImpl } = require(path.join(engineDir, 'requestContext.js')) as {
  RequestContextImpl: new (values: Record<string, string | string[]>) => unknown;
};
const { DiscoveryContextKeyConstraints } = require(
  path.join(engineDir, 'context_keys', 'discoveryContextKeyConstraints.js'),
) as { DiscoveryContextKeyConstraints: new (c: unknown[]) => unknown };
const { loadPolicy } = require('@cloud-copilot/iam-policy') as {
  loadPolicy(policy: unknown, meta?: { name: string }): unknown;
};
/* eslint-enable @typescript-eslint/no-require-imports */

/** Sample organisations for tenant keys created at runtime. */
export const SAMPLE_ORGS: Readonly<Record<string, string>> = {
  A: '0a0a0a0a-0000-4000-8000-00000000000a',
  B: '0b0b0b0b-0000-4000-8000-00000000000b',
};

/** The principal every resource policy must still stop: an administrator of the account. */
const ADMINISTRATOR = 'Administrator (Action * on Resource *)';

export interface RowResult {
  readonly row: AccessRow;
  readonly stage: string;
  readonly verdict: Verdict;
  /** The statements that decided the verdict, or why nothing allowed it. */
  readonly decidedBy: readonly string[];
}

interface Request {
  readonly principal: string;
  readonly principalLabel: string;
  readonly identityPolicies: readonly NamedPolicy[];
  readonly action: string;
  readonly resource: string;
  readonly resourcePolicy?: NamedPolicy;
  readonly context: Record<string, string | string[]>;
  /** The VPC endpoint the request passes (sent from a VPC). */
  readonly endpoint?: EndpointModel;
  /** Sent from a VPC without an endpoint for the action's service: why it cannot leave. */
  readonly noNetworkPath?: string;
}

/** Endpoint service names that differ from the action's service prefix. */
const ENDPOINT_SERVICE: Readonly<Record<string, string>> = { cloudwatch: 'monitoring' };

/**
 * Another account's resource: assumed to admit everyone (the attacker's own bucket or key), so that
 * only the caller's side, identity and endpoint policies, can refuse the request.
 */
const FOREIGN_RESOURCE_POLICY: NamedPolicy = {
  name: "another account's resource (assumed to admit everyone)",
  document: {
    Version: '2012-10-17',
    Statement: [{ Effect: 'Allow', Principal: '*', Action: '*', Resource: '*' }],
  },
};

function tenantKey(model: StageModel, label: string): ResourceModel {
  const orgId = SAMPLE_ORGS[label];
  if (!orgId) throw new Error(`no sample organisation ${label}`);
  const id = `${orgId.slice(0, 8)}-1111-4111-8111-${orgId.slice(24)}`;
  const tags = Object.fromEntries(tenantKeyTags(model.stageName, orgId).map((t) => [t.TagKey, t.TagValue]));
  return {
    path: `tenant key of organisation ${label}`,
    type: 'AWS::KMS::Key',
    arn: `arn:aws:kms:${model.region}:${model.account}:key/${id}`,
    name: id,
    region: model.region,
    account: model.account,
    tags,
    policy: {
      name: `tenantKeyPolicy(org ${label})`,
      document: tenantKeyPolicy({
        account: model.account,
        deployment: model.stageName,
        orgId,
      }) as unknown as PolicyJson,
    },
  };
}

function resourceAt(model: StageModel, p: string): ResourceModel {
  const r = model.resources.get(p);
  if (!r) throw new Error(`${model.stageName}: no resource at ${p}`);
  return r;
}

/** Expands `${...}` references in a row string. */
export function expand(model: StageModel, text: string): string {
  return text.replace(/\$\{([^}]+)\}/g, (_m, ref: string) => {
    if (ref === 'account') return model.account;
    if (ref === 'region') return model.region;
    if (ref === 'deployment') return model.stageName;
    if (ref === 'cloudformation-responses') {
      return `arn:aws:s3:::cloudformation-custom-resource-response-${model.region.replace(/-/g, '')}`;
    }
    if (ref.startsWith('org:')) {
      const org = SAMPLE_ORGS[ref.slice('org:'.length)];
      if (!org) throw new Error(`no sample organisation ${ref}`);
      return org;
    }
    if (ref.startsWith('tenant-key:')) return tenantKey(model, ref.slice('tenant-key:'.length)).arn;
    if (ref.startsWith('dbuser:')) {
      const proxies = [...model.proxyUsers.keys()];
      if (proxies.length !== 1) throw new Error(`${model.stageName}: expected one RDS Proxy, found ${proxies.length}`);
      return `arn:aws:rds-db:${model.region}:${model.account}:dbuser:${proxies[0]}/${ref.slice('dbuser:'.length)}`;
    }
    const [p, attr] = ref.split('|');
    if (p === undefined) throw new Error(`access proof: reference ${ref} names no resource`);
    // A role is named by its ARN (what sts:AssumeRole addresses).
    const role = attr === undefined ? model.roles.get(p) : undefined;
    if (role) return role.arn;
    const r = resourceAt(model, p);
    if (attr === 'name') return r.name;
    if (attr === 'region') return r.region;
    if (attr) throw new Error(`unknown reference attribute ${attr}`);
    return r.arn;
  });
}

/** The resource a request names: the stage resource (or runtime tenant key) with that ARN. */
function targetOf(model: StageModel, row: AccessRow, arn: string): ResourceModel | undefined {
  if (row.resourcePolicyOf) return resourceAt(model, row.resourcePolicyOf);
  const key = /^\$\{tenant-key:([^}]+)\}$/.exec(row.resource)?.[1];
  if (key) return tenantKey(model, key);
  const resources = [...model.resources.values()];
  return (
    resources.find((r) => r.arn === arn) ??
    // Objects in a bucket are governed by the bucket's policy.
    resources.find((r) => r.type === 'AWS::S3::Bucket' && arn.startsWith(`${r.arn}/`)) ??
    // A log stream belongs to its group; a recovery point to the vault named by the row's path.
    resources.find((r) => r.type === 'AWS::Logs::LogGroup' && arn.startsWith(`${r.arn}:`))
  );
}

function roleAt(model: StageModel, p: string): RoleModel {
  const role = model.roles.get(p);
  if (!role) throw new Error(`${model.stageName}: no role at ${p}`);
  return role;
}

/**
 * The account that owns the resource (`aws:ResourceAccount`): the stage resource's, the row's, or the
 * one in the ARN. A request that names no resource (`*`) gets none: whether AWS sends the key then is
 * not documented per action, so the harness takes the case that is harder to allow.
 */
function resourceAccountOf(row: AccessRow, resource: string, target: ResourceModel | undefined): string | undefined {
  const explicit = row.context?.['aws:ResourceAccount'];
  if (explicit !== undefined) return undefined; // already in the context, expanded there
  if (target) return target.account;
  if (resource === '*') return undefined;
  const account = resource.split(':')[4];
  if (!account) {
    throw new Error(`row ${row.id}: whose resource is ${resource}? Name its account in context (aws:ResourceAccount)`);
  }
  return account;
}

/** The VPC a request is sent from, or undefined when it is sent from outside any VPC. */
function vpcOf(model: StageModel, row: AccessRow, role: RoleModel | undefined): string | undefined {
  const network = row.network;
  if (network && 'outsideVpc' in network) return undefined;
  if (network && 'insideVpcOf' in network) {
    const from = roleAt(model, network.insideVpcOf);
    if (!from.vpc) throw new Error(`row ${row.id}: ${network.insideVpcOf} runs no function in a VPC`);
    return from.vpc;
  }
  // Neither is a request the function's code sends to an AWS endpoint (see AccessRow.network).
  if (row.action === 'rds-db:connect' || row.context?.['kms:ViaService'] !== undefined) return undefined;
  return role?.vpc;
}

/** The endpoint a request from `vpc` passes, or why it has no way out. */
function throughEndpoint(
  model: StageModel,
  row: AccessRow,
  vpc: string | undefined,
): Pick<Request, 'endpoint' | 'noNetworkPath'> {
  if (vpc === undefined) return {};
  const prefix = row.action.split(':')[0] ?? '';
  const service = ENDPOINT_SERVICE[prefix] ?? prefix;
  const endpoint = model.endpoints.get(vpc)?.get(service);
  if (endpoint) return { endpoint };
  return { noNetworkPath: `sent from ${vpc}, which has no ${service} endpoint and no route to the internet` };
}

function requestsFor(model: StageModel, row: AccessRow): { requests: Request[]; notes: string[] } {
  const resource = expand(model, row.resource);
  const target = targetOf(model, row, resource);
  const context: Record<string, string | string[]> = {
    'aws:SecureTransport': 'true',
    'aws:RequestedRegion': model.region,
  };
  const resourceAccount = resourceAccountOf(row, resource, target);
  if (resourceAccount !== undefined) context['aws:ResourceAccount'] = resourceAccount;
  for (const [k, v] of Object.entries(target?.tags ?? {})) context[`aws:ResourceTag/${k}`] = v;
  for (const [k, v] of Object.entries(row.context ?? {})) {
    context[k] = typeof v === 'string' ? expand(model, v) : v.map((x) => expand(model, x));
  }
  // Assuming a role is decided by the role's trust policy, which IAM reads as its resource policy.
  const trust = row.action.startsWith('sts:')
    ? [...model.roles.values()].find((r) => r.arn === resource)?.trustPolicy
    : undefined;
  const owner = context['aws:ResourceAccount'];
  const foreign = !target && typeof owner === 'string' && owner !== model.account;
  const base = {
    action: row.action,
    resource,
    resourcePolicy: trust ?? (foreign ? FOREIGN_RESOURCE_POLICY : target?.policy),
  };
  /** The request as sent from its network: through the VPC endpoint of its service, if from a VPC. */
  const sent = (request: Request, role?: RoleModel): Request => {
    const via = throughEndpoint(model, row, vpcOf(model, row, role));
    if (!via.endpoint) return { ...request, ...via };
    return {
      ...request,
      ...via,
      context: { ...request.context, 'aws:SourceVpc': via.endpoint.vpc, 'aws:SourceVpce': via.endpoint.id },
    };
  };
  const asRole = (role: RoleModel): Request => {
    if (role.unknownManagedPolicies.length > 0) {
      throw new Error(
        `${role.path} holds AWS managed policies the harness cannot read: ${role.unknownManagedPolicies.join(', ')}`,
      );
    }
    const tags: Record<string, string> = {};
    for (const [k, v] of Object.entries(role.tags)) tags[`aws:PrincipalTag/${k}`] = v;
    return sent(
      {
        ...base,
        principal: `arn:aws:sts::${role.account}:assumed-role/${role.name}/session`,
        principalLabel: role.path,
        identityPolicies: role.policies,
        context: {
          ...context,
          ...tags,
          'aws:PrincipalArn': role.arn,
          'aws:PrincipalAccount': role.account,
          'aws:PrincipalType': 'AssumedRole',
          ...(row.action.startsWith('kms:') ? { 'kms:CallerAccount': role.account } : {}),
        },
      },
      role,
    );
  };
  const who = row.who;
  if ('role' in who) return { requests: [asRole(roleAt(model, who.role))], notes: [] };
  if ('service' in who) {
    const service = expand(model, who.service);
    return {
      requests: [
        sent({
          ...base,
          principal: service,
          principalLabel: service,
          identityPolicies: [],
          context: { ...context, 'aws:PrincipalServiceName': service, 'aws:PrincipalIsAWSService': 'true' },
        }),
      ],
      notes: [],
    };
  }
  if ('administrator' in who) {
    const account = who.account ?? model.account;
    const arn = `arn:aws:iam::${account}:role/Administrator`;
    return {
      requests: [
        sent({
          ...base,
          principal: `arn:aws:sts::${account}:assumed-role/Administrator/session`,
          principalLabel: account === model.account ? ADMINISTRATOR : `${ADMINISTRATOR} of account ${account}`,
          identityPolicies: [
            {
              name: 'AdministratorAccess',
              document: { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: '*', Resource: '*' }] },
            },
          ],
          context: {
            ...context,
            'aws:PrincipalArn': arn,
            'aws:PrincipalAccount': account,
            ...(row.action.startsWith('kms:') ? { 'kms:CallerAccount': account } : {}),
          },
        }),
      ],
      notes: [],
    };
  }
  const unevaluated = who.unevaluated ?? {};
  const notes: string[] = [];
  const requests: Request[] = [];
  for (const role of model.roles.values()) {
    if (role.unknownManagedPolicies.length > 0) {
      const reason = unevaluated[role.path];
      if (!reason) {
        throw new Error(
          `row ${row.id}: ${role.path} holds ${role.unknownManagedPolicies.join(', ')}; list it in unevaluated with a reason`,
        );
      }
      notes.push(`not evaluated: ${role.path} (${reason})`);
      continue;
    }
    requests.push(asRole(role));
  }
  return { requests, notes };
}

function label(s: StatementAnalysis, policy: string): string {
  const st = s.statement as unknown as { sid(): string | undefined; index(): number; toJSON(): unknown };
  const sid = st.sid();
  return `${policy} ${sid ? `Sid ${sid}` : `statement #${st.index()}`}: ${JSON.stringify(st.toJSON())}`;
}

async function evaluate(
  model: StageModel,
  row: AccessRow,
  request: Request,
): Promise<{ verdict: Verdict; decidedBy: string[] }> {
  if (request.noNetworkPath) return { verdict: 'deny', decidedBy: [`no network path: ${request.noNetworkPath}`] };
  // The account the resource is in; a request that names none is made in the caller's account.
  const owner = [request.context['aws:ResourceAccount'], request.context['aws:PrincipalAccount']].find(
    (a): a is string => typeof a === 'string',
  );
  const accountId = owner ?? model.account;
  const simulation: Simulation = {
    request: {
      principal: request.principal,
      action: request.action,
      resource: { resource: request.resource, accountId },
      contextVariables: request.context,
    },
    identityPolicies: request.identityPolicies.map((p) => ({ name: p.name, policy: p.document })),
    serviceControlPolicies: [],
    resourceControlPolicies: [],
    resourcePolicy: request.resourcePolicy?.document,
    ...(request.endpoint?.policy
      ? { vpcEndpointPolicies: [{ name: request.endpoint.policy.name, policy: request.endpoint.policy.document }] }
      : {}),
  };
  // Validation: malformed policies, unknown actions, an ARN of the wrong type, or a context key that
  // does not apply to the action (other than an encryption context pair) fail the row.
  const checked = await runSimulation(simulation, {});
  if (checked.resultType === 'error') {
    throw new Error(`row ${row.id} (${request.principalLabel}): ${JSON.stringify(checked.errors)}`);
  }
  if (checked.resultType === 'single') {
    const ignored = (checked.result.ignoredContextKeys ?? []).filter(
      (k) =>
        !/^kms:EncryptionContext:/i.test(k) &&
        !/^aws:(ResourceTag|PrincipalTag)\//i.test(k) &&
        !/^aws:Principal(Arn|Account|Type|ServiceName|IsAWSService)$/i.test(k) &&
        !/^aws:(ResourceAccount|SourceVpc|SourceVpce)$/i.test(k) &&
        !/^(aws:SecureTransport|aws:RequestedRegion|kms:CallerAccount)$/i.test(k),
    );
    if (ignored.length > 0)
      throw new Error(`row ${row.id}: context keys do not apply to ${row.action}: ${ignored.join(', ')}`);
  }

  const analysis = authorize({
    request: new AwsRequestImpl(
      request.principal,
      { resource: request.resource, accountId },
      request.action,
      new RequestContextImpl(request.context),
    ),
    sessionPolicy: undefined,
    identityPolicies: request.identityPolicies.map((p) => loadPolicy(p.document, { name: p.name })),
    serviceControlPolicies: [],
    resourceControlPolicies: [],
    resourcePolicy: request.resourcePolicy
      ? loadPolicy(request.resourcePolicy.document, { name: request.resourcePolicy.name })
      : undefined,
    permissionBoundaries: undefined,
    vpcEndpointPolicies: request.endpoint?.policy
      ? [loadPolicy(request.endpoint.policy.document, { name: request.endpoint.policy.name })]
      : undefined,
    simulationParameters: {
      simulationMode: 'Strict',
      discoveryContextKeyConstraints: new DiscoveryContextKeyConstraints([]),
    },
    serviceSettings: { s3: { blockPublicAccess: undefined } },
  });

  const rp = request.resourcePolicy?.name ?? '(no resource policy)';
  const id = analysis.identityAnalysis;
  const res = analysis.resourceAnalysis;
  const vpce = analysis.endpointAnalysis;
  const ep = request.endpoint ? `endpoint policy of ${request.endpoint.path}` : '';
  const idLabel = (s: StatementAnalysis): string => label(s, s.policyId);
  if (analysis.result === 'Allowed') {
    return {
      verdict: 'allow',
      decidedBy: [
        ...(id?.allowStatements ?? []).map(idLabel),
        ...(res?.allowStatements ?? []).map((s) => label(s, rp)),
        ...(vpce?.allowStatements ?? []).map((s) => label(s, ep)),
        ...(request.endpoint && !request.endpoint.policy
          ? [`${request.endpoint.path} has no policy (admits all)`]
          : []),
      ],
    };
  }
  if (analysis.result === 'ExplicitlyDenied') {
    return {
      verdict: 'deny',
      decidedBy: [
        ...(id?.denyStatements ?? []).map(idLabel),
        ...(res?.denyStatements ?? []).map((s) => label(s, rp)),
        ...(vpce?.denyStatements ?? []).map((s) => label(s, ep)),
      ].map((s) => `explicit Deny: ${s}`),
    };
  }
  const reasons: string[] = [];
  reasons.push(
    id?.allowStatements.length
      ? `identity policies allow (${id.allowStatements.map((s) => s.policyId).join(', ')})`
      : 'no identity policy statement allows',
  );
  reasons.push(
    res?.allowStatements.length
      ? `${rp} allows`
      : request.resourcePolicy
        ? `no statement of ${rp} allows`
        : 'the resource has no resource policy',
  );
  if (vpce && vpce.result !== 'Allowed') reasons.push(`no statement of the ${ep} allows`);
  return { verdict: 'deny', decidedBy: [`implicit deny: ${reasons.join('; ')}`] };
}

/** Evaluates one row in one stage. */
export async function evaluateRow(model: StageModel, row: AccessRow): Promise<RowResult> {
  const { requests, notes } = requestsFor(model, row);
  const allowedBy: string[] = [];
  const deniedBy: string[] = [];
  let allowed = false;
  for (const request of requests) {
    let { verdict, decidedBy } = await evaluate(model, row, request);
    // rds-db:connect through RDS Proxy also needs the proxy to hold a secret for that user.
    const dbuser = /:dbuser:(prx-[^/]+)\/(.+)$/.exec(request.resource);
    if (row.action === 'rds-db:connect' && dbuser && verdict === 'allow') {
      const [, proxy, user] = dbuser;
      if (proxy === undefined || user === undefined) {
        throw new Error(`access proof: row ${row.id} has no proxy or user in ${request.resource}`);
      }
      const registered = model.proxyUsers.get(proxy) ?? [];
      if (!registered.includes(user)) {
        verdict = 'deny';
        decidedBy = [`the RDS Proxy registers no secret for ${user} (it registers ${registered.join(', ')})`];
      } else {
        decidedBy = [...decidedBy, `the RDS Proxy registers ${user}`];
      }
    }
    const who = requests.length > 1 ? `${request.principalLabel}: ` : '';
    if (verdict === 'allow') allowed = true;
    // An allow no statement decided (the service allows the action to everyone) still counts.
    const reasons = decidedBy.length > 0 ? decidedBy : ['allowed without a policy statement (the service allows it)'];
    (verdict === 'allow' ? allowedBy : deniedBy).push(...reasons.map((d) => who + d));
  }
  if (allowed) return { row, stage: model.stageName, verdict: 'allow', decidedBy: allowedBy };
  return {
    row,
    stage: model.stageName,
    verdict: 'deny',
    decidedBy: requests.length > 1 ? [`all ${requests.length} roles denied`, ...notes] : [...deniedBy, ...notes],
  };
}

export async function evaluateRows(model: StageModel, rows: readonly AccessRow[]): Promise<RowResult[]> {
  const out: RowResult[] = [];
  for (const row of rows) out.push(await evaluateRow(model, row));
  return out;
}
