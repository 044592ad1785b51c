/** The deployment configuration of the webhook ingress. */
import { ConfigError, parseDeployment } from '../../lib/config';
import { telnyxKeyPair } from './support';
import { EU, shippedInput } from '../support/catalogue';

const base = shippedInput(EU);

function problems(input: unknown): string[] {
  try {
    parseDeployment('prod-eu', input);
    return [];
  } catch (e) {
    if (e instanceof ConfigError) return [...e.problems];
    throw e;
  }
}

describe('deployment.webhooks', () => {
  it('defaults to mandatory verification with no Telnyx key', () => {
    expect(parseDeployment('prod-eu', base).webhooks).toEqual({ verification: 'required' });
  });

  it('accepts a raw 32-byte Telnyx public key', () => {
    const telnyxPublicKey = telnyxKeyPair().publicKeyBase64;
    expect(parseDeployment('prod-eu', { ...base, webhooks: { telnyxPublicKey } }).webhooks).toEqual({
      telnyxPublicKey,
      verification: 'required',
    });
  });

  it('names the field of a malformed key', () => {
    expect(problems({ ...base, webhooks: { telnyxPublicKey: 'MCowBQYDK2VwAyEA' } })).toEqual([
      'prod-eu.webhooks.telnyxPublicKey: must be the raw 32-byte Ed25519 public key in base64 (44 characters) (from catalogue)',
    ]);
  });

  it('refuses to disable verification in production, and allows it in development', () => {
    expect(problems({ ...base, webhooks: { verification: 'disabled' } })).toEqual([
      'prod-eu.webhooks.verification: webhook verification cannot be disabled in a production deployment (from catalogue)',
    ]);
    expect(problems({ ...base, environment: 'development', webhooks: { verification: 'disabled' } })).toEqual([]);
  });

  it('takes a previous Telnyx key for a rotation window, only next to a current one', () => {
    const [current, previous] = [telnyxKeyPair().publicKeyBase64, telnyxKeyPair().publicKeyBase64];
    expect(
      parseDeployment('prod-eu', { ...base, webhooks: { telnyxPublicKey: current, telnyxPreviousPublicKey: previous } })
        .webhooks.telnyxPreviousPublicKey,
    ).toBe(previous);
    expect(problems({ ...base, webhooks: { telnyxPreviousPublicKey: previous } })).toEqual([
      'prod-eu.webhooks.telnyxPreviousPublicKey: a previous Telnyx key needs a current telnyxPublicKey (from catalogue)',
    ]);
  });

  it('refuses unknown webhook settings', () => {
    expect(problems({ ...base, webhooks: { verify: false } })[0]).toMatch(/^prod-eu\.webhooks/);
  });
});
