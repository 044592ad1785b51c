import { Duration, Stack } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as s3 from 'aws-cdk-lib/aws-s3';
import type * as sns from 'aws-cdk-lib/aws-sns';
import { Construct } from 'constructs';
import {
  FILES_ROOT,
  FILES_SESSION_TAG,
  FILE_SCAN_CLEAN,
  FILE_SCAN_REJECTED,
  FILE_SCAN_TAG,
} from '../../contracts/tenant-files';
import { TAG_DEPLOYMENT, TAG_KEY_CLASS, TAG_ORG, TENANT_KEY_CLASS } from '../../contracts/tenant-keys';
import { acknowledge } from '../compliance/acknowledge';
import type { DatabaseAccess } from '../data/database-access';
import { SECURE_BUCKET_DEFAULTS } from '../shared/bucket';
import { FileChecker } from './file-checker';

/** What the quarantine checker needs besides the bucket (lib/tenant-files/file-checker.ts). */
export interface TenantFileCheckerWiring {
  /** As `bulwark_file_checker` (the data tier's `databaseAccess(DATABASE_ROLES.fileChecker)`). */
  readonly database: DatabaseAccess;
  readonly alarmTopic: sns.ITopic;
}

export interface TenantFileStoreProps {
  /** Deployment name: the `bulwark:deployment` tag of the tenant keys files are encrypted under. */
  readonly deployment: string;
  /**
   * How long a deleted or overwritten file stays recoverable as a noncurrent version.
   * @default Duration.days(30)
   */
  readonly noncurrentRetention?: Duration;
  /**
   * How long a version the checker rejected (tagged `bulwark-scan=rejected`) is kept, current or not.
   * @default Duration.days(1)
   */
  readonly rejectedRetention?: Duration;
  /**
   * The quarantine checker, which releases or rejects uploads. Without it no upload is ever
   * released (the release mark is nobody's to write).
   * @default - no checker
   */
  readonly checker?: TenantFileCheckerWiring;
}

/** The actions that write object tags: the release tag is the checker's alone. */
const TAG_WRITES = [
  's3:PutObjectTagging',
  's3:PutObjectVersionTagging',
  's3:DeleteObjectTagging',
  's3:DeleteObjectVersionTagging',
];

/**
 * The tenant file store (docs/tenant-files.md): one bucket, every object under
 * `orgs/<org_id>/`, each encrypted SSE-KMS under its own tenant's key. Who may read or write is
 * decided by the files role (lib/tenant-guard, assumed by the REQUEST authorizer with the verified
 * organisation as a session tag); the bucket policy here is a second, principal-independent check:
 *
 * - a PUT must name a KMS key of this account (SSE-KMS, never the bucket default) and land under
 *   `orgs/`; a session tagged `org_id` may touch nothing outside `orgs/<that org>/`;
 * - nobody may write object tags but the quarantine checker's role (`checker`): the release mark
 *   (`bulwark-scan=clean`), which the files role's reads require, is the checker's to set
 *   (docs/tenant-files.md, "Quarantine"); versions it marks rejected expire.
 */
export class TenantFileStore extends Construct {
  public readonly bucket: s3.Bucket;
  /** The quarantine checker, when wired: its role is the one writer of the release mark. */
  public readonly checker?: FileChecker;

  /**
   * What a files-role session may do (the tenant guard attaches it to its files role): put and
   * delete under `orgs/${aws:PrincipalTag/org_id}/`, get there only once released, and use only
   * the key tagged with that organisation, only through S3, only under its org_id context and for
   * an object of its prefix. A managed policy of this stack, so its references resolve here.
   */
  public readonly sessionPolicy: iam.ManagedPolicy;

  constructor(scope: Construct, id: string, props: TenantFileStoreProps) {
    super(scope, id);
    const stack = Stack.of(this);
    const bucket = new s3.Bucket(this, 'Bucket', {
      ...SECURE_BUCKET_DEFAULTS,
      // Only the default: every PUT must name its tenant's key (DenyPutWithoutAnExplicitKey), so the
      // default never encrypts an object. Per-object contexts need S3 to call KMS per object, so no
      // bucket key (with one, the context would be the bucket's ARN and carry no org_id).
      encryption: s3.BucketEncryption.KMS_MANAGED,
      bucketKeyEnabled: false,
      lifecycleRules: [
        {
          id: 'RecoverableForAWhile',
          noncurrentVersionExpiration: props.noncurrentRetention ?? Duration.days(30),
          abortIncompleteMultipartUploadAfter: Duration.days(1),
          expiredObjectDeleteMarker: false,
        },
        {
          // The checker marks a rejected version; its bytes go (the row keeps the reason).
          id: 'ExpireRejectedUploads',
          tagFilters: { [FILE_SCAN_TAG]: FILE_SCAN_REJECTED },
          expiration: props.rejectedRetention ?? Duration.days(1),
          noncurrentVersionExpiration: props.rejectedRetention ?? Duration.days(1),
        },
      ],
    });
    this.bucket = bucket;
    if (props.checker) {
      // Object Created events to EventBridge, set on the bucket itself: CDK's `eventBridgeEnabled`
      // would add a notifications custom resource (a function outside the recipe) for one flag.
      (bucket.node.defaultChild as s3.CfnBucket).notificationConfiguration = {
        eventBridgeConfiguration: { eventBridgeEnabled: true },
      };
      this.checker = new FileChecker(this, 'Checker', {
        bucket,
        deployment: props.deployment,
        database: props.checker.database,
        alarmTopic: props.checker.alarmTopic,
      });
    }
    const objects = bucket.arnForObjects('*');
    const s3Kms = (cond: Record<string, Record<string, string | string[]>>, sid: string, actions = ['s3:PutObject']) =>
      new iam.PolicyStatement({
        sid,
        effect: iam.Effect.DENY,
        principals: [new iam.AnyPrincipal()],
        actions,
        resources: [objects],
        conditions: cond,
      });
    bucket.addToResourcePolicy(
      s3Kms({ StringNotEquals: { 's3:x-amz-server-side-encryption': 'aws:kms' } }, 'DenyPutWithoutSseKms'),
    );
    bucket.addToResourcePolicy(
      s3Kms(
        {
          StringNotLike: {
            's3:x-amz-server-side-encryption-aws-kms-key-id': stack.formatArn({
              service: 'kms',
              resource: 'key',
              resourceName: '*',
            }),
          },
        },
        'DenyPutWithoutAnExplicitKeyOfThisAccount',
      ),
    );
    bucket.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: 'DenyPutOutsideTheTenantRoot',
        effect: iam.Effect.DENY,
        principals: [new iam.AnyPrincipal()],
        actions: ['s3:PutObject'],
        notResources: [bucket.arnForObjects(`${FILES_ROOT}*`)],
      }),
    );
    bucket.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: 'DenyTenantSessionsOutsideTheirPrefix',
        effect: iam.Effect.DENY,
        principals: [new iam.AnyPrincipal()],
        actions: ['s3:PutObject', 's3:GetObject', 's3:GetObjectVersion', 's3:DeleteObject', 's3:DeleteObjectVersion'],
        notResources: [bucket.arnForObjects(`${FILES_ROOT}\${aws:PrincipalTag/${FILES_SESSION_TAG}}/*`)],
        conditions: { Null: { [`aws:PrincipalTag/${FILES_SESSION_TAG}`]: 'false' } },
      }),
    );

    // The release mark is what the files role's reads require: nobody may write object tags but the
    // checker's role (whose own policy allows only the scan mark). PutObject with tags needs this
    // permission too, so no upload can arrive marked.
    bucket.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: 'NobodyWritesTheReleaseMark',
        effect: iam.Effect.DENY,
        principals: [new iam.AnyPrincipal()],
        actions: TAG_WRITES,
        resources: [objects],
        ...(this.checker ? { conditions: { ArnNotEquals: { 'aws:PrincipalArn': this.checker.role.roleArn } } } : {}),
      }),
    );

    const orgTag = `\${aws:PrincipalTag/${FILES_SESSION_TAG}}`;
    const own = bucket.arnForObjects(`${FILES_ROOT}${orgTag}/*`);
    const tenantKeys = stack.formatArn({ service: 'kms', resource: 'key', resourceName: '*' });
    this.sessionPolicy = new iam.ManagedPolicy(this, 'SessionPolicy', {
      description: "Tenant files: the session's own organisation prefix, under its own tenant key, through S3",
      statements: [
        new iam.PolicyStatement({
          sid: 'WriteAndDeleteOwnOrganisationFiles',
          actions: ['s3:PutObject', 's3:DeleteObject'],
          resources: [own],
        }),
        new iam.PolicyStatement({
          sid: 'ReadOwnOrganisationFilesOnceReleased',
          actions: ['s3:GetObject'],
          resources: [own],
          conditions: { StringEquals: TenantFileStore.RELEASED },
        }),
        new iam.PolicyStatement({
          sid: 'OwnOrganisationKeyThroughS3Only',
          actions: ['kms:GenerateDataKey', 'kms:Decrypt'],
          resources: [tenantKeys],
          conditions: {
            StringEquals: {
              [`aws:ResourceTag/${TAG_ORG}`]: orgTag,
              [`aws:ResourceTag/${TAG_DEPLOYMENT}`]: props.deployment,
              [`aws:ResourceTag/${TAG_KEY_CLASS}`]: TENANT_KEY_CLASS,
              [`kms:EncryptionContext:${FILES_SESSION_TAG}`]: orgTag,
              'kms:ViaService': `s3.${stack.region}.amazonaws.com`,
            },
            StringLike: { 'kms:EncryptionContext:aws:s3:arn': own },
          },
        }),
      ],
    });
    const perTenant =
      'Tenant objects and keys exist per organisation at run time; every wildcard is bound to the session tag org_id, which only the tenant authorizer can set (the files role trust policy), to the organisation whose token it verified.';
    for (const arn of [own, tenantKeys]) {
      acknowledge(this.sessionPolicy, `AwsSolutions-IAM5[Resource::${findingArn(stack, arn)}]`, perTenant);
    }

    // Every object read and write is a CloudTrail data event (the Audit stack's trail records this
    // bucket), and every URL issuance is an audit event of the tenant: who, what, when, from where.
    const recorded =
      'No server access log (S3 delivers those only to an SSE-S3 bucket): every read and write of this bucket is recorded as a CloudTrail data event by the deployment trail, and every presigned URL issuance is an audit event in the tenant trail (user, IP, file).';
    for (const rule of [
      'AwsSolutions-S1',
      'HIPAA.Security-S3BucketLoggingEnabled',
      'NIST.800.53.R5-S3BucketLoggingEnabled',
      'PCI.DSS.321-S3BucketLoggingEnabled',
    ]) {
      acknowledge(bucket, rule, recorded);
    }
    const notReplicated =
      'Tenant files are not replicated: every copy must die with its tenant key when the tenant is shredded, and a replica would be one more copy to erase. Deleted or overwritten files stay recoverable as noncurrent versions for 30 days; cross-region recovery of files is a documented gap (docs/tenant-files.md).';
    for (const rule of [
      'HIPAA.Security-S3BucketReplicationEnabled',
      'NIST.800.53.R5-S3BucketReplicationEnabled',
      'PCI.DSS.321-S3BucketReplicationEnabled',
    ]) {
      acknowledge(bucket, rule, notReplicated);
    }
  }

  /** The condition under which the files role may read an object: the checker released it. */
  public static readonly RELEASED = { [`s3:ExistingObjectTag/${FILE_SCAN_TAG}`]: FILE_SCAN_CLEAN };
}

/** How cdk-nag names a resource ARN in its findings (`<Logical.Arn>` for references). */
function findingArn(stack: Stack, arn: string): string {
  const resolved: unknown = stack.resolve(arn);
  const render = (v: unknown): string => {
    // cdk-nag writes a policy variable `${x}` as `<x>`.
    if (typeof v === 'string') return v.replace(/\$\{([^}]+)\}/g, '<$1>');
    if (v && typeof v === 'object') {
      const o = v as Record<string, unknown>;
      if (Array.isArray(o['Fn::Join'])) return ((o['Fn::Join'] as [string, unknown[]])[1] ?? []).map(render).join('');
      if (Array.isArray(o['Fn::GetAtt'])) return `<${(o['Fn::GetAtt'] as string[]).join('.')}>`;
      if (typeof o['Ref'] === 'string') return `<${o['Ref']}>`;
    }
    throw new Error(`unexpected ARN shape ${JSON.stringify(v)}`);
  };
  return render(resolved);
}
