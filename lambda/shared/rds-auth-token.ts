/**
 * RDS IAM authentication tokens: a `connect` request to `host:port` presigned with Signature
 * Version 4 for the `rds-db` service, valid 15 minutes. This is exactly what `@aws-sdk/rds-signer`'s
 * `Signer` computes (test/shared/rds-auth-token.test.ts compares the two byte for byte), signed
 * with node:crypto: the `Signer` loads the SDK's whole credential-provider chain at start-up (STS,
 * SSO, INI files; ~400 KB of every bundle that connects to the database, and its module init). A
 * Lambda function's role credentials are in its environment, the first place that chain looks.
 */
import { createHash, createHmac } from 'node:crypto';

/** AWS credentials (the function's role session). */
export interface AwsCredentials {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly sessionToken?: string;
}

/** How long a token admits a new connection (RDS's fixed 15 minutes). */
export const RDS_TOKEN_TTL_SECONDS = 900;

/**
 * The role credentials Lambda puts in every function's environment; throws naming the missing
 * variable (never a value).
 */
export function credentialsFromEnv(env: Readonly<Record<string, string | undefined>>): AwsCredentials {
  const accessKeyId = env['AWS_ACCESS_KEY_ID'];
  const secretAccessKey = env['AWS_SECRET_ACCESS_KEY'];
  if (!accessKeyId) throw new Error('CREDENTIALS_MISSING: AWS_ACCESS_KEY_ID');
  if (!secretAccessKey) throw new Error('CREDENTIALS_MISSING: AWS_SECRET_ACCESS_KEY');
  const sessionToken = env['AWS_SESSION_TOKEN'];
  return { accessKeyId, secretAccessKey, ...(sessionToken ? { sessionToken } : {}) };
}

/** RFC 3986 encoding, as SigV4 canonicalises query strings. */
function escapeUri(s: string): string {
  return encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

const sha256Hex = (s: string): string => createHash('sha256').update(s, 'utf8').digest('hex');
const hmac = (key: Buffer | string, s: string): Buffer => createHmac('sha256', key).update(s, 'utf8').digest();

export interface RdsTokenRequest {
  readonly hostname: string;
  readonly port: number;
  /** The database user the token admits. */
  readonly username: string;
  readonly region: string;
  readonly credentials: AwsCredentials;
  /** Signing time. */
  readonly now: Date;
}

/** The token (`host:port/?Action=connect&DBUser=...&X-Amz-Signature=...`, no scheme). */
export function rdsAuthToken(r: RdsTokenRequest): string {
  const longDate = r.now
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d{3}Z$/, 'Z');
  const shortDate = longDate.slice(0, 8);
  const scope = `${shortDate}/${r.region}/rds-db/aws4_request`;
  const host = `${r.hostname}:${r.port}`;
  const query: Record<string, string> = {
    Action: 'connect',
    DBUser: r.username,
    'X-Amz-Algorithm': 'AWS4-HMAC-SHA256',
    'X-Amz-Credential': `${r.credentials.accessKeyId}/${scope}`,
    'X-Amz-Date': longDate,
    'X-Amz-Expires': String(RDS_TOKEN_TTL_SECONDS),
    ...(r.credentials.sessionToken ? { 'X-Amz-Security-Token': r.credentials.sessionToken } : {}),
    'X-Amz-SignedHeaders': 'host',
  };
  // Sorted by name, as both the signature and the SDK's URL formatting order them.
  const queryString = (q: Record<string, string>): string =>
    Object.keys(q)
      .map((k) => [escapeUri(k), escapeUri(q[k] as string)] as const)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([k, v]) => `${k}=${v}`)
      .join('&');
  const canonicalQuery = queryString(query);
  // No body: the payload hash is SHA-256 of the empty string.
  const canonicalRequest = ['GET', '/', canonicalQuery, `host:${host}`, '', 'host', sha256Hex('')].join('\n');
  const stringToSign = ['AWS4-HMAC-SHA256', longDate, scope, sha256Hex(canonicalRequest)].join('\n');
  let key = hmac(`AWS4${r.credentials.secretAccessKey}`, shortDate);
  for (const part of [r.region, 'rds-db', 'aws4_request']) key = hmac(key, part);
  const signature = createHmac('sha256', key).update(stringToSign, 'utf8').digest('hex');
  return `${host}/?${queryString({ ...query, 'X-Amz-Signature': signature })}`;
}
