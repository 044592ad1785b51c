/**
 * Tenant files through the real REQUEST authorizer and the real API handler, against a real
 * PostgreSQL as the application role: the authorizer's verdict carries the files-role credentials
 * it minted for the verified organisation (a recording minter stands in for STS), the API signs
 * with them (real SigV4 presigning, no network) and deletes through S3 (aws-sdk-client-mock).
 */
import {
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  PutObjectTaggingCommand,
  S3Client,
  type GetObjectCommandOutput,
} from '@aws-sdk/client-s3';
import type { APIGatewayAuthorizerResult, APIGatewayRequestAuthorizerEvent } from 'aws-lambda';
import { mockClient } from 'aws-sdk-client-mock';
import type { Pool } from 'pg';
import { DATABASE_ROLES } from '../../contracts/database';
import { securityHeaders } from '../../contracts/security-headers';
import { MAX_FILE_BYTES } from '../../contracts/tenant-files';
import { FileChecker } from '../../lambda/tenant-files/checker';
import { PgFileCheckStore } from '../../lambda/tenant-files/pg-file-checks';
import { createAuthorizer } from '../../lambda/tenant-guard/authorizer';
import type { FilesCredentials } from '../../lambda/tenant-guard/files-credentials';
import { buildHandler } from '../../lambda/tenant-guard/handler';
import { RecordingLog } from '../support/observability';
import { startPostgres, TEST_GATE_KEY, type TestPostgres } from '../support/postgres';
import { defined } from '../support/defined';
import { buildWorld, subjectOf, type World } from '../tenant-guard/fixtures';
import { proxyEvent, testIdentity, type TestIdentity } from '../tenant-guard/http';
import { vin } from '../tenant-guard/seed';

const BUCKET = 'bulwark-prod-eu-files-test';
const STAGE_ARN = 'arn:aws:execute-api:eu-west-1:111122223333:abcdef1234/prod';
const keyArn = (org: string) => `arn:aws:kms:eu-west-1:111122223333:key/${org}`;
const SHA = `${'q'.repeat(43)}=`;
const upload = { name: 'front.jpg', contentType: 'image/jpeg', size: 2048, sha256: SHA };

type Answer = { status: number; body: Record<string, unknown> };

let pg: TestPostgres;
let w: World;
let pool: Pool;
let id: TestIdentity;
const s3 = mockClient(S3Client);
/** What the minter was asked for, and what the API signed with. */
const minted: { org: string; subject: string; creds: FilesCredentials }[] = [];
const signers: FilesCredentials[] = [];
let mintFails = false;
/** Seconds the minted credentials live (AssumeRole's 900 unless a test shortens them). */
let credsLife = 900;
const apiLog = new RecordingLog();
let frozenAt: Date | undefined;
const authorizerLog = new RecordingLog();

function mint(org: string, subject: string): Promise<FilesCredentials> {
  if (mintFails) return Promise.reject(Object.assign(new Error('throttled'), { name: 'Throttling' }));
  const n = minted.length;
  const creds = {
    accessKeyId: `ASIAFILES${String(n).padStart(11, '0')}`,
    secretAccessKey: `files-secret-${n}-${'s'.repeat(20)}`,
    sessionToken: `files-session-token-${n}`,
    expiresAt: Math.floor(Date.now() / 1000) + credsLife,
  };
  minted.push({ org, subject, creds });
  return Promise.resolve(creds);
}

const files = {
  bucket: BUCKET,
  s3For: (c: FilesCredentials) => {
    signers.push(c);
    return new S3Client({ region: 'eu-west-1', credentials: { ...c, expiration: new Date(c.expiresAt * 1000) } });
  },
};

let api: ReturnType<typeof buildHandler>;
let authorize: ReturnType<typeof createAuthorizer>;

beforeAll(async () => {
  pg = await startPostgres();
  w = await buildWorld(pg);
  pool = pg.pool();
  pool.on('error', () => undefined);
  id = await testIdentity(pg);
  authorize = createAuthorizer({
    verify: id.verify,
    log: authorizerLog,
    gateKey: TEST_GATE_KEY,
    filesCredentials: mint,
  });
  api = buildHandler(pool, apiLog, { files, now: () => frozenAt ?? new Date() });
  for (const org of [w.storeA, w.storeB]) {
    await pg.superuser("UPDATE organisations SET kms_key_arn = $2, kms_key_source = 'managed' WHERE id = $1", [
      org,
      keyArn(org),
    ]);
  }
});
afterAll(async () => {
  s3.restore();
  await pg?.stop();
});
beforeEach(() => {
  s3.reset();
  mintFails = false;
  credsLife = 900;
  frozenAt = undefined;
});

/** The authorizer, then the API with its verdict in `requestContext.authorizer`, as API Gateway does. */
async function gateway(
  method: string,
  path: string,
  auth: string,
  o: { body?: unknown; headers?: Record<string, string>; query?: Record<string, string>; handler?: typeof api } = {},
): Promise<Answer> {
  const headers = { Authorization: auth, ...o.headers };
  const verdict: APIGatewayAuthorizerResult = await authorize({
    type: 'REQUEST',
    methodArn: `${STAGE_ARN}/${method}${path}`,
    headers,
    multiValueHeaders: { Authorization: [auth] },
    requestContext: {},
  } as unknown as APIGatewayRequestAuthorizerEvent);
  expect(verdict.policyDocument.Statement[0]).toMatchObject({ Effect: 'Allow' });
  // API Gateway hands the API every context value as a string.
  const context = Object.fromEntries(Object.entries(verdict.context ?? {}).map(([k, v]) => [k, String(v)]));
  const event = proxyEvent(method, path, { headers: o.headers, body: o.body, authorizer: context });
  if (o.query) (event as { queryStringParameters: Record<string, string> }).queryStringParameters = o.query;
  const r = await (o.handler ?? api)(event);
  expect(r.headers).toMatchObject(securityHeaders());
  return { status: r.statusCode, body: JSON.parse(r.body) as Record<string, unknown> };
}

const bearer = (user: string, org: string) => id.bearer(user, org);

async function uploadAs(user: string, org: string, body: unknown = upload): Promise<Answer> {
  return gateway('POST', '/files', await bearer(user, org), { body });
}

const fileIdOf = (a: Answer) => String((a.body['file'] as Record<string, unknown>)['id']);

describe('POST /files', () => {
  it('presigns a PUT with the files credentials minted for the verified organisation, every constraint signed', async () => {
    const before = minted.length;
    const a = await uploadAs(w.ownerA, w.storeA);
    expect(a.status).toBe(201);
    const mine = defined(minted[before]);
    expect(mine).toMatchObject({ org: w.storeA, subject: subjectOf(w.ownerA) });
    const file = a.body['file'] as Record<string, unknown>;
    expect(file).toMatchObject({ name: 'front.jpg', contentType: 'image/jpeg', size: 2048, status: 'quarantined' });
    const up = a.body['upload'] as { method: string; url: string; headers: Record<string, string>; expiresAt: string };
    const url = new URL(up.url);
    // Under the organisation's prefix, named by the row id (never by the client's file name).
    expect(url.hostname).toBe(`${BUCKET}.s3.eu-west-1.amazonaws.com`);
    expect(url.pathname).toBe(`/orgs/${w.storeA}/files/${fileIdOf(a)}`);
    // Signed as the files role's session, not as the API function.
    expect(url.searchParams.get('X-Amz-Credential')).toMatch(new RegExp(`^${mine.creds.accessKeyId}/`));
    expect(url.searchParams.get('X-Amz-Security-Token')).toBe(mine.creds.sessionToken);
    expect(Number(url.searchParams.get('X-Amz-Expires'))).toBeLessThanOrEqual(900);
    expect(Number(url.searchParams.get('X-Amz-Expires'))).toBeGreaterThan(800);
    // The type, exact length, checksum, key and context are signed headers the client must send as given.
    expect(defined(url.searchParams.get('X-Amz-SignedHeaders')).split(';')).toEqual(
      expect.arrayContaining([
        'content-length',
        'content-type',
        'host',
        'x-amz-checksum-sha256',
        'x-amz-server-side-encryption',
        'x-amz-server-side-encryption-aws-kms-key-id',
        'x-amz-server-side-encryption-context',
      ]),
    );
    for (const hoisted of ['x-amz-server-side-encryption', 'x-amz-checksum-sha256']) {
      expect(url.searchParams.has(hoisted)).toBe(false);
    }
    expect(up.method).toBe('PUT');
    expect(up.headers).toMatchObject({
      'content-type': 'image/jpeg',
      'content-length': '2048',
      'x-amz-checksum-sha256': SHA,
      'x-amz-server-side-encryption': 'aws:kms',
      'x-amz-server-side-encryption-aws-kms-key-id': keyArn(w.storeA),
    });
    expect(
      JSON.parse(Buffer.from(defined(up.headers['x-amz-server-side-encryption-context']), 'base64').toString()),
    ).toEqual({ org_id: w.storeA });
    // Audited in the tenant's trail, in the request's transaction.
    const rows = (await pg.superuser(
      "SELECT metadata FROM audit_log WHERE org_id = $1 AND event = 'file.upload_issued' AND entity_id = $2",
      [w.storeA, fileIdOf(a)],
    )) as { metadata: Record<string, unknown> }[];
    expect(defined(rows[0]).metadata).toMatchObject({ contentType: 'image/jpeg', size: 2048 });
  });

  it('names the field at fault', async () => {
    const cases: [unknown, string][] = [
      [{ ...upload, size: MAX_FILE_BYTES + 1 }, 'size'],
      [{ ...upload, size: 0 }, 'size'],
      [{ ...upload, contentType: 'text/html' }, 'contentType'],
      [{ ...upload, name: '../../etc/passwd' }, 'name'],
      [{ ...upload, sha256: 'abc' }, 'sha256'],
      [{ ...upload, status: 'clean' }, 'status'],
      [{ ...upload, vehicleId: 'nope' }, 'vehicleId'],
    ];
    for (const [body, field] of cases) {
      expect(await uploadAs(w.ownerA, w.storeA, body)).toEqual({
        status: 400,
        body: { error: 'VALIDATION_FAILED', field },
      });
    }
  });

  it("links a file to the organisation's own vehicle only", async () => {
    const [own] = (await pg.superuser(
      "INSERT INTO vehicles (org_id, vin, make, model, year) VALUES ($1, $2, 'M', 'M', 2020) RETURNING id",
      [w.storeA, vin()],
    )) as { id: string }[];
    const [other] = (await pg.superuser(
      "INSERT INTO vehicles (org_id, vin, make, model, year) VALUES ($1, $2, 'M', 'M', 2020) RETURNING id",
      [w.storeB, vin()],
    )) as { id: string }[];
    expect((await uploadAs(w.ownerA, w.storeA, { ...upload, vehicleId: defined(own).id })).status).toBe(201);
    expect(await uploadAs(w.ownerA, w.storeA, { ...upload, vehicleId: defined(other).id })).toEqual({
      status: 400,
      body: { error: 'VALIDATION_FAILED', field: 'vehicleId' },
    });
  });

  it('refuses without credentials (STS failed at the authorizer) while the rest of the API works', async () => {
    mintFails = true;
    const auth = await bearer(w.ownerA, w.storeA);
    expect(await gateway('POST', '/files', auth, { body: upload })).toEqual({
      status: 503,
      body: { error: 'FILES_CREDENTIALS_MISSING' },
    });
    expect((await gateway('GET', '/files', auth)).status).toBe(200);
    const warned = authorizerLog.entries.filter((e) => e.message === 'files credentials unavailable');
    expect(warned.at(-1)?.fields).toEqual({ error: 'Throttling' });
  });

  it('refuses credentials about to expire', async () => {
    credsLife = 50;
    expect(await uploadAs(w.ownerA, w.storeA)).toEqual({ status: 401, body: { error: 'FILES_CREDENTIALS_EXPIRED' } });
  });

  it('answers FILES_UNAVAILABLE when the file store is not wired', async () => {
    const bare = buildHandler(pool, new RecordingLog());
    expect(await gateway('POST', '/files', await bearer(w.ownerA, w.storeA), { body: upload, handler: bare })).toEqual({
      status: 503,
      body: { error: 'FILES_UNAVAILABLE' },
    });
  });
});

describe('reading files', () => {
  let fileA: string;
  beforeAll(async () => {
    fileA = fileIdOf(
      await uploadAs(w.ownerA, w.storeA, { ...upload, name: 'bill "of" sale.pdf', contentType: 'application/pdf' }),
    );
  });

  it("lists the organisation's own files only (RLS): B never sees A's", async () => {
    const a = await gateway('GET', '/files', await bearer(w.ownerA, w.storeA));
    const b = await gateway('GET', '/files', await bearer(w.ownerB, w.storeB));
    const ids = (x: Answer) => (x.body['files'] as { id: string }[]).map((f) => f.id);
    expect(ids(a)).toContain(fileA);
    expect(ids(b)).not.toContain(fileA);
    const all = (await pg.superuser('SELECT id, org_id FROM tenant_files WHERE id = ANY ($1)', [ids(b)])) as {
      org_id: string;
    }[];
    expect(all.every((r) => r.org_id === w.storeB)).toBe(true);
  });

  it("cannot address another organisation's file by id", async () => {
    const auth = await bearer(w.ownerB, w.storeB);
    expect(await gateway('GET', `/files/${fileA}`, auth)).toEqual({ status: 404, body: { error: 'FILE_NOT_FOUND' } });
    expect(await gateway('DELETE', `/files/${fileA}`, auth)).toEqual({
      status: 404,
      body: { error: 'FILE_NOT_FOUND' },
    });
    expect(s3.commandCalls(DeleteObjectCommand)).toHaveLength(0);
  });

  it('keeps a file quarantined until the checker releases it, and a rejected one for good', async () => {
    const auth = await bearer(w.ownerA, w.storeA);
    expect(await gateway('GET', `/files/${fileA}`, auth)).toEqual({ status: 409, body: { error: 'FILE_QUARANTINED' } });
    await pg.superuser("UPDATE tenant_files SET status = 'clean', checked_at = now() WHERE id = $1", [fileA]);
    const before = minted.length;
    const ok = await gateway('GET', `/files/${fileA}`, auth);
    expect(ok.status).toBe(200);
    const url = new URL(String(ok.body['url']));
    expect(url.pathname).toBe(`/orgs/${w.storeA}/files/${fileA}`);
    expect(url.searchParams.get('X-Amz-Credential')).toMatch(
      new RegExp(`^${defined(minted[before]).creds.accessKeyId}/`),
    );
    expect(url.searchParams.get('response-content-type')).toBe('application/pdf');
    expect(url.searchParams.get('response-content-disposition')).toMatch(/^attachment; filename="bill _of_ sale.pdf"/);
    await pg.superuser("UPDATE tenant_files SET status = 'rejected' WHERE id = $1", [fileA]);
    expect(await gateway('GET', `/files/${fileA}`, auth)).toEqual({ status: 409, body: { error: 'FILE_REJECTED' } });
    await pg.superuser("UPDATE tenant_files SET status = 'clean' WHERE id = $1", [fileA]);
  });

  it('serves the presigned download once the quarantine checker, as bulwark_file_checker, released the upload', async () => {
    const auth = await bearer(w.ownerA, w.storeA);
    const file = fileIdOf(await uploadAs(w.ownerA, w.storeA));
    expect(await gateway('GET', `/files/${file}`, auth)).toEqual({ status: 409, body: { error: 'FILE_QUARANTINED' } });
    // What S3 holds after the presigned PUT: the declared size and checksum, a JPEG, under A's key.
    s3.on(HeadObjectCommand).resolves({
      ContentLength: upload.size,
      ServerSideEncryption: 'aws:kms',
      SSEKMSKeyId: keyArn(w.storeA),
      ChecksumSHA256: upload.sha256,
    });
    s3.on(GetObjectCommand).resolves({
      Body: { transformToByteArray: () => Promise.resolve(Uint8Array.from([0xff, 0xd8, 0xff, 0xe0])) },
    } as unknown as GetObjectCommandOutput);
    s3.on(PutObjectTaggingCommand).resolves({});
    const checkerPool = pg.pool(DATABASE_ROLES.fileChecker);
    const checker = new FileChecker(
      {
        s3: new S3Client({ region: 'eu-west-1' }),
        store: new PgFileCheckStore(checkerPool),
        log: new RecordingLog(),
      },
      { bucket: BUCKET },
    );
    const key = `orgs/${w.storeA}/files/${file}`;
    expect(await checker.check({ bucket: BUCKET, key, versionId: 'v1' })).toMatchObject({
      result: 'released',
      mark: 'clean',
    });
    expect(s3.commandCalls(PutObjectTaggingCommand)[0]?.args[0].input).toMatchObject({
      Key: key,
      VersionId: 'v1',
      Tagging: { TagSet: [{ Key: 'bulwark-scan', Value: 'clean' }] },
    });
    const ok = await gateway('GET', `/files/${file}`, auth);
    expect(ok.status).toBe(200);
    expect(new URL(String(ok.body['url'])).pathname).toBe(`/${key}`);
    // B still cannot address it.
    expect((await gateway('GET', `/files/${file}`, await bearer(w.ownerB, w.storeB))).status).toBe(404);
  });

  it("refuses to sign for an organisation other than the token's (oversight read of a member store)", async () => {
    // The group owner may read store A (oversight), but the credentials are the group's own.
    const r = await gateway('GET', `/files/${fileA}`, await bearer(w.groupOwner, w.group), {
      headers: { 'X-Bulwark-Org': w.storeA },
    });
    expect(r).toEqual({ status: 403, body: { error: 'FILES_ORG_MISMATCH' } });
  });
});

describe('DELETE /files/{id}', () => {
  it('deletes the row and the object, as the files session; a failed S3 delete keeps the row', async () => {
    const id1 = fileIdOf(await uploadAs(w.ownerA, w.storeA));
    const auth = await bearer(w.ownerA, w.storeA);
    s3.on(DeleteObjectCommand).rejects(Object.assign(new Error('denied'), { name: 'AccessDenied' }));
    expect((await gateway('DELETE', `/files/${id1}`, auth)).status).toBe(500);
    expect(await pg.superuser('SELECT 1 FROM tenant_files WHERE id = $1', [id1])).toHaveLength(1);

    s3.reset();
    s3.on(DeleteObjectCommand).resolves({});
    signers.length = 0;
    expect(await gateway('DELETE', `/files/${id1}`, auth)).toEqual({ status: 200, body: { deleted: id1 } });
    expect(s3.commandCalls(DeleteObjectCommand).map((c) => c.args[0].input)).toEqual([
      { Bucket: BUCKET, Key: `orgs/${w.storeA}/files/${id1}` },
    ]);
    expect(signers.map((c) => c.accessKeyId)).toEqual([defined(minted.at(-1)).creds.accessKeyId]);
    expect(await pg.superuser('SELECT 1 FROM tenant_files WHERE id = $1', [id1])).toHaveLength(0);
    expect(await gateway('DELETE', `/files/${id1}`, auth)).toEqual({ status: 404, body: { error: 'FILE_NOT_FOUND' } });
  });
});

describe('the table under attack (SQL on the API connection)', () => {
  it('lets the application role neither choose the status, nor the key, nor update a row', async () => {
    const c = await pool.connect();
    try {
      await c.query('BEGIN');
      await c.query('SELECT 1');
      for (const sql of [
        "INSERT INTO tenant_files (org_id, name, content_type, size_bytes, sha256, status) VALUES ($1, 'x', 'image/png', 1, $2, 'clean')",
        "INSERT INTO tenant_files (id, org_id, name, content_type, size_bytes, sha256) VALUES (gen_random_uuid(), $1, 'x', 'image/png', 1, $2)",
        "UPDATE tenant_files SET status = 'clean' WHERE org_id = $1 AND sha256 = $2",
        'DELETE FROM tenant_files WHERE org_id = $1 AND sha256 = $2',
      ]) {
        await c.query('SAVEPOINT s');
        await expect(c.query(sql, [w.storeA, SHA])).rejects.toMatchObject({ code: '42501' });
        await c.query('ROLLBACK TO SAVEPOINT s');
      }
      await c.query('ROLLBACK');
    } finally {
      c.release();
    }
  });
});

describe('bring-your-own keys', () => {
  it('are refused until the provisioner records their policy at the files version, then served', async () => {
    await pg.superuser(
      "UPDATE organisations SET kms_key_arn = $2, kms_key_source = 'byok', kms_policy_version = NULL WHERE id = $1",
      [w.storeC, keyArn(w.storeC)],
    );
    const refused = await uploadAs(w.ownerC, w.storeC);
    expect(refused).toMatchObject({ status: 409, body: { error: 'FILES_KEY_UNSUPPORTED' } });
    // A policy found at version 1 (no files statement) is still refused.
    await pg.superuser('UPDATE organisations SET kms_policy_version = 1 WHERE id = $1', [w.storeC]);
    expect((await uploadAs(w.ownerC, w.storeC)).body).toMatchObject({ error: 'FILES_KEY_UNSUPPORTED' });
    // The refresh found the customer's policy allowing files (app.record_key_policy_version).
    await pg.superuser('UPDATE organisations SET kms_policy_version = 2 WHERE id = $1', [w.storeC]);
    const ok = await uploadAs(w.ownerC, w.storeC);
    expect(ok.status).toBe(201);
    const up = ok.body['upload'] as { headers: Record<string, string> };
    expect(up.headers['x-amz-server-side-encryption-aws-kms-key-id']).toBe(keyArn(w.storeC));
  });
});
