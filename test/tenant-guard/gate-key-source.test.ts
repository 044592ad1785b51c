/**
 * A warm authorizer follows a gate-key rotation: the key is re-read from its secret on a TTL well
 * inside the database's ten-minute overlap (injected clock, no sleeps).
 */
import type { APIGatewayRequestAuthorizerEvent } from 'aws-lambda';
import { createAuthorizer } from '../../lambda/tenant-guard/authorizer';
import { refreshingGateKey } from '../../lambda/tenant-guard/gate-key-source';
import { parseGateKeySecret, type GateKey } from '../../lambda/tenant-guard/ticket';
import { RecordingLog } from '../support/observability';

const keyOf = (c: string): GateKey => parseGateKeySecret(JSON.stringify({ key: c.repeat(64) }));
const OLD = keyOf('a');
const NEW = keyOf('b');

/** A secret whose value the test rotates, counting reads; `fail` makes the next reads throw. */
function secret(initial: GateKey) {
  const s = { value: initial, reads: 0, fail: false };
  return {
    s,
    load: () => {
      s.reads++;
      return s.fail ? Promise.reject(new Error('secrets manager unavailable')) : Promise.resolve(s.value);
    },
  };
}

describe('refreshing gate key', () => {
  let t = 0;
  const now = () => t;
  beforeEach(() => (t = 1_000_000));

  it('reads once per TTL, and follows a rotation within it', async () => {
    const { s, load } = secret(OLD);
    const key = refreshingGateKey(load, { ttlSeconds: 120, now });
    expect(await key()).toBe(OLD);
    s.value = NEW;
    t += 119_000;
    expect(await key()).toBe(OLD);
    expect(s.reads).toBe(1);
    t += 1_000;
    expect(await key()).toBe(NEW);
    expect(s.reads).toBe(2);
  });

  it('shares one read among concurrent callers', async () => {
    const { s, load } = secret(OLD);
    const key = refreshingGateKey(load, { now });
    expect(await Promise.all([key(), key(), key()])).toEqual([OLD, OLD, OLD]);
    expect(s.reads).toBe(1);
  });

  it('keeps signing with the cached key while a refresh fails, for a bounded time only', async () => {
    const { s, load } = secret(OLD);
    const key = refreshingGateKey(load, { ttlSeconds: 60, maxStaleSeconds: 300, now });
    expect(await key()).toBe(OLD);
    s.fail = true;
    t += 120_000;
    expect(await key()).toBe(OLD);
    t += 179_000;
    expect(await key()).toBe(OLD);
    t += 1_000;
    await expect(key()).rejects.toThrow('secrets manager unavailable');
    s.fail = false;
    s.value = NEW;
    expect(await key()).toBe(NEW);
  });

  it('fails without any key, and refuses settings that outlive the database’s overlap', async () => {
    const { s, load } = secret(OLD);
    s.fail = true;
    await expect(refreshingGateKey(load, { now })()).rejects.toThrow('secrets manager unavailable');
    expect(() => refreshingGateKey(load, { ttlSeconds: 0 })).toThrow(RangeError);
    expect(() => refreshingGateKey(load, { ttlSeconds: 600, maxStaleSeconds: 600 })).toThrow(RangeError);
    expect(() => refreshingGateKey(load, { ttlSeconds: 120, maxStaleSeconds: 60 })).toThrow(RangeError);
  });

  it('a warm authorizer signs tickets with the rotated key once the TTL has passed', async () => {
    const { s, load } = secret(OLD);
    const authorize = createAuthorizer({
      verify: () =>
        Promise.resolve({
          subject: 'sub-1',
          email: 'u@example.test',
          orgId: '00000000-0000-4000-8000-000000000001',
          expiresAt: t / 1000 + 3600,
        }),
      log: new RecordingLog(),
      gateKey: refreshingGateKey(load, { ttlSeconds: 120, now }),
      now: () => t / 1000,
    });
    const event = {
      type: 'REQUEST',
      methodArn: 'arn:aws:execute-api:eu-west-1:111111111111:abcdef1234/prod/GET/leads',
      headers: { Authorization: 'Bearer token' },
      multiValueHeaders: { Authorization: ['Bearer token'] },
    } as unknown as APIGatewayRequestAuthorizerEvent;
    const kidOf = async () => String((await authorize(event)).context?.['ticket']).split('.')[1];
    expect(await kidOf()).toBe(OLD.kid);
    s.value = NEW;
    t += 60_000;
    expect(await kidOf()).toBe(OLD.kid);
    t += 60_000;
    expect(await kidOf()).toBe(NEW.kid);
    expect(NEW.kid).not.toBe(OLD.kid);
  });
});
