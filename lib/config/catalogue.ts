import { WEBHOOK_PATH_PREFIX } from '../../contracts/webhooks';
import { PLACEHOLDER_ACCOUNT, placeholderCertificateArn as placeholderCert } from './placeholders';
import type { DeploymentInput } from './schema';

// Placeholders (lib/config/placeholders.ts): the account is supplied at synth/deploy time (README "Accounts");
// the domain, certificate and alarm e-mail must be replaced here before a deployment is synthesized for a
// real account, which refuses them.

/** Audit retention per plan in months; the plan minimums are enforced by the schema. */
const STANDARD_AUDIT_RETENTION = { pro: 12, business: 24, enterprise: 84 } as const;

/**
 * The deployment catalogue. Add a deployment by adding an entry; `npm run synth` validates it.
 * Keys are deployment names and become CDK Stage ids (`npx cdk deploy 'prod-eu/*'`).
 */
export const CATALOGUE: Readonly<Record<string, DeploymentInput>> = {
  'prod-ap-south-1': {
    account: PLACEHOLDER_ACCOUNT,
    region: 'ap-south-1',
    backupRegion: 'ap-south-2',
    availabilityZones: ['ap-south-1a', 'ap-south-1b', 'ap-south-1c'],
    residency: 'in',
    environment: 'production',
    auditRetentionMonths: STANDARD_AUDIT_RETENTION,
    edge: {
      domainName: 'api.in.bulwark.example.com',
      certificateArn: placeholderCert('ap-south-1'),
      // Regional entry: a CloudFront web ACL would keep its logs in us-east-1, outside `in` (docs/edge.md).
      entry: 'regional',
      rateLimitPerFiveMinutes: 2000,
      throttle: { rateLimit: 200, burstLimit: 400 },
      // Carriers post from cloud hosting addresses, which the anonymous IP list blocks elsewhere.
      hostingProviderExemptPathPrefixes: [WEBHOOK_PATH_PREFIX],
    },
    alarms: { email: 'platform-alarms@bulwark.example.com' },
  },
  'prod-eu': {
    account: PLACEHOLDER_ACCOUNT,
    region: 'eu-west-1',
    backupRegion: 'eu-central-1',
    availabilityZones: ['eu-west-1a', 'eu-west-1b', 'eu-west-1c'],
    residency: 'eu',
    environment: 'production',
    auditRetentionMonths: STANDARD_AUDIT_RETENTION,
    edge: {
      domainName: 'api.eu.bulwark.example.com',
      certificateArn: placeholderCert('eu-west-1'),
      entry: 'regional',
      rateLimitPerFiveMinutes: 2000,
      throttle: { rateLimit: 200, burstLimit: 400 },
      // Carriers post from cloud hosting addresses, which the anonymous IP list blocks elsewhere.
      hostingProviderExemptPathPrefixes: [WEBHOOK_PATH_PREFIX],
    },
    alarms: { email: 'platform-alarms@bulwark.example.com' },
  },
};
