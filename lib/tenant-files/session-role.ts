import { Duration } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import type { Construct } from 'constructs';
import { FILES_SESSION_TAG } from '../../contracts/tenant-files';

/** An organisation id as a trust-policy pattern: a UUID's shape, so the tag cannot widen a prefix. */
const ORG_ID_PATTERN = '????????-????-????-????-????????????';

export interface OrgSessionRoleProps {
  /** The one role that may assume it (the function that verified or chose the organisation). */
  readonly assumedBy: iam.IRole;
  readonly description: string;
  /** Sid of the trust statement that lets `assumedBy` tag its sessions. */
  readonly tagSid: string;
}

/**
 * A role whose sessions are scoped by the `org_id` session tag (docs/tenant-files.md): its trust
 * policy names `assumedBy` alone, requires the tag, shaped like a UUID, and allows no other tag key,
 * so the role tag the tenant key policies read (`bulwark:tenant-key-user`) cannot be overridden.
 * No identity statement on `assumedBy` is needed: in one account a trust policy naming a role's ARN
 * grants by itself (and a statement there could close a dependency cycle).
 */
export function orgSessionRole(scope: Construct, id: string, props: OrgSessionRoleProps): iam.Role {
  const trustConditions = {
    StringLike: { [`aws:RequestTag/${FILES_SESSION_TAG}`]: ORG_ID_PATTERN },
    'ForAllValues:StringEquals': { 'aws:TagKeys': [FILES_SESSION_TAG] },
  };
  const principal = new iam.ArnPrincipal(props.assumedBy.roleArn);
  const role = new iam.Role(scope, id, {
    description: props.description,
    assumedBy: new iam.PrincipalWithConditions(principal, trustConditions),
    maxSessionDuration: Duration.hours(1),
  });
  role.assumeRolePolicy?.addStatements(
    new iam.PolicyStatement({
      sid: props.tagSid,
      principals: [principal],
      actions: ['sts:TagSession'],
      conditions: trustConditions,
    }),
  );
  return role;
}
