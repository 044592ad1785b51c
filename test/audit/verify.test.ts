import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import fc from 'fast-check';
import { canonicalJson } from '../../lambda/audit/canonical';
import { buildChain, canonicalRecord, CHAIN_FORMAT, GENESIS_HASH, type AuditRecord } from '../../lambda/audit/chain';
import { batchKey, csvHeader, csvRow, decodeCsv, encodeBatch, encodeCsv } from '../../lambda/audit/formats';
import { verifyFiles, verifySources, type InputFile, type VerifyReport } from '../../lambda/audit/verify';
import { sampleEvents } from './fixtures';
import { defined } from '../support/defined';

const ORG = '3f1c2b9a-0000-4000-8000-00000000000a';
// A few hundred records over several batch files exercise every code path (batch boundaries,
// cross-file swaps, a missing middle batch); tampering costs one verification of the whole chain,
// so a small chain buys many more sampled mutations per second than a large one.
const EVENTS = 400;
const BATCH = 50;
const chain = buildChain(sampleEvents(ORG, EVENTS));
const last = chain[chain.length - 1] as AuditRecord;
const head = new Map([[ORG, { seq: last.seq, hash: last.hash }]]);

function archiveOf(records: readonly AuditRecord[]): InputFile[] {
  const files: InputFile[] = [];
  for (let i = 0; i < records.length; i += BATCH) {
    const part = records.slice(i, i + BATCH);
    const h = { orgId: ORG, firstSeq: defined(part[0]).seq };
    files.push({ name: batchKey('', h), bytes: Buffer.from(encodeBatch(part)) });
  }
  return files;
}
const archive = archiveOf(chain);
const csv: InputFile = { name: 'export.csv', bytes: Buffer.from(encodeCsv(chain)) };

/** Lines (archive: per file, header first) without their terminators. */
function splitLines(bytes: Uint8Array, sep: string): string[] {
  const text = Buffer.from(bytes).toString('utf8');
  return text.slice(0, -sep.length).split(sep);
}

// Tampering works on pre-encoded rows, so each run costs one verification, not an encoding too.
const rows = chain.map(csvRow);
function csvOfRows(list: readonly string[]): InputFile {
  return { name: 'export.csv', bytes: Buffer.from(csvHeader() + list.join('')) };
}
function csvWith(records: readonly AuditRecord[]): InputFile {
  return { name: 'export.csv', bytes: Buffer.from(encodeCsv(records)) };
}

function failed(report: VerifyReport): boolean {
  return !report.ok && report.problems.length > 0;
}

describe('audit chain', () => {
  it('hashes a canonical serialisation that covers every field, the sequence and the previous hash', () => {
    const r = defined(buildChain(sampleEvents(ORG, 1))[0]);
    expect(r.seq).toBe(1);
    expect(r.prevHash).toBe(GENESIS_HASH);
    expect(canonicalRecord(r)).toBe(
      canonicalJson([
        CHAIN_FORMAT,
        r.orgId,
        r.seq,
        r.prevHash,
        r.occurredAt.toISOString(),
        r.actorType,
        r.actorUserId,
        r.actorEmail,
        r.event,
        r.entityType,
        r.entityId,
        r.ip,
        r.userAgent,
        r.supportGrantId,
        r.metadata,
      ]),
    );
  });

  it('serialises metadata canonically whatever the key order', () => {
    expect(canonicalJson({ b: 1, a: { d: [1, 'x'], c: null }, u: undefined })).toBe(
      '{"a":{"c":null,"d":[1,"x"]},"b":1}',
    );
    expect(() => canonicalJson({ n: Number.NaN })).toThrow(/non-finite/);
  });

  it('escapes spreadsheet formulas in CSV reversibly', () => {
    const r = defined(
      buildChain([{ ...defined(sampleEvents(ORG, 1)[0]), userAgent: '=HYPERLINK("http://x")', actorEmail: "'a" }])[0],
    );
    const text = encodeCsv([r]);
    expect(text).toContain(`"'=HYPERLINK(""http://x"")"`);
    expect(text).toContain(`,''a,`);
    expect(decodeCsv(text)[0]).toEqual(r);
  });
});

describe(`verifier over a generated chain of ${EVENTS} events`, () => {
  it('accepts the untouched archive and the untouched CSV export', () => {
    const a = verifyFiles(archive, { expectedHeads: head });
    expect(a.problems).toEqual([]);
    expect(a.chains).toEqual([expect.objectContaining({ orgId: ORG, records: EVENTS, firstSeq: 1, lastSeq: EVENTS })]);
    const c = verifyFiles([csv], { expectedHeads: head });
    expect(c.problems).toEqual([]);
    expect(c.chains[0]?.records).toBe(EVENTS);
  });

  it('detects every single-byte modification of the archive', () => {
    const total = archive.reduce((n, f) => n + f.bytes.length, 0);
    fc.assert(
      fc.property(fc.nat(total - 1), fc.integer({ min: 1, max: 255 }), (pos, delta) => {
        let offset = pos;
        const files = archive.map((f) => {
          if (offset < 0 || offset >= f.bytes.length) {
            offset -= f.bytes.length;
            return f;
          }
          const bytes = Buffer.from(f.bytes);
          bytes[offset] = (defined(bytes[offset]) + delta) % 256;
          offset = -1;
          return { name: f.name, bytes };
        });
        return failed(verifyFiles(files));
      }),
      { numRuns: 200 },
    );
  });

  it('detects every single-byte modification of the CSV export', () => {
    fc.assert(
      fc.property(fc.nat(csv.bytes.length - 1), fc.integer({ min: 1, max: 255 }), (pos, delta) => {
        const bytes = Buffer.from(csv.bytes);
        bytes[pos] = (defined(bytes[pos]) + delta) % 256;
        return failed(verifyFiles([{ name: csv.name, bytes }]));
      }),
      { numRuns: 200 },
    );
  });

  it('detects every deleted row, in the archive and in the export', () => {
    fc.assert(
      fc.property(fc.nat(EVENTS - 1), (i) => {
        const fileIndex = Math.floor(i / BATCH);
        const lines = splitLines(defined(archive[fileIndex]).bytes, '\n');
        lines.splice((i % BATCH) + 1, 1); // +1: the header line
        const files = archive.map((f, k) =>
          k === fileIndex ? { name: f.name, bytes: Buffer.from(`${lines.join('\n')}\n`) } : f,
        );
        const a = verifyFiles(files);
        const c = verifyFiles([csvOfRows(rows.filter((_, k) => k !== i))], { expectedHeads: head });
        return failed(a) && failed(c);
      }),
      { numRuns: 100 },
    );
  });

  it('detects every swapped pair, in the archive and in the export', () => {
    fc.assert(
      fc.property(fc.nat(EVENTS - 1), fc.nat(EVENTS - 1), (i, j) => {
        fc.pre(i !== j);
        const swapped = [...rows];
        [swapped[i], swapped[j]] = [defined(swapped[j]), defined(swapped[i])];
        // Archive: the swap is of whole lines between (or within) batch files, headers untouched.
        const lines = archive.map((f) => splitLines(f.bytes, '\n'));
        const at = (k: number): [number, number] => [Math.floor(k / BATCH), (k % BATCH) + 1];
        const [fi, li] = at(i);
        const [fj, lj] = at(j);
        const tmp = defined(defined(lines[fi])[li]);
        defined(lines[fi])[li] = defined(defined(lines[fj])[lj]);
        defined(lines[fj])[lj] = tmp;
        const files = archive.map((f, k) => ({
          name: f.name,
          bytes: Buffer.from(`${defined(lines[k]).join('\n')}\n`),
        }));
        return failed(verifyFiles(files)) && failed(verifyFiles([csvOfRows(swapped)]));
      }),
      { numRuns: 100 },
    );
  });

  it('names the first broken link, missing batch and reordering precisely', () => {
    const swapped = [...chain];
    [swapped[41], swapped[42]] = [defined(swapped[42]), defined(swapped[41])];
    expect(verifyFiles([csvWith(swapped)]).problems[0]).toMatchObject({
      kind: 'reordered',
      location: 'export.csv:43',
      seq: 43,
    });

    const withoutBatch = archive.filter((_, k) => k !== 3);
    expect(verifyFiles(withoutBatch).problems).toEqual([
      expect.objectContaining({
        kind: 'missing-batch',
        seq: 4 * BATCH + 1,
        message: expect.stringContaining(`${3 * BATCH + 1}-${4 * BATCH}`),
      }),
    ]);

    const forged = [...chain];
    forged[100] = { ...defined(forged[100]), prevHash: defined(forged[98]).hash };
    const report = verifyFiles([csvWith(forged)]);
    expect(report.problems[0]).toMatchObject({ kind: 'hash-mismatch', seq: 101 });
  });

  it('detects a truncated tail only against a known head, and accepts gaps only when told the export is filtered', () => {
    const truncated = archive.slice(0, -1);
    expect(verifyFiles(truncated).ok).toBe(true);
    expect(verifyFiles(truncated, { expectedHeads: head }).problems[0]).toMatchObject({ kind: 'truncated' });

    const filtered = chain.filter((r) => r.event === 'lead.deleted');
    expect(verifyFiles([csvWith(filtered)]).problems[0]).toMatchObject({ kind: 'missing-record' });
    expect(verifyFiles([csvWith(filtered)], { allowGaps: true }).ok).toBe(true);
    const tampered = filtered.map((r, k) => (k === 7 ? { ...r, actorEmail: 'someone-else@example.com' } : r));
    expect(verifyFiles([csvWith(tampered)], { allowGaps: true }).problems[0]).toMatchObject({ kind: 'hash-mismatch' });
  });
});

describe('streaming verifier', () => {
  /** The same bytes cut into chunks at the given sizes (splitting CRLF, UTF-8 sequences, lines). */
  const chunked = (f: InputFile, sizes: readonly number[]) => ({
    name: f.name,
    *chunks() {
      let at = 0;
      for (let k = 0; at < f.bytes.length; k++) {
        const n = sizes[k % sizes.length] ?? 1;
        yield f.bytes.subarray(at, at + n);
        at += n;
      }
    },
  });
  const unicode = buildChain(
    sampleEvents(ORG, 30).map((e, i) => ({ ...e, actorEmail: `zoë.ñ+${i}@例え.jp`, metadata: { note: 'a,"b"\r\nc' } })),
  );
  const files = [
    { name: 'u.csv', bytes: Buffer.from(encodeCsv(unicode)) },
    ...archive.slice(0, 3),
    { name: 'bad.csv', bytes: Buffer.from(encodeCsv(unicode).replace('zoë', 'zoe')) },
  ];

  it('reports the same whatever the chunk boundaries', () => {
    const whole = verifyFiles(files);
    expect(whole.problems.map((p) => p.location)).toEqual(['bad.csv:2']);
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 1, max: 97 }), { minLength: 1, maxLength: 5 }), (sizes) => {
        expect(verifySources(files.map((f) => chunked(f, sizes)))).toEqual(whole);
      }),
      { numRuns: 30 },
    );
  });

  it('leaves a batch unreadable half-way out of its chain, naming the file, line and field', () => {
    const lines = splitLines(defined(archive[1]).bytes, '\n');
    lines[7] = defined(lines[7]).replace(/"hash":"[0-9a-f]{64}"/, '"hash":"not-a-hash"');
    const broken = { name: defined(archive[1]).name, bytes: Buffer.from(`${lines.join('\n')}\n`) };
    const report = verifyFiles([defined(archive[0]), broken, defined(archive[2])]);
    expect(report.problems).toEqual([
      { kind: 'malformed', location: `${broken.name}:8`, message: 'hash must be 64 lower-case hex digits' },
      expect.objectContaining({ kind: 'missing-batch', seq: 2 * BATCH + 1 }),
    ]);
    expect(report.chains[0]?.records).toBe(2 * BATCH);
  });

  it('says when it did not check the tail, and suggests --filtered for an export with gaps', () => {
    const plain = verifyFiles(archive);
    expect(plain.notes).toEqual([expect.stringMatching(/^tail not checked for 1 chain\(s\) \(.+\): without --head/)]);
    expect(verifyFiles(archive, { expectedHeads: head }).notes).toEqual([]);
    const filtered = chain.filter((r) => r.event === 'lead.deleted');
    const gappy = verifyFiles([csvWith(filtered)], { expectedHeads: head });
    expect(gappy.notes).toEqual([expect.stringContaining('export.csv skip(s) sequence numbers')]);
    expect(gappy.notes[0]).toContain('run again with --filtered');
    expect(verifyFiles([csvWith(filtered)], { allowGaps: true, expectedHeads: head }).notes).toEqual([]);
  });
});

describe('npm run audit:verify', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'audit-verify-'));
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
  const run = (...args: string[]) =>
    spawnSync(
      process.execPath,
      [require.resolve('tsx/cli'), path.join(__dirname, '../../scripts/audit-verify.ts'), ...args],
      {
        encoding: 'utf8',
      },
    );

  it('exits 0 on an intact archive directory and 1 naming the file and line of a broken one', () => {
    const small = buildChain(sampleEvents(ORG, 30));
    for (let i = 0; i < small.length; i += 10) {
      const part = small.slice(i, i + 10);
      const f = path.join(dir, ORG, batchKey('', { orgId: ORG, firstSeq: defined(part[0]).seq }).slice(ORG.length + 1));
      fs.mkdirSync(path.dirname(f), { recursive: true });
      fs.writeFileSync(f, encodeBatch(part));
    }
    const ok = run(dir);
    expect(ok.stdout).toContain('30 records, seq 1-30');
    expect(ok.status).toBe(0);

    const victim = path.join(dir, ORG, '0000000000000011.jsonl');
    fs.writeFileSync(victim, fs.readFileSync(victim, 'utf8').replace('"seq":15,', '"seq":16,'));
    const bad = run(dir);
    expect(bad.status).toBe(1);
    expect(bad.stdout).toMatch(/FAIL hash-mismatch at .*0000000000000011\.jsonl:6/);
  });

  it('exits 2 on bad usage, saying what is wrong, and 0 with usage on --help', () => {
    expect(run().status).toBe(2);
    const bad = run(dir, '--head', 'nonsense');
    expect(bad.status).toBe(2);
    expect(bad.stderr).toContain('--head needs <orgId>:<seq>:<hash> (64 lower-case hex digits), got "nonsense"');
    const help = run('--help');
    expect(help.status).toBe(0);
    expect(help.stdout).toMatch(/^usage: npm run audit:verify -- <directory or file>/);
    expect(help.stdout).toContain('--filtered');
  });

  it('prints what it did not check and what to try for a filtered export', () => {
    const filtered = path.join(dir, 'filtered.csv');
    fs.writeFileSync(filtered, encodeCsv(chain.filter((r) => r.event === 'lead.deleted')));
    const out = run(filtered);
    expect(out.status).toBe(1);
    expect(out.stdout).toMatch(/^FAIL missing-record at filtered\.csv:\d+/m);
    expect(out.stdout).toMatch(/^note: tail not checked for 1 chain/m);
    expect(out.stdout).toMatch(/^note: filtered\.csv skip\(s\) sequence numbers: .* --filtered$/m);
    const ok = run(filtered, '--filtered');
    expect(ok.status).toBe(0);
    expect(ok.stdout).not.toContain('--filtered');
  });
});
