/**
 * Lambda entry for the REQUEST authorizer. It runs outside the VPC: it holds no data access at all,
 * and needs only the identity provider's public JWKS (fetched once, cached and refreshed by jose).
 */
import type { APIGatewayAuthorizerResult, APIGatewayRequestAuthorizerEvent, Context } from 'aws-lambda';
import { createRemoteJWKSet } from 'jose';
import { createObservability, observed } from '../shared/observability';
import { createAuthorizer } from './authorizer';
import { Env } from './handler-env';
import { createVerifier } from './jwt';

const { logger } = createObservability({ service: 'tenant-authorizer' });
let ready: ReturnType<typeof createAuthorizer> | undefined;

export const handler = observed(
  logger,
  async (event: APIGatewayRequestAuthorizerEvent, _context: Context): Promise<APIGatewayAuthorizerResult> => {
    if (!ready) {
      const env = Env.parse(process.env);
      ready = createAuthorizer({
        verify: createVerifier({
          issuer: env.JWT_ISSUER,
          audience: env.JWT_AUDIENCE,
          keys: createRemoteJWKSet(new URL(`${env.JWT_ISSUER}/.well-known/jwks.json`)),
        }),
        log: logger,
      });
    }
    return ready(event);
  },
  // The request id only: the token is the credential and is never logged.
  (event) => ({ requestId: event.requestContext?.requestId }),
);
