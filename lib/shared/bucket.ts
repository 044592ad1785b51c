import { RemovalPolicy } from 'aws-cdk-lib';
import * as s3 from 'aws-cdk-lib/aws-s3';

/**
 * What every Bulwark bucket is, whatever it holds: versioned, private (no ACLs, no public access),
 * TLS 1.2 or later only, and kept when its stack is deleted. Spread first; a bucket overrides a
 * default only with a reason next to it.
 */
export const SECURE_BUCKET_DEFAULTS = {
  versioned: true,
  blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
  objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
  enforceSSL: true,
  minimumTLSVersion: 1.2,
  removalPolicy: RemovalPolicy.RETAIN,
} as const satisfies s3.BucketProps;
