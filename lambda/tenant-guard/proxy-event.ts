/**
 * The tenant API's edge with API Gateway's Lambda proxy integration: the request it reads from an
 * event (body, credential) and the responses it writes, every one with the security headers.
 */
import type { APIGatewayProxyEvent, APIGatewayProxyResult } from 'aws-lambda';
import { withSecurityHeaders } from '../../contracts/security-headers';
import { GuardError } from './errors';
import type { FilesCredentials } from './files-credentials';
import { parseAuthorization, type Credential } from './guard';
import { UUID } from '../../contracts/ids';
import type { Json, RouteRequest, RouteResult } from './route';

export const header = (e: APIGatewayProxyEvent, name: string): string | undefined =>
  Object.entries(e.headers ?? {}).find(([k]) => k.toLowerCase() === name)?.[1];

/** The request, parameters aside (the router decodes those); a body that is not JSON is refused. */
export function requestOf(e: APIGatewayProxyEvent): Omit<RouteRequest, 'params'> {
  let body: unknown = undefined;
  if (e.body) {
    try {
      body = JSON.parse(e.isBase64Encoded ? Buffer.from(e.body, 'base64').toString('utf8') : e.body);
    } catch {
      throw new GuardError('VALIDATION_FAILED', 'body is not JSON', 'body');
    }
  }
  return {
    method: e.httpMethod.toUpperCase(),
    path: e.path.replace(/\/+$/, '') || '/',
    body,
    query: e.queryStringParameters ?? {},
    ip: e.requestContext?.identity?.sourceIp ?? null,
    userAgent: header(e, 'user-agent') ?? null,
  };
}

/**
 * The caller's credential. Behind the edge authorizer, `requestContext.authorizer` (set by API
 * Gateway, never by the client) carries its verdict: a verified token's identity, which is honoured
 * only until the token's own expiry (verdicts are cached), or an API key's id, which must match the
 * key presented (its secret is checked in the database by `authenticate`). Without a verdict the
 * Authorization header is parsed and verified here.
 */
export function credentialOf(event: APIGatewayProxyEvent, now: Date): Credential {
  const verdict = event.requestContext?.authorizer as Record<string, unknown> | null | undefined;
  const kind = verdict?.['kind'];
  if (verdict === null || verdict === undefined || kind === undefined) {
    return parseAuthorization(header(event, 'authorization'));
  }
  if (kind === 'jwt') {
    const [subject, email, orgId, exp, ticket] = ['subject', 'email', 'orgId', 'exp', 'ticket'].map((k) => verdict[k]);
    const expiresAt = Number(exp);
    if (
      typeof subject !== 'string' ||
      !subject ||
      typeof email !== 'string' ||
      typeof orgId !== 'string' ||
      typeof ticket !== 'string'
    ) {
      throw new GuardError('TOKEN_INVALID', 'incomplete authorizer verdict');
    }
    if (!UUID.test(orgId)) throw new GuardError('TENANT_CONTEXT_MISSING');
    if (!Number.isFinite(expiresAt) || expiresAt * 1000 <= now.getTime()) throw new GuardError('TOKEN_EXPIRED');
    return { kind: 'identity', identity: { subject, email, orgId: orgId.toLowerCase(), expiresAt, ticket } };
  }
  if (kind === 'api_key') {
    const credential = parseAuthorization(header(event, 'authorization'));
    if (credential.kind !== 'api_key' || credential.keyId !== verdict['keyId']) {
      throw new GuardError('TOKEN_INVALID', 'credential differs from the authorizer verdict');
    }
    return credential;
  }
  throw new GuardError('TOKEN_INVALID', 'unknown authorizer verdict');
}

/**
 * The files-role credentials in the authorizer's verdict (set by API Gateway from the authorizer's
 * result, never by the client), for a verified token only; undefined when absent or incomplete.
 */
export function filesCredentialsOf(event: APIGatewayProxyEvent): FilesCredentials | undefined {
  const verdict = event.requestContext?.authorizer as Record<string, unknown> | null | undefined;
  if (verdict?.['kind'] !== 'jwt') return undefined;
  const [accessKeyId, secretAccessKey, sessionToken] = [
    'filesAccessKeyId',
    'filesSecretAccessKey',
    'filesSessionToken',
  ].map((k) => verdict[k]);
  const expiresAt = Number(verdict['filesExp']);
  if (
    typeof accessKeyId !== 'string' ||
    !accessKeyId ||
    typeof secretAccessKey !== 'string' ||
    !secretAccessKey ||
    typeof sessionToken !== 'string' ||
    !sessionToken ||
    !Number.isFinite(expiresAt)
  ) {
    return undefined;
  }
  return { accessKeyId, secretAccessKey, sessionToken, expiresAt };
}

// API Gateway cannot add headers to Lambda proxy responses: every answer sets HSTS and friends itself.
export const respond = (
  status: number,
  body: Json,
  headers: Readonly<Record<string, string>> = {},
): APIGatewayProxyResult =>
  withSecurityHeaders({
    statusCode: status,
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  });

/** A route's answer after COMMIT: JSON (with its after-commit result merged in) or a CSV download. */
export async function answer(res: RouteResult): Promise<APIGatewayProxyResult> {
  const after = res.afterCommit;
  if (after) {
    const extra = await after().catch(() => ({}));
    return respond(res.status, { ...(res.body as Record<string, unknown>), ...extra });
  }
  if (res.csv) {
    return withSecurityHeaders({
      statusCode: res.status,
      headers: {
        'content-type': 'text/csv; charset=utf-8',
        'content-disposition': `attachment; filename="${res.csv.filename}"`,
      },
      body: res.csv.text,
    });
  }
  return respond(res.status, res.body);
}

/** Refusals about a request header name it (lower case, as HTTP/2 sends it). */
const HEADER_AT_FAULT: Partial<Record<GuardError['code'], string>> = {
  TOKEN_MISSING: 'authorization',
  TOKEN_INVALID: 'authorization',
  TOKEN_EXPIRED: 'authorization',
  SUPPORT_GRANT_INVALID: 'x-bulwark-support-grant',
};

/** `{ error: CODE }`, naming the body field, path parameter or header at fault (never its value). */
export const refusal = (e: GuardError): APIGatewayProxyResult => {
  const at = HEADER_AT_FAULT[e.code];
  return respond(
    e.status,
    { error: e.code, ...(e.field ? { field: e.field } : {}), ...(at ? { header: at } : {}) },
    e.retryAfterSeconds !== undefined ? { 'retry-after': String(e.retryAfterSeconds) } : {},
  );
};
