import { SECRET_PURPOSES, type SecretPurpose } from '../../lambda/shared/secret-cipher';
import { EnvelopeCipher } from '../../lambda/tenant-keys/envelope-cipher';
import { sealUpdate, writeOnlyView } from '../../lambda/tenant-keys/write-only';
import { FakeKms, KEY_A, ORG_A } from './fake-kms';
import { defined } from '../support/defined';

function cipher() {
  const kms = new FakeKms();
  kms.createKey(KEY_A);
  return new EnvelopeCipher({ kms: kms.client, keyFor: async () => KEY_A });
}

describe('write-only secrets', () => {
  it('reports *_set and never the value or the ciphertext', () => {
    const row = { id: 'm1', host: 'imap.example', password: 'bwk1.AAAA', refresh_token: null, sip_password: '' };
    const view = writeOnlyView(row, ['password', 'refresh_token', 'sip_password']);
    expect(view).toEqual({
      id: 'm1',
      host: 'imap.example',
      password_set: true,
      refresh_token_set: false,
      sip_password_set: false,
    });
    expect(JSON.stringify(view)).not.toContain('bwk1');
  });

  it('seals set fields, clears null ones, leaves absent ones, and the sealed value opens', async () => {
    const c = cipher();
    const fields: Record<'password' | 'webhook_secret', SecretPurpose> = {
      password: 'mailbox_password',
      webhook_secret: 'webhook_secret',
    };
    const out = await sealUpdate(c, ORG_A, { password: 'hunter2', host: 'x' }, fields);
    expect(Object.keys(out)).toEqual(['password']);
    expect(Buffer.from(await c.open(ORG_A, 'mailbox_password', defined(out.password))).toString()).toBe('hunter2');
    expect(await sealUpdate(c, ORG_A, { webhook_secret: null }, fields)).toEqual({ webhook_secret: null });
    await expect(sealUpdate(c, ORG_A, { password: 42 }, fields)).rejects.toThrow(/non-empty string/);
  });

  it('refuses OAuth access tokens outright: they are never persisted', async () => {
    const c = cipher();
    for (const name of ['access_token', 'oauth_access_token', 'accessToken']) {
      await expect(sealUpdate(c, ORG_A, { [name]: 'ya29.x' }, {})).rejects.toThrow(/never persisted/);
    }
    expect(SECRET_PURPOSES as readonly string[]).not.toContain('oauth_access_token');
  });
});
