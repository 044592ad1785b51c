/**
 * The database token is what `@aws-sdk/rds-signer` computes, byte for byte: the same credentials
 * and clock give the same token, so the proxy accepts ours exactly when it would accept the SDK's.
 */
import { Signer } from '@aws-sdk/rds-signer';
import { credentialsFromEnv, rdsAuthToken, type AwsCredentials } from '../../lambda/shared/rds-auth-token';

const NOW = new Date('2026-03-04T05:06:07.890Z');
const CREDENTIALS: AwsCredentials = {
  accessKeyId: 'AKIDEXAMPLE',
  secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY',
  // Session tokens are base64: `+`, `/` and `=` must be escaped in the query.
  sessionToken: 'IQoJb3JpZ2luX2VjE+/abc=',
};

async function sdkToken(o: { hostname: string; port: number; username: string; region: string }, c: AwsCredentials) {
  jest.useFakeTimers({ now: NOW });
  try {
    return await new Signer({ ...o, credentials: c }).getAuthToken();
  } finally {
    jest.useRealTimers();
  }
}

describe('rdsAuthToken', () => {
  const cases = [
    {
      hostname: 'bulwark-proxy.proxy-abc123.eu-west-1.rds.amazonaws.com',
      port: 5432,
      username: 'app_api',
      region: 'eu-west-1',
    },
    {
      hostname: 'p.proxy-x.eu-central-2.rds.amazonaws.com',
      port: 6543,
      username: 'audit_shipper',
      region: 'eu-central-2',
    },
  ];
  it.each(cases)('equals the SDK signer for $username at $region', async (o) => {
    const ours = rdsAuthToken({ ...o, credentials: CREDENTIALS, now: NOW });
    expect(ours).toBe(await sdkToken(o, CREDENTIALS));
    expect(ours.startsWith(`${o.hostname}:${o.port}/?Action=connect&DBUser=${o.username}&`)).toBe(true);
    expect(ours).toContain('X-Amz-Expires=900');
    expect(ours).toContain('X-Amz-Security-Token=IQoJb3JpZ2luX2VjE%2B%2Fabc%3D');
  });

  it('equals the SDK signer without a session token (long-term keys)', async () => {
    const o = cases[0]!;
    const longTerm = { accessKeyId: CREDENTIALS.accessKeyId, secretAccessKey: CREDENTIALS.secretAccessKey };
    const ours = rdsAuthToken({ ...o, credentials: longTerm, now: NOW });
    expect(ours).toBe(await sdkToken(o, longTerm));
    expect(ours).not.toContain('X-Amz-Security-Token');
  });

  it('signs time, user and secret: changing any changes the signature', () => {
    const base = { ...cases[0]!, credentials: CREDENTIALS, now: NOW };
    const sig = (t: string) => /X-Amz-Signature=([0-9a-f]{64})/.exec(t)?.[1];
    const reference = sig(rdsAuthToken(base));
    expect(reference).toBeDefined();
    expect(sig(rdsAuthToken({ ...base, now: new Date(NOW.getTime() + 1000) }))).not.toBe(reference);
    expect(sig(rdsAuthToken({ ...base, username: 'app_other' }))).not.toBe(reference);
    expect(sig(rdsAuthToken({ ...base, credentials: { ...CREDENTIALS, secretAccessKey: 'other' } }))).not.toBe(
      reference,
    );
  });
});

describe('credentialsFromEnv', () => {
  it('reads the role session Lambda puts in the environment', () => {
    expect(credentialsFromEnv({ AWS_ACCESS_KEY_ID: 'A', AWS_SECRET_ACCESS_KEY: 'S', AWS_SESSION_TOKEN: 'T' })).toEqual({
      accessKeyId: 'A',
      secretAccessKey: 'S',
      sessionToken: 'T',
    });
    expect(credentialsFromEnv({ AWS_ACCESS_KEY_ID: 'A', AWS_SECRET_ACCESS_KEY: 'S' })).toEqual({
      accessKeyId: 'A',
      secretAccessKey: 'S',
    });
  });

  it('names the missing variable, never a value', () => {
    expect(() => credentialsFromEnv({ AWS_SECRET_ACCESS_KEY: 'secret-value' })).toThrow(
      /^CREDENTIALS_MISSING: AWS_ACCESS_KEY_ID$/,
    );
    expect(() => credentialsFromEnv({ AWS_ACCESS_KEY_ID: 'A' })).toThrow(
      /^CREDENTIALS_MISSING: AWS_SECRET_ACCESS_KEY$/,
    );
  });
});
