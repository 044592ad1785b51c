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
