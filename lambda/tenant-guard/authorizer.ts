/**
 * The API Gateway REQUEST authorizer in front of every tenant route. It is the one place a bearer
 * token is verified (jose, against the identity provider's JWKS): the API function runs in a VPC
 * with no path to the internet, so it cannot fetch the JWKS itself and instead reads the verified
 * identity that API Gateway hands it in `requestContext.authorizer` (clients cannot set that).
 *
 * API keys (`ApiKey bwk_<id>_<secret>`) are checked here for shape only and passed on: their hash,
 * expiry, revocation and the minter's live membership are checked by the API function in the
 * database on every request (lambda/tenant-guard/guard.ts), so a revoked key stops at once.
 *
 * A verified identity leaves with a gate ticket (ticket.ts): signed here with the gate key, which the
 * API function never holds, and verified by the database before it lets a transaction act as that
 * user. The ticket lives at most MAX_TICKET_SECONDS and never beyond the token's own expiry; API
 * Gateway's verdict cache (authorizerCacheTtl) must be shorter, so a cached verdict's ticket is live.
 *
 * With tenant files wired, a verified identity also leaves with credentials of the files role for
 * its organisation (files-credentials.ts): 15 minutes, while a cached verdict is reused for at most
 * 4, so the API always receives at least 11 minutes of them.
 *
 * Refusals are Deny policies carrying the error code in the context; the API's ACCESS_DENIED
 * gateway response turns them into `401 {"error": "<code>"}` with the security headers.
 */
import type { APIGatewayAuthorizerResult, APIGatewayRequestAuthorizerEvent } from 'aws-lambda';
import type { Log } from '../shared/observability';
import { GuardError } from './errors';
import { parseAuthorization } from './guard';
import type { TokenVerifier } from './jwt';
import type { GateKeySource } from './gate-key-source';
import type { FilesCredentials, FilesCredentialMinter } from './files-credentials';
import { issueTicket, type GateKey } from './ticket';

/** What the authorizer hands the API function (API Gateway stringifies every value). */
export type AuthorizerContext =
  | {
      readonly kind: 'jwt';
      readonly subject: string;
      readonly email: string;
      readonly orgId: string;
      readonly exp: number;
      /** Gate ticket for the API function to relay to the database (ticket.ts). */
      readonly ticket: string;
      /**
       * Credentials of the files role for `orgId` (files-credentials.ts), when tenant files are wired
       * and STS answered: the API presigns file URLs with them and has no file access of its own.
       */
      readonly filesAccessKeyId?: string;
      readonly filesSecretAccessKey?: string;
      readonly filesSessionToken?: string;
      /** Unix seconds. */
      readonly filesExp?: number;
    }
  | { readonly kind: 'api_key'; readonly keyId: string };

export interface AuthorizerDeps {
  readonly verify: TokenVerifier;
  /** Refusals are logged with their code only: never the token or the key. */
  readonly log: Log;
  /**
   * The gate key tickets are signed with: a key, or a source re-read periodically so a warm
   * instance follows a rotation (gate-key-source.ts `refreshingGateKey`).
   */
  readonly gateKey: GateKey | GateKeySource;
  /** Unix seconds. @default the system clock */
  readonly now?: () => number;
  /**
   * Mints files-role credentials for the verified organisation (files-credentials.ts). A failure
   * leaves them out of the verdict (the file routes then answer FILES_CREDENTIALS_MISSING); every
   * other route works as before.
   * @default - tenant files not wired
   */
  readonly filesCredentials?: FilesCredentialMinter;
}

/**
 * `arn:aws:execute-api:region:account:api/stage/VERB/path` -> `.../api/stage/*`: one verdict covers
 * every route of the stage, so a cached Allow is never wrong for another route of the same caller.
 */
export function stageWildcard(methodArn: string): string {
  const [prefix, path] = [methodArn.split(':').slice(0, 5).join(':'), methodArn.split(':')[5] ?? ''];
  const [apiId, stage] = path.split('/');
  if (!prefix.startsWith('arn:') || !apiId || !stage) throw new GuardError('INTERNAL', 'unexpected methodArn');
  return `${prefix}:${apiId}/${stage}/*`;
}

function headerOf(event: APIGatewayRequestAuthorizerEvent, name: string): string | undefined {
  // REST APIs keep the caller's header case; a repeated Authorization header is ambiguous and refused.
  const values = Object.entries(event.multiValueHeaders ?? {})
    .filter(([k]) => k.toLowerCase() === name)
    .flatMap(([, v]) => v ?? []);
  if (values.length > 1) throw new GuardError('TOKEN_INVALID', `${name} sent more than once`);
  return values[0] ?? Object.entries(event.headers ?? {}).find(([k]) => k.toLowerCase() === name)?.[1];
}

const policy = (
  principalId: string,
  effect: 'Allow' | 'Deny',
  resource: string,
  context: Record<string, string | number>,
): APIGatewayAuthorizerResult => ({
  principalId,
  policyDocument: {
    Version: '2012-10-17',
    Statement: [{ Action: 'execute-api:Invoke', Effect: effect, Resource: resource }],
  },
  context,
});

export function createAuthorizer(deps: AuthorizerDeps) {
  const now = deps.now ?? (() => Date.now() / 1000);
  const source = deps.gateKey;
  const gateKey: GateKeySource = typeof source === 'function' ? source : () => Promise.resolve(source);
  return async (event: APIGatewayRequestAuthorizerEvent): Promise<APIGatewayAuthorizerResult> => {
    const resource = stageWildcard(event.methodArn);
    try {
      const credential = parseAuthorization(headerOf(event, 'authorization'));
      if (credential.kind === 'api_key') {
        const context: AuthorizerContext = { kind: 'api_key', keyId: credential.keyId };
        return policy(`api_key:${credential.keyId}`, 'Allow', resource, context);
      }
      const id = await deps.verify(credential.token);
      if (id.expiresAt <= now()) throw new GuardError('TOKEN_EXPIRED');
      const ticket = issueTicket(
        await gateKey(),
        {
          subject: id.subject,
          email: id.email,
          orgId: id.orgId,
          notAfter: id.expiresAt,
          requestId: event.requestContext?.requestId,
        },
        now(),
      );
      let files: FilesCredentials | undefined;
      if (deps.filesCredentials) {
        try {
          files = await deps.filesCredentials(id.orgId, id.subject);
        } catch (e) {
          // Never the credentials; the error's name only (STS errors carry no secrets, but no body is logged).
          deps.log.warn('files credentials unavailable', { error: e instanceof Error ? e.name : 'unknown' });
        }
      }
      const context: AuthorizerContext = {
        kind: 'jwt',
        subject: id.subject,
        email: id.email,
        orgId: id.orgId,
        exp: id.expiresAt,
        ticket,
        ...(files
          ? {
              filesAccessKeyId: files.accessKeyId,
              filesSecretAccessKey: files.secretAccessKey,
              filesSessionToken: files.sessionToken,
              filesExp: files.expiresAt,
            }
          : {}),
      };
      return policy(`user:${id.subject}`, 'Allow', resource, context);
    } catch (e) {
      // Only token problems are answered here; anything else is a fault of ours, not the caller's.
      const code = e instanceof GuardError && e.status === 401 ? e.code : 'INTERNAL';
      if (code === 'INTERNAL') throw e;
      deps.log.warn('token refused', { code });
      return policy('anonymous', 'Deny', resource, { error: code });
    }
  };
}
