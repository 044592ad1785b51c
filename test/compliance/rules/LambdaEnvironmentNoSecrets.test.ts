import * as lambda from 'aws-cdk-lib/aws-lambda';
import type { Stack } from 'aws-cdk-lib';
import { findingsOf, fixtureStack } from './support';

const RULE = 'Bulwark-LambdaEnvironmentNoSecrets';

function fn(s: Stack, id: string, environment: Record<string, string>) {
  return new lambda.Function(s, id, {
    runtime: lambda.Runtime.NODEJS_24_X,
    handler: 'index.handler',
    code: lambda.Code.fromInline('exports.handler = async () => 1;'),
    environment,
  });
}

describe(RULE, () => {
  it('flags a credential-named variable that is not a secret ARN (a platform carrier key in plain text)', () => {
    const s = fixtureStack();
    fn(s, 'CarrierKey', { TELNYX_API_KEY: 'KEY0123' });
    fn(s, 'Password', { SMTP_PASSWORD: 'x' });
    fn(s, 'Token', { carrier_token: 'x' });
    fn(s, 'PrivateKey', { SIGNING_PRIVATE_KEY: 'x' });
    expect(findingsOf(s, RULE)).toEqual([
      'S/CarrierKey/Resource',
      'S/Password/Resource',
      'S/PrivateKey/Resource',
      'S/Token/Resource',
    ]);
  });

  it('accepts secret ARNs and plain configuration, public keys included', () => {
    const s = fixtureStack();
    fn(s, 'Arn', { TELNYX_API_KEY_SECRET_ARN: 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:telnyx' });
    fn(s, 'Config', { TELNYX_PUBLIC_KEY: 'cHVibGlj', DEPLOYMENT: 'prod-eu', DB_USER: 'bulwark_app' });
    expect(findingsOf(s, RULE)).toEqual([]);
  });
});
