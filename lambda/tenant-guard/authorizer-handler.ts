/**
 * Lambda entry for the REQUEST authorizer. It runs outside the VPC: it holds no data access at all,
 * and needs only the identity provider's public JWKS (fetched once, cached and refreshed by jose)
 * and the gate key it signs tickets with (re-read from its secret every two minutes, so a warm
 * instance follows a rotation: gate-key-source.ts).
 */
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import type { APIGatewayAuthorizerResult, APIGatewayRequestAuthorizerEvent, Context } from 'aws-lambda';
import { STSClient } from '@aws-sdk/client-sts';
import { createRemoteJWKSet } from 'jose';
import { createObservability, observed } from '../shared/observability';
import { sdkRetries } from '../shared/sdk';
import { createAuthorizer } from './authorizer';
import { filesCredentialMinter, stsAssumeRole } from './files-credentials';
import { refreshingGateKey } from './gate-key-source';
import { Env } from './handler-env';
import { createVerifier } from './jwt';
import { parseGateKeySecret } from './ticket';

const { logger } = createObservability({ service: 'tenant-authorizer' });
let ready: Promise<ReturnType<typeof createAuthorizer>> | undefined;

async function build(): Promise<ReturnType<typeof createAuthorizer>> {
  const env = Env.parse(process.env);
  const secrets = new SecretsManagerClient(sdkRetries());
  const gateKey = refreshingGateKey(async () =>
    parseGateKeySecret(
      (await secrets.send(new GetSecretValueCommand({ SecretId: env.GATE_KEY_SECRET_ARN }))).SecretString,
    ),
  );
  // Read once now, so a missing or malformed secret fails the cold start (and is retried).
  await gateKey();
  return createAuthorizer({
    verify: createVerifier({
      issuer: env.JWT_ISSUER,
      audience: env.JWT_AUDIENCE,
      keys: createRemoteJWKSet(new URL(`${env.JWT_ISSUER}/.well-known/jwks.json`)),
    }),
    gateKey,
    log: logger,
    ...(env.FILES_ROLE_ARN
      ? {
          filesCredentials: filesCredentialMinter(stsAssumeRole(new STSClient(sdkRetries())), env.FILES_ROLE_ARN),
        }
      : {}),
  });
}

export const handler = observed(
  logger,
  async (event: APIGatewayRequestAuthorizerEvent, _context: Context): Promise<APIGatewayAuthorizerResult> => {
    // A failed cold start is retried on the next invocation, not cached.
    ready ??= build().catch((e: unknown) => {
      ready = undefined;
      throw e;
    });
    return (await ready)(event);
  },
  // The request id only: the token is the credential and is never logged.
  (event) => ({ requestId: event.requestContext?.requestId }),
);
