/**
 * The webhook ingress: raw bytes → verify → parse → record once → effect, as one thin adapter
 * around injected logic. Nothing is parsed before the signature verified, and every refusal maps to
 * one WebhookErrorCode with a stable status, a metric and a log line without body or secrets.
 */
import type { APIGatewayProxyResult } from 'aws-lambda';
import { isHmacProvider, isProvider, type Provider } from '../../contracts/webhooks';
import type { SqlClient } from '../shared/migrations';
import { processOnce, purgeExpired, type ConnectionPool, type DedupTimeouts } from './dedup';
import { WebhookError, isWebhookError } from './errors';
import type { WebhookRuntime } from './config';
import { decodeHmacSignature, verifyHmacSha256 } from './hmac';
import { HMAC_SCHEMES, parseEnvelope } from './providers';
import { HeaderBag, rawBody, singleQueryParameter, type ProxyEventLike } from './request';
import type { Log, MetricsRecorder } from '../shared/observability';
import { recordRequest } from './telemetry';
import { TELNYX_SIGNATURE_HEADER, TELNYX_TIMESTAMP_HEADER, verifyTelnyx } from './telnyx';
import { checkTimestamp } from './timestamp';
import { withSecurityHeaders } from '../../contracts/security-headers';

/** A verified (or, only outside production with verification disabled, unverified) carrier event. */
export interface WebhookEvent {
  readonly provider: Provider;
  /** The organisation whose secret verified it; null for platform-wide accounts (Telnyx). */
  readonly orgId: string | null;
  readonly eventId: string;
  readonly eventType: string;
  readonly payload: unknown;
  readonly verified: boolean;
  readonly receivedAt: Date;
}

/** The event's effect. It runs inside the dedup transaction: throw to roll both back. */
export interface WebhookEventProcessor {
  process(event: WebhookEvent, tx: SqlClient): Promise<void>;
}

export interface WebhookHandlerDeps {
  readonly runtime: WebhookRuntime;
  readonly pool: ConnectionPool;
  readonly processor: WebhookEventProcessor;
  /** Powertools Metrics (namespace `Bulwark/Webhooks`), or a recording fake. */
  readonly metrics: MetricsRecorder;
  readonly logger: Log;
  /** @default Date.now */
  readonly clock?: () => number;
  /** Purge expired dedup rows after every Nth processed event (0 never). @default 100 */
  readonly purgeEvery?: number;
  /** Lock, statement and idle timeouts of the dedup transaction. @default DEFAULT_DEDUP_TIMEOUTS */
  readonly dedupTimeouts?: DedupTimeouts;
}

export type WebhookHandler = (event: ProxyEventLike) => Promise<APIGatewayProxyResult>;

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const ROUTE = /\/webhooks\/([a-z]+)\/?$/;

function respond(statusCode: number, body: Record<string, string>): APIGatewayProxyResult {
  // API Gateway cannot add headers to Lambda proxy responses, so the handler sets HSTS and friends itself.
  return withSecurityHeaders({
    statusCode,
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
}

export function createWebhookHandler(deps: WebhookHandlerDeps): WebhookHandler {
  const clock = deps.clock ?? Date.now;
  const purgeEvery = deps.purgeEvery ?? 100;
  const { runtime } = deps;
  const verify = runtime.verification === 'required';
  let processedSincePurge = 0;

  async function accept(
    provider: Provider,
    event: ProxyEventLike,
  ): Promise<{ outcome: string; eventId: string; orgId: string | null }> {
    const headers = HeaderBag.fromEvent(event);
    const body = rawBody(event, runtime.maxBodyBytes);
    const nowSeconds = Math.floor(clock() / 1000);
    let orgId: string | null = null;
    let guard: ((tx: SqlClient) => Promise<void>) | undefined;

    if (provider === 'telnyx') {
      if (verify) {
        if ('problem' in runtime.telnyxKey) throw runtime.telnyxKey.problem;
        verifyTelnyx({ body, headers }, runtime.telnyxKey.keys, nowSeconds);
      }
    } else if (isHmacProvider(provider)) {
      const org = singleQueryParameter(event, 'org')?.toLowerCase();
      if (!org || !UUID.test(org)) throw new WebhookError('ORGANISATION_INVALID');
      orgId = org;
      if (verify) {
        const scheme = HMAC_SCHEMES[provider];
        const signature = decodeHmacSignature(headers.single(scheme.signatureHeader), scheme.encoding);
        if (!runtime.secrets) throw new WebhookError('WEBHOOK_SECRET_MISSING', 'no secret store is wired');
        const secrets = runtime.secrets;
        // An unknown organisation gets a decoy key: the same HMAC, the same refusal as a wrong signature.
        let keys = await secrets.secretsFor(org, provider);
        let matched: number;
        try {
          matched = verifyHmacSha256(body, signature, keys.keys);
        } catch (e) {
          if (!isWebhookError(e) || e.code !== 'SIGNATURE_INVALID') throw e;
          // The cached secrets may predate a rotation made seconds ago: check once more against the
          // store, unless the resolver (rate-limiting re-reads) handed back the very same secrets.
          const fresh = await secrets.secretsFor(org, provider, true);
          if (fresh === keys) throw keys.known ? e : unknownOrganisation();
          keys = fresh;
          matched = verifyHmacSha256(body, signature, keys.keys);
        }
        if (!keys.known) throw unknownOrganisation(); // a decoy never verifies; defence in depth
        const sealed = keys.sealed[matched] ?? '';
        // Caches may be up to a minute old: the database says, in the dedup transaction, whether the
        // secret that verified is still accepted (a rotation ended a moment ago revokes it at once).
        guard = async (tx) => {
          if (!(await secrets.stillAccepted(tx, org, provider, sealed))) {
            throw new WebhookError('SIGNATURE_INVALID', 'the secret that verified is no longer accepted');
          }
        };
      }
    }

    const { envelope, payload } = parseEnvelope(provider, body);
    if (verify && provider !== 'telnyx') checkTimestamp(envelope.timestamp, nowSeconds);

    const webhookEvent: WebhookEvent = {
      provider,
      orgId,
      eventId: envelope.eventId,
      eventType: envelope.eventType,
      payload,
      verified: verify,
      receivedAt: new Date(clock()),
    };
    let outcome: string;
    try {
      outcome = await processOnce(
        deps.pool,
        { provider, scope: orgId ?? 'platform', eventId: envelope.eventId, eventType: envelope.eventType },
        (tx) => deps.processor.process(webhookEvent, tx),
        { guard, timeouts: deps.dedupTimeouts },
      );
    } catch (e) {
      if (isWebhookError(e)) throw e;
      throw new WebhookError('PROCESSING_FAILED', errorKind(e), { cause: e });
    }
    if (outcome === 'processed' && purgeEvery > 0 && ++processedSincePurge >= purgeEvery) {
      processedSincePurge = 0;
      await purge();
    }
    if (outcome === 'processed' && !verify) outcome = 'unverified_accepted';
    else if (outcome === 'processed') outcome = 'accepted';
    return { outcome, eventId: envelope.eventId, orgId };
  }

  async function purge(): Promise<void> {
    try {
      const client = await deps.pool.connect();
      try {
        const removed = await purgeExpired(client);
        deps.logger.info('purged expired webhook dedup rows', { removed });
      } finally {
        client.release();
      }
    } catch (e) {
      // Best effort: the next purge catches up; acknowledging the carrier matters more.
      deps.logger.warn('dedup purge failed', { error: errorKind(e) });
    }
  }

  return async (event) => {
    const started = clock();
    const route = ROUTE.exec(event.resource ?? event.path ?? '')?.[1];
    const provider = route && isProvider(route) ? route : undefined;
    const requestId = event.requestContext?.requestId;
    if (!provider) {
      recordRequest(deps.metrics, 'unknown', 'ROUTE_UNKNOWN', clock() - started);
      deps.logger.warn('webhook refused', { code: 'ROUTE_UNKNOWN', requestId });
      return respond(404, { code: 'ROUTE_UNKNOWN' });
    }
    try {
      const { outcome, eventId, orgId } = await accept(provider, event);
      recordRequest(deps.metrics, provider, outcome, clock() - started);
      deps.logger[outcome === 'unverified_accepted' ? 'warn' : 'info']('webhook accepted', {
        provider,
        outcome,
        eventId,
        orgId,
        requestId,
      });
      return respond(200, { status: outcome === 'duplicate' ? 'duplicate' : 'accepted' });
    } catch (e) {
      const error = isWebhookError(e) ? e : new WebhookError('PROCESSING_FAILED', errorKind(e), { cause: e });
      recordRequest(deps.metrics, provider, error.code, clock() - started);
      deps.logger[error.status >= 500 ? 'error' : 'warn']('webhook refused', {
        provider,
        code: error.code,
        status: error.status,
        detail: error.detail,
        requestId,
      });
      return respond(error.status, { code: error.code, ...culprit(provider, error) });
    }
  };
}

/**
 * The header, query parameter or body field a refusal is about, so the sender can tell what to fix.
 * Names only, never a value: they are the documented names of each carrier's scheme.
 */
export function culprit(provider: Provider, error: WebhookError): Readonly<Record<string, string>> {
  switch (error.code) {
    case 'HEADER_MISSING':
    case 'HEADER_DUPLICATED':
      return error.detail ? { header: error.detail } : {};
    case 'SIGNATURE_MALFORMED':
    case 'SIGNATURE_INVALID':
      return { header: isHmacProvider(provider) ? HMAC_SCHEMES[provider].signatureHeader : TELNYX_SIGNATURE_HEADER };
    case 'TIMESTAMP_INVALID':
    case 'TIMESTAMP_OUT_OF_RANGE':
      // Telnyx signs a timestamp header; the HMAC carriers carry it in the (verified) event.
      return isHmacProvider(provider) ? { field: 'timestamp' } : { header: TELNYX_TIMESTAMP_HEADER };
    case 'BODY_EMPTY':
    case 'BODY_TOO_LARGE':
    case 'BODY_MALFORMED':
    case 'PAYLOAD_INVALID':
      return { field: 'body' };
    case 'ORGANISATION_INVALID':
      return { query: 'org' };
    default:
      return {};
  }
}

/** Refused exactly like a wrong signature (status, body, headers); only the log line says why. */
function unknownOrganisation(): WebhookError {
  return new WebhookError('SIGNATURE_INVALID', 'unknown or inactive organisation');
}

/** An error's class and driver code only: messages can quote data (a body, a key value). */
function errorKind(e: unknown): string {
  if (e instanceof Error) {
    const code = (e as { code?: unknown }).code;
    return typeof code === 'string' ? `${e.name}:${code}` : e.name;
  }
  return typeof e;
}
