import { Stage, Tags, type StageProps } from 'aws-cdk-lib';
import type * as iam from 'aws-cdk-lib/aws-iam';
import * as s3 from 'aws-cdk-lib/aws-s3';
import type { Construct } from 'constructs';
import { BULWARK_GUARD_EXEMPTIONS, BulwarkChecks, applyComplianceGate } from './compliance';
import { retentionDays } from './audit/locked-bucket';
import { deploysAccountBaseline, shortestAuditRetentionMonths, type DeploymentConfig } from './config';
import { limitLambdaPermissionsToOwnAccount } from './lambda/source-account';
import { applyResidencyGuard } from './residency/guard';
import { ACCOUNT_BASELINE_GUARD_EXEMPTIONS, forwardingBaselineGuardExemptions } from './detection/account-baseline';
import { AccountBaselineStack, backupRegionConfigBucketName } from './stacks/account-baseline-stack';
import { AuditStack } from './stacks/audit-stack';
import { BackupVaultStack } from './stacks/backup-vault-stack';
import { DataStack } from './stacks/data-stack';
import { EdgeGlobalStack, EdgeStack } from './stacks/edge-stack';
import { OperationsStack } from './stacks/operations-stack';
import { TenantKeysStack } from './stacks/tenant-keys-stack';
import { TenantGuard } from './tenant-guard';
import { WebhookIngress } from './webhooks/webhook-ingress';
import { DATABASE_ROLES } from '../contracts/database';

export interface BulwarkStageProps extends StageProps {
  /** The validated deployment this stage deploys. */
  readonly deployment: DeploymentConfig;
}

/**
 * One regional deployment. The stage only composes stacks; each stack only composes capability
 * constructs from `lib/<capability>/`. Stack ids are stable: renaming one replaces its resources.
 *
 * Capabilities plug in here, each as its own stack so that diffs and blast radius stay per capability:
 * `Operations` (alarms), then the data tier, edge, API, audit and tenant keys as they land.
 */
export class BulwarkStage extends Stage {
  public readonly deployment: DeploymentConfig;
  public readonly operations: OperationsStack;
  /** Locked copy vault in `deployment.backupRegion`. */
  public readonly backupVault: BackupVaultStack;
  public readonly data: DataStack;
  /** Public entry: the platform API, its web ACLs and (for `edge.entry: cloudfront`) CloudFront. */
  public readonly edge: EdgeStack;
  /** The us-east-1 CloudFront web ACL, only for `edge.entry: cloudfront`. */
  public readonly edgeGlobal?: EdgeGlobalStack;
  /** Carrier webhooks: routes on the platform API, functions in the data tier's VPC. */
  public readonly webhooks: WebhookIngress;
  /**
   * Identity (Cognito) and the tenant API routes; in the Edge stack next to the RestApi, functions in
   * the VPC. The schema they serve is the data tier's (`data.schema`).
   */
  public readonly tenantGuard: TenantGuard;
  public readonly audit: AuditStack;
  public readonly tenantKeys: TenantKeysStack;
  /** GuardDuty, Security Hub, AWS Config, Access Analyzer; only with `accountBaseline` on. */
  public readonly accountBaseline?: AccountBaselineStack;
  /** The same baseline in `deployment.backupRegion`, forwarding to the home region; with `accountBaseline`. */
  public readonly backupRegionBaseline?: AccountBaselineStack;
  /** Names of the compliance packs run over this stage. */
  public readonly compliancePacks: readonly string[];

  constructor(scope: Construct, props: BulwarkStageProps) {
    const { deployment } = props;
    super(scope, deployment.name, {
      ...props,
      env: { account: deployment.account, region: deployment.region },
    });
    this.deployment = deployment;
    const protect = deployment.environment === 'production';

    this.operations = new OperationsStack(this, 'Operations', {
      deployment,
      terminationProtection: protect,
      description: `Bulwark ${deployment.name}: alarm channel`,
    });

    if (deploysAccountBaseline(deployment)) {
      this.accountBaseline = new AccountBaselineStack(this, 'AccountBaseline', {
        deployment,
        alarms: { alarmTopic: this.operations.alarmTopic, otherRegions: [deployment.backupRegion] },
        terminationProtection: protect,
        description: `Bulwark ${deployment.name}: account baseline (GuardDuty, Security Hub, AWS Config, Access Analyzer)`,
      });
      // Regional services: the backup region (copy vault, replicas, their key) is watched too.
      this.backupRegionBaseline = new AccountBaselineStack(this, 'BackupRegionBaseline', {
        deployment,
        env: { account: deployment.account, region: deployment.backupRegion },
        alarms: { homeRegion: deployment.region },
        configBucketName: backupRegionConfigBucketName(deployment),
        terminationProtection: protect,
        description: `Bulwark ${deployment.name}: account baseline of ${deployment.backupRegion}, findings to ${deployment.region}`,
      });
    }

    this.backupVault = new BackupVaultStack(this, 'BackupVault', {
      deployment,
      env: { account: deployment.account, region: deployment.backupRegion },
      terminationProtection: protect,
      description: `Bulwark ${deployment.name}: locked backup copy vault and audit replicas in ${deployment.backupRegion}`,
    });
    this.data = new DataStack(this, 'Data', {
      deployment,
      alarmTopic: this.operations.alarmTopic,
      copyVault: this.backupVault.vault,
      terminationProtection: protect,
      description: `Bulwark ${deployment.name}: network, PostgreSQL, backups, restore drill`,
    });
    this.data.addStackDependency(this.backupVault);
    if (deployment.edge.entry === 'cloudfront') {
      this.edgeGlobal = new EdgeGlobalStack(this, 'EdgeGlobal', {
        deployment,
        env: { account: deployment.account, region: 'us-east-1' },
        terminationProtection: protect,
        description: `Bulwark ${deployment.name}: CloudFront web ACL (us-east-1 by AWS requirement)`,
      });
    }
    this.edge = new EdgeStack(this, 'Edge', {
      deployment,
      globalWebAcl: this.edgeGlobal?.webAcl,
      terminationProtection: protect,
      description: `Bulwark ${deployment.name}: public entry (API, WAF${this.edgeGlobal ? ', CloudFront' : ''})`,
    });

    // API routes live in the Edge stack next to the RestApi they extend: a REST API's methods and its
    // deployment must share a stack. Their functions run in the data tier's VPC.
    this.webhooks = new WebhookIngress(this.edge, 'Webhooks', {
      api: this.edge.api.restApi,
      environment: deployment.environment,
      telnyxPublicKey: deployment.webhooks.telnyxPublicKey,
      telnyxPreviousPublicKey: deployment.webhooks.telnyxPreviousPublicKey,
      verification: deployment.webhooks.verification,
      maxBodyBytes: deployment.edge.webhookMaxRequestBodyBytes,
      database: this.data.databaseAccess(DATABASE_ROLES.webhooks),
      alarmTopic: this.operations.alarmTopic,
    });

    this.tenantGuard = new TenantGuard(this.edge, 'TenantGuard', {
      api: this.edge.api.restApi,
      responseHeaders: this.edge.api.responseHeaders,
      database: this.data.databaseAccess(DATABASE_ROLES.app),
      gateKey: this.data.schema.gateKey,
      budget: {
        requestsPerMinute: deployment.edge.tenantBudget.requestsPerMinute,
        endpointUrl: this.data.dynamoDbEndpointUrl,
        alarmTopic: this.operations.alarmTopic,
      },
    });

    this.tenantKeys = new TenantKeysStack(this, 'TenantKeys', {
      deployment,
      alarmTopic: this.operations.alarmTopic,
      // Each function its own role (migrations/0401; IAM authentication through the proxy).
      databases: {
        keyProvisioner: this.data.databaseAccess(DATABASE_ROLES.keyProvisioner),
        lifecycle: this.data.databaseAccess(DATABASE_ROLES.lifecycle),
      },
      fileCheckerDatabase: this.data.databaseAccess(DATABASE_ROLES.fileChecker),
      terminationProtection: protect,
      description: `Bulwark ${deployment.name}: tenant keys, lifecycle and exports`,
    });

    this.audit = new AuditStack(this, 'Audit', {
      deployment,
      alarmTopic: this.operations.alarmTopic,
      shipperDatabase: this.data.databaseAccess(DATABASE_ROLES.auditShipper),
      dataEventBuckets: [
        this.tenantKeys.tenantKeys.exportBucket,
        this.tenantKeys.files.bucket,
        ...(this.accountBaseline ? [this.accountBaseline.configBucket] : []),
        ...(this.backupRegionBaseline
          ? [
              s3.Bucket.fromBucketName(
                this.operations,
                'BackupRegionConfigBucket',
                backupRegionConfigBucketName(deployment),
              ),
            ]
          : []),
      ],
      // The functions whose job is to set tenant key policies and shred tenant keys.
      tenantKeyOperators: [
        this.tenantKeys.tenantKeys.provisioner.role,
        this.tenantKeys.tenantKeys.lifecycle.role,
      ].filter((r): r is iam.IRole => r !== undefined),
      terminationProtection: protect,
      description: `Bulwark ${deployment.name}: immutable audit archive, multi-region CloudTrail and its alarms, archive shipper`,
    });
    // Replication names the replica buckets and key of the backup region: they must exist first.
    this.audit.addStackDependency(this.backupVault);

    // Every function given database access (DatabaseAccess.connect) deploys after the Data stack's
    // schema resource: its stack depends on the Data stack, so new code never meets an old schema.

    // Per-organisation webhook secrets are sealed under each tenant's own key: the webhook function
    // may open them only with that tenant's org_id encryption context.
    this.tenantKeys.tenantKeys.grantTenantKeyUse(this.webhooks.role, this.webhooks.policy);
    // The tenant API seals organisations' webhook secrets under the same per-tenant keys, invokes the
    // provisioner (BYOK, new tenants) and signs export download links.
    this.tenantKeys.tenantKeys.grantTenantKeyUse(this.tenantGuard.apiRole, this.tenantGuard.apiPolicy);
    this.tenantGuard.useTenantKeys(this.tenantKeys.tenantKeys);
    // Tenant files: the files role (assumed by the authorizer only, scoped by the verified org_id)
    // uses each tenant's key through S3; the API's own role gets nothing on the bucket.
    this.tenantKeys.tenantKeys.tagAsTenantKeyUser(this.tenantGuard.useFileStore(this.tenantKeys.files));

    limitLambdaPermissionsToOwnAccount(this);
    Tags.of(this).add('bulwark:deployment', deployment.name);
    Tags.of(this).add('bulwark:residency', deployment.residency);
    Tags.of(this).add('bulwark:environment', deployment.environment);

    this.compliancePacks = [
      ...applyComplianceGate(this, {
        // The shortest plan retention is the floor for every Object Locked bucket's default retention.
        extraPacks: [
          new BulwarkChecks({
            minimumAuditRetentionDays: retentionDays(shortestAuditRetentionMonths(deployment.auditRetentionMonths)),
          }),
        ],
        controlTower: [
          ...BULWARK_GUARD_EXEMPTIONS,
          ...(this.accountBaseline ? ACCOUNT_BASELINE_GUARD_EXEMPTIONS : []),
          ...(this.backupRegionBaseline ? forwardingBaselineGuardExemptions('BackupRegionBaseline') : []),
        ],
      }),
      applyResidencyGuard(this, deployment.residency),
    ];
  }
}
