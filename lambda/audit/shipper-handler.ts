/**
 * Scheduled Lambda: ships new audit records into the Object Lock archive. A thin adapter: the
 * logic is `shipAuditLog` (lambda/audit/shipper.ts), the database access `PgShipperSource`.
 */
import { S3Client } from '@aws-sdk/client-s3';
import { createProxyPool } from '../shared/db';
import { PgShipperSource } from './pg-shipper-source';
import { shipAuditLog, type ShipResult } from './shipper';
import { loadShipperEnv } from './shipper-env';

// Cold start: a misconfigured function fails here, before touching anything.
const env = loadShipperEnv(process.env);
const s3 = new S3Client({});
// Connects through the RDS Proxy as the shipper's own role, with an IAM token per connection.
const pool = createProxyPool(env.database);
const source = new PgShipperSource(pool);

export async function handler(): Promise<ShipResult> {
  const result = await shipAuditLog(s3, source, env.shipper);
  console.log(JSON.stringify({ message: 'audit shipment', batches: result.batches, records: result.records }));
  if (result.failed.length > 0) {
    // Fail the invocation so the Errors alarm fires; the organisation ids are not secret.
    throw new Error(`SHIPPER_CHAIN_FAILURE: ${result.failed.map((f) => `${f.orgId}=${f.code}`).join(', ')}`);
  }
  return result;
}
