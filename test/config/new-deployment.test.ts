/**
 * "Adding a deployment is one file" (README "Adding a deployment"): a second EU deployment and a US one with
 * the CloudFront entry, added to an in-memory copy of the catalogue, load and synthesize through the code
 * paths bin/bulwark.ts uses (loadDeployments, buildStages, the compliance gate), with zero unacknowledged
 * findings. Nothing else in lib/ has to change for them.
 */
import { buildStages } from '../../lib/app';
import { collectAcknowledgements, readFindings } from '../../lib/compliance';
import { CATALOGUE, loadDeployments, placeholderCertificateArn, type DeploymentInput } from '../../lib/config';
import { stacksOf, testApp } from '../support/cdk';
import { EU, shippedInput } from '../support/catalogue';

const eu = shippedInput(EU);

const ADDED: Record<string, DeploymentInput> = {
  // A second EU deployment: another region pair and another VPC range.
  'prod-eu-2': {
    ...eu,
    region: 'eu-north-1',
    backupRegion: 'eu-south-2',
    availabilityZones: ['eu-north-1a', 'eu-north-1b', 'eu-north-1c'],
    edge: {
      ...eu.edge,
      domainName: 'api.eu2.bulwark.example.com',
      certificateArn: placeholderCertificateArn('eu-north-1'),
    },
    data: { vpcCidr: '10.41.0.0/16' },
  },
  // A US deployment behind CloudFront (its web ACL and logs in us-east-1, inside `us`).
  'prod-us': {
    ...eu,
    region: 'us-east-2',
    backupRegion: 'us-west-2',
    availabilityZones: ['us-east-2a', 'us-east-2b', 'us-east-2c'],
    residency: 'us',
    edge: {
      ...eu.edge,
      domainName: 'api.us.bulwark.example.com',
      entry: 'cloudfront',
      certificateArn: placeholderCertificateArn('us-east-2'),
      cloudFrontCertificateArn: placeholderCertificateArn('us-east-1'),
    },
  },
};

describe('adding deployments to the catalogue', () => {
  const catalogue = { ...CATALOGUE, ...ADDED };
  const names = Object.keys(ADDED);

  it('validates the whole extended catalogue and selects the new ones', () => {
    expect(loadDeployments({ catalogue }).map((d) => d.name)).toEqual(Object.keys(catalogue));
  });

  it('synthesizes them with zero unacknowledged findings', () => {
    const app = testApp();
    const deployments = loadDeployments({ catalogue, context: { deployments: names.join(',') } });
    const stages = buildStages(app, deployments);
    // The gate runs as the app synthesizes: an unacknowledged finding throws here.
    const assembly = app.synth();
    expect(readFindings(assembly.directory)).toEqual([]);
    expect(assembly.nestedAssemblies.map((a) => a.displayName ?? a.id)).toEqual(names);
    for (const stage of stages) {
      expect(collectAcknowledgements(stage).length).toBeGreaterThan(0);
      const regions = new Set(stacksOf(stage).map((s) => s.region));
      const { region, backupRegion, edge } = stage.deployment;
      expect(regions).toEqual(new Set([region, backupRegion, ...(edge.entry === 'cloudfront' ? ['us-east-1'] : [])]));
    }
    // Two whole deployments synthesize and pass every pack: minutes on a busy 2-core machine.
  }, 600_000);
});
