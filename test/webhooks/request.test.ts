/** Raw body and header extraction from API Gateway proxy events. */
import { WebhookError } from '../../lambda/webhooks/errors';
import { HeaderBag, rawBody, singleQueryParameter } from '../../lambda/webhooks/request';

const codeOf = (f: () => unknown) => {
  try {
    f();
    return 'ok';
  } catch (e) {
    return (e as WebhookError).code;
  }
};

describe('HeaderBag', () => {
  it('finds headers in any case', () => {
    const h = HeaderBag.fromEvent({ headers: { 'TeLnYx-TiMeStAmP': '1' }, multiValueHeaders: {} });
    expect(h.single('telnyx-timestamp')).toBe('1');
    expect(h.single('TELNYX-TIMESTAMP')).toBe('1');
  });

  it('sees every value of a repeated header in multiValueHeaders, though headers keeps only the last', () => {
    const h = HeaderBag.fromEvent({
      headers: { 'x-frejun-signature': 'b' },
      multiValueHeaders: { 'x-frejun-signature': ['a', 'b'] },
    });
    expect(h.all('x-frejun-signature')).toEqual(['a', 'b']);
    expect(codeOf(() => h.single('x-frejun-signature'))).toBe('HEADER_DUPLICATED');
  });

  it('counts case variants as duplicates, and does not double count headers mirrored from multiValueHeaders', () => {
    const variants = HeaderBag.fromEvent({ headers: { 'X-Sig': 'a', 'x-sig': 'a' }, multiValueHeaders: {} });
    expect(codeOf(() => variants.single('x-sig'))).toBe('HEADER_DUPLICATED');
    const mirrored = HeaderBag.fromEvent({ headers: { 'X-Sig': 'a' }, multiValueHeaders: { 'X-Sig': ['a'] } });
    expect(mirrored.single('x-sig')).toBe('a');
  });

  it('treats an absent, empty or blank header as missing', () => {
    const h = HeaderBag.fromEvent({ headers: { a: '', b: '  ' }, multiValueHeaders: null as never });
    for (const n of ['a', 'b', 'c']) expect(codeOf(() => h.single(n))).toBe('HEADER_MISSING');
  });
});

describe('rawBody', () => {
  it('returns the exact UTF-8 bytes of a text body', () => {
    const text = '{"t":"żółć – 你好 🙂"}';
    expect(rawBody({ body: text, isBase64Encoded: false }, 1000).equals(Buffer.from(text, 'utf8'))).toBe(true);
  });

  it('decodes a base64 body to the bytes the carrier sent, and refuses non-canonical base64', () => {
    const bytes = Buffer.from([0x7b, 0xff, 0x00, 0x7d]);
    expect(rawBody({ body: bytes.toString('base64'), isBase64Encoded: true }, 10).equals(bytes)).toBe(true);
    expect(codeOf(() => rawBody({ body: 'e/8AfQ', isBase64Encoded: true }, 10))).toBe('BODY_MALFORMED');
    expect(codeOf(() => rawBody({ body: 'e/8A fQ==', isBase64Encoded: true }, 10))).toBe('BODY_MALFORMED');
  });

  it('measures the limit in bytes, not characters', () => {
    expect(codeOf(() => rawBody({ body: 'ż'.repeat(6), isBase64Encoded: false }, 11))).toBe('BODY_TOO_LARGE');
    expect(rawBody({ body: 'ż'.repeat(6), isBase64Encoded: false }, 12)).toHaveLength(12);
    expect(codeOf(() => rawBody({ body: Buffer.alloc(13).toString('base64'), isBase64Encoded: true }, 12))).toBe(
      'BODY_TOO_LARGE',
    );
    expect(rawBody({ body: Buffer.alloc(12).toString('base64'), isBase64Encoded: true }, 12)).toHaveLength(12);
  });

  it('refuses null and empty bodies', () => {
    expect(codeOf(() => rawBody({ body: null, isBase64Encoded: false }, 10))).toBe('BODY_EMPTY');
    expect(codeOf(() => rawBody({ body: '', isBase64Encoded: true }, 10))).toBe('BODY_EMPTY');
  });
});

describe('singleQueryParameter', () => {
  it('returns a parameter given once and refuses a repeated one', () => {
    expect(
      singleQueryParameter(
        { queryStringParameters: { org: 'a' }, multiValueQueryStringParameters: { org: ['a'] } },
        'org',
      ),
    ).toBe('a');
    expect(
      singleQueryParameter(
        { queryStringParameters: { org: 'b' }, multiValueQueryStringParameters: { org: ['a', 'b'] } },
        'org',
      ),
    ).toBeUndefined();
  });
});
