/**
 * Moves audit records into the Object Lock archive in ordered batches.
 *
 * Per organisation: read the records after the last shipped one, check they continue the shipped
 * chain (a broken chain is never archived: it raises instead, so the alarm fires), write them as
 * one batch object whose header and S3 metadata carry the first/last sequence and the chain hashes,
 * with COMPLIANCE retention set on the object itself from the organisation's plan, then advance the
 * shipped position. Writes are conditional (`If-None-Match: *`) on a key derived from the first
 * sequence, so a retry after a crash can never create an overlapping second batch.
 *
 * Across organisations: each invocation leases the longest-waiting chains (oldest unshipped record
 * first) and ships each for a bounded number of batches, so every organisation with pending
 * records is served within a bounded time, and invocations running at once never share a chain.
 */
import { HeadObjectCommand, PutObjectCommand, S3ServiceException, type S3Client } from '@aws-sdk/client-s3';
import { createHash } from 'node:crypto';
import * as z from 'zod/mini';
import { PLAN_RETENTION_MINIMUM_MONTHS, type Plan } from '../../contracts/plans';
import { hashRecord, type AuditRecord, type ChainHead } from './chain';
import { batchKey, encodeBatch, batchHeader } from './formats';

export type RetentionMonths = Readonly<Record<Plan, number>>;

/** `deployment.auditRetentionMonths`, as passed to the function; never below the plan minimums. */
export const retentionSchema = z
  .strictObject({
    pro: z.int().check(z.positive()),
    business: z.int().check(z.positive()),
    enterprise: z.int().check(z.positive()),
  })
  .check(
    z.superRefine((r, ctx) => {
      for (const plan of Object.keys(PLAN_RETENTION_MINIMUM_MONTHS) as Plan[]) {
        if (r[plan] < PLAN_RETENTION_MINIMUM_MONTHS[plan]) {
          ctx.addIssue({
            code: 'custom',
            path: [plan],
            message: `${r[plan]} months is below the ${plan} minimum of ${PLAN_RETENTION_MINIMUM_MONTHS[plan]}`,
          });
        }
      }
    }),
  );

export interface PendingChain {
  readonly orgId: string;
  readonly plan: Plan;
  /** Last record already in the archive (`{ seq: 0, hash: GENESIS }` when none). */
  readonly shipped: ChainHead;
  /** When its oldest unshipped record was recorded. */
  readonly oldestAt: Date;
}

/** What the archive still owes, measured by the database's clock. */
export interface Backlog {
  /** Organisations with unshipped records. */
  readonly organisations: number;
  /** When the oldest unshipped record of all was recorded; null when nothing is owed. */
  readonly oldestAt: Date | null;
  readonly measuredAt: Date;
}

/**
 * Where the shipper reads from and records its progress (PostgreSQL in production). Chains are
 * leased to one worker (one invocation) at a time, so several invocations can ship at once.
 */
export interface ShipperSource {
  /**
   * Leases up to `limit` organisations with unshipped records to `worker`, the longest-waiting first,
   * skipping organisations under a live lease (the worker's own included: one lease per run).
   */
  claim(worker: string, limit: number): Promise<readonly PendingChain[]>;
  /** Ends every lease of `worker`. */
  release(worker: string): Promise<void>;
  /** Records of `orgId` with `seq > afterSeq`, in sequence order, at most `limit`. */
  read(orgId: string, afterSeq: number, limit: number): Promise<readonly AuditRecord[]>;
  markShipped(orgId: string, head: ChainHead): Promise<void>;
  backlog(): Promise<Backlog>;
}

export interface ShipperConfig {
  readonly bucket: string;
  /** The archive's dedicated KMS key (ARN). */
  readonly kmsKeyArn: string;
  readonly retentionMonths: RetentionMonths;
  /** @default 'orgs/' */
  readonly prefix?: string;
  /** Records per batch object. @default 1000 */
  readonly batchSize?: number;
  /** Stop starting new batches after this many per invocation. @default 5000 */
  readonly maxBatches?: number;
  /**
   * Batches per organisation per invocation: a large backlog is shipped over several runs instead
   * of taking one run from everyone else. @default 10
   */
  readonly maxBatchesPerOrganisation?: number;
  /** Organisations leased per claim (each claim probes every organisation once). @default 500 */
  readonly claimSize?: number;
  /** Stop starting new batches when the invocation has less than this left (ms). @default 60000 */
  readonly reserveMs?: number;
}

/** One invocation of the shipper. */
export interface ShipRun {
  /** Who holds the leases: unique per invocation (the Lambda request id). */
  readonly worker: string;
  /** @default () => new Date() */
  readonly now?: () => Date;
  /** Milliseconds this invocation has left. @default - no time limit */
  readonly remainingMs?: () => number;
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
  /** Organisations served (leased and shipped from) by this invocation. */
  readonly organisations: number;
  /** Organisations whose chain could not be shipped, with the error code. */
  readonly failed: readonly { readonly orgId: string; readonly code: string }[];
  /** After this invocation: organisations still owed and the oldest unshipped record's age. */
  readonly owed: { readonly organisations: number; readonly oldestAgeSeconds: number };
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

/**
 * Ships one invocation's share: leases the longest-waiting organisations a claim at a time and
 * ships each for at most `maxBatchesPerOrganisation` batches, until the batch or time budget is
 * spent or nothing is left to lease; then ends its leases and measures what is still owed.
 */
export async function shipAuditLog(
  s3: S3Client,
  source: ShipperSource,
  config: ShipperConfig,
  run: ShipRun,
): Promise<ShipResult> {
  const now = run.now ?? (() => new Date());
  const prefix = config.prefix ?? 'orgs/';
  const batchSize = config.batchSize ?? 1000;
  const maxBatches = config.maxBatches ?? 5000;
  const perOrganisation = config.maxBatchesPerOrganisation ?? 10;
  const claimSize = config.claimSize ?? 500;
  const reserveMs = config.reserveMs ?? 60_000;
  let batches = 0;
  let shippedRecords = 0;
  let organisations = 0;
  const failed: { orgId: string; code: string }[] = [];
  const budgetLeft = (): boolean =>
    batches < maxBatches && (run.remainingMs === undefined || run.remainingMs() > reserveMs);

  const shipChain = async (chain: PendingChain): Promise<void> => {
    let head = chain.shipped;
    for (let here = 0; here < perOrganisation && budgetLeft(); here++) {
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
  };

  try {
    claiming: while (budgetLeft()) {
      const claimed = await source.claim(run.worker, claimSize);
      if (claimed.length === 0) break;
      for (const chain of claimed) {
        if (!budgetLeft()) break claiming;
        organisations++;
        try {
          await shipChain(chain);
        } catch (e) {
          if (!(e instanceof ShipperError)) throw e;
          failed.push({ orgId: chain.orgId, code: e.code });
        }
      }
    }
  } finally {
    // Leases left unused (the budget ran out mid-claim) go back at once rather than at expiry.
    await source.release(run.worker);
  }
  const owed = await source.backlog();
  const oldestAgeSeconds = owed.oldestAt
    ? Math.max(0, Math.floor((owed.measuredAt.getTime() - owed.oldestAt.getTime()) / 1000))
    : 0;
  return {
    batches,
    records: shippedRecords,
    organisations,
    failed,
    owed: { organisations: owed.organisations, oldestAgeSeconds },
  };
}
