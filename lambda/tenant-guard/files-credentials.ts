/**
 * Tenant-scoped credentials for tenant files (docs/tenant-files.md). The REQUEST authorizer, which
 * verified the token, assumes the files role with the verified organisation as the `org_id` session
 * tag; the role's policy reaches only `orgs/${aws:PrincipalTag/org_id}/*` and that organisation's
 * key. The API function, which presigns with these credentials, holds no file access of its own:
 * code running in it reaches only the organisations whose verified requests pass through it.
 */
import { createHash } from 'node:crypto';
import { AssumeRoleCommand, type STSClient } from '@aws-sdk/client-sts';
import {
  FILES_CREDENTIAL_REUSE_SECONDS,
  FILES_CREDENTIAL_SECONDS,
  FILES_SESSION_TAG,
} from '../../contracts/tenant-files';
import { UUID } from '../../contracts/ids';

export interface FilesCredentials {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly sessionToken: string;
  /** Unix seconds. */
  readonly expiresAt: number;
}

/** The AssumeRole request the authorizer makes (STS's input shape, trimmed to what is used). */
export interface AssumeFilesRoleInput {
  readonly RoleArn: string;
  readonly RoleSessionName: string;
  readonly DurationSeconds: number;
  readonly Tags: readonly { readonly Key: string; readonly Value: string }[];
}

export interface AssumedCredentials {
  readonly AccessKeyId?: string;
  readonly SecretAccessKey?: string;
  readonly SessionToken?: string;
  readonly Expiration?: Date;
}

/** Calls STS AssumeRole (the handler wires the SDK; tests a fake or aws-sdk-client-mock). */
export type AssumeRole = (input: AssumeFilesRoleInput) => Promise<AssumedCredentials | undefined>;

/** AssumeRole through an STS client (the authorizer's). */
export function stsAssumeRole(sts: STSClient): AssumeRole {
  return async (input) => (await sts.send(new AssumeRoleCommand({ ...input, Tags: [...input.Tags] }))).Credentials;
}

/** Mints files credentials for one verified identity. */
export type FilesCredentialMinter = (orgId: string, subject: string) => Promise<FilesCredentials>;

/**
 * The session name CloudTrail records for every file request: the user's subject when it is a
 * valid session name, else a digest of it (names allow `[\w+=,.@-]{2,64}`).
 */
export function filesSessionName(subject: string): string {
  const name = `files-${subject}`;
  if (/^[\w+=,.@-]{2,64}$/.test(name)) return name;
  return `files-${createHash('sha256').update(subject, 'utf8').digest('hex').slice(0, 40)}`;
}

/** Minted credentials kept per organisation and user in one container (oldest dropped first). */
const MAX_REUSED = 1000;

/**
 * Mints files credentials, handing a minted one out again while at least
 * FILES_CREDENTIAL_REUSE_SECONDS of it are left: AssumeRole is a network call on the authorizer's
 * path of every uncached verdict, and STS rate-limits it per account.
 */
export function filesCredentialMinter(
  assume: AssumeRole,
  roleArn: string,
  now: () => number = () => Date.now() / 1000,
): FilesCredentialMinter {
  const minted = new Map<string, FilesCredentials>();
  return async (orgId, subject) => {
    // The tag is the whole scope of the session: only a lower-case UUID, which cannot widen a prefix.
    if (!UUID.test(orgId) || orgId !== orgId.toLowerCase()) throw new TypeError('org id must be a lower-case UUID');
    const key = `${orgId} ${subject}`;
    const held = minted.get(key);
    if (held && held.expiresAt - now() >= FILES_CREDENTIAL_REUSE_SECONDS) return held;
    minted.delete(key);
    const c = await assume({
      RoleArn: roleArn,
      RoleSessionName: filesSessionName(subject),
      DurationSeconds: FILES_CREDENTIAL_SECONDS,
      Tags: [{ Key: FILES_SESSION_TAG, Value: orgId }],
    });
    if (!c?.AccessKeyId || !c.SecretAccessKey || !c.SessionToken || !c.Expiration) {
      throw new Error('AssumeRole returned no credentials');
    }
    const credentials = {
      accessKeyId: c.AccessKeyId,
      secretAccessKey: c.SecretAccessKey,
      sessionToken: c.SessionToken,
      expiresAt: Math.floor(c.Expiration.getTime() / 1000),
    };
    if (minted.size >= MAX_REUSED) minted.delete(minted.keys().next().value as string);
    minted.set(key, credentials);
    return credentials;
  };
}
