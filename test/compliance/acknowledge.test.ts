import { App, Stack, Stage } from 'aws-cdk-lib';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { Construct } from 'constructs';
import { acknowledge, acknowledgementsOn, collectAcknowledgements } from '../../lib/compliance';

const REASON = 'Access logs of this bucket would log themselves recursively.';

function fixture() {
  const app = new App();
  const stage = new Stage(app, 'dep');
  const stack = new Stack(stage, 'S');
  const bucket = new s3.Bucket(stack, 'B');
  return { app, stage, stack, bucket };
}

describe('acknowledge()', () => {
  it('records one finding on the single CloudFormation resource an L2 wraps', () => {
    const { bucket, app } = fixture();
    acknowledge(bucket, 'AwsSolutions-S1', REASON);
    const cfn = bucket.node.defaultChild as s3.CfnBucket;
    expect(acknowledgementsOn(cfn)).toEqual([{ id: 'AwsSolutions-S1', reason: REASON }]);
    // Nothing on the L2 itself, so the bucket policy (a sibling resource under the L2) is not covered.
    expect(acknowledgementsOn(bucket)).toEqual([]);
    expect(collectAcknowledgements(app)).toEqual([
      { deployment: 'dep', path: 'S/B/Resource', finding: 'AwsSolutions-S1', reason: REASON },
    ]);
  });

  it('accepts granular finding ids and CDK template-validator rules', () => {
    const { bucket } = fixture();
    expect(() => acknowledge(bucket, 'AwsSolutions-IAM5[Action::s3:*]', REASON)).not.toThrow();
    expect(() => acknowledge(bucket, 'CloudFormation-Validate::W3010', REASON)).not.toThrow();
  });

  it.each([
    ['an app', (f: ReturnType<typeof fixture>) => f.app, /stack- or stage-wide/],
    ['a stage', (f: ReturnType<typeof fixture>) => f.stage, /stack- or stage-wide/],
    ['a stack', (f: ReturnType<typeof fixture>) => f.stack, /stack- or stage-wide/],
    [
      'a grouping construct',
      (f: ReturnType<typeof fixture>) => new Construct(f.stack, 'Group'),
      /exactly one CloudFormation resource/,
    ],
  ])('refuses %s as scope', (_name, scope, message) => {
    const f = fixture();
    expect(() => acknowledge(scope(f), 'AwsSolutions-S1', REASON)).toThrow(message);
  });

  it.each([
    ['a bare pack name', 'AwsSolutions'],
    ['an unknown pack', 'Checkov-S3_1'],
    ['a wildcard', 'AwsSolutions-*'],
    ['an empty id', ''],
    ['a template-validator id without a rule', 'CloudFormation-Validate::'],
  ])('refuses %s as finding id', (_name, id) => {
    const { bucket } = fixture();
    expect(() => acknowledge(bucket, id, REASON)).toThrow(/is not a finding id/);
  });

  it('refuses a vague reason', () => {
    const { bucket } = fixture();
    expect(() => acknowledge(bucket, 'AwsSolutions-S1', '   not needed        ')).toThrow(/at least 20 characters/);
  });

  it('refuses acknowledging the same finding twice', () => {
    const { bucket } = fixture();
    acknowledge(bucket, 'AwsSolutions-S1', REASON);
    expect(() => acknowledge(bucket, 'AwsSolutions-S1', REASON)).toThrow(/already acknowledged/);
  });
});
