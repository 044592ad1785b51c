/**
 * The per-tenant budget's rows (docs/rate-limits.md "Per tenant"): the tenant API's role may update
 * counter items of the budget table and nothing else; the table's key serves it only through DynamoDB.
 */
import type { AccessRow } from './rows';

const API = 'Edge/TenantGuard/Api/Role';
const TABLE = '${Edge/TenantGuard/Budget/Table}';
const KEY = '${Edge/TenantGuard/Budget/Key}';
/** A counter item's key: `<org_id>#<window start>`. */
const counter = { 'dynamodb:LeadingKeys': ['${org:A}#1767225600'] };
const viaDynamoDb = { 'kms:ViaService': 'dynamodb.${region}.amazonaws.com', 'kms:CallerAccount': '${account}' };

export const BUDGET_MUST_ALLOW: readonly AccessRow[] = [
  {
    id: 'tenant-api-spends-budget',
    who: { role: API },
    action: 'dynamodb:UpdateItem',
    resource: TABLE,
    context: counter,
    why: "the tenant API counts each request against its organisation's budget with one conditional UpdateItem, through the VPC's DynamoDB endpoint",
  },
  ...(['kms:Decrypt', 'kms:GenerateDataKey'] as const).map((action): AccessRow => ({
    id: `tenant-api-budget-key-${action === 'kms:Decrypt' ? 'decrypt' : 'data-key'}-through-dynamodb`,
    who: { role: API },
    action,
    resource: KEY,
    context: viaDynamoDb,
    why: "the counter table is encrypted with its own key: DynamoDB uses it on the API role's behalf",
  })),
];

export const BUDGET_MUST_DENY: readonly AccessRow[] = [
  ...(
    [
      ['read', 'dynamodb:GetItem', counter],
      ['query', 'dynamodb:Query', counter],
      ['scan', 'dynamodb:Scan', {}],
      ['put', 'dynamodb:PutItem', counter],
      ['delete', 'dynamodb:DeleteItem', counter],
      ['batch-write', 'dynamodb:BatchWriteItem', counter],
    ] as const
  ).map(([verb, action, context]): AccessRow => ({
    id: `tenant-api-cannot-${verb}-budgets`,
    who: { role: API },
    action,
    resource: TABLE,
    context,
    why: 'the API only counts: a compromised API function cannot read, reset or remove any counter',
  })),
  {
    id: 'tenant-api-cannot-update-non-counter-items',
    who: { role: API },
    action: 'dynamodb:UpdateItem',
    resource: TABLE,
    context: { 'dynamodb:LeadingKeys': ['limits'] },
    why: 'updates are confined to org-id-shaped counter keys (dynamodb:LeadingKeys)',
  },
  {
    id: 'tenant-api-budget-key-only-through-dynamodb',
    who: { role: API },
    action: 'kms:Decrypt',
    resource: KEY,
    why: 'the budget key decrypts nothing the API role sends KMS directly',
  },
  {
    id: 'authorizer-cannot-spend-budgets',
    who: { role: 'Edge/TenantGuard/Authorizer/Role' },
    action: 'dynamodb:UpdateItem',
    resource: TABLE,
    context: counter,
    why: 'only the tenant API, after a verified credential has named the organisation, spends a budget',
  },
];
