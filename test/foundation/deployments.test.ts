import * as fs from 'node:fs';
import { Match } from 'aws-cdk-lib/assertions';
import { readFindings } from '../../lib/compliance';
import { renderCurrentAcknowledgements, ACKNOWLEDGEMENTS_FILE } from '../../scripts/acknowledgements';
import { buildTestStages, normaliseAssets, stacksOf, templateOf } from '../support/cdk';

// One synthesis of every shipped deployment, shared by the assertions below.
const { app, stages } = buildTestStages();
const assembly = app.synth();

describe('every deployment in the catalogue', () => {
  it('synthesizes one stage per deployment', () => {
    expect(stages.map((s) => s.stageName)).toEqual(['prod-ap-south-1', 'prod-eu']);
    expect(assembly.nestedAssemblies.map((a) => a.displayName ?? a.id).sort()).toEqual(['prod-ap-south-1', 'prod-eu']);
  });

  it('passes the compliance gate with zero unacknowledged findings', () => {
    expect(readFindings(assembly.directory)).toEqual([]);
    for (const stage of stages) {
      expect(stage.compliancePacks).toEqual([
        'AwsSolutions',
        'HIPAA.Security',
        'NIST.800.53.R5',
        'PCI.DSS.321',
        'Serverless',
        'Bulwark',
        'Bulwark-Residency',
      ]);
    }
  });

  it.each(stages.map((s) => [s.stageName, s] as const))(
    '%s: stacks are pinned to the deployment environment',
    (_n, stage) => {
      for (const stack of stacksOf(stage)) {
        expect(stack.account).toBe(stage.deployment.account);
        // Stacks outside the primary region are only the ones that must be (backup copies, CloudFront-scope WAF).
        expect([stage.deployment.region, stage.deployment.backupRegion, 'us-east-1']).toContain(stack.region);
        expect(stack.terminationProtection).toBe(stage.deployment.environment === 'production');
      }
    },
  );

  it.each(stages.map((s) => [s.stageName, s] as const))(
    '%s: alarms reach the alarm contact over an encrypted topic',
    (_n, stage) => {
      const t = templateOf(stage.operations);
      t.hasResourceProperties('AWS::SNS::Topic', { KmsMasterKeyId: Match.anyValue() });
      t.hasResourceProperties('AWS::SNS::Subscription', {
        Protocol: 'email',
        Endpoint: stage.deployment.alarms.email,
        RedrivePolicy: { deadLetterTargetArn: Match.anyValue() },
      });
      t.hasResourceProperties('AWS::KMS::Key', { EnableKeyRotation: true });
      t.hasResource('AWS::KMS::Key', { DeletionPolicy: 'Retain', UpdateReplacePolicy: 'Retain' });
    },
  );

  describe.each(stages.map((s) => [s.stageName, s] as const))('%s: database roles end to end', (_n, stage) => {
    type Res = { Type: string; Properties: Record<string, unknown>; DependsOn?: string[] };
    const resourcesOf = (stack: Parameters<typeof templateOf>[0]) =>
      templateOf(stack).toJSON().Resources as Record<string, Res>;
    /** Every statement granted to `fn`'s role, from inline, attached and role-listing policies. */
    function statementsOf(all: Record<string, Res>, fn: Res): Record<string, unknown>[] {
      const roleId = (fn.Properties['Role'] as { 'Fn::GetAtt': [string] })['Fn::GetAtt'][0];
      const role = all[roleId]!;
      const attached = JSON.stringify(role.Properties['ManagedPolicyArns'] ?? []);
      return Object.entries(all)
        .filter(
          ([id, r]) =>
            (r.Type === 'AWS::IAM::Policy' || r.Type === 'AWS::IAM::ManagedPolicy') &&
            (JSON.stringify(r.Properties['Roles'] ?? []).includes(`"${roleId}"`) || attached.includes(`"${id}"`)),
        )
        .flatMap(([, r]) => (r.Properties['PolicyDocument'] as { Statement: Record<string, unknown>[] }).Statement);
    }
    const connectUsers = (statements: Record<string, unknown>[]) =>
      statements
        .filter((st) => JSON.stringify(st['Action']).includes('rds-db:connect'))
        .map((st) => /\/(bulwark_[a-z_]+)"/.exec(JSON.stringify(st['Resource']))?.[1]);

    it('each function connects as its own user, from the VPC, with no database password', () => {
      const seen: Record<string, string[]> = {};
      for (const stack of [stage.edge, stage.audit]) {
        const all = resourcesOf(stack);
        for (const [id, fn] of Object.entries(all).filter(([, r]) => r.Type === 'AWS::Lambda::Function')) {
          const users = connectUsers(statementsOf(all, fn));
          if (users.length === 0) continue;
          seen[id.replace(/[0-9A-F]{8}$/, '')] = users as string[];
          expect((fn.Properties['VpcConfig'] as { SubnetIds: unknown[] }).SubnetIds).toHaveLength(
            stage.deployment.availabilityZones.length,
          );
          const vars = Object.keys((fn.Properties['Environment'] as { Variables: object }).Variables);
          expect(vars.filter((k) => /SECRET|PASSWORD/.test(k))).toEqual([]);
        }
      }
      expect(seen).toEqual({
        WebhooksFunction: ['bulwark_webhooks'],
        TenantGuardApi: ['bulwark_app'],
        ShipperFunction: ['bulwark_audit_shipper'],
      });
    });

    it('only the migration resource reads database secrets: the master and every login role', () => {
      const all = resourcesOf(stage.edge);
      const readers = Object.entries(all).filter(
        ([, r]) =>
          r.Type === 'AWS::Lambda::Function' &&
          JSON.stringify(statementsOf(all, r)).includes('secretsmanager:GetSecretValue') &&
          JSON.stringify(statementsOf(all, r)).includes('DatabaseMigratorSecret'),
      );
      expect(readers.map(([id]) => id.replace(/[0-9A-F]{8}$/, ''))).toEqual(['TenantGuardMigrate']);
      // The only other secret a function reads is the gate key: the authorizer signs with it, the
      // migration function installs it (test/tenant-guard/construct.test.ts).
      const others = Object.entries(all).filter(
        ([, r]) =>
          r.Type === 'AWS::Lambda::Function' &&
          JSON.stringify(statementsOf(all, r)).includes('secretsmanager:GetSecretValue') &&
          !JSON.stringify(statementsOf(all, r)).includes('DatabaseMigratorSecret'),
      );
      expect(others.map(([id]) => id.replace(/[0-9A-F]{8}$/, ''))).toEqual(['TenantGuardAuthorizer']);
      const read = JSON.stringify(
        statementsOf(all, readers[0]![1]).filter((st) => JSON.stringify(st['Action']).includes('GetSecretValue')),
      );
      for (const secret of [
        'DatabaseInstanceSecret',
        'DatabaseMigratorSecret',
        'DatabaseAppSecret',
        'DatabaseAuditShipperSecret',
        'DatabaseWebhooksSecret',
        'DatabaseKeyProvisionerSecret',
        'DatabaseLifecycleSecret',
      ]) {
        expect(read).toContain(secret);
      }
    });

    it("the webhook function opens per-organisation secrets only under that tenant's org_id context", () => {
      const all = resourcesOf(stage.edge);
      const [id, fn] = Object.entries(all).find(
        ([k, r]) => r.Type === 'AWS::Lambda::Function' && /^WebhooksFunction/.test(k),
      )!;
      const kms = statementsOf(all, fn).filter((st) => JSON.stringify(st['Action']).includes('kms:Decrypt'));
      // Only tenant keys of this deployment, only with an org_id encryption context (the key policy then pins the tenant).
      expect(kms.filter((st) => JSON.stringify(st['Resource']).includes(':key/*'))).toEqual([
        expect.objectContaining({
          Sid: 'UseTenantKeysOnlyWithAnOrgContext',
          Condition: {
            StringEquals: {
              'aws:ResourceTag/bulwark:deployment': stage.deployment.name,
              'aws:ResourceTag/bulwark:key-class': 'tenant',
            },
            Null: { 'kms:EncryptionContext:org_id': 'false' },
          },
        }),
      ]);
      const roleId = (fn.Properties['Role'] as { 'Fn::GetAtt': [string] })['Fn::GetAtt'][0];
      expect(all[roleId]!.Properties['Tags']).toEqual(
        expect.arrayContaining([{ Key: 'bulwark:tenant-key-user', Value: stage.deployment.name }]),
      );
      expect(id).toMatch(/^WebhooksFunction/);
    });

    it('API functions wait for the schema; the shipper stack deploys after it', () => {
      const all = resourcesOf(stage.edge);
      const schema = Object.keys(all).find((id) => all[id]!.Type === 'Custom::BulwarkSchema')!;
      for (const [id, fn] of Object.entries(all)) {
        if (fn.Type !== 'AWS::Lambda::Function' || !/^(WebhooksFunction|TenantGuardApi)/.test(id)) continue;
        expect(fn.DependsOn).toContain(schema);
      }
      expect(stage.audit.dependencies).toContain(stage.edge);
    });
  });

  it('keeps the committed acknowledgement list current (run `npm run docs:acks` after changing one)', () => {
    expect(fs.readFileSync(ACKNOWLEDGEMENTS_FILE, 'utf8')).toBe(renderCurrentAcknowledgements());
  });

  describe('snapshots (asset hashes normalised)', () => {
    for (const stage of stages) {
      for (const stack of stacksOf(stage)) {
        it(`${stack.stackName}`, () => {
          expect(normaliseAssets(templateOf(stack).toJSON())).toMatchSnapshot();
        });
      }
    }
  });
});
