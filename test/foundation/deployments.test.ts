import * as fs from 'node:fs';
import { Match } from 'aws-cdk-lib/assertions';
import { readFindings } from '../../lib/compliance';
import { CATALOGUE } from '../../lib/config';
import { renderCurrentAcknowledgements, ACKNOWLEDGEMENTS_FILE } from '../../scripts/acknowledgements';
import { buildTestStages, normaliseAssets, stacksOf, templateOf } from '../support/cdk';
import { defined } from '../support/defined';
import { schemaOrder } from '../support/deploy-order';
import { EU } from '../support/catalogue';

// One synthesis of every shipped deployment, shared by the assertions below, and the one test run
// of CDK's CloudFormation template validation (every other test leaves it to this one and synth).
const { app, stages } = buildTestStages(undefined, { cfnValidation: true });
const assembly = app.synth();

/**
 * The one deployment whose whole templates are snapshotted: every deployment is built by the same
 * code, so one set of snapshots shows template changes in review; the others are covered by the
 * targeted assertions below, and adding a deployment adds no snapshot.
 */
const SNAPSHOT_DEPLOYMENT = EU.name;

describe('every deployment in the catalogue', () => {
  it('synthesizes one stage per deployment', () => {
    const names = Object.keys(CATALOGUE).sort();
    expect(stages.map((s) => s.stageName).sort()).toEqual(names);
    expect(assembly.nestedAssemblies.map((a) => a.displayName ?? a.id).sort()).toEqual(names);
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
    '%s: every deployment tag in every stack names this deployment',
    (_n, stage) => {
      for (const stack of stacksOf(stage)) {
        // Tags as `{Key, Value}` lists and as maps (e.g. SSM parameters).
        const json = JSON.stringify(templateOf(stack).toJSON());
        const tagged = [
          ...json.matchAll(/\{"Key":"bulwark:deployment","Value":("[^"]*")\}|"bulwark:deployment":("[^"]*")/g),
        ].map((m) => JSON.parse((m[1] ?? m[2]) as string) as string);
        expect(tagged.length).toBeGreaterThan(0);
        expect(new Set(tagged)).toEqual(new Set([stage.deployment.name]));
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
      const role = defined(all[roleId]);
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
      for (const stack of [stage.edge, stage.audit, stage.tenantKeys]) {
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
        TenantKeysProvisioner: ['bulwark_key_provisioner'],
        TenantKeysLifecycle: ['bulwark_lifecycle'],
        FilesCheckerFunction: ['bulwark_file_checker'],
      });
    });

    it('only the migration resource reads database secrets: the master and every login role', () => {
      for (const stack of [stage.audit, stage.tenantKeys]) {
        expect(JSON.stringify(resourcesOf(stack))).not.toContain('secretsmanager:GetSecretValue');
      }
      // In the Edge stack, the only secret a function reads is the gate key: the authorizer signs
      // with it (test/tenant-guard/construct.test.ts).
      const edge = resourcesOf(stage.edge);
      const edgeReaders = Object.entries(edge).filter(
        ([, r]) =>
          r.Type === 'AWS::Lambda::Function' &&
          JSON.stringify(statementsOf(edge, r)).includes('secretsmanager:GetSecretValue'),
      );
      expect(edgeReaders.map(([id]) => id.replace(/[0-9A-F]{8}$/, ''))).toEqual(['TenantGuardAuthorizer']);
      const edgeReads = statementsOf(edge, defined(edgeReaders[0])[1]).filter((st) =>
        JSON.stringify(st['Action']).includes('GetSecretValue'),
      );
      expect(JSON.stringify(edgeReads)).toMatch(/GateKeySecret/);
      expect(JSON.stringify(edgeReads)).not.toMatch(/Database[A-Za-z]*Secret/);
      const all = resourcesOf(stage.data);
      const readers = Object.entries(all).filter(
        ([, r]) =>
          r.Type === 'AWS::Lambda::Function' &&
          JSON.stringify(statementsOf(all, r)).includes('secretsmanager:GetSecretValue') &&
          JSON.stringify(statementsOf(all, r)).includes('DatabaseMigratorSecret'),
      );
      expect(readers.map(([id]) => id.replace(/[0-9A-F]{8}$/, ''))).toEqual(['SchemaMigrate']);
      const read = JSON.stringify(
        statementsOf(all, defined(readers[0])[1]).filter((st) =>
          JSON.stringify(st['Action']).includes('GetSecretValue'),
        ),
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
      const [id, fn] = defined(
        Object.entries(all).find(([k, r]) => r.Type === 'AWS::Lambda::Function' && /^WebhooksFunction/.test(k)),
      );
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
      expect(defined(all[roleId]).Properties['Tags']).toEqual(
        expect.arrayContaining([{ Key: 'bulwark:tenant-key-user', Value: stage.deployment.name }]),
      );
      expect(id).toMatch(/^WebhooksFunction/);
    });

    it('every function that reaches the database deploys after the schema resource (read from the assembly)', () => {
      const { functions, violations } = schemaOrder(assembly.getNestedAssembly(stage.artifactId));
      expect(violations).toEqual([]);
      // The detector sees the functions known to use the database (and whatever else does).
      expect(functions.map((f) => f.replace(/[0-9A-F]{8}$/, ''))).toEqual(
        expect.arrayContaining([
          `${stage.edge.stackName}/WebhooksFunction`,
          `${stage.edge.stackName}/TenantGuardApi`,
          `${stage.audit.stackName}/ShipperFunction`,
          `${stage.tenantKeys.stackName}/TenantKeysProvisioner`,
          `${stage.tenantKeys.stackName}/TenantKeysLifecycle`,
        ]),
      );
    });
  });

  it('keeps the committed acknowledgement list current (run `npm run docs:acks` after changing one)', () => {
    expect(fs.readFileSync(ACKNOWLEDGEMENTS_FILE, 'utf8')).toBe(renderCurrentAcknowledgements());
  });

  describe('snapshots (asset hashes normalised)', () => {
    it('snapshots a deployment that exists', () => {
      expect(stages.map((s) => s.stageName)).toContain(SNAPSHOT_DEPLOYMENT);
    });
    for (const stage of stages.filter((s) => s.stageName === SNAPSHOT_DEPLOYMENT)) {
      for (const stack of stacksOf(stage)) {
        it(`${stack.stackName}`, () => {
          expect(normaliseAssets(templateOf(stack).toJSON())).toMatchSnapshot();
        });
      }
    }
  });
});
