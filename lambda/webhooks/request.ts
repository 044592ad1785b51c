/**
 * The raw request, byte for byte, out of an API Gateway (REST, Lambda proxy) event.
 *
 * - Body: API Gateway hands text bodies over as the UTF-8 string it received and binary ones (per the
 *   API's `binaryMediaTypes`) base64-encoded with `isBase64Encoded: true`. Both are turned back into
 *   the exact bytes the carrier signed; nothing is parsed here.
 * - Headers: names are case-insensitive. `multiValueHeaders` carries every value of a repeated header
 *   while `headers` keeps only the last, so a repeated signature header must be seen in the former:
 *   a duplicate is refused rather than letting "first" or "last" pick one of two signatures.
 */
import type { APIGatewayProxyEvent } from 'aws-lambda';
import { base64DecodedLength, decodeBase64Strict } from './encoding';
import { WebhookError } from './errors';

/** The parts of a proxy event the ingress reads (so tests can build minimal events). */
export type ProxyEventLike = Pick<
  APIGatewayProxyEvent,
  | 'body'
  | 'isBase64Encoded'
  | 'headers'
  | 'multiValueHeaders'
  | 'queryStringParameters'
  | 'multiValueQueryStringParameters'
> &
  Partial<Pick<APIGatewayProxyEvent, 'resource' | 'path' | 'httpMethod' | 'requestContext'>>;

export class HeaderBag {
  private constructor(
    private readonly multi: Readonly<Record<string, readonly string[] | undefined>>,
    private readonly lastValues: Readonly<Record<string, string | undefined>>,
  ) {}

  /** Keeps references only: names are matched when read, for the one or two headers a route reads. */
  static fromEvent(event: Pick<ProxyEventLike, 'headers' | 'multiValueHeaders'>): HeaderBag {
    return new HeaderBag(event.multiValueHeaders ?? {}, event.headers ?? {});
  }

  /**
   * Every value sent under `name`, any case. `multiValueHeaders` holds every value of every header;
   * `headers` repeats (the last of) those, so it is consulted only for a name the former lacks.
   */
  all(name: string): readonly string[] {
    const lower = name.toLowerCase();
    const values: string[] = [];
    // Object.keys and an indexed loop: several times faster than for...in on the hot path.
    const multi = Object.keys(this.multi);
    for (let i = 0; i < multi.length; i++) {
      const key = multi[i];
      if (key !== undefined && key.length === lower.length && key.toLowerCase() === lower) {
        for (const v of this.multi[key] ?? []) if (v !== undefined) values.push(v);
      }
    }
    if (values.length > 0) return values;
    const last = Object.keys(this.lastValues);
    for (let i = 0; i < last.length; i++) {
      const key = last[i];
      const v = key === undefined ? undefined : this.lastValues[key];
      if (v !== undefined && key !== undefined && key.length === lower.length && key.toLowerCase() === lower)
        values.push(v);
    }
    return values;
  }

  /** The one value of a header that must appear exactly once and be non-empty. */
  single(name: string): string {
    const list = this.all(name);
    if (list.length > 1) throw new WebhookError('HEADER_DUPLICATED', name.toLowerCase());
    const value = list[0];
    if (value === undefined || value.trim() === '') throw new WebhookError('HEADER_MISSING', name.toLowerCase());
    return value;
  }
}

/**
 * The body's exact bytes. The size limit is checked before decoding, so an oversized body costs no
 * allocation beyond what API Gateway already made.
 */
export function rawBody(event: Pick<ProxyEventLike, 'body' | 'isBase64Encoded'>, maxBytes: number): Buffer {
  const body = event.body ?? '';
  if (body.length === 0) throw new WebhookError('BODY_EMPTY');
  if (event.isBase64Encoded) {
    if (base64DecodedLength(body.length) > maxBytes + 2) throw new WebhookError('BODY_TOO_LARGE');
    const bytes = decodeBase64Strict(body);
    if (!bytes) throw new WebhookError('BODY_MALFORMED', 'isBase64Encoded body is not canonical base64');
    if (bytes.length > maxBytes) throw new WebhookError('BODY_TOO_LARGE');
    if (bytes.length === 0) throw new WebhookError('BODY_EMPTY');
    return bytes;
  }
  // UTF-8 takes at least one byte per UTF-16 code unit, so a longer string is too large without
  // encoding it; otherwise the encoded bytes (at most 3 per unit) are counted once, exactly.
  if (body.length > maxBytes) throw new WebhookError('BODY_TOO_LARGE');
  const bytes = Buffer.from(body, 'utf8');
  if (bytes.length > maxBytes) throw new WebhookError('BODY_TOO_LARGE');
  return bytes;
}

/** One query parameter that must appear exactly once. */
export function singleQueryParameter(
  event: Pick<ProxyEventLike, 'queryStringParameters' | 'multiValueQueryStringParameters'>,
  name: string,
): string | undefined {
  const multi = event.multiValueQueryStringParameters?.[name];
  if (multi && multi.length > 1) return undefined;
  return multi?.[0] ?? event.queryStringParameters?.[name] ?? undefined;
}
