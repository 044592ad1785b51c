/**
 * Identity-provider token verification with jose: signature against the issuer's JWKS, issuer,
 * audience, expiry, and the organisation claim (`org_id`, or Cognito's `custom:org_id`).
 */
import { errors, jwtVerify, type JWTVerifyGetKey } from 'jose';
import { UUID } from '../../contracts/ids';
import { GuardError } from './errors';

export interface VerifierOptions {
  readonly issuer: string;
  readonly audience: string;
  /** `createRemoteJWKSet(new URL(jwksUri))` in Lambda; a local JWKS in tests. */
  readonly keys: JWTVerifyGetKey;
  /** Clock skew tolerated on exp/nbf. @default 30 seconds */
  readonly clockToleranceSeconds?: number;
}

export interface VerifiedIdentity {
  readonly subject: string;
  readonly email: string;
  readonly orgId: string;
  /** The token's `exp` (Unix seconds): whoever relays this identity must stop honouring it then. */
  readonly expiresAt: number;
  /**
   * The gate ticket for this identity (lambda/tenant-guard/ticket.ts), signed by whoever verified the
   * token with the gate key; the database admits the identity only with it.
   */
  readonly ticket?: string;
}

export type TokenVerifier = (token: string) => Promise<VerifiedIdentity>;

export function createVerifier(options: VerifierOptions): TokenVerifier {
  return async (token) => {
    let payload;
    try {
      ({ payload } = await jwtVerify(token, options.keys, {
        issuer: options.issuer,
        audience: options.audience,
        algorithms: ['RS256', 'ES256'],
        requiredClaims: ['exp', 'sub'],
        clockTolerance: options.clockToleranceSeconds ?? 30,
      }));
    } catch (e) {
      if (e instanceof errors.JWTExpired) throw new GuardError('TOKEN_EXPIRED');
      throw new GuardError('TOKEN_INVALID');
    }
    // requiredClaims made jose check presence; the types are checked here.
    const { sub, exp } = payload;
    if (typeof sub !== 'string' || typeof exp !== 'number') throw new GuardError('TOKEN_INVALID');
    const org = payload['org_id'] ?? payload['custom:org_id'];
    if (typeof org !== 'string' || !UUID.test(org)) throw new GuardError('TENANT_CONTEXT_MISSING');
    const email = typeof payload['email'] === 'string' ? payload['email'] : `${sub}@unknown.invalid`;
    return { subject: sub, email, orgId: org.toLowerCase(), expiresAt: exp };
  };
}
