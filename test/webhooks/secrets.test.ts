/** Per-organisation secrets: sealed at rest, rotation window, status without the secret. */
import { randomBytes, randomUUID } from 'node:crypto';
import { StoredSecretResolver, WebhookSecretService } from '../../lambda/webhooks/secrets';
import { MemoryAudit, MemorySecretStore, TestCipher } from './support';
import { defined } from '../support/defined';

const actor = { userId: randomUUID(), email: 'admin@dealer.example' };

function setup() {
  let now = 1_795_000_000_000;
  const clock = () => now;
  const store = new MemorySecretStore(clock);
  const cipher = new TestCipher();
  const audit = new MemoryAudit();
  const service = new WebhookSecretService({ store, cipher, audit, clock, rotationWindowSeconds: 3600 });
  const resolver = new StoredSecretResolver({ store, cipher, clock, cacheSeconds: 60 });
  return { store, cipher, audit, service, resolver, clock, advance: (s: number) => (now += s * 1000) };
}

const exported = (k: { export(): Buffer }) => k.export().toString('hex');

describe('WebhookSecretService', () => {
  it('reports only secret_set, never the secret, and stores only ciphertext', async () => {
    const { service, store } = setup();
    const org = randomUUID();
    expect(await service.status(org, 'frejun')).toEqual({
      provider: 'frejun',
      secret_set: false,
      previous_secret_active: false,
    });
    const secret = randomBytes(32);
    const status = await service.setSecret(org, 'frejun', secret, actor);
    expect(status).toEqual({ provider: 'frejun', secret_set: true, previous_secret_active: false });
    expect(JSON.stringify(status)).not.toContain(secret.toString('hex'));
    const stored = JSON.stringify([...store.rows.values()]);
    expect(stored).not.toContain(secret.toString('hex'));
    expect(stored).not.toContain(secret.toString('base64'));
    expect(stored).toMatch(/v1\./);
  });

  it('refuses secrets that are too short or too long', async () => {
    const { service } = setup();
    await expect(service.setSecret(randomUUID(), 'didlogic', randomBytes(15), actor)).rejects.toThrow(RangeError);
    await expect(service.setSecret(randomUUID(), 'didlogic', randomBytes(513), actor)).rejects.toThrow(RangeError);
  });

  it('keeps the previous secret verifying for the rotation window only', async () => {
    const { service, resolver, advance } = setup();
    const org = randomUUID();
    const [a, b] = [randomBytes(32), randomBytes(32)];
    await service.setSecret(org, 'frejun', a, actor);
    const after = await service.setSecret(org, 'frejun', b, actor);
    expect(after.previous_secret_active).toBe(true);
    expect((await resolver.secretsFor(org, 'frejun')).keys.map(exported)).toEqual([
      b.toString('hex'),
      a.toString('hex'),
    ]);
    advance(3601);
    expect((await service.status(org, 'frejun')).previous_secret_active).toBe(false);
    expect((await resolver.secretsFor(org, 'frejun')).keys.map(exported)).toEqual([b.toString('hex')]);
  });

  it('never serves a cached previous secret past the end of its window', async () => {
    const { service, resolver, advance } = setup();
    const org = randomUUID();
    await service.setSecret(org, 'frejun', randomBytes(32), actor);
    await service.setSecret(org, 'frejun', randomBytes(32), actor);
    advance(3590);
    expect((await resolver.secretsFor(org, 'frejun')).keys).toHaveLength(2);
    advance(11); // inside the 60 s cache TTL, but past the window
    expect((await resolver.secretsFor(org, 'frejun')).keys).toHaveLength(1);
  });

  it('ends a rotation early, and audits every change without the secret', async () => {
    const { service, resolver, audit } = setup();
    const org = randomUUID();
    const secret = randomBytes(32);
    await service.setSecret(org, 'didlogic', randomBytes(32), actor);
    await service.setSecret(org, 'didlogic', secret, actor);
    await service.endRotation(org, 'didlogic', actor);
    expect((await resolver.secretsFor(org, 'didlogic', true)).keys).toHaveLength(1);
    expect(audit.events.map((e) => e.event)).toEqual([
      'webhook_secret.rotated',
      'webhook_secret.rotated',
      'webhook_secret.rotation_ended',
    ]);
    expect(audit.events[0]).toMatchObject({ orgId: org, actorType: 'user', actorUserId: actor.userId });
    expect(JSON.stringify(audit.events)).not.toContain(secret.toString('hex'));
  });

  it('opens secrets only for the organisation they were sealed for', async () => {
    const { store, cipher, service } = setup();
    const [org, other] = [randomUUID(), randomUUID()];
    await service.setSecret(org, 'frejun', randomBytes(32), actor);
    // Copy org's ciphertext under another organisation: the cipher's binding refuses it.
    store.rows.set(`${other}/frejun`, defined(store.rows.get(`${org}/frejun`)));
    store.organisations.add(other);
    const resolver = new StoredSecretResolver({ store, cipher });
    await expect(resolver.secretsFor(other, 'frejun')).rejects.toMatchObject({ code: 'WEBHOOK_SECRET_UNREADABLE' });
  });

  it('caches opened secrets per instance, and re-reads on request at most every 5 s', async () => {
    const { service, resolver, cipher, advance } = setup();
    const org = randomUUID();
    await service.setSecret(org, 'frejun', randomBytes(32), actor);
    await resolver.secretsFor(org, 'frejun');
    await resolver.secretsFor(org, 'frejun');
    expect(cipher.opened).toBe(1);
    // A flood of forged signatures asks for fresh secrets each time: served from cache for 5 s.
    for (let i = 0; i < 10; i++) await resolver.secretsFor(org, 'frejun', true);
    expect(cipher.opened).toBe(1);
    advance(5);
    await resolver.secretsFor(org, 'frejun', true);
    expect(cipher.opened).toBe(2);
  });
});

describe('StoredSecretResolver: unknown organisations', () => {
  function resolverWith(options: { maxUnknownEntries?: number } = {}) {
    const s = setup();
    const resolver = new StoredSecretResolver({ store: s.store, cipher: s.cipher, clock: s.clock, ...options });
    return { ...s, resolver };
  }

  it('answers an unknown organisation with one decoy key, remembered for 60 s without another read', async () => {
    const { resolver, store, cipher, advance } = resolverWith();
    const org = randomUUID();
    const first = await resolver.secretsFor(org, 'frejun');
    expect(first.known).toBe(false);
    expect(first.keys).toHaveLength(1);
    expect(store.lookups).toBe(1);
    // Repeats, a `fresh` request and the other provider: no store read, no KMS call, the same decoy.
    for (let i = 0; i < 5; i++) expect(await resolver.secretsFor(org, 'frejun', true)).toBe(first);
    expect(await resolver.secretsFor(org, 'didlogic')).toBe(first);
    advance(59);
    expect(await resolver.secretsFor(org, 'frejun')).toBe(first);
    expect([store.lookups, cipher.opened]).toEqual([1, 0]);
    // The decoy is not any organisation's secret and is the same for every unknown organisation.
    expect(await resolver.secretsFor(randomUUID(), 'frejun')).toBe(first);
  });

  it('an organisation created after its negative entry is reachable once the entry expires (60 s)', async () => {
    const { resolver, service, store, advance } = resolverWith();
    const org = randomUUID();
    expect((await resolver.secretsFor(org, 'frejun')).known).toBe(false);
    const secret = randomBytes(32);
    await service.setSecret(org, 'frejun', secret, actor);
    advance(59);
    expect((await resolver.secretsFor(org, 'frejun')).known).toBe(false);
    advance(1);
    const keys = await resolver.secretsFor(org, 'frejun');
    expect([keys.known, keys.keys.map(exported)]).toEqual([true, [secret.toString('hex')]]);
    expect(store.lookups).toBe(2);
  });

  it('keeps at most maxUnknownEntries, forgetting the oldest first', async () => {
    const { resolver, store } = resolverWith({ maxUnknownEntries: 2 });
    const [a, b, c] = [randomUUID(), randomUUID(), randomUUID()];
    for (const org of [a, b, c]) await resolver.secretsFor(org, 'frejun');
    expect(store.lookups).toBe(3);
    await resolver.secretsFor(c, 'frejun');
    await resolver.secretsFor(b, 'frejun');
    expect(store.lookups).toBe(3);
    await resolver.secretsFor(a, 'frejun'); // evicted by c
    expect(store.lookups).toBe(4);
    expect(() => new StoredSecretResolver({ store, cipher: new TestCipher(), maxUnknownEntries: 0 })).toThrow(
      RangeError,
    );
  });

  it('a known organisation without a secret is WEBHOOK_SECRET_MISSING, remembered for 5 s only', async () => {
    const { resolver, store, service, advance } = resolverWith();
    const org = randomUUID();
    store.organisations.add(org);
    await expect(resolver.secretsFor(org, 'didlogic')).rejects.toMatchObject({ code: 'WEBHOOK_SECRET_MISSING' });
    await expect(resolver.secretsFor(org, 'didlogic')).rejects.toMatchObject({ code: 'WEBHOOK_SECRET_MISSING' });
    expect(store.lookups).toBe(1);
    await service.setSecret(org, 'didlogic', randomBytes(32), actor);
    advance(5);
    expect((await resolver.secretsFor(org, 'didlogic')).known).toBe(true);
    expect(store.lookups).toBe(2);
  });
});
