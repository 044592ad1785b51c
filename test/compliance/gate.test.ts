import { App, Stack, Stage } from 'aws-cdk-lib';
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
});
