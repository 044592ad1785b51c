/**
 * The authorizer's files credentials: the AssumeRole call it makes (aws-sdk-client-mock on the STS
 * client it uses), what it refuses to mint, and what the verdict carries (and the log never does).
 */
import { AssumeRoleCommand, STSClient } from '@aws-sdk/client-sts';
import type { APIGatewayRequestAuthorizerEvent } from 'aws-lambda';
import { mockClient } from 'aws-sdk-client-mock';
import { createAuthorizer } from '../../lambda/tenant-guard/authorizer';
import { filesCredentialMinter, filesSessionName, stsAssumeRole } from '../../lambda/tenant-guard/files-credentials';
import { RecordingLog } from '../support/observability';
import { TEST_GATE_KEY } from '../support/postgres';

const ROLE = 'arn:aws:iam::111122223333:role/prod-eu-Edge-FilesRole';
const ORG = '0a0a0a0a-0000-4000-8000-00000000000a';
const expiration = new Date('2026-12-02T12:15:00Z');

const sts = mockClient(STSClient);
const client = new STSClient({ region: 'eu-west-1', credentials: { accessKeyId: 'x', secretAccessKey: 'y' } });
afterAll(() => sts.restore());
beforeEach(() => sts.reset());

describe('filesCredentialMinter over STS', () => {
  const mint = filesCredentialMinter(stsAssumeRole(client), ROLE);

  it('assumes the files role for 15 minutes with the organisation as the one session tag', async () => {
    sts.on(AssumeRoleCommand).resolves({
      Credentials: { AccessKeyId: 'ASIA1', SecretAccessKey: 'secret', SessionToken: 'token', Expiration: expiration },
    });
    expect(await mint(ORG, 'c0ffee00-1111-4111-8111-123456789abc')).toEqual({
      accessKeyId: 'ASIA1',
      secretAccessKey: 'secret',
      sessionToken: 'token',
      expiresAt: expiration.getTime() / 1000,
    });
    expect(sts.commandCalls(AssumeRoleCommand).map((c) => c.args[0].input)).toEqual([
      {
        RoleArn: ROLE,
        RoleSessionName: 'files-c0ffee00-1111-4111-8111-123456789abc',
        DurationSeconds: 900,
        Tags: [{ Key: 'org_id', Value: ORG }],
      },
    ]);
  });

  it('never mints for a tag that is not a lower-case UUID (it would widen the policy variable)', async () => {
    for (const org of ['*', `${ORG}/*`, ORG.toUpperCase(), '']) {
      await expect(mint(org, 'sub')).rejects.toThrow(/UUID/);
    }
    expect(sts.commandCalls(AssumeRoleCommand)).toHaveLength(0);
  });

  it('hands a minted credential out again while ten minutes of it are left, per organisation and user', async () => {
    let clock = expiration.getTime() / 1000 - 900;
    const reusing = filesCredentialMinter(stsAssumeRole(client), ROLE, () => clock);
    sts.on(AssumeRoleCommand).resolves({
      Credentials: { AccessKeyId: 'ASIA1', SecretAccessKey: 'secret', SessionToken: 'token', Expiration: expiration },
    });
    const first = await reusing(ORG, 'sub');
    clock += 300; // exactly 600 s left: still handed out
    expect(await reusing(ORG, 'sub')).toBe(first);
    expect(sts.commandCalls(AssumeRoleCommand)).toHaveLength(1);
    await reusing(ORG, 'other-user');
    expect(sts.commandCalls(AssumeRoleCommand)).toHaveLength(2);
    clock += 1; // less than 600 s left: a verdict cached now could outlive it
    await reusing(ORG, 'sub');
    expect(sts.commandCalls(AssumeRoleCommand)).toHaveLength(3);
  });

  it('fails when STS returns no credentials', async () => {
    sts.on(AssumeRoleCommand).resolves({});
    await expect(mint(ORG, 'sub')).rejects.toThrow(/no credentials/);
  });

  it('names the session after the subject, or a digest of it when it is not a valid session name', () => {
    expect(filesSessionName('abc')).toBe('files-abc');
    const odd = filesSessionName('user with spaces and a very long subject that cannot be a role session name at all');
    expect(odd).toMatch(/^files-[0-9a-f]{40}$/);
  });
});

describe('the authorizer verdict', () => {
  const event = (auth: string) =>
    ({
      type: 'REQUEST',
      methodArn: 'arn:aws:execute-api:eu-west-1:111122223333:abc/prod/GET/files',
      headers: { Authorization: auth },
      multiValueHeaders: { Authorization: [auth] },
      requestContext: {},
    }) as unknown as APIGatewayRequestAuthorizerEvent;
  const verify = () =>
    Promise.resolve({ subject: 'sub-1', email: 'a@example.test', orgId: ORG, expiresAt: Date.now() / 1000 + 600 });

  it('carries the minted credentials for the verified organisation; API keys get none', async () => {
    const asked: string[] = [];
    const authorize = createAuthorizer({
      verify,
      log: new RecordingLog(),
      gateKey: TEST_GATE_KEY,
      filesCredentials: (org) => {
        asked.push(org);
        return Promise.resolve({ accessKeyId: 'ASIA1', secretAccessKey: 's3cr3t', sessionToken: 'tok', expiresAt: 42 });
      },
    });
    const v = await authorize(event('Bearer a.b.c'));
    expect(v.context).toMatchObject({
      kind: 'jwt',
      orgId: ORG,
      filesAccessKeyId: 'ASIA1',
      filesSecretAccessKey: 's3cr3t',
      filesSessionToken: 'tok',
      filesExp: 42,
    });
    expect(asked).toEqual([ORG]);
    const key = await authorize(event(`ApiKey bwk_${'a'.repeat(32)}_${'b'.repeat(43)}`));
    expect(Object.keys(key.context ?? {}).filter((k) => k.startsWith('files'))).toEqual([]);
    expect(asked).toEqual([ORG]);
  });

  it('still allows the request without credentials when STS fails, and logs no secret', async () => {
    const log = new RecordingLog();
    const authorize = createAuthorizer({
      verify,
      log,
      gateKey: TEST_GATE_KEY,
      filesCredentials: () =>
        Promise.reject(Object.assign(new Error('secret-looking detail'), { name: 'AccessDenied' })),
    });
    const v = await authorize(event('Bearer a.b.c'));
    expect(v.policyDocument.Statement[0]).toMatchObject({ Effect: 'Allow' });
    expect(Object.keys(v.context ?? {}).filter((k) => k.startsWith('files'))).toEqual([]);
    expect(log.entries).toEqual([
      { level: 'warn', message: 'files credentials unavailable', fields: { error: 'AccessDenied' } },
    ]);
  });
});
