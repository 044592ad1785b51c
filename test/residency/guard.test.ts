import { App, CfnMapping, CfnOutput, CfnParameter, Fn, Stack, Stage } from 'aws-cdk-lib';
import * as cloudfront from 'aws-cdk-lib/aws-cloudfront';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as sam from 'aws-cdk-lib/aws-sam';
import * as sns from 'aws-cdk-lib/aws-sns';
import { buildStages } from '../../lib/app';
import { readFindings } from '../../lib/compliance';
import type { DeploymentConfig } from '../../lib/config';
import { allowOutsideResidency, applyResidencyGuard, checkResidency, regionsNamedIn } from '../../lib/residency/guard';
import { deployment, testApp } from '../support/cdk';
import { EU } from '../support/catalogue';

function euStage() {
  const app = new App({ context: { '@aws-cdk/core:appMode': 'inmemory' } });
  const stage = new Stage(app, 'eu-dep', { env: { account: '123456789012', region: 'eu-west-1' } });
  const stack = new Stack(stage, 'Data');
  return { app, stage, stack };
}

describe('residency guard', () => {
  it('finds region names in ARNs, endpoints and plain properties', () => {
    expect(
      regionsNamedIn({
        a: 'arn:aws:logs:us-east-1:123456789012:log-group:x',
        b: { 'Fn::Join': ['', ['https://kms.eu-central-1.amazonaws.com']] },
        c: 'ap-south-2',
        d: 'not-a-region-1',
      }).sort(),
    ).toEqual(['ap-south-2', 'eu-central-1', 'us-east-1']);
  });

  it('accepts a deployment whose resources all stay in the zone', () => {
    const { stage, stack } = euStage();
    new s3.Bucket(stack, 'Bucket');
    new sns.Topic(stack, 'T').addSubscription({
      bind: () => ({
        subscriberId: 'q',
        endpoint: 'arn:aws:sqs:eu-central-1:123456789012:q',
        protocol: sns.SubscriptionProtocol.SQS,
      }),
    });
    expect(checkResidency(stage, 'eu')).toEqual([]);
  });

  it('names the resource and the region when a log destination leaves the zone', () => {
    const { stage, stack } = euStage();
    new logs.CfnSubscriptionFilter(stack, 'ShipLogs', {
      logGroupName: 'app',
      filterPattern: '',
      destinationArn: 'arn:aws:logs:us-east-1:123456789012:destination:central',
    });
    expect(checkResidency(stage, 'eu')).toEqual([
      {
        constructPath: 'eu-dep/Data/ShipLogs',
        message: 'AWS::Logs::SubscriptionFilter names region us-east-1, outside residency zone eu',
      },
    ]);
  });

  it('treats London as outside the EU', () => {
    const { stage, stack } = euStage();
    new s3.CfnBucket(stack, 'Replicated', {
      replicationConfiguration: {
        role: 'arn:aws:iam::123456789012:role/r',
        rules: [
          {
            status: 'Enabled',
            destination: {
              bucket: 'arn:aws:s3:::copy',
              encryptionConfiguration: { replicaKmsKeyId: 'arn:aws:kms:eu-west-2:123456789012:key/k' },
            },
          },
        ],
      },
    });
    expect(checkResidency(stage, 'eu').map((f) => f.message)).toEqual([
      'AWS::S3::Bucket names region eu-west-2, outside residency zone eu',
    ]);
  });

  it('flags every resource of a stack deployed outside the zone', () => {
    const { stage } = euStage();
    const far = new Stack(stage, 'Far', { env: { account: '123456789012', region: 'us-east-1' } });
    new sns.Topic(far, 'T');
    expect(checkResidency(stage, 'eu')).toEqual([
      { constructPath: 'eu-dep/Far/T/Resource', message: 'AWS::SNS::Topic is in us-east-1, outside residency zone eu' },
    ]);
  });

  it('allows a global resource only through a reasoned allowance on that resource', () => {
    const { stage, stack } = euStage();
    const headers = new cloudfront.ResponseHeadersPolicy(stack, 'Headers', {
      securityHeadersBehavior: { contentTypeOptions: { override: true } },
    });
    const other = new cloudfront.ResponseHeadersPolicy(stack, 'Other', {
      securityHeadersBehavior: { contentTypeOptions: { override: true } },
    });
    expect(() => allowOutsideResidency(headers, 'short')).toThrow(/at least 20 characters/);
    expect(() => allowOutsideResidency(stack, 'A whole stack can never be allowed.')).toThrow(/exactly one/);
    allowOutsideResidency(headers, 'Header configuration only; holds no customer data or logs.');
    expect(checkResidency(stage, 'eu').map((f) => f.constructPath)).toEqual([other.node.path + '/Resource']);
  });

  describe('scans the whole template, not only resource properties', () => {
    function withMapping() {
      const f = euStage();
      // The shape of a SAR-backed resource (secret rotation): the code origin sits in a mapping.
      const sar = new CfnMapping(f.stack, 'SarMapping', {
        mapping: {
          aws: { applicationId: 'arn:aws:serverlessrepo:us-east-1:297356227824:applications/Rotation' },
          'aws-cn': { applicationId: 'arn:aws-cn:serverlessrepo:cn-north-1:193023089310:applications/Rotation' },
        },
      });
      const app = new sam.CfnApplication(f.stack, 'Rotation', {
        location: { applicationId: sar.findInMap(Fn.ref('AWS::Partition'), 'applicationId'), semanticVersion: '1.1.0' },
      });
      return { ...f, app };
    }

    it('flags a resource that reads an out-of-zone region from Mappings, naming the region its partition selects', () => {
      const { stage, app } = withMapping();
      expect(checkResidency(stage, 'eu')).toEqual([
        {
          constructPath: `${app.node.path}`,
          message: 'AWS::Serverless::Application names region us-east-1, outside residency zone eu',
        },
      ]);
    });

    it('accepts it only with an allowance on that resource', () => {
      const { stage, app } = withMapping();
      allowOutsideResidency(app, 'Rotation code origin only; the function runs in this region.');
      expect(checkResidency(stage, 'eu')).toEqual([]);
    });

    it('flags unread Mappings, Outputs and Parameter defaults that name a region outside the zone', () => {
      const { stage, stack } = euStage();
      new CfnMapping(stack, 'Unread', { mapping: { k: { v: 'us-west-2' } } });
      new CfnOutput(stack, 'Topic', { value: 'arn:aws:sns:ap-south-1:123456789012:t' });
      new CfnParameter(stack, 'Where', { default: 'sa-east-1' });
      new CfnParameter(stack, 'Fine', { default: 'eu-central-1' });
      expect(checkResidency(stage, 'eu').sort((a, b) => a.message.localeCompare(b.message))).toEqual([
        {
          constructPath: 'eu-dep/Data/Unread',
          message: 'Mappings entry Unread names region us-west-2, outside residency zone eu',
        },
        {
          constructPath: 'eu-dep/Data/Topic',
          message: 'Outputs entry Topic names region ap-south-1, outside residency zone eu',
        },
        {
          constructPath: 'eu-dep/Data/Where',
          message: 'Parameters entry Where names region sa-east-1, outside residency zone eu',
        },
      ]);
    });
  });

  it('imposes nothing on a global deployment', () => {
    const { stage, stack } = euStage();
    new logs.CfnSubscriptionFilter(stack, 'ShipLogs', {
      logGroupName: 'a',
      filterPattern: '',
      destinationArn: 'arn:aws:logs:us-east-1:1:destination:x',
    });
    expect(checkResidency(stage, 'global')).toEqual([]);
  });

  it('fails synth through the validation plugin', () => {
    const { app, stage, stack } = euStage();
    applyResidencyGuard(stage, 'eu');
    new logs.CfnSubscriptionFilter(stack, 'ShipLogs', {
      logGroupName: 'a',
      filterPattern: '',
      destinationArn: 'arn:aws:logs:us-east-1:1:destination:x',
    });
    expect(() => app.synth()).toThrow(/Validation failed|Residency/);
    expect(readFindings(app.outdir)).toEqual([
      expect.objectContaining({
        pack: 'Bulwark-Residency',
        constructPath: 'eu-dep/Data/ShipLogs',
        description: 'AWS::Logs::SubscriptionFilter names region us-east-1, outside residency zone eu',
      }),
    ]);
  });
});

describe('residency guard over a whole deployment', () => {
  it('fails synth naming the resources and the region when the backup region leaves the zone', () => {
    // Config validation refuses this before any construct exists; the guard is the second, independent
    // line, so it is exercised here with a configuration that skipped validation.
    const valid = deployment(EU.name);
    const leaky: DeploymentConfig = { ...valid, backupRegion: 'us-east-1' };
    const app = testApp({ context: { '@aws-cdk/core:appMode': 'inmemory' } });
    buildStages(app, [leaky]);
    expect(() => app.synth()).toThrow();
    const residency = readFindings(app.outdir).filter((f) => f.pack === 'Bulwark-Residency');
    // The copy vault stack itself, and the primary region's backup plan that names its ARN.
    expect(residency).toEqual(
      expect.arrayContaining([
        expect.objectContaining({
          constructPath: expect.stringMatching(new RegExp(`^${EU.name}/BackupVault/`)),
          description: expect.stringMatching(/is in us-east-1, outside residency zone eu$/),
        }),
        expect.objectContaining({
          constructPath: expect.stringMatching(new RegExp(`^${EU.name}/Data/.*Backup`)),
          description: 'AWS::Backup::BackupPlan names region us-east-1, outside residency zone eu',
        }),
      ]),
    );
    // Nothing else in the deployment breaks residency.
    expect(residency.every((f) => /us-east-1/.test(f.description))).toBe(true);
  });
});
