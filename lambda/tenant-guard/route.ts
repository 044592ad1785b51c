/**
 * The one shape of a tenant API route (routes/*.ts), its context and its result. A route either
 * runs inside the caller's entered tenant (`scope: 'tenant'`: the database re-checked the
 * membership or support grant, `ctx.tenant` holds the grid) or on the authenticated caller without
 * entering a tenant (`scope: 'caller'`: reading and restoring a tenant in its grace period, opening
 * a support grant, creating an organisation). Every route runs inside the request's one transaction.
 */
import type { SqlClient } from '../shared/migrations';
import type { SecretCipher } from '../shared/secret-cipher';
import type { LambdaClient } from '@aws-sdk/client-lambda';
import type { S3Client } from '@aws-sdk/client-s3';
import type { FilesCredentials } from './files-credentials';
import type { Caller, TenantContext } from './guard';

export type Scope = 'tenant' | 'caller';

/** What the tenant-keys routes need beyond the database: the provisioner and the export bucket. */
export interface TenantKeysApiDeps {
  /** Invokes the tenant-keys provisioner function. */
  readonly lambda: Pick<LambdaClient, 'send'>;
  /** Name or ARN of the provisioner function. */
  readonly provisionerFunction: string;
  /** Signs export download URLs (the API role's credentials: s3:GetObject on exports/*). */
  readonly s3: S3Client;
  /** The tenant-keys export bucket. */
  readonly exportBucket: string;
  /** Download link lifetime in seconds, 1-900. @default 900 */
  readonly exportUrlTtlSeconds?: number;
}

/** What the file routes need: the file store's bucket and S3 clients signing as the files role. */
export interface FilesApiDeps {
  /** The tenant file store's bucket. */
  readonly bucket: string;
  /**
   * An S3 client acting as `credentials` (the files role's session for the caller's organisation):
   * presigns uploads and downloads, deletes objects. Never the API function's own role.
   */
  readonly s3For: (credentials: FilesCredentials) => S3Client;
}

export interface RouteRequest {
  readonly method: string;
  readonly path: string;
  /** Path parameters, percent-decoded. */
  readonly params: Readonly<Record<string, string>>;
  readonly body: unknown;
  readonly query: Readonly<Record<string, string | undefined>>;
  readonly ip: string | null;
  readonly userAgent: string | null;
}

export type Json = Record<string, unknown> | unknown[];

export interface RouteResult {
  readonly status: number;
  readonly body: Json;
  /** A CSV document instead of JSON (the audit export); `body` is then ignored. */
  readonly csv?: { readonly filename: string; readonly text: string };
  /**
   * Runs after COMMIT (never inside the transaction: nothing may act on rows that could still roll
   * back). Its result is merged into the JSON body. It must not throw.
   */
  readonly afterCommit?: () => Promise<Record<string, unknown>>;
}

/** What routes use beyond the transaction, resolved by `createApi` (the cipher per request). */
export interface RouteServices {
  /**
   * Seals per-organisation secrets with the key of the transaction's tenant; without it the webhook
   * secret routes answer KEY_UNAVAILABLE.
   */
  readonly cipher: SecretCipher | undefined;
  /** Provisioner and export bucket; without them those routes answer TENANT_KEYS_UNAVAILABLE. */
  readonly tenantKeys: TenantKeysApiDeps | undefined;
  /** Export download link lifetime, validated at construction. */
  readonly exportUrlTtlSeconds: number;
  /** The file store; without it the file routes answer FILES_UNAVAILABLE. */
  readonly files: FilesApiDeps | undefined;
  readonly now: () => Date;
}

export interface RouteContext<S extends Scope = Scope> extends RouteServices {
  readonly tx: SqlClient;
  readonly caller: Caller;
  /** The entered tenant (tenant routes); caller routes have none. */
  readonly tenant: S extends 'tenant' ? TenantContext : undefined;
  /** The organisation addressed: X-Bulwark-Org when given, else the credential's. */
  readonly orgId: string;
  /** Whether the request named a support grant (X-Bulwark-Support-Grant). */
  readonly supportGrant: boolean;
  /**
   * The files role's credentials the authorizer minted for the token's own organisation
   * (`caller.orgId`); none for API keys, or when STS failed.
   */
  readonly filesCredentials: FilesCredentials | undefined;
  readonly req: RouteRequest;
  /**
   * Caller routes: enters `orgId` as `userId` (under `supportGrantId` when given) for the rest of
   * the transaction, once the route's action is done, so that its audit row can be appended
   * (audit_log admits rows for the context's organisation only). The database re-checks the
   * membership or grant as on every request. The audit actor stays the caller.
   */
  readonly enter: (userId: string, orgId: string, supportGrantId?: string | null) => Promise<void>;
  /**
   * Caller routes: the database itself entered `orgId` for the rest of the transaction
   * (app.create_organisation leaves its creator a read-only context in the new tenant,
   * migrations/0400), so audits go to that tenant's trail.
   */
  readonly entered: (orgId: string) => void;
  /**
   * Audits as the caller, in the request's transaction, in the trail of the tenant entered (by the
   * API for tenant routes, by `enter` for caller routes): actor, IP, user agent, support grant and
   * API key come from the request.
   */
  readonly emit: (event: string, entityType: string | null, entityId: string | null, metadata?: Json) => Promise<void>;
}

interface ScopedRoute<S extends Scope> {
  readonly method: string;
  /** `/leads/{id}`: `{name}` matches one path segment, given to the route percent-decoded. */
  readonly path: string;
  readonly scope: S;
  readonly run: (ctx: RouteContext<S>) => Promise<RouteResult>;
  /**
   * A tenant read that sends exactly one statement and audits nothing: the API sends COMMIT right
   * behind that statement, so the request is two round trips (BEGIN and the gate's statement, then
   * the route's statement and COMMIT). A second statement fails the request (INTERNAL). Declared
   * with `tenantRead`.
   * @default false
   */
  readonly oneStatement?: boolean;
}

/** A route; `Route` alone is either kind, told apart by `scope`. */
export type Route<S extends Scope = Scope> = S extends Scope ? ScopedRoute<S> : never;

/** A route inside the caller's entered tenant. */
export const tenantRoute = (
  method: string,
  path: string,
  run: (ctx: RouteContext<'tenant'>) => Promise<RouteResult>,
): Route<'tenant'> => ({ method, path, scope: 'tenant', run });

/**
 * A tenant read that sends exactly one statement and audits nothing (`oneStatement`): two round
 * trips. test/tenant-guard/lean-gate.test.ts sends every one through the API.
 */
export const tenantRead = (
  path: string,
  run: (ctx: RouteContext<'tenant'>) => Promise<RouteResult>,
): Route<'tenant'> => ({
  method: 'GET',
  path,
  scope: 'tenant',
  run,
  oneStatement: true,
});

/** A route on the authenticated caller, entering no tenant. */
export const callerRoute = (
  method: string,
  path: string,
  run: (ctx: RouteContext<'caller'>) => Promise<RouteResult>,
): Route<'caller'> => ({ method, path, scope: 'caller', run });
