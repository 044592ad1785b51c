/**
 * What the tenant API tests share: an identity provider of their own (an RS256 key pair behind a
 * local JWKS, and the jose verifier production uses over it), tokens for fixture users, and API
 * Gateway proxy events.
 */
import type { APIGatewayProxyEvent } from 'aws-lambda';
import { createLocalJWKSet, exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK } from 'jose';
import { createVerifier, type TokenVerifier } from '../../lambda/tenant-guard/jwt';
import { issueTicket } from '../../lambda/tenant-guard/ticket';
import { TEST_GATE_KEY, type TestPostgres } from '../support/postgres';
import { defined } from '../support/defined';

export const ISSUER = 'https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_TEST';
export const AUDIENCE = 'bulwark-test-client';
export const SOURCE_IP = '203.0.113.9';

export interface TokenOptions {
  /** Signs with another key (a forged token). @default the provider's key */
  readonly key?: CryptoKey;
  readonly aud?: string;
  readonly iss?: string;
  readonly exp?: number | string;
  readonly claims?: Record<string, unknown>;
}

export interface TestIdentity {
  /**
   * The production verifier over the local JWKS, attaching the gate ticket the edge authorizer
   * would sign (test gate key), as an API behind another verifying gateway gets.
   */
  readonly verify: TokenVerifier;
  /** A key the JWKS does not hold. */
  readonly foreignKey: CryptoKey;
  /** A signed ID token for a fixture user (by users.id), naming `org` in `custom:org_id`. */
  token(userId: string, org: string | null, o?: TokenOptions): Promise<string>;
  /** `Bearer <token>`. */
  bearer(userId: string, org: string | null, o?: TokenOptions): Promise<string>;
  /** A signed ID token for an identity-provider subject that may not be a user yet. */
  tokenForSubject(subject: string, org: string | null, o?: TokenOptions): Promise<string>;
}

export async function testIdentity(pg: TestPostgres): Promise<TestIdentity> {
  const pair = await generateKeyPair('RS256');
  const foreignKey = (await generateKeyPair('RS256')).privateKey;
  const jwk: JWK = { ...(await exportJWK(pair.publicKey)), kid: 'k1', alg: 'RS256', use: 'sig' };
  const jwt = createVerifier({ issuer: ISSUER, audience: AUDIENCE, keys: createLocalJWKSet({ keys: [jwk] }) });
  const verify: TokenVerifier = async (token) => {
    const id = await jwt(token);
    const ticket = issueTicket(
      TEST_GATE_KEY,
      { subject: id.subject, email: id.email, orgId: id.orgId, notAfter: id.expiresAt },
      Date.now() / 1000,
    );
    return { ...id, ticket };
  };
  const tokenForSubject = async (subject: string, org: string | null, o: TokenOptions = {}) => {
    const claims: Record<string, unknown> = { email: 'person@example.test', ...o.claims };
    if (org) claims['custom:org_id'] = org;
    return new SignJWT(claims)
      .setProtectedHeader({ alg: 'RS256', kid: 'k1' })
      .setSubject(subject)
      .setIssuer(o.iss ?? ISSUER)
      .setAudience(o.aud ?? AUDIENCE)
      .setIssuedAt()
      .setExpirationTime(o.exp ?? '10m')
      .sign(o.key ?? pair.privateKey);
  };
  const token = async (userId: string, org: string | null, o?: TokenOptions) => {
    const rows = (await pg.superuser('SELECT subject FROM users WHERE id = $1', [userId])) as { subject: string }[];
    return tokenForSubject(defined(rows[0]).subject, org, o);
  };
  return {
    verify,
    foreignKey,
    token,
    tokenForSubject,
    bearer: async (userId, org, o) => `Bearer ${await token(userId, org, o)}`,
  };
}

export interface EventOptions {
  readonly auth?: string;
  readonly body?: unknown;
  readonly headers?: Readonly<Record<string, string>>;
  /** What API Gateway puts in `requestContext.authorizer` (an authorizer's verdict). */
  readonly authorizer?: Readonly<Record<string, unknown>>;
  readonly sourceIp?: string;
}

/** An API Gateway (REST, Lambda proxy) event as the tenant API receives it. */
export function proxyEvent(method: string, path: string, o: EventOptions = {}): APIGatewayProxyEvent {
  return {
    httpMethod: method,
    path,
    headers: { ...(o.auth ? { Authorization: o.auth } : {}), 'User-Agent': 'jest/30', ...o.headers },
    body: o.body === undefined ? null : JSON.stringify(o.body),
    isBase64Encoded: false,
    queryStringParameters: null,
    requestContext: {
      identity: { sourceIp: o.sourceIp ?? SOURCE_IP },
      ...(o.authorizer ? { authorizer: o.authorizer } : {}),
    },
  } as unknown as APIGatewayProxyEvent;
}
