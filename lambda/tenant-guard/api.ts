/**
 * The tenant API's request pipeline; the routes themselves live in routes/*.ts. One transaction per
 * request: match the route, prove the caller and enter the tenant in one statement (the database
 * re-checks the membership or grant), run the route (its permission check, its action, its audit
 * events in the same transaction), commit. With a pipelining client (lambda/shared/db.ts) BEGIN
 * goes out with the gate's statement, and a one-statement read's COMMIT with its statement: a
 * guarded read is two round trips. Everything from matching on happens inside one error boundary,
 * so every failure is an explicit code with the security headers, and an unexpected one is also
 * logged.
 */
import type { APIGatewayProxyEvent, APIGatewayProxyResult } from 'aws-lambda';
import type { AuditSink } from '../shared/audit';
import type { SqlClient } from '../shared/migrations';
import type { SecretCipher } from '../shared/secret-cipher';
import { GuardError, toGuardError } from './errors';
import { authenticate, enter, proofFor, type Caller, type Proven, type TenantContext } from './guard';
import { UUID } from '../../contracts/ids';
import type { TokenVerifier } from './jwt';
import { describeError, type ApiLogger } from './logger';
import { answer, credentialOf, filesCredentialsOf, header, refusal, requestOf, respond } from './proxy-event';
import type { FilesApiDeps, RouteContext, RouteRequest, RouteResult, RouteServices, TenantKeysApiDeps } from './route';
import { createRouter, type Match } from './router';
import { ROUTES } from './routes';
import { exportUrlTtl } from './routes/tenant-exports';
import { ProvenKeyOrganisations, type TenantBudget } from './tenant-budget';

export type { ApiLogger } from './logger';
export type { FilesApiDeps, TenantKeysApiDeps } from './route';

type AuditTarget = Pick<TenantContext, 'orgId' | 'actorType' | 'supportGrantId' | 'apiKeyId'>;

export interface PooledClient extends SqlClient {
  release(err?: Error | boolean): void;
}

export interface ApiDeps {
  readonly db: { connect(): Promise<PooledClient> };
  /**
   * Verifies a bearer token that reaches the function without the edge authorizer's verdict (the
   * function behind another gateway, or called directly in tests).
   * @default - such tokens are refused with TOKEN_INVALID: in a deployment every tenant route is
   * behind the REQUEST authorizer, which verifies tokens (lambda/tenant-guard/authorizer.ts)
   */
  readonly verify?: TokenVerifier;
  readonly audit: AuditSink;
  /**
   * Seals per-organisation secrets under the tenant's own key (tenant keys' EnvelopeCipher), for one
   * request's transaction: the key is read there, under the tenant context (app.context_tenant_key),
   * never on a connection of its own.
   * @default - the webhook secret routes answer 503 KEY_UNAVAILABLE
   */
  readonly cipher?: (tx: SqlClient) => SecretCipher;
  /** @default () => new Date() */
  readonly now?: () => Date;
  /**
   * The tenant-keys provisioner and export bucket, for BYOK, export downloads and key provisioning
   * at tenant creation. Without them those routes answer 503 TENANT_KEYS_UNAVAILABLE and new
   * tenants get their key from the provisioner's scheduled sweep.
   * @default - not wired
   */
  readonly tenantKeys?: TenantKeysApiDeps;
  /**
   * The tenant file store (docs/tenant-files.md).
   * @default - the file routes answer 503 FILES_UNAVAILABLE
   */
  readonly files?: FilesApiDeps;
  /**
   * The aggregate per-organisation request budget (tenant-budget.ts), spent once per request against
   * the organisation a verified credential proves: a verified token's before any database connection
   * is taken, an API key's once the database has proven the key (its organisation is known nowhere
   * earlier). A spent budget is `429 TENANT_RATE_LIMITED` with `Retry-After`.
   * @default - no per-organisation budget
   */
  readonly budget?: TenantBudget;
  /**
   * Where unexpected failures (INTERNAL) are logged, with the request id and organisation, never
   * the body, headers or secrets: the handler's Powertools Logger.
   */
  readonly logger: ApiLogger;
}

/**
 * A request's audit events: written in its transaction, into the trail of the tenant the
 * transaction is in (entered by the API for tenant routes, by `enter` for caller routes), with the
 * caller as the actor and the request's IP and user agent.
 */
function auditTrail(
  sink: AuditSink,
  tx: SqlClient,
  who: Caller,
  req: Omit<RouteRequest, 'params'>,
  now: () => Date,
): Pick<RouteContext, 'enter' | 'entered' | 'emit'> & { into(target: AuditTarget): void } {
  let target: AuditTarget | null = null;
  return {
    into: (t) => {
      target = t;
    },
    enter: async (userId, orgId, grant = null) => {
      await tx.query('SELECT 1 FROM app.set_tenant_context($1, $2, $3)', [userId, orgId, grant]);
      target = { orgId, actorType: grant ? 'support_grant' : 'user', supportGrantId: grant, apiKeyId: null };
    },
    entered: (orgId) => {
      target = { orgId, actorType: 'user', supportGrantId: null, apiKeyId: null };
    },
    emit: (event, entityType, entityId, metadata = {}) => {
      if (!target) return Promise.reject(new Error('audit event outside a tenant context'));
      const { orgId, actorType, supportGrantId, apiKeyId } = target;
      return sink.record(
        {
          orgId,
          actorType,
          actorUserId: who.userId,
          actorEmail: who.email,
          ip: req.ip,
          userAgent: req.userAgent,
          supportGrantId,
          occurredAt: now(),
          event,
          entityType,
          entityId,
          metadata: { ...(metadata as object), ...(apiKeyId ? { apiKeyId } : {}) },
        },
        tx,
      );
    },
  };
}

/**
 * The transaction of a one-statement read: COMMIT goes out right behind its statement (in the same
 * round trip on a pipelining client). A second statement is refused: it would run after COMMIT,
 * outside the tenant context.
 */
function commitBehind(client: SqlClient): { readonly tx: SqlClient; readonly end: () => Promise<void> } {
  let commit: Promise<unknown> | null = null;
  return {
    tx: {
      query: (sql, params) => {
        if (commit) return Promise.reject(new Error('a one-statement route sent a second statement'));
        const out = client.query(sql, params);
        commit = client.query('COMMIT');
        // Awaited by end(); a failed statement is reported by `out`.
        commit.catch(() => undefined);
        return out;
      },
    },
    end: async () => {
      await (commit ?? client.query('COMMIT'));
    },
  };
}

/**
 * Who a refused caller is, for the refusal's audit row: proves them alone in a transaction of
 * their own that is rolled back (refusals may cost a round trip more; reads do not). Null when the
 * proof itself is refused.
 */
async function identify(client: SqlClient, proven: Proven): Promise<Caller | null> {
  try {
    const [, who] = await Promise.all([client.query('BEGIN'), authenticate(client, proven)]);
    return who;
  } catch {
    return null;
  } finally {
    await client.query('ROLLBACK').catch(() => undefined);
  }
}

/** Builds the API Gateway proxy handler over injected dependencies. */
export function createApi(deps: ApiDeps): (event: APIGatewayProxyEvent) => Promise<APIGatewayProxyResult> {
  const now = deps.now ?? (() => new Date());
  const { logger } = deps;
  const services: Omit<RouteServices, 'cipher'> = {
    tenantKeys: deps.tenantKeys,
    exportUrlTtlSeconds: exportUrlTtl(deps.tenantKeys),
    files: deps.files,
    now,
  };
  const match = createRouter(ROUTES);
  // API keys whose organisation the database proved: their later requests pay before a connection.
  const keyOrgs = new ProvenKeyOrganisations();
  /** The refusal when `org` has spent its budget, else null. */
  const spend = async (org: string): Promise<GuardError | null> => {
    if (!deps.budget) return null;
    let verdict: Awaited<ReturnType<TenantBudget>>;
    try {
      verdict = await deps.budget(org);
    } catch (e) {
      // The budget fails open on DynamoDB's failures itself; this is a fault of ours, and fails open too.
      logger.warn('tenant API: tenant budget failed, request not counted', {
        code: 'TENANT_BUDGET_UNAVAILABLE',
        orgId: org,
        error: e instanceof Error ? e.name : 'unknown',
      });
      return null;
    }
    if (verdict.allowed) return null;
    const refused = new GuardError('TENANT_RATE_LIMITED');
    refused.retryAfterSeconds = verdict.retryAfterSeconds;
    return refused;
  };

  return async (event) => {
    const requestId = event.requestContext?.requestId ?? null;
    let req: Omit<RouteRequest, 'params'>;
    let found: Match | null;
    try {
      req = requestOf(event);
      found = match(req.method, req.path);
    } catch (e) {
      const err = toGuardError(e);
      if (err.code === 'INTERNAL')
        logger.error('tenant API: unreadable request', { requestId, error: describeError(e) });
      return refusal(err);
    }
    if (!found) return respond(404, { error: 'NOT_FOUND' });
    const { route, params } = found;
    // Where a log line says the failure happened: the route's template, never the raw path.
    const where = { requestId, method: route.method, route: route.path };

    // The credential and its proof need no database: a refusal here takes no connection.
    let proven: Proven;
    try {
      proven = await proofFor(credentialOf(event, now()), deps.verify);
    } catch (e) {
      const err = toGuardError(e);
      if (err.code === 'INTERNAL') logger.error('tenant API: unexpected error', { ...where, error: describeError(e) });
      return refusal(err);
    }
    // A verified token proves its organisation (the edge authorizer checked the signature; API
    // Gateway, not the client, set the verdict): spend that organisation's budget before a
    // connection is taken, so a tenant over its budget holds no database connection. Never the
    // organisation X-Bulwark-Org names: the client chooses that header.
    // An API key the database proved earlier (in this instance, within minutes) pays here too: only
    // a request carrying the whole key finds its organisation.
    const knownKeyOrg = proven.credential.kind === 'api_key' && deps.budget ? keyOrgs.get(proven.proof) : undefined;
    const payer = proven.credential.kind === 'identity' ? proven.credential.identity.orgId : knownKeyOrg;
    if (payer) {
      const spent = await spend(payer);
      if (spent) return refusal(spent);
    }

    let client: PooledClient;
    try {
      client = await deps.db.connect();
    } catch (e) {
      logger.error('tenant API: no database connection', { ...where, error: describeError(e) });
      return respond(503, { error: 'INTERNAL' });
    }
    let caller: Caller | null = null;
    let orgId: string | null = null;
    let broken = false;
    let released = false;
    try {
      const identity = proven.credential.kind === 'identity' ? proven.credential.identity : null;
      orgId = identity?.orgId ?? null;

      // A person may address another organisation they belong to, or a member store they oversee
      // (read-only), with X-Bulwark-Org; the database decides whether that is allowed.
      const target = header(event, 'x-bulwark-org');
      if (target !== undefined && (!UUID.test(target) || !identity)) throw new GuardError('PERMISSION_DENIED');
      const grantHeader = header(event, 'x-bulwark-support-grant');
      orgId = target ? target.toLowerCase() : orgId;

      // BEGIN and the gate's one statement go out together (one round trip on a pipelining client).
      // Should the gate refuse, the transaction is aborted: nothing sent behind it runs, let alone
      // outside a context.
      const begun = client.query('BEGIN');
      let tenant: TenantContext | undefined;
      if (route.scope === 'tenant') {
        const [, entered] = await Promise.all([begun, enter(client, proven, orgId ?? undefined, grantHeader ?? null)]);
        ({ caller, tenant } = entered);
      } else {
        [, caller] = await Promise.all([begun, authenticate(client, proven)]);
      }
      const who = caller;
      // An API key's organisation is proven only now, by the database (its hash, expiry, revocation
      // and the minter's membership): spend the key's organisation's budget here, before the route
      // runs. Someone who knows only a key's id cannot spend it: the id alone proves nothing.
      if (proven.credential.kind === 'api_key' && !knownKeyOrg) {
        if (deps.budget) keyOrgs.remember(proven.proof, who.orgId);
        const spent = await spend(who.orgId);
        if (spent) throw spent;
      }
      const addressed = tenant?.orgId ?? orgId ?? who.orgId;
      orgId = addressed;

      const oneStatement = route.scope === 'tenant' && route.oneStatement === true ? commitBehind(client) : null;
      const tx = oneStatement?.tx ?? client;
      const trail = auditTrail(deps.audit, tx, who, req, now);
      const base: Omit<RouteContext, 'tenant'> = {
        ...services,
        cipher: deps.cipher?.(client),
        tx,
        caller: who,
        orgId: addressed,
        supportGrant: grantHeader !== undefined,
        filesCredentials: filesCredentialsOf(event),
        req: { ...req, params },
        enter: trail.enter,
        entered: trail.entered,
        emit: trail.emit,
      };
      let res: RouteResult;
      if (route.scope === 'tenant' && tenant) {
        trail.into(tenant);
        res = await route.run({ ...base, tenant });
      } else if (route.scope === 'caller') {
        res = await route.run({ ...base, tenant: undefined });
      } else {
        throw new GuardError('TENANT_CONTEXT_MISSING');
      }
      if (oneStatement) await oneStatement.end();
      else await client.query('COMMIT');
      return await answer(res);
    } catch (e) {
      const err = toGuardError(e);
      if (err.code === 'INTERNAL') {
        // Identifiers and the error only: the body, headers and secrets never reach the log.
        logger.error('tenant API: unexpected error', { ...where, orgId, error: describeError(e) });
      }
      try {
        await client.query('ROLLBACK');
      } catch (rollback) {
        // The pool discards the connection instead of handing a half-open transaction to the next request.
        logger.warn('tenant API: rollback failed, connection discarded', {
          ...where,
          orgId,
          error: describeError(rollback),
        });
        broken = true;
      }
      // A refusal by the gate itself leaves no caller: prove them alone to attribute the refusal.
      if (!caller && !broken && err.status === 403) caller = await identify(client, proven);
      // Give the connection back before recording a refusal, which opens a transaction of its own:
      // it then reuses this connection instead of holding a second one.
      client.release(broken);
      released = true;
      if (caller && err.status === 403) {
        // Refusals of an authenticated caller are security events; recorded outside the
        // rolled-back transaction.
        await deps.audit
          .record(
            {
              orgId: caller.orgId,
              actorType: caller.apiKey ? 'api_key' : 'user',
              actorUserId: caller.userId,
              actorEmail: caller.email,
              event: 'access.refused',
              entityType: null,
              entityId: null,
              ip: req.ip,
              userAgent: req.userAgent,
              supportGrantId: null,
              metadata: { code: err.code, method: req.method, path: req.path },
              occurredAt: now(),
            },
            undefined,
            caller.proof,
          )
          .catch(() => undefined);
      }
      return refusal(err);
    } finally {
      if (!released) client.release(broken);
    }
  };
}
