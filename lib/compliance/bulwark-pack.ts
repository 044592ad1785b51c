import type { PolicyValidationPluginReport, PolicyViolation } from 'aws-cdk-lib';
import { NagMessageLevel, NagPack, type NagPackProps } from 'cdk-nag';
import type { IConstruct } from 'constructs';
import type { CfnResource } from 'aws-cdk-lib';
import HstsPreload from './rules/HstsPreload';
import LambdaDatabaseInVpc, { type StageRule } from './rules/LambdaDatabaseInVpc';
import LambdaEnvironmentNoSecrets from './rules/LambdaEnvironmentNoSecrets';
import ObjectLockCompliance from './rules/ObjectLockCompliance';
import RdsForceSsl from './rules/RdsForceSsl';
import TenantKeyEncryptionContext from './rules/TenantKeyEncryptionContext';
import WafRateBasedRule from './rules/WafRateBasedRule';
import { constructOf, synthesizedStacks } from './templates';

export interface BulwarkChecksProps extends NagPackProps {
  /**
   * Shortest audit retention any plan promises, in days: Object Locked buckets must retain at least this long.
   * @default 365 (the Pro plan's 12 months)
   */
  readonly minimumAuditRetentionDays?: number;
}

interface StageRuleSpec {
  readonly rule: StageRule;
  readonly info: string;
  readonly explanation: string;
}

/** Rules that read every synthesized template of the scope at once (a deployment spans stacks). */
const STAGE_RULES: readonly StageRuleSpec[] = [
  {
    rule: LambdaDatabaseInVpc,
    info: 'A Lambda function outside the VPC can reach the database.',
    explanation:
      'Only functions in the VPC, behind the database security group, may connect: an out-of-VPC function with the endpoint, ' +
      'rds-db:connect or the database secret would open a path around the network isolation.',
  },
];

/**
 * Bulwark's own pack: the promises the five standard packs do not check. Runs in every stage's gate.
 * Per-resource rules run as in any cdk-nag pack; stage rules read the scope's synthesized templates,
 * so the scope must have been synthesized (the validation phase runs after synthesis).
 */
export class BulwarkChecks extends NagPack {
  public readonly name = 'Bulwark';
  private readonly minimumAuditRetentionDays: number;

  constructor(props: BulwarkChecksProps = {}) {
    super(undefined, props);
    this.packName = 'Bulwark';
    this.minimumAuditRetentionDays = props.minimumAuditRetentionDays ?? 365;
  }

  public override validateScope(scope: IConstruct): PolicyValidationPluginReport {
    const violations: PolicyViolation[] = [...super.validateScope(scope).violations];
    const stacks = synthesizedStacks(scope);
    for (const { rule, info } of STAGE_RULES) {
      const ruleName = `${this.packName}-${rule.name}`;
      const resources = rule(stacks).flatMap((ref) => {
        const node = constructOf(scope, ref);
        // The same acknowledgement lookup (and gate bookkeeping) as every per-resource finding.
        if (node && this.acknowledged(node, ruleName)) return [];
        return [{ constructPath: node?.node.path ?? `${ref.stackName}/${ref.logicalId}`, locations: ['Properties'] }];
      });
      if (resources.length > 0)
        violations.push({ ruleName, description: info, severity: 'error', violatingResources: resources });
    }
    return { success: violations.length === 0, violations };
  }

  private acknowledged(node: CfnResource, ruleId: string): boolean {
    return (this as unknown as { isAcknowledged(n: CfnResource, id: string): boolean }).isAcknowledged(node, ruleId);
  }

  protected checkResource(node: CfnResource): void {
    this.applyRule({
      info: 'The bucket is Object Locked or holds audit records, but not in COMPLIANCE mode with the minimum plan retention.',
      explanation:
        'Audit records must be impossible to alter or delete before their retention ends, for every user including root. ' +
        'Only COMPLIANCE mode guarantees that; the shortest plan promise (Pro, 12 months) is the floor for the default retention.',
      level: NagMessageLevel.ERROR,
      rule: ObjectLockCompliance(this.minimumAuditRetentionDays),
      node,
    });
    this.applyRule({
      info: 'The PostgreSQL database does not use a parameter group that sets rds.force_ssl = 1.',
      explanation:
        'Without rds.force_ssl the server accepts plaintext connections, so TLS in transit is not guaranteed.',
      level: NagMessageLevel.ERROR,
      rule: RdsForceSsl,
      node,
    });
    this.applyRule({
      info: 'The HSTS header is not exactly "max-age=63072000; includeSubDomains; preload".',
      explanation:
        'HSTS preload requires max-age of two years with includeSubDomains and preload; any other value breaks the HTTPS-only promise.',
      level: NagMessageLevel.ERROR,
      rule: HstsPreload,
      node,
    });
    this.applyRule({
      info: 'The web ACL has no rate-based rule.',
      explanation: 'Every public entry point limits requests per client IP so a single client cannot exhaust the API.',
      level: NagMessageLevel.ERROR,
      rule: WafRateBasedRule,
      node,
    });
    this.applyRule({
      info: 'A grant of KMS data actions that can reach tenant keys is not conditioned on the org_id encryption context.',
      explanation:
        'Each tenant key may only encrypt and decrypt data bound to its own tenant (kms:EncryptionContext:org_id); ' +
        'without the condition one tenant key could be used for another tenant’s data.',
      level: NagMessageLevel.ERROR,
      rule: TenantKeyEncryptionContext,
      node,
    });
    this.applyRule({
      info: 'A Lambda function environment variable is named like a credential and is not a secret ARN.',
      explanation:
        'Credentials (platform carrier keys included) live in Secrets Manager, one secret per provider; a function gets ' +
        'the secret ARN and reads it with its own grant. Environment variables are visible to anyone who can read the ' +
        'function configuration.',
      level: NagMessageLevel.ERROR,
      rule: LambdaEnvironmentNoSecrets,
      node,
    });
  }
}
