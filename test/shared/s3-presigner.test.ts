/**
 * Our S3 presigner signs what AWS signs: AWS's published SigV4 query-string example gives its
 * published signature, and for every URL shape Bulwark signs (the file upload with its signed
 * type, length, checksum and SSE-KMS headers; the file download with its response overrides; the
 * export download) the URL equals `@aws-sdk/s3-request-presigner`'s byte for byte, with and without
 * a session token.
 */
import { GetObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { getSignedUrl as sdkGetSignedUrl } from '@aws-sdk/s3-request-presigner';
import { mockClient } from 'aws-sdk-client-mock';
import { getSignedUrl, presignUrl } from '../../lambda/shared/s3-presigner';

const AT = new Date('2026-03-04T05:06:07.890Z');
const SESSION = {
  accessKeyId: 'ASIAFILES00000000001',
  secretAccessKey: 'files-secret-1-ssssssssssssssssssss',
  // Session tokens are base64: `+`, `/` and `=` are escaped in the query.
  sessionToken: 'IQoJb3JpZ2luX2VjE+/abc=',
  expiration: new Date(AT.getTime() + 900_000),
};
const LONG_TERM = { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY' };
const ORG = '0b6f3a52-1f0e-4c2e-9a57-3f0f1b2c3d4e';
const SHA = `${'q'.repeat(43)}=`;

const client = (
  credentials: NonNullable<ConstructorParameters<typeof S3Client>[0]>['credentials'],
  region = 'eu-west-1',
) => new S3Client({ region, maxAttempts: 8, retryMode: 'adaptive', credentials });

/** The upload as lambda/tenant-guard/routes/files.ts presigns it. */
function upload(keyArn: string, key: string, contentType = 'image/jpeg', size = 2048) {
  const command = new PutObjectCommand({
    Bucket: 'bulwark-prod-eu-files-111122223333',
    Key: key,
    ContentType: contentType,
    ContentLength: size,
    ChecksumSHA256: SHA,
    ServerSideEncryption: 'aws:kms',
    SSEKMSKeyId: keyArn,
    SSEKMSEncryptionContext: Buffer.from(JSON.stringify({ org_id: ORG })).toString('base64'),
  });
  const headers: Record<string, string> = {
    'content-type': contentType,
    'content-length': String(size),
    'x-amz-checksum-sha256': SHA,
    'x-amz-sdk-checksum-algorithm': 'SHA256',
    'x-amz-server-side-encryption': 'aws:kms',
    'x-amz-server-side-encryption-aws-kms-key-id': keyArn,
    'x-amz-server-side-encryption-context': String(command.input.SSEKMSEncryptionContext),
  };
  const options = {
    expiresIn: 840,
    signingDate: AT,
    signableHeaders: new Set(Object.keys(headers)),
    unhoistableHeaders: new Set(Object.keys(headers).filter((h) => h.startsWith('x-amz-'))),
  };
  return { command, options };
}

/** The download as files.ts presigns it. */
function download(key: string, name: string, contentType = 'application/pdf') {
  const safe = name.replace(/["\\]/g, '_');
  return new GetObjectCommand({
    Bucket: 'bulwark-prod-eu-files-111122223333',
    Key: key,
    ResponseContentType: contentType,
    ResponseContentDisposition: `attachment; filename="${safe}"; filename*=UTF-8''${encodeURIComponent(name)}`,
  });
}

describe("AWS's published example (S3: authenticating requests using query parameters)", () => {
  it('gives the published signature', () => {
    const url = new URL(
      presignUrl(
        {
          method: 'GET',
          protocol: 'https:',
          hostname: 'examplebucket.s3.amazonaws.com',
          path: '/test.txt',
          headers: { host: 'examplebucket.s3.amazonaws.com' },
        },
        {
          credentials: {
            accessKeyId: 'AKIAIOSFODNN7EXAMPLE',
            secretAccessKey: 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY',
          },
          region: 'us-east-1',
          service: 's3',
          signingDate: new Date('2013-05-24T00:00:00Z'),
          expiresIn: 86400,
          payloadHash: 'UNSIGNED-PAYLOAD',
        },
      ),
    );
    expect(`${url.origin}${url.pathname}`).toBe('https://examplebucket.s3.amazonaws.com/test.txt');
    expect(Object.fromEntries(url.searchParams)).toEqual({
      'X-Amz-Algorithm': 'AWS4-HMAC-SHA256',
      'X-Amz-Credential': 'AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request',
      'X-Amz-Date': '20130524T000000Z',
      'X-Amz-Expires': '86400',
      'X-Amz-SignedHeaders': 'host',
      'X-Amz-Signature': 'aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404',
    });
  });

  it('refuses a lifetime SigV4 does not allow (over a week, or none)', () => {
    const request = { method: 'GET', protocol: 'https:', hostname: 'h', path: '/', headers: { host: 'h' } };
    const o = { credentials: LONG_TERM, region: 'eu-west-1', service: 's3', signingDate: AT, payloadHash: 'x' };
    expect(() => presignUrl(request, { ...o, expiresIn: 604_801 })).toThrow('PRESIGN_EXPIRY_INVALID');
    expect(() => presignUrl(request, { ...o, expiresIn: 0 })).toThrow('PRESIGN_EXPIRY_INVALID');
    expect(presignUrl(request, { ...o, expiresIn: 604_800 })).toContain('X-Amz-Expires=604800');
  });
});

describe('getSignedUrl equals @aws-sdk/s3-request-presigner', () => {
  const keyArn = 'arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab';
  const fileKey = `orgs/${ORG}/files/7d0c1f9e-5b8a-4c3d-9e2f-0a1b2c3d4e5f`;

  it.each([
    ['a session (the files role)', SESSION],
    ['long-term keys', LONG_TERM],
  ])('the file upload, every constraint a signed header, with %s', async (_, credentials) => {
    const { command, options } = upload(keyArn, fileKey);
    const ours = await getSignedUrl(client(credentials), command, options);
    expect(ours).toBe(await sdkGetSignedUrl(client(credentials), command, options));
    const url = new URL(ours);
    expect(url.hostname).toBe('bulwark-prod-eu-files-111122223333.s3.eu-west-1.amazonaws.com');
    expect(url.searchParams.get('X-Amz-SignedHeaders')).toBe(
      'content-length;content-type;host;x-amz-checksum-sha256;x-amz-server-side-encryption;' +
        'x-amz-server-side-encryption-aws-kms-key-id;x-amz-server-side-encryption-context',
    );
    for (const h of ['x-amz-server-side-encryption', 'x-amz-checksum-sha256', 'content-type']) {
      expect(url.searchParams.has(h)).toBe(false);
    }
    expect(url.searchParams.get('X-Amz-Security-Token')).toBe(
      'sessionToken' in credentials ? credentials.sessionToken : null,
    );
  });

  it('the file upload: a different length, type or key gives a different URL, as the SDK', async () => {
    const variants = [
      upload(keyArn, fileKey, 'image/jpeg', 2049),
      upload(keyArn, fileKey, 'application/pdf'),
      upload(keyArn.replace('1234abcd', '9999abcd'), fileKey),
    ];
    const base = await getSignedUrl(client(SESSION), upload(keyArn, fileKey).command, upload(keyArn, fileKey).options);
    for (const v of variants) {
      const ours = await getSignedUrl(client(SESSION), v.command, v.options);
      expect(ours).not.toBe(base);
      expect(ours).toBe(await sdkGetSignedUrl(client(SESSION), v.command, v.options));
    }
  });

  it('a PUT signed with the SDK presigner defaults (no signable or unhoistable headers given)', async () => {
    const { command } = upload(keyArn, fileKey);
    const options = { expiresIn: 300, signingDate: AT };
    const ours = await getSignedUrl(client(SESSION), command, options);
    expect(ours).toBe(await sdkGetSignedUrl(client(SESSION), command, options));
    // The SDK leaves content-type unsigned and keeps the encryption headers signed headers.
    expect(new URL(ours).searchParams.get('X-Amz-SignedHeaders')).not.toContain('content-type');
    expect(new URL(ours).searchParams.get('X-Amz-SignedHeaders')).toContain('x-amz-server-side-encryption-context');
  });

  it.each([
    ['bill of sale.pdf', 'application/pdf'],
    ['devis "final" \\ 2026 é€.png', 'image/png'],
    ["it's (a) *draft*!~.txt", 'text/plain'],
  ])('the file download of %j, with its response overrides', async (name, type) => {
    const command = download(fileKey, name, type);
    const options = { expiresIn: 600, signingDate: AT };
    const ours = await getSignedUrl(client(SESSION), command, options);
    expect(ours).toBe(await sdkGetSignedUrl(client(SESSION), command, options));
    const url = new URL(ours);
    expect(url.searchParams.get('response-content-type')).toBe(type);
    expect(url.searchParams.get('response-content-disposition')).toContain(
      `filename*=UTF-8''${encodeURIComponent(name)}`,
    );
  });

  it.each([
    ['a virtual-hosted bucket', 'bulwark-prod-eu-exports-111122223333', 'eu-west-1'],
    ['a bucket with dots (path-style)', 'bulwark.prod.exports', 'eu-central-2'],
    ['us-east-1', 'bulwark-prod-us-exports', 'us-east-1'],
  ])('the export download from %s', async (_, bucket, region) => {
    const command = new GetObjectCommand({ Bucket: bucket, Key: `exports/${ORG}/3f2e1d0c.jsonl.gz` });
    const options = { expiresIn: 900, signingDate: AT };
    const ours = await getSignedUrl(client(LONG_TERM, region), command, options);
    expect(ours).toBe(await sdkGetSignedUrl(client(LONG_TERM, region), command, options));
    expect(new URL(ours).searchParams.get('X-Amz-Credential')).toBe(`AKIDEXAMPLE/20260304/${region}/s3/aws4_request`);
  });

  it('keys with characters S3 paths escape, and credentials from a provider', async () => {
    const provider = () => Promise.resolve(SESSION);
    for (const key of ['a b/c+d=e', 'exports/ü/€ (1)*!', "x/'y'/~z", 'dir//double/./dot/../x']) {
      const command = new GetObjectCommand({ Bucket: 'bulwark-exports', Key: key });
      const options = { expiresIn: 60, signingDate: AT };
      expect(await getSignedUrl(client(provider), command, options)).toBe(
        await sdkGetSignedUrl(client(provider), command, options),
      );
    }
  });

  it('signs through a client whose sends are mocked (the route tests), never calling send', async () => {
    const s3 = client(SESSION);
    const mock = mockClient(s3);
    try {
      const command = download(fileKey, 'a.pdf');
      const options = { expiresIn: 600, signingDate: AT };
      expect(await getSignedUrl(s3, command, options)).toBe(await sdkGetSignedUrl(client(SESSION), command, options));
      expect(mock.calls()).toHaveLength(0);
    } finally {
      mock.restore();
    }
  });
});
