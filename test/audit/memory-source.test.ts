import { S3Client } from '@aws-sdk/client-s3';
import { link, type AuditRecord, type ChainHead } from '../../lambda/audit/chain';
import { shipAuditLog, type ShipperSource } from '../../lambda/audit/shipper';
import type { Plan } from '../../contracts/plans';
import { prng } from './fixtures';
import { IndexedMemorySource, MemorySource, type MemoryChain } from './memory-source';

/**
 * bench/audit-shipper.ts runs on `IndexedMemorySource`; its figures hold only if it answers as
 * `MemorySource` (the semantics of migrations/0405, also tested in shipper.test.ts) does. Both get
 * the same random operations on twin worlds: appends that make organisations owed, claims by
 * several workers with leases expiring on the clock, releases, shipped positions moving forward
 * (also backwards, which must be ignored), and every answer is compared.
 */

interface Twin {
  readonly chains: Map<string, MemoryChain & { records: AuditRecord[]; recordedAt: number[] }>;
  readonly heads: Map<string, ChainHead>;
}

const ORG = (i: number) => `eeeeeeee-0000-4000-8000-${String(i).padStart(12, '0')}`;
const PLANS: Plan[] = ['pro', 'business', 'enterprise'];

function twin(orgs: number): Twin {
  const chains = new Map(
    Array.from({ length: orgs }, (_, i) => [
      ORG(i),
      { plan: PLANS[i % 3] as Plan, records: [] as AuditRecord[], recordedAt: [] as number[] },
    ]),
  );
  return { chains, heads: new Map() };
}

function append(t: Twin, orgId: string, at: number): void {
  const chain = t.chains.get(orgId);
  if (!chain) throw new Error(orgId);
  const head = t.heads.get(orgId) ?? { seq: 0, hash: '0'.repeat(64) };
  const record = link(head, {
    orgId,
    actorType: 'system',
    actorUserId: null,
    actorEmail: null,
    event: 'lead.updated',
    entityType: 'lead',
    entityId: String(head.seq + 1),
    ip: null,
    userAgent: null,
    supportGrantId: null,
    metadata: {},
    occurredAt: new Date(at),
  });
  chain.records.push(record);
  chain.recordedAt.push(at);
  t.heads.set(orgId, record);
}

describe('IndexedMemorySource (bench/audit-shipper.ts)', () => {
  it.each([1, 2, 3, 4, 5, 6])('answers every call as MemorySource does (seed %i)', async (seed) => {
    const rnd = prng(seed);
    const orgs = 4 + seed * 3;
    const a = twin(orgs);
    const b = twin(orgs);
    let clock = 0;
    const reference = new MemorySource(a.chains, () => clock, 50);
    const indexed = new IndexedMemorySource(b.chains, () => clock, 50);
    let claimed = 0;
    let skippedLeases = 0;
    for (let op = 0; op < 1_500; op++) {
      clock += Math.floor(rnd() * 8);
      const r = rnd();
      const org = ORG(Math.floor(rnd() * orgs));
      const worker = `w${Math.floor(rnd() * 3)}`;
      if (r < 0.3) {
        // Several records recorded at once share a timestamp, so ties are broken by id.
        const at = clock - Math.floor(rnd() * 3);
        append(a, org, at);
        append(b, org, at);
        indexed.appended(org);
      } else if (r < 0.55) {
        const limit = 1 + Math.floor(rnd() * 4);
        const owedFree = reference.owed().length;
        const x = await reference.claim(worker, limit);
        const y = await indexed.claim(worker, limit);
        expect(y).toEqual(x);
        claimed += x.length;
        if (x.length < Math.min(limit, owedFree)) skippedLeases++;
      } else if (r < 0.65) {
        await reference.release(worker);
        await indexed.release(worker);
      } else if (r < 0.9) {
        // Ship from the current position (as the shipper does), or try to move back.
        const from = reference.shipped.get(org)?.seq ?? 0;
        const to = rnd() < 0.1 ? Math.max(0, from - 1) : from + 1 + Math.floor(rnd() * 3);
        const records = a.chains.get(org)?.records ?? [];
        const target = records[Math.min(to, records.length) - 1];
        if (!target) continue;
        expect(await indexed.read(org, from, to - from)).toEqual(await reference.read(org, from, to - from));
        await reference.markShipped(org, target);
        await indexed.markShipped(org, target);
      } else {
        expect(await indexed.backlog()).toEqual(await reference.backlog());
      }
      expect(indexed.shipped).toEqual(reference.shipped);
    }
    // The sequence exercised what it is meant to: claims that leased, and claims that passed over live leases.
    expect(claimed).toBeGreaterThan(50);
    expect(skippedLeases).toBeGreaterThan(0);
  });

  it('gives the real shipAuditLog the same runs as MemorySource', async () => {
    const rnd = prng(99);
    const orgs = 60;
    const a = twin(orgs);
    const b = twin(orgs);
    let clock = 1_000;
    const config = {
      bucket: 'archive',
      kmsKeyArn: 'arn:aws:kms:eu-west-1:000000000000:key/test',
      retentionMonths: { pro: 12, business: 24, enterprise: 84 },
      batchSize: 3,
      maxBatches: 5,
      maxBatchesPerOrganisation: 2,
      claimSize: 5,
    };
    const s3 = { send: async () => ({}) } as unknown as S3Client;
    const sources: [ShipperSource, ShipperSource] = [
      new MemorySource(a.chains, () => clock),
      new IndexedMemorySource(b.chains, () => clock),
    ];
    let batches = 0;
    let owedAfterRun = 0;
    for (let run = 0; run < 40; run++) {
      for (let e = 0; e < 30; e++) {
        const org = ORG(Math.floor(rnd() * orgs));
        const at = clock - Math.floor(rnd() * 500);
        append(a, org, at);
        append(b, org, at);
        (sources[1] as IndexedMemorySource).appended(org);
      }
      clock += 1_000;
      for (const worker of ['x', 'y']) {
        const results = [];
        for (const source of sources)
          results.push(await shipAuditLog(s3, source, config, { worker: `${run}-${worker}` }));
        expect(results[1]).toEqual(results[0]);
        batches += results[0]?.batches ?? 0;
        owedAfterRun = Math.max(owedAfterRun, results[0]?.owed.organisations ?? 0);
      }
      expect((sources[1] as IndexedMemorySource).shipped).toEqual((sources[0] as MemorySource).shipped);
    }
    // 1,200 records in batches of 3, at most 10 batches a run: the budget binds, so the order of service matters.
    expect(batches).toBeGreaterThan(200);
    expect(owedAfterRun).toBeGreaterThan(5);
  });
});
