/**
 * S3 presigned URLs (Signature Version 4, query parameters) signed with node:crypto: what
 * `@aws-sdk/s3-request-presigner`'s `getSignedUrl` computes, byte for byte (test/shared/s3-presigner.test.ts
 * compares the two for every shape of URL Bulwark signs, and checks AWS's published example). That
 * package brings ~150 KB of `@smithy/core` and the SDK's signer into every bundle that presigns.
 *
 * The request is still built by the S3 client the runtime provides: `getSignedUrl` runs the command
 * through a copy of the client's own middleware stack (serialization, endpoint resolution, checksum
 * and encryption headers) exactly as the SDK's presigner does, and stops it just before the client
 * would sign. Only the signing is ours. Unsupported (refused, never signed differently): S3 Express
 * One Zone session auth and SigV4a (multi-region access points), which Bulwark does not use.
 */
import { createHash, createHmac } from 'node:crypto';
import type { S3Client } from '@aws-sdk/client-s3';
import type { AwsCredentials } from './rds-auth-token';

/** SigV4's limit on a presigned URL's lifetime (one week). */
export const MAX_PRESIGNED_SECONDS = 604_800;
/** The SDK presigner's default lifetime. */
const DEFAULT_EXPIRES_IN = 900;

/** An HTTP request as the SDK builds it (the fields `formatUrl` and the signer read). */
export interface PresignableRequest {
  readonly method: string;
  readonly protocol: string;
  readonly hostname: string;
  readonly port?: number | undefined;
  readonly path: string;
  readonly query?: Readonly<Record<string, string | readonly string[] | null | undefined>>;
  readonly headers: Readonly<Record<string, string | undefined>>;
  readonly username?: string | undefined;
  readonly password?: string | undefined;
  readonly fragment?: string | undefined;
}

export interface SigningOptions {
  readonly credentials: AwsCredentials;
  /** The region in the credential scope. */
  readonly region: string;
  /** The service in the credential scope, e.g. `s3`. */
  readonly service: string;
  readonly signingDate: Date;
  /** Seconds the URL is valid; at most a week. */
  readonly expiresIn: number;
  /** The canonical request's payload hash (`UNSIGNED-PAYLOAD` for S3). */
  readonly payloadHash: string;
  /** Headers left unsigned (besides those SigV4 never signs), unless in `signableHeaders`. */
  readonly unsignableHeaders?: ReadonlySet<string>;
  /** Headers signed even if SigV4 would leave them unsigned. */
  readonly signableHeaders?: ReadonlySet<string>;
  /** `x-amz-*` headers kept as signed headers instead of being moved into the query. */
  readonly unhoistableHeaders?: ReadonlySet<string>;
  /** Other headers moved into the query. */
  readonly hoistableHeaders?: ReadonlySet<string>;
}

/** Headers SigV4 never signs unless asked (the SDK signer's list). */
const ALWAYS_UNSIGNABLE = new Set([
  'authorization',
  'cache-control',
  'connection',
  'expect',
  'from',
  'keep-alive',
  'max-forwards',
  'pragma',
  'referer',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'user-agent',
  'x-amzn-trace-id',
]);
/** Headers the signer generates: an existing one is dropped before signing. */
const GENERATED = new Set(['authorization', 'x-amz-date', 'date']);

/** RFC 3986 encoding, as SigV4 canonicalises query strings and the SDK formats URLs. */
function escapeUri(s: string): string {
  return encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

const sha256Hex = (s: string): string => createHash('sha256').update(s, 'utf8').digest('hex');
const hmac = (key: Buffer | string, s: string): Buffer => createHmac('sha256', key).update(s, 'utf8').digest();
const byCodeUnit = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

type Query = Record<string, string | readonly string[] | null | undefined>;

/** The canonical query string: encoded names sorted, a list's values sorted, the signature left out. */
function canonicalQuery(query: Query): string {
  const parts = new Map<string, string>();
  for (const [name, value] of Object.entries(query)) {
    if (name.toLowerCase() === 'x-amz-signature') continue;
    const k = escapeUri(name);
    if (typeof value === 'string') parts.set(k, `${k}=${escapeUri(value)}`);
    else if (Array.isArray(value)) {
      parts.set(
        k,
        (value as readonly string[])
          .map((v) => `${k}=${escapeUri(v)}`)
          .sort(byCodeUnit)
          .join('&'),
      );
    }
  }
  return [...parts.keys()]
    .sort(byCodeUnit)
    .map((k) => parts.get(k) as string)
    .filter((p) => p.length > 0)
    .join('&');
}

/** The URL's query string, as the SDK's `formatUrl` writes it (names sorted before encoding). */
function urlQuery(query: Query): string {
  const parts: string[] = [];
  for (const name of Object.keys(query).sort(byCodeUnit)) {
    const value = query[name];
    const k = escapeUri(name);
    if (Array.isArray(value)) for (const v of value as readonly string[]) parts.push(`${k}=${escapeUri(v)}`);
    else parts.push(typeof value === 'string' ? `${k}=${escapeUri(value)}` : k);
  }
  return parts.join('&');
}

/** The signed headers and their canonical values (whitespace folded, as the SDK signer folds it). */
function canonicalHeaders(headers: Readonly<Record<string, string | undefined>>, o: SigningOptions) {
  const canonical = new Map<string, string>();
  for (const name of Object.keys(headers).sort(byCodeUnit)) {
    const value = headers[name];
    if (value === undefined || value === null) continue;
    const lower = name.toLowerCase();
    const unsignable =
      ALWAYS_UNSIGNABLE.has(lower) ||
      (o.unsignableHeaders?.has(lower) ?? false) ||
      lower.startsWith('proxy-') ||
      lower.startsWith('sec-');
    if (unsignable && !(o.signableHeaders?.has(lower) ?? false)) continue;
    canonical.set(
      lower,
      value
        .replace(/[\r\n]/g, ' ')
        .replace(/[ \t]+/g, ' ')
        .replace(/^ | $/g, ''),
    );
  }
  return canonical;
}

/**
 * Presigns `request` (SigV4, query parameters) and returns its URL. `x-amz-*` headers move into
 * the query unless unhoistable; the other headers are signed (the client must send them as they are).
 */
export function presignUrl(request: PresignableRequest, o: SigningOptions): string {
  if (!Number.isInteger(o.expiresIn) || o.expiresIn < 1 || o.expiresIn > MAX_PRESIGNED_SECONDS) {
    throw new Error(`PRESIGN_EXPIRY_INVALID: ${o.expiresIn} s (1 to ${MAX_PRESIGNED_SECONDS})`);
  }
  const longDate = o.signingDate
    .toISOString()
    .replace(/\.\d{3}Z$/, 'Z')
    .replace(/[-:]/g, '');
  const shortDate = longDate.slice(0, 8);
  const scope = `${shortDate}/${o.region}/${o.service}/aws4_request`;

  const headers: Record<string, string | undefined> = {};
  const query: Query = { ...request.query };
  for (const [name, value] of Object.entries(request.headers)) {
    const lower = name.toLowerCase();
    if (GENERATED.has(lower)) continue;
    const hoist =
      (lower.startsWith('x-amz-') && !(o.unhoistableHeaders?.has(lower) ?? false)) ||
      (o.hoistableHeaders?.has(lower) ?? false);
    if (hoist) query[name] = value;
    else headers[name] = value;
  }
  if (o.credentials.sessionToken) query['X-Amz-Security-Token'] = o.credentials.sessionToken;
  query['X-Amz-Algorithm'] = 'AWS4-HMAC-SHA256';
  query['X-Amz-Credential'] = `${o.credentials.accessKeyId}/${scope}`;
  query['X-Amz-Date'] = longDate;
  query['X-Amz-Expires'] = String(o.expiresIn);
  const signed = canonicalHeaders(headers, o);
  const names = [...signed.keys()].sort(byCodeUnit);
  query['X-Amz-SignedHeaders'] = names.join(';');

  const canonicalRequest = [
    request.method,
    // S3 paths are signed as sent (the SDK does not encode S3 paths twice).
    request.path,
    canonicalQuery(query),
    names.map((n) => `${n}:${signed.get(n) as string}`).join('\n'),
    '',
    names.join(';'),
    o.payloadHash,
  ].join('\n');
  const stringToSign = ['AWS4-HMAC-SHA256', longDate, scope, sha256Hex(canonicalRequest)].join('\n');
  let key = hmac(`AWS4${o.credentials.secretAccessKey}`, shortDate);
  for (const part of [o.region, o.service, 'aws4_request']) key = hmac(key, part);
  query['X-Amz-Signature'] = createHmac('sha256', key).update(stringToSign, 'utf8').digest('hex');

  const auth =
    request.username !== undefined || request.password !== undefined
      ? `${request.username ?? ''}:${request.password ?? ''}@`
      : '';
  const protocol = request.protocol.endsWith(':') ? request.protocol : `${request.protocol}:`;
  const path = request.path.startsWith('/') ? request.path : `/${request.path}`;
  const qs = urlQuery(query);
  return (
    `${protocol}//${auth}${request.hostname}${request.port ? `:${request.port}` : ''}${path}` +
    `${qs ? `?${qs}` : ''}${request.fragment ? `#${request.fragment}` : ''}`
  );
}

/** `@aws-sdk/s3-request-presigner`'s options that Bulwark uses. */
export interface S3PresignOptions {
  /** Seconds. @default 900 */
  readonly expiresIn?: number;
  /** @default now */
  readonly signingDate?: Date;
  readonly signableHeaders?: ReadonlySet<string>;
  readonly unsignableHeaders?: ReadonlySet<string>;
  readonly unhoistableHeaders?: ReadonlySet<string>;
  readonly hoistableHeaders?: ReadonlySet<string>;
}

type Stack = ReturnType<S3Client['middlewareStack']['clone']>;
type Middleware = Parameters<Stack['addRelativeTo']>[0];

/** A command of the S3 client (`new GetObjectCommand(...)`, `new PutObjectCommand(...)`). */
export interface S3Command<I extends object = object> {
  readonly input: I;
  resolveMiddleware(stack: Stack, config: S3Client['config'], options: object): (args: { input: I }) => unknown;
}

interface Captured {
  readonly request: PresignableRequest;
  readonly context: Readonly<Record<string, unknown>>;
}

/** A copy the presigning may add to (the SDK's presigner compares names as given, lower case). */
const copy = (s?: ReadonlySet<string>): Set<string> => new Set(s ?? []);

/**
 * A presigned URL for `command`, signed with `client`'s credentials: a drop-in for
 * `@aws-sdk/s3-request-presigner`'s `getSignedUrl` (same request, same URL).
 */
export async function getSignedUrl<I extends object>(
  client: S3Client,
  command: S3Command<I>,
  options: S3PresignOptions = {},
): Promise<string> {
  let captured: Captured | undefined;
  // Runs where the SDK presigner runs (just before the client signs) and answers instead of the network.
  const intercept = ((_next: unknown, context: Record<string, unknown>) => (args: { request: PresignableRequest }) => {
    captured = { request: args.request, context };
    return Promise.resolve({ response: {}, output: { $metadata: { httpStatusCode: 200 } } });
  }) as unknown as Middleware;
  const stack = client.middlewareStack.clone();
  stack.addRelativeTo(intercept, {
    name: 'presignInterceptMiddleware',
    relation: 'before',
    toMiddleware: 'awsAuthMiddleware',
    override: true,
  });
  await command.resolveMiddleware(stack, client.config, {})({ input: command.input });
  if (!captured) throw new Error('PRESIGN_FAILED: the client built no request');
  const { request, context } = captured;

  const authScheme = (context['authSchemes'] as { name?: string }[] | undefined)?.[0];
  if (context['s3ExpressIdentity'] !== undefined || (authScheme?.name && authScheme.name !== 'sigv4')) {
    throw new Error(`PRESIGN_UNSUPPORTED: ${authScheme?.name ?? 's3express'} signing`);
  }
  const provider = client.config.credentials as unknown;
  const credentials = (typeof provider === 'function' ? await (provider as () => unknown)() : provider) as
    Partial<AwsCredentials> | undefined;
  if (typeof credentials?.accessKeyId !== 'string' || typeof credentials.secretAccessKey !== 'string') {
    throw new Error('PRESIGN_FAILED: the client resolved no credentials');
  }
  const region =
    (context['signing_region'] as string | undefined) ?? (await (client.config.region as () => Promise<string>)());
  const service = (context['signing_service'] as string | undefined) ?? 's3';

  // What the SDK's S3 presigner does to the request before signing it.
  const headers: Record<string, string | undefined> = { ...request.headers };
  for (const h of ['amz-sdk-invocation-id', 'amz-sdk-request', 'x-amz-user-agent']) delete headers[h];
  const unsignableHeaders = copy(options.unsignableHeaders);
  unsignableHeaders.add('content-type');
  const hoistableHeaders = copy(options.hoistableHeaders);
  const unhoistableHeaders = copy(options.unhoistableHeaders);
  for (const h of Object.keys(headers).map((n) => n.toLowerCase())) {
    // Encryption headers stay signed headers unless the caller hoists them.
    if (h.startsWith('x-amz-server-side-encryption') && !hoistableHeaders.has(h)) unhoistableHeaders.add(h);
  }
  headers['X-Amz-Content-Sha256'] = 'UNSIGNED-PAYLOAD';
  const hostHeader = headers['host'];
  if (!hostHeader || (hostHeader === request.hostname && request.port != null)) {
    headers['host'] = `${request.hostname}${request.port != null ? `:${request.port}` : ''}`;
  }

  return presignUrl(
    { ...request, headers },
    {
      credentials: {
        accessKeyId: credentials.accessKeyId,
        secretAccessKey: credentials.secretAccessKey,
        ...(credentials.sessionToken ? { sessionToken: credentials.sessionToken } : {}),
      },
      region,
      service,
      signingDate: options.signingDate ?? new Date(),
      expiresIn: options.expiresIn ?? DEFAULT_EXPIRES_IN,
      // The first x-amz-content-sha256 header, as the SDK signer reads it: UNSIGNED-PAYLOAD unless the client set one.
      payloadHash:
        Object.entries(headers).find(([n]) => n.toLowerCase() === 'x-amz-content-sha256')?.[1] ?? 'UNSIGNED-PAYLOAD',
      unsignableHeaders,
      hoistableHeaders,
      unhoistableHeaders,
      ...(options.signableHeaders ? { signableHeaders: copy(options.signableHeaders) } : {}),
    },
  );
}
