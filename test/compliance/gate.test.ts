import { App, Fn, Stack, Stage } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { acknowledge, applyComplianceGate, assertCompliant, ComplianceError, readFindings } from '../../lib/compliance';

/** A stage holding a deliberately non-compliant bucket (no encryption settings, no logging, no TLS policy). */
function nonCompliantApp() {
  const app = new App({ context: { '@aws-cdk/core:appMode': 'inmemory' } });
  const stage = new Stage(app, 'bad');
  const stack = new Stack(stage, 'S');
  const bucket = new s3.Bucket(stack, 'Leaky');
  const packs = applyComplianceGate(stage);
  return { app, stage, stack, bucket, packs };
}

describe('compliance gate', () => {
  it('runs the five standard packs', () => {
    expect(nonCompliantApp().packs).toEqual([
      'AwsSolutions',
      'HIPAA.Security',
      'NIST.800.53.R5',
      'PCI.DSS.321',
      'Serverless',
    ]);
  });

  it('fails synth on a non-compliant construct', () => {
    const { app } = nonCompliantApp();
    expect(() => app.synth()).toThrow(/AwsSolutions-S10|Validation failed/);
  });

  it('names the construct and the findings of every pack', () => {
    const { app } = nonCompliantApp();
    let dir = '';
    try {
      app.synth();
    } catch {
      dir = app.outdir;
    }
    const findings = readFindings(dir);
    const rules = new Set(findings.map((f) => f.rule));
    for (const rule of [
      'AwsSolutions-S1',
      'AwsSolutions-S10',
      'HIPAA.Security-S3BucketLoggingEnabled',
      'NIST.800.53.R5-S3BucketReplicationEnabled',
      'PCI.DSS.321-S3BucketSSLRequestsOnly',
    ]) {
      expect(rules).toContain(rule);
    }
    expect(findings.every((f) => f.constructPath.startsWith('bad/S/Leaky/'))).toBe(true);
    expect(() => assertCompliant(dir)).toThrow(ComplianceError);
  });

  it('an acknowledgement removes exactly that finding on exactly that construct', () => {
    const { app, stack, bucket } = nonCompliantApp();
    const other = new s3.Bucket(stack, 'Other');
    acknowledge(bucket, 'AwsSolutions-S1', 'Test fixture: proves the acknowledgement is narrowly scoped.');
    expect(() => app.synth()).toThrow();
    const findings = readFindings(app.outdir);
    const s1 = findings.filter((f) => f.rule === 'AwsSolutions-S1').map((f) => f.constructPath);
    expect(s1).toEqual([`${other.node.path}/Resource`]);
    expect(
      findings.some((f) => f.constructPath === `${bucket.node.path}/Resource` && f.rule === 'AwsSolutions-S10'),
    ).toBe(true);
  });

  it("keeps each stage's findings to itself", () => {
    const app = new App({ context: { '@aws-cdk/core:appMode': 'inmemory' } });
    for (const name of ['one', 'two']) {
      const stage = new Stage(app, name);
      new s3.Bucket(new Stack(stage, 'S'), 'Leaky');
      applyComplianceGate(stage);
    }
    expect(() => app.synth()).toThrow();
    const s1 = readFindings(app.outdir)
      .filter((f) => f.rule === 'AwsSolutions-S1')
      .map((f) => f.constructPath)
      .sort();
    // Once per stage: a pack scoped to `one` must not report `two`'s bucket again.
    expect(s1).toEqual(['one/S/Leaky/Resource', 'two/S/Leaky/Resource']);
  });

  describe('acknowledgements that match no finding', () => {
    const REASON = 'Test fixture: an acknowledgement the gate must check against findings.';

    it('fail synth, naming the resource and the acknowledged id; a matching one passes', () => {
      const { app, bucket } = nonCompliantApp();
      acknowledge(bucket, 'AwsSolutions-S1', REASON);
      // A queue rule on a bucket: no pack can ever report it here.
      acknowledge(bucket, 'AwsSolutions-SQS3', REASON);
      expect(() => app.synth()).toThrow();
      const stale = readFindings(app.outdir).filter((f) => f.rule.startsWith('Bulwark-StaleAcknowledgement'));
      expect(stale).toEqual([
        expect.objectContaining({
          pack: 'Bulwark-StaleAcknowledgement',
          rule: 'Bulwark-StaleAcknowledgement[AwsSolutions-SQS3]',
          constructPath: 'bad/S/Leaky/Resource',
        }),
      ]);
      expect(readFindings(app.outdir).some((f) => f.rule === 'AwsSolutions-S1')).toBe(false);
    });

    it('pass when every one matches a finding of some pack', () => {
      const app = new App({ context: { '@aws-cdk/core:appMode': 'inmemory' } });
      const stage = new Stage(app, 'ok');
      const bucket = new s3.Bucket(new Stack(stage, 'S'), 'Leaky');
      applyComplianceGate(stage);
      acknowledge(bucket, 'AwsSolutions-S1', REASON);
      acknowledge(bucket, 'HIPAA.Security-S3BucketLoggingEnabled', REASON);
      expect(() => app.synth()).toThrow();
      const findings = readFindings(app.outdir);
      expect(findings.filter((f) => f.pack === 'Bulwark-StaleAcknowledgement')).toEqual([]);
      expect(
        findings.some((f) => f.rule === 'AwsSolutions-S1' || f.rule === 'HIPAA.Security-S3BucketLoggingEnabled'),
      ).toBe(false);
    });

    it('cannot themselves be acknowledged', () => {
      const { bucket } = nonCompliantApp();
      expect(() => acknowledge(bucket, 'Bulwark-StaleAcknowledgement[AwsSolutions-SQS3]', REASON)).toThrow(
        /is not a finding id/,
      );
    });

    it('of the CDK template validator are checked against its report', () => {
      const app = new App({ context: { '@aws-cdk/core:appMode': 'inmemory' } });
      const stage = new Stage(app, 'net', { env: { account: '123456789012', region: 'eu-west-1' } });
      const stack = new Stack(stage, 'S');
      const vpc = new ec2.CfnVPC(stack, 'Vpc', { cidrBlock: '10.0.0.0/16' });
      // W3010: a hard-coded availability zone. The first subnet has one, the second does not.
      const pinned = new ec2.CfnSubnet(stack, 'Pinned', {
        vpcId: vpc.ref,
        cidrBlock: '10.0.0.0/24',
        availabilityZone: 'eu-west-1a',
      });
      const chosen = new ec2.CfnSubnet(stack, 'Chosen', {
        vpcId: vpc.ref,
        cidrBlock: '10.0.1.0/24',
        availabilityZone: Fn.select(0, Fn.getAzs()),
      });
      acknowledge(pinned, 'CloudFormation-Validate::W3010', REASON);
      acknowledge(chosen, 'CloudFormation-Validate::W3010', REASON);
      app.synth();
      expect(readFindings(app.outdir)).toEqual([
        expect.objectContaining({
          rule: 'Bulwark-StaleAcknowledgement[CloudFormation-Validate::W3010]',
          constructPath: 'net/S/Chosen',
        }),
      ]);
    });
  });
});
