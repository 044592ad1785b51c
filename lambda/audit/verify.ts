/**
 * Verifies audit chains from archive batches (`.jsonl`) and CSV exports (`.csv`).
 *
 * Every file must be byte-for-byte canonical, every record's hash must match its content, and
 * records must form an unbroken chain per organisation: sequence 1, 2, 3, ... each linking to its
 * predecessor's hash. Archive batches of one organisation are joined across files and must cover
 * the chain without gaps. The first problem of each chain is reported with its file and line.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { GENESIS_HASH, hashRecord, type AuditRecord, type ChainHead } from './chain';
import { decodeBatch, decodeCsv, FormatError, padSeq, type Batch } from './formats';

export type ProblemKind =
  | 'malformed'
  | 'non-canonical'
  | 'hash-mismatch'
  | 'broken-link'
  | 'reordered'
  | 'duplicate'
  | 'missing-record'
  | 'missing-batch'
  | 'header-mismatch'
  | 'misnamed'
  | 'foreign-record'
  | 'truncated';

export interface Problem {
  readonly kind: ProblemKind;
  /** `file:line` (line 1 is a batch's header or a CSV's header row). */
  readonly location: string;
  readonly orgId?: string;
  readonly seq?: number;
  readonly message: string;
}

export interface ChainSummary {
  readonly orgId: string;
  readonly source: string;
  readonly records: number;
  readonly firstSeq: number;
  readonly lastSeq: number;
  readonly headHash: string;
}

export interface VerifyReport {
  readonly ok: boolean;
  readonly files: number;
  readonly chains: readonly ChainSummary[];
  /** First problem of each file that cannot be read, then of each chain. */
  readonly problems: readonly Problem[];
}

export interface VerifyOptions {
  /**
   * Accept gaps in sequence (a filtered CSV export): each record's own hash, and the links between
   * records that are adjacent in the chain, are still checked. @default false
   */
  readonly allowGaps?: boolean;
  /** Known chain heads (e.g. read from the database), so a truncated tail is detected too. */
  readonly expectedHeads?: ReadonlyMap<string, ChainHead>;
}

export interface InputFile {
  /** Path relative to the verified directory, used in reports. */
  readonly name: string;
  readonly bytes: Uint8Array;
}

interface Located {
  readonly record: AuditRecord;
  readonly location: string;
  /** Set on the first record of an archive batch. */
  readonly batchStart?: boolean;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });
const BATCH_NAME = /^(\d{16})\.jsonl$/;

function decodeText(file: InputFile): string {
  try {
    return utf8.decode(file.bytes);
  } catch {
    throw new FormatError(1, 'malformed', 'file is not valid UTF-8');
  }
}

export function verifyFiles(files: readonly InputFile[], options: VerifyOptions = {}): VerifyReport {
  const problems: Problem[] = [];
  const batches = new Map<string, { batch: Batch; name: string }[]>();
  const streams: { source: string; orgId: string; items: Located[]; archive: boolean }[] = [];

  for (const file of [...files].sort((a, b) => a.name.localeCompare(b.name))) {
    try {
      const text = decodeText(file);
      if (file.name.endsWith('.jsonl')) {
        const batch = decodeBatch(text);
        const named = BATCH_NAME.exec(path.basename(file.name));
        if (named && named[1] !== padSeq(batch.header.firstSeq)) {
          problems.push({
            kind: 'misnamed',
            location: `${file.name}:1`,
            orgId: batch.header.orgId,
            message: `file name does not match the batch's first sequence ${batch.header.firstSeq}`,
          });
        }
        const list = batches.get(batch.header.orgId) ?? [];
        list.push({ batch, name: file.name });
        batches.set(batch.header.orgId, list);
      } else if (file.name.endsWith('.csv')) {
        const byOrg = new Map<string, Located[]>();
        decodeCsv(text).forEach((record, i) => {
          const items = byOrg.get(record.orgId) ?? [];
          items.push({ record, location: `${file.name}:${i + 2}` });
          byOrg.set(record.orgId, items);
        });
        for (const [orgId, items] of byOrg) streams.push({ source: file.name, orgId, items, archive: false });
      }
    } catch (e) {
      if (!(e instanceof FormatError)) throw e;
      problems.push({ kind: e.kind, location: `${file.name}:${e.line}`, message: e.message });
    }
  }

  for (const [orgId, list] of batches) {
    list.sort((a, b) => a.batch.header.firstSeq - b.batch.header.firstSeq || a.name.localeCompare(b.name));
    const items: Located[] = [];
    for (const { batch, name } of list) {
      const h = batch.header;
      const first = batch.records[0];
      const last = batch.records[batch.records.length - 1];
      if (
        !first ||
        !last ||
        h.count !== batch.records.length ||
        h.firstSeq !== first.seq ||
        h.lastSeq !== last.seq ||
        h.prevHash !== first.prevHash ||
        h.lastHash !== last.hash
      ) {
        problems.push({
          kind: 'header-mismatch',
          location: `${name}:1`,
          orgId,
          message: 'batch header does not describe the records it holds',
        });
      }
      batch.records.forEach((record, i) => items.push({ record, location: `${name}:${i + 2}`, batchStart: i === 0 }));
    }
    streams.push({ source: list.map((l) => l.name).join(', '), orgId, items, archive: true });
  }

  const chains: ChainSummary[] = [];
  for (const s of streams) {
    const problem = verifyStream(s.orgId, s.items, s.archive, options);
    if (problem) problems.push(problem);
    const first = s.items[0]?.record;
    const last = s.items[s.items.length - 1]?.record;
    if (first && last) {
      chains.push({
        orgId: s.orgId,
        source: s.source,
        records: s.items.length,
        firstSeq: first.seq,
        lastSeq: last.seq,
        headHash: last.hash,
      });
    }
  }
  for (const orgId of options.expectedHeads?.keys() ?? []) {
    if (!streams.some((s) => s.orgId === orgId)) {
      problems.push({ kind: 'truncated', location: '-', orgId, message: `no records found for ${orgId}` });
    }
  }
  return { ok: problems.length === 0, files: files.length, chains, problems };
}

function verifyStream(
  orgId: string,
  items: readonly Located[],
  archive: boolean,
  options: VerifyOptions,
): Problem | undefined {
  const seen = new Set(items.map((i) => i.record.seq));
  let prev: AuditRecord | undefined;
  for (const { record, location, batchStart } of items) {
    const at = { location, orgId, seq: record.seq };
    if (record.orgId !== orgId) {
      return { ...at, kind: 'foreign-record', message: `record of ${record.orgId} inside ${orgId}'s chain` };
    }
    if (hashRecord(record) !== record.hash) {
      return { ...at, kind: 'hash-mismatch', message: `record ${record.seq} does not match its hash` };
    }
    const expected = prev ? prev.seq + 1 : 1;
    if (prev && record.seq === prev.seq) {
      return { ...at, kind: 'duplicate', message: `sequence ${record.seq} appears twice` };
    }
    if (prev && record.seq < prev.seq) {
      return { ...at, kind: 'reordered', message: `sequence ${record.seq} follows ${prev.seq}` };
    }
    if (record.seq > expected) {
      if (seen.has(expected)) {
        return { ...at, kind: 'reordered', message: `sequence ${expected} appears later than ${record.seq}` };
      }
      if (!options.allowGaps) {
        const range = expected === record.seq - 1 ? `${expected}` : `${expected}-${record.seq - 1}`;
        return archive && batchStart
          ? { ...at, kind: 'missing-batch', message: `no batch holds sequence ${range}` }
          : { ...at, kind: 'missing-record', message: `sequence ${range} is missing` };
      }
    } else {
      const expectedPrev = prev ? prev.hash : GENESIS_HASH;
      if (record.prevHash !== expectedPrev) {
        return {
          ...at,
          kind: 'broken-link',
          message: `record ${record.seq} does not link to ${prev ? `record ${prev.seq}` : 'the chain start'}`,
        };
      }
    }
    prev = record;
  }
  const head = options.expectedHeads?.get(orgId);
  if (head && prev && (prev.seq !== head.seq || prev.hash !== head.hash)) {
    const location = items[items.length - 1]?.location ?? '-';
    return prev.seq < head.seq
      ? { location, orgId, kind: 'truncated', message: `chain ends at ${prev.seq}; expected ${head.seq}` }
      : { location, orgId, kind: 'broken-link', message: `chain head does not match the expected head` };
  }
  return undefined;
}

/** Reads every `.jsonl` and `.csv` file under `dir` (recursively) and verifies them. */
export function verifyDirectory(dir: string, options: VerifyOptions = {}): VerifyReport {
  const files: InputFile[] = [];
  const stat = fs.statSync(dir);
  if (stat.isFile()) {
    files.push({ name: path.basename(dir), bytes: fs.readFileSync(dir) });
  } else {
    const walk = (sub: string): void => {
      for (const entry of fs.readdirSync(path.join(dir, sub), { withFileTypes: true })) {
        const rel = path.join(sub, entry.name);
        if (entry.isDirectory()) walk(rel);
        else if (entry.isFile() && /\.(jsonl|csv)$/.test(entry.name)) {
          files.push({ name: rel, bytes: fs.readFileSync(path.join(dir, rel)) });
        }
      }
    };
    walk('');
  }
  return verifyFiles(files, options);
}

/** Human-readable report lines. */
export function formatReport(report: VerifyReport): string[] {
  const lines = report.chains.map(
    (c) => `chain ${c.orgId}: ${c.records} records, seq ${c.firstSeq}-${c.lastSeq}, head ${c.headHash} (${c.source})`,
  );
  if (report.files === 0) lines.push('no .jsonl or .csv files found');
  for (const p of report.problems) {
    lines.push(`FAIL ${p.kind} at ${p.location}${p.orgId ? ` [${p.orgId}]` : ''}: ${p.message}`);
  }
  lines.push(report.ok && report.files > 0 ? `OK: ${report.files} file(s) verified` : 'FAILED');
  return lines;
}
