/**
 * The SDK's own retries, as the handlers configure them: a real KMS client whose HTTP handler
 * answers every request with KMS's throttling error, counting requests. No network.
 */
import { DecryptCommand, KMSClient } from '@aws-sdk/client-kms';
import { Readable } from 'node:stream';
import { errorName, onFirstUse, SDK_MAX_ATTEMPTS, sdkRetries } from '../../lambda/shared/sdk';

function kmsAnswering(type: string, maxAttempts: number) {
  const requests: unknown[] = [];
  const client = new KMSClient({
    ...sdkRetries(maxAttempts),
    region: 'eu-west-1',
    credentials: { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'secret' },
    requestHandler: {
      handle: async (request: unknown) => {
        requests.push(request);
        return {
          // The shape of a smithy HttpResponse (the package is not a direct dependency).
          response: {
            statusCode: 400,
            headers: { 'content-type': 'application/x-amz-json-1.1', 'x-amzn-errortype': type },
            body: Readable.from([Buffer.from(JSON.stringify({ __type: type, message: 'refused' }))]),
          },
        };
      },
    },
  });
  return { client, requests };
}

describe('sdkRetries', () => {
  it('is adaptive mode with the attempt budget', async () => {
    expect(sdkRetries()).toEqual({ maxAttempts: SDK_MAX_ATTEMPTS, retryMode: 'adaptive' });
    const { client } = kmsAnswering('ThrottlingException', 8);
    expect(await client.config.maxAttempts()).toBe(8);
    const strategy = (await client.config.retryStrategy()) as { mode?: string };
    expect(strategy.mode).toBe('adaptive');
  });

  it('retries throttling up to the budget, then surfaces ThrottlingException', async () => {
    const { client, requests } = kmsAnswering('ThrottlingException', 3);
    const call = client.send(new DecryptCommand({ CiphertextBlob: new Uint8Array([1]) }));
    const error: unknown = await call.catch((e: unknown) => e);
    expect(errorName(error)).toBe('ThrottlingException');
    expect(requests).toHaveLength(3);
  });

  it('does not retry a refusal', async () => {
    const { client, requests } = kmsAnswering('AccessDeniedException', 3);
    const error: unknown = await client
      .send(new DecryptCommand({ CiphertextBlob: new Uint8Array([1]) }))
      .catch((e: unknown) => e);
    expect(errorName(error)).toBe('AccessDeniedException');
    expect(requests).toHaveLength(1);
  });
});

describe('onFirstUse', () => {
  const sender = (log: string[]) => ({
    send: (command: string) => {
      log.push(command);
      return Promise.resolve(`sent ${command}`);
    },
  });

  it('builds the client on the first send only, once for concurrent sends', async () => {
    const log: string[] = [];
    let builds = 0;
    const client = onFirstUse(() => {
      builds++;
      return Promise.resolve(sender(log));
    });
    expect(builds).toBe(0);
    await expect(Promise.all([client.send('a'), client.send('b')])).resolves.toEqual(['sent a', 'sent b']);
    await client.send('c');
    expect(builds).toBe(1);
    expect(log).toEqual(['a', 'b', 'c']);
  });

  it('builds again after a failed build, and passes the failure to the caller', async () => {
    const log: string[] = [];
    let builds = 0;
    const client = onFirstUse(() => {
      builds++;
      return builds === 1 ? Promise.reject(new Error('load failed')) : Promise.resolve(sender(log));
    });
    await expect(client.send('a')).rejects.toThrow('load failed');
    await expect(client.send('b')).resolves.toBe('sent b');
    expect(builds).toBe(2);
  });
});
