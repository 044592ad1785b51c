import { S3Client } from '@aws-sdk/client-s3';
import { MAX_URL_TTL_SECONDS } from '../../contracts/tenant-keys';
import type { AuditSink } from '../../lambda/shared/audit';
import { ExportService, redactRow, type ExportRequest, type ExportStore } from '../../lambda/tenant-keys/export';
import { ORG_A } from './fake-kms';

const NOW = new Date('2026-11-22T12:00:00Z');
const USER = '9f1c2d3e-4b5a-4c6d-8e7f-0a1b2c3d4e5f';

function service(ttl: number | undefined, req: ExportRequest | null) {
  const store = { get: async () => req } as unknown as ExportStore;
  const audit: AuditSink = { record: async () => undefined };
  return new ExportService({
    s3: new S3Client({ region: 'eu-west-1', credentials: { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'x' } }),
    store,
    source: { read: async (_r, fn) => fn({ rows: async function* () {} }) },
    audit,
    clock: () => NOW,
    bucket: 'exports',
    bucketKeyArn: 'arn:aws:kms:eu-west-1:111122223333:key/k',
    urlTtlSeconds: ttl,
  });
}

const ready = (completedAt: Date): ExportRequest => ({
  id: 'e1',
  orgId: ORG_A,
  requestedBy: USER,
  status: 'ready',
  objectKey: `exports/${ORG_A}/e1.ndjson.gz`,
  requestedAt: completedAt,
  completedAt,
});
const owner = { userId: USER, email: null, role: 'owner' };

describe('export links', () => {
  it('never live longer than 15 minutes', () => {
    expect(MAX_URL_TTL_SECONDS).toBe(900);
    expect(() => service(901, null)).toThrow(RangeError);
    expect(() => service(0, null)).toThrow(RangeError);
  });

  it('are signed for the configured lifetime, at the service clock', async () => {
    const { url, expiresAt } = await service(300, ready(NOW)).downloadUrl(ORG_A, 'e1', owner);
    const u = new URL(url);
    expect(u.searchParams.get('X-Amz-Expires')).toBe('300');
    expect(u.searchParams.get('X-Amz-Date')).toBe('20261122T120000Z');
    expect(expiresAt).toEqual(new Date(NOW.getTime() + 300_000));
  });

  it('are refused to non-Owners, for unknown, unfinished or expired exports', async () => {
    await expect(service(900, ready(NOW)).downloadUrl(ORG_A, 'e1', { ...owner, role: 'admin' })).rejects.toMatchObject({
      code: 'PERMISSION_DENIED',
      status: 403,
    });
    await expect(service(900, null).downloadUrl(ORG_A, 'e1', owner)).rejects.toMatchObject({ status: 404 });
    await expect(
      service(900, { ...ready(NOW), status: 'pending', objectKey: null, completedAt: null }).downloadUrl(
        ORG_A,
        'e1',
        owner,
      ),
    ).rejects.toMatchObject({ code: 'EXPORT_NOT_READY', status: 409 });
    const old = new Date(NOW.getTime() - 7 * 86_400_000);
    await expect(service(900, ready(old)).downloadUrl(ORG_A, 'e1', owner)).rejects.toMatchObject({ status: 410 });
  });

  it('never carry credentials: sealed and secret-like fields are dropped', () => {
    expect(
      redactRow({
        id: 1,
        name: 'n',
        webhook_secret_sealed: 'bwk1.x',
        password: 'p',
        refresh_token: 't',
        photo: Buffer.from('ab'),
      }),
    ).toEqual({ id: 1, name: 'n', photo: 'YWI=' });
  });
});
