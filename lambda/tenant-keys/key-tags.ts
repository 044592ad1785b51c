/**
 * A key's tags are its claim to belong to a tenant: the IAM statements that let the provisioner and
 * the lifecycle administer or delete a key match `bulwark:deployment` and `bulwark:key-class`, and
 * `bulwark:org-id` names the one tenant it belongs to. Before an ARN is recorded for a tenant, and
 * before a key is scheduled for deletion, its tags are read and must say exactly that.
 */
import { ListResourceTagsCommand, type KMSClient } from '@aws-sdk/client-kms';
import { TAG_DEPLOYMENT, TAG_KEY_CLASS, TAG_ORG, TENANT_KEY_CLASS } from '../../contracts/tenant-keys';

export type KeyTags = Readonly<Record<string, string>>;

/** Every tag of `keyId` (ListResourceTags, all pages; throttling is retried by the client itself). */
export async function readKeyTags(kms: KMSClient, keyId: string): Promise<KeyTags> {
  const tags: Record<string, string> = {};
  let marker: string | undefined;
  do {
    const page = await kms.send(new ListResourceTagsCommand({ KeyId: keyId, Marker: marker }));
    for (const t of page.Tags ?? []) if (t.TagKey !== undefined) tags[t.TagKey] = t.TagValue ?? '';
    marker = page.Truncated ? page.NextMarker : undefined;
  } while (marker);
  return tags;
}

export interface TenantKeyOwner {
  readonly deployment: string;
  readonly orgId: string;
}

/**
 * What is wrong with `tags` as the tags of `owner`'s tenant key; empty when they say this
 * deployment, the tenant class and this organisation. Values only ever compared, never logged.
 */
export function tenantTagProblems(tags: KeyTags, owner: TenantKeyOwner): string[] {
  const expected: [string, string][] = [
    [TAG_DEPLOYMENT, owner.deployment],
    [TAG_KEY_CLASS, TENANT_KEY_CLASS],
    [TAG_ORG, owner.orgId],
  ];
  return expected.filter(([k, v]) => tags[k] !== v).map(([k]) => (k in tags ? `${k} differs` : `${k} missing`));
}
