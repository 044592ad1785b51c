/**
 * Moves audit records into the Object Lock archive in ordered batches.
 *
 * Per organisation: read the records after the last shipped one, check they continue the shipped
 * chain (a broken chain is never archived: it raises instead, so the alarm fires), write them as
 * one batch object whose header and S3 metadata carry the first/last sequence and the chain hashes,
 * with COMPLIANCE retention set on the object itself from the organisation's plan, then advance the
 * shipped position. Writes are conditional (`If-None-Match: *`) on a key derived from the first
 * sequence, so a retry after a crash can never create an overlapping second batch.
 */
import { HeadObjectCommand, PutObjectCommand, S3ServiceException, type S3Client } from '@aws-sdk/client-s3';
import { createHash } from 'node:crypto';
import { z } from 'zod';
import { PLAN_RETENTION_MINIMUM_MONTHS, type Plan } from '../../contracts/plans';
import { hashRecord, type AuditRecord, type ChainHead } from './chain';
import { batchKey, encodeBatch, batchHeader } from './formats';

export type RetentionMonths = Readonly<Record<Plan, number>>;

/** `deployment.auditRetentionMonths`, as passed to the function; never below the plan minimums. */
export const retentionSchema = z
  .strictObject({ pro: z.int().positive(), business: z.int().positive(), enterprise: z.int().positive() })
  .superRefine((r, ctx) => {
    for (const plan of Object.keys(PLAN_RETENTION_MINIMUM_MONTHS) as Plan[]) {
      if (r[plan] < PLAN_RETENTION_MINIMUM_MONTHS[plan]) {
        ctx.addIssue({
          code: 'custom',
          path: [plan],
          message: `${r[plan]} months is below the ${plan} minimum of ${PLAN_RETENTION_MINIMUM_MONTHS[plan]}`,
        });
      }
    }
  });

export interface PendingChain {
  readonly orgId: string;
  readonly plan: Plan;
  /** Last record already in the archive (`{ seq: 0, hash: GENESIS }` when none). */
  readonly shipped: ChainHead;
}

/** Where the shipper reads from and records its progress (PostgreSQL in production). */
export interface ShipperSource {
  pending(): Promise<readonly PendingChain[]>;
  /** Records of `orgId` with `seq > afterSeq`, in sequence order, at most `limit`. */
  read(orgId: string, afterSeq: number, limit: number): Promise<readonly AuditRecord[]>;
  markShipped(orgId: string, head: ChainHead): Promise<void>;
}

export interface ShipperConfig {
  readonly bucket: string;
  /** The archive's dedicated KMS key (ARN). */
  readonly kmsKeyArn: string;
  readonly retentionMonths: RetentionMonths;
  /** @default 'orgs/' */
  readonly prefix?: string;
  /** @default 1000 */
  readonly batchSize?: number;
  /** Stop starting new batches after this many per invocation. @default 500 */
  readonly maxBatches?: number;
}

export class ShipperError extends Error {
  constructor(
    readonly code: 'CHAIN_BROKEN' | 'ARCHIVE_CONFLICT',
    message: string,
  ) {
    super(message);
    this.name = 'ShipperError';
  }
}

export interface ShipResult {
  readonly batches: number;
  readonly records: number;
  /** Organisations whose chain could not be shipped, with the error code. */
  readonly failed: readonly { readonly orgId: string; readonly code: string }[];
}

/** `from` plus whole calendar months (UTC); day overflow only ever lengthens retention. */
export function addMonths(from: Date, months: number): Date {
  const d = new Date(from.getTime());
  d.setUTCMonth(d.getUTCMonth() + months);
  return d;
}

function checkContinues(shipped: ChainHead, records: readonly AuditRecord[], orgId: string): void {
  let prev = shipped;
  for (const r of records) {
    if (r.orgId !== orgId || r.seq !== prev.seq + 1 || r.prevHash !== prev.hash || hashRecord(r) !== r.hash) {
      throw new ShipperError('CHAIN_BROKEN', `chain of ${orgId} breaks at sequence ${prev.seq + 1}`);
    }
    prev = r;
  }
}

export async function shipAuditLog(
  s3: S3Client,
  source: ShipperSource,
  config: ShipperConfig,
  now: () => Date = () => new Date(),
): Promise<ShipResult> {
  const prefix = config.prefix ?? 'orgs/';
  const batchSize = config.batchSize ?? 1000;
  const maxBatches = config.maxBatches ?? 500;
  let batches = 0;
  let shippedRecords = 0;
  const failed: { orgId: string; code: string }[] = [];

  for (const chain of await source.pending()) {
    let head = chain.shipped;
    try {
      while (batches < maxBatches) {
        const records = await source.read(chain.orgId, head.seq, batchSize);
        if (records.length === 0) break;
        checkContinues(head, records, chain.orgId);
        const header = batchHeader(records);
        const body = encodeBatch(records);
        const key = batchKey(prefix, header);
        const retainUntil = addMonths(now(), config.retentionMonths[chain.plan]);
        try {
          await s3.send(
            new PutObjectCommand({
              Bucket: config.bucket,
              Key: key,
              Body: body,
              ContentType: 'application/x-ndjson; charset=utf-8',
              ChecksumSHA256: createHash('sha256').update(body, 'utf8').digest('base64'),
              IfNoneMatch: '*',
              ObjectLockMode: 'COMPLIANCE',
              ObjectLockRetainUntilDate: retainUntil,
              ServerSideEncryption: 'aws:kms',
              SSEKMSKeyId: config.kmsKeyArn,
              BucketKeyEnabled: true,
              Metadata: {
                'org-id': header.orgId,
                plan: chain.plan,
                'first-seq': String(header.firstSeq),
                'last-seq': String(header.lastSeq),
                count: String(header.count),
                'prev-hash': header.prevHash,
                'last-hash': header.lastHash,
              },
            }),
          );
        } catch (e) {
          if (!(e instanceof S3ServiceException) || e.$metadata.httpStatusCode !== 412) throw e;
          // A previous run wrote this position and stopped before recording it. Accept that batch
          // only if it holds exactly our records up to its end; anything else is a conflict.
          const existing = await s3.send(new HeadObjectCommand({ Bucket: config.bucket, Key: key }));
          const lastSeq = Number(existing.Metadata?.['last-seq']);
          const match = records.find((r) => r.seq === lastSeq);
          if (!match || existing.Metadata?.['last-hash'] !== match.hash) {
            throw new ShipperError('ARCHIVE_CONFLICT', `${key} exists and does not match the chain`);
          }
          head = { seq: match.seq, hash: match.hash };
          await source.markShipped(chain.orgId, head);
          batches++;
          continue;
        }
        const last = records[records.length - 1] as AuditRecord;
        head = { seq: last.seq, hash: last.hash };
        await source.markShipped(chain.orgId, head);
        batches++;
        shippedRecords += records.length;
        if (records.length < batchSize) break;
      }
    } catch (e) {
      if (!(e instanceof ShipperError)) throw e;
      failed.push({ orgId: chain.orgId, code: e.code });
    }
  }
  return { batches, records: shippedRecords, failed };
}
