/**
 * A small in-memory KMS behind aws-sdk-client-mock, faithful where the tests need it: data keys are
 * really wrapped (AES-256-GCM under a per-key master, the encryption context as AAD), so Decrypt
 * with another context or another key really fails, as KMS does, with InvalidCiphertextException.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { DecryptCommand, GenerateDataKeyCommand, KMSClient } from '@aws-sdk/client-kms';
import { mockClient, type AwsClientStub } from 'aws-sdk-client-mock';

function kmsError(name: string, message: string): Error {
  const e = new Error(message);
  e.name = name;
  return e;
}

function contextAad(keyArn: string, ctx: Record<string, string> | undefined): Buffer {
  const sorted = Object.keys(ctx ?? {})
    .sort()
    .map((k) => [k, (ctx ?? {})[k]]);
  return Buffer.from(JSON.stringify([keyArn, sorted]));
}

export class FakeKms {
  readonly client = new KMSClient({ region: 'eu-west-1', credentials: { accessKeyId: 'x', secretAccessKey: 'y' } });
  readonly mock: AwsClientStub<KMSClient>;
  private readonly masters = new Map<string, Buffer>();
  generateCalls = 0;
  decryptCalls = 0;

  constructor() {
    this.mock = mockClient(this.client);
    this.mock
      .on(GenerateDataKeyCommand)
      .callsFake((input: { KeyId: string; EncryptionContext?: Record<string, string> }) => {
        this.generateCalls++;
        const master = this.masters.get(input.KeyId);
        if (!master) throw kmsError('NotFoundException', 'key not found');
        const plaintext = randomBytes(32);
        const iv = randomBytes(12);
        const c = createCipheriv('aes-256-gcm', master, iv);
        c.setAAD(contextAad(input.KeyId, input.EncryptionContext));
        const blob = Buffer.concat([iv, c.update(plaintext), c.final(), c.getAuthTag()]);
        return { KeyId: input.KeyId, Plaintext: new Uint8Array(plaintext), CiphertextBlob: new Uint8Array(blob) };
      });
    this.mock
      .on(DecryptCommand)
      .callsFake((input: { KeyId: string; CiphertextBlob: Uint8Array; EncryptionContext?: Record<string, string> }) => {
        this.decryptCalls++;
        const master = this.masters.get(input.KeyId);
        if (!master) throw kmsError('NotFoundException', 'key not found');
        const blob = Buffer.from(input.CiphertextBlob);
        try {
          const d = createDecipheriv('aes-256-gcm', master, blob.subarray(0, 12));
          d.setAAD(contextAad(input.KeyId, input.EncryptionContext));
          d.setAuthTag(blob.subarray(blob.length - 16));
          const plaintext = Buffer.concat([d.update(blob.subarray(12, blob.length - 16)), d.final()]);
          return { KeyId: input.KeyId, Plaintext: new Uint8Array(plaintext) };
        } catch {
          throw kmsError('InvalidCiphertextException', 'invalid ciphertext');
        }
      });
  }

  createKey(arn: string): string {
    this.masters.set(arn, randomBytes(32));
    return arn;
  }

  /** Simulates ScheduleKeyDeletion: the key is unusable from now on. */
  disable(arn: string): void {
    this.masters.delete(arn);
  }
}

export const ORG_A = '0b6f3a52-8a43-4d55-9e57-5d1a1c6f0a01';
export const ORG_B = '7c9d1e02-3b4f-4a6e-8d7c-2e1f0a9b8c02';
export const KEY_A = 'arn:aws:kms:eu-west-1:111122223333:key/11111111-1111-4111-8111-111111111111';
export const KEY_B = 'arn:aws:kms:eu-west-1:111122223333:key/22222222-2222-4222-8222-222222222222';
