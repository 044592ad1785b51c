/**
 * Verifies audit chains from archive batches (`.jsonl`) and CSV exports (`.csv`).
 *
 * Every file must be byte-for-byte canonical, every record's hash must match its content, and
 * records must form an unbroken chain per organisation: sequence 1, 2, 3, ... each linking to its
 * predecessor's hash. Archive batches of one organisation are joined across files and must cover
 * the chain without gaps. The first problem of each chain is reported with its file and line.
 *
 * Files are read as streams, line by line: memory holds one chain's last record per organisation
 * (and, for a filtered export, the sequence numbers its gaps skipped), never a whole file.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { GENESIS_HASH, hashRecord, type AuditRecord, type ChainHead } from './chain';
import {
  csvHeader,
  decodeBatchHeader,
  decodeBatchRecord,
  decodeCsvRow,
  FormatError,
  isCsvHeader,
  padSeq,
  type BatchHeader,
} from './formats';

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
  /** What the check did not cover, and hints (e.g. `--filtered` for an export with gaps). */
  readonly notes: readonly string[];
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

/** A file to verify: its report name and its content as a sequence of chunks, read on demand. */
export interface InputSource {
  readonly name: string;
  chunks(): Iterable<Uint8Array>;
}

const BATCH_NAME = /^(\d{16})\.jsonl$/;
const CHUNK = 1 << 20;

/** Chunks of a file on disk, read synchronously one megabyte at a time. */
export function fileSource(name: string, file: string): InputSource {
  return {
    name,
    *chunks() {
      const fd = fs.openSync(file, 'r');
      try {
        const buf = Buffer.allocUnsafe(CHUNK);
        for (;;) {
          const n = fs.readSync(fd, buf, 0, CHUNK, null);
          if (n === 0) return;
          yield buf.subarray(0, n);
        }
      } finally {
        fs.closeSync(fd);
      }
    },
  };
}

function memorySource(file: InputFile): InputSource {
  return { name: file.name, chunks: () => [file.bytes] };
}

/**
 * Lines of a source split at `sep`, each with its 1-based number; the last piece is yielded with
 * `terminated: false` when the file does not end with `sep` (and not at all when it does).
 */
function* linesOf(source: InputSource, sep: string): Generator<{ text: string; line: number; terminated: boolean }> {
  const utf8 = new TextDecoder('utf-8', { fatal: true });
  let pending = '';
  let line = 0;
  const decode = (chunk?: Uint8Array): string => {
    try {
      return chunk ? utf8.decode(chunk, { stream: true }) : utf8.decode();
    } catch {
      throw new FormatError(line + 1, 'malformed', 'file is not valid UTF-8');
    }
  };
  for (const chunk of source.chunks()) {
    pending += decode(chunk);
    let at = pending.indexOf(sep);
    let from = 0;
    while (at >= 0) {
      yield { text: pending.slice(from, at), line: ++line, terminated: true };
      from = at + sep.length;
      at = pending.indexOf(sep, from);
    }
    pending = pending.slice(from);
  }
  pending += decode();
  if (pending !== '') yield { text: pending, line: ++line, terminated: false };
}

/** A CSV export's rows (raw text without CRLF): a quoted cell may hold CRLF, so rows join lines while a quote is open. */
function* csvRowsOf(source: InputSource): Generator<{ raw: string; row: number }> {
  let row = 0;
  let raw: string | undefined;
  let quotes = 0;
  for (const { text, terminated } of linesOf(source, '\r\n')) {
    raw = raw === undefined ? text : `${raw}\r\n${text}`;
    for (let i = text.indexOf('"'); i >= 0; i = text.indexOf('"', i + 1)) quotes++;
    if (quotes % 2 === 1) {
      if (!terminated) throw new FormatError(row + 1, 'malformed', 'unterminated quoted cell');
      continue;
    }
    if (!terminated) throw new FormatError(row + 1, 'malformed', 'row must end with CRLF');
    yield { raw, row: ++row };
    raw = undefined;
    quotes = 0;
  }
  if (raw !== undefined) throw new FormatError(row + 1, 'malformed', 'unterminated quoted cell');
}

/** Every record line of a batch file after its header (line 1). */
function* batchRecordsOf(source: InputSource): Generator<{ record: AuditRecord; line: number }> {
  for (const { text, line, terminated } of linesOf(source, '\n')) {
    if (!terminated) throw new FormatError(line, 'malformed', 'file must end with a newline');
    if (line === 1) continue;
    yield { record: decodeBatchRecord(text, line), line };
  }
}

function batchHeaderOf(source: InputSource): BatchHeader {
  for (const { text, line, terminated } of linesOf(source, '\n')) {
    if (!terminated) throw new FormatError(line, 'malformed', 'file must end with a newline');
    return decodeBatchHeader(text);
  }
  throw new FormatError(1, 'malformed', 'file must end with a newline');
}

interface Position {
  readonly location: string;
  /** Set on the first record of an archive batch. */
  readonly batchStart?: boolean;
}

/**
 * One organisation's chain, fed record by record in file order. Reports the first problem in that
 * order: a gap stays a candidate until the end, because the sequence it skipped may still come
 * later (then the records are reordered, not missing).
 */
class ChainCheck {
  records = 0;
  first?: AuditRecord;
  last?: AuditRecord;
  lastLocation = '-';
  private prev?: AuditRecord;
  /** Decided: nothing found later can come before it. */
  private problem?: Problem;
  /** Found after a gap whose skipped sequence may still appear: reported unless a watch resolves. */
  private fallback?: Problem;
  /** Sequence skipped by a gap -> the "reordered" problem at that gap, in gap order. */
  private watches = new Map<number, Problem>();
  private resolved?: Problem;

  constructor(
    readonly orgId: string,
    private readonly archive: boolean,
    private readonly options: VerifyOptions,
  ) {}

  /** Saves the state so that a batch found unreadable half-way can be left out as if it were absent. */
  snapshot(): () => void {
    const { records, first, last, lastLocation, prev, problem, fallback, resolved } = this;
    const watchCount = this.watches.size;
    return () => {
      Object.assign(this, { records, first, last, lastLocation, prev, problem, fallback, resolved });
      for (const k of [...this.watches.keys()].slice(watchCount)) this.watches.delete(k);
    };
  }

  push(record: AuditRecord, pos: Position): void {
    this.records++;
    this.first ??= record;
    this.last = record;
    this.lastLocation = pos.location;
    if (this.problem) return;
    const watched = this.watches.get(record.seq);
    if (watched) {
      // The earliest gap whose sequence turned up decides; a later gap cannot come before it.
      const order = [...this.watches.values()];
      if (!this.resolved || order.indexOf(watched) < order.indexOf(this.resolved)) this.resolved = watched;
      if (order[0] === this.resolved) this.problem = this.resolved;
      return;
    }
    if (this.fallback || this.resolved) return;
    const found = this.check(record, pos);
    if (found) {
      if (this.watches.size === 0) this.problem = found;
      else this.fallback = found;
    }
  }

  private check(record: AuditRecord, pos: Position): Problem | undefined {
    const at = { location: pos.location, orgId: this.orgId, seq: record.seq };
    const prev = this.prev;
    if (record.orgId !== this.orgId) {
      return { ...at, kind: 'foreign-record', message: `record of ${record.orgId} inside ${this.orgId}'s chain` };
    }
    if (hashRecord(record) !== record.hash) {
      return { ...at, kind: 'hash-mismatch', message: `record ${record.seq} does not match its hash` };
    }
    if (prev && record.seq === prev.seq) {
      return { ...at, kind: 'duplicate', message: `sequence ${record.seq} appears twice` };
    }
    if (prev && record.seq < prev.seq) {
      return { ...at, kind: 'reordered', message: `sequence ${record.seq} follows ${prev.seq}` };
    }
    const expected = prev ? prev.seq + 1 : 1;
    this.prev = record;
    if (record.seq > expected) {
      this.watches.set(expected, {
        ...at,
        kind: 'reordered',
        message: `sequence ${expected} appears later than ${record.seq}`,
      });
      if (this.options.allowGaps) return undefined;
      const range = expected === record.seq - 1 ? `${expected}` : `${expected}-${record.seq - 1}`;
      return this.archive && pos.batchStart
        ? { ...at, kind: 'missing-batch', message: `no batch holds sequence ${range}` }
        : { ...at, kind: 'missing-record', message: `sequence ${range} is missing` };
    }
    const expectedPrev = prev ? prev.hash : GENESIS_HASH;
    if (record.prevHash !== expectedPrev) {
      return {
        ...at,
        kind: 'broken-link',
        message: `record ${record.seq} does not link to ${prev ? `record ${prev.seq}` : 'the chain start'}`,
      };
    }
    return undefined;
  }

  finish(): Problem | undefined {
    const found = this.problem ?? this.resolved ?? this.fallback;
    if (found) return found;
    const head = this.options.expectedHeads?.get(this.orgId);
    const last = this.last;
    if (head && last && (last.seq !== head.seq || last.hash !== head.hash)) {
      const location = this.lastLocation;
      return last.seq < head.seq
        ? { location, orgId: this.orgId, kind: 'truncated', message: `chain ends at ${last.seq}; expected ${head.seq}` }
        : { location, orgId: this.orgId, kind: 'broken-link', message: `chain head does not match the expected head` };
    }
    return undefined;
  }
}

export function verifyFiles(files: readonly InputFile[], options: VerifyOptions = {}): VerifyReport {
  return verifySources(files.map(memorySource), options);
}

/** Verifies every source, reading each as a stream (archive batches twice: header, then records). */
export function verifySources(sources: readonly InputSource[], options: VerifyOptions = {}): VerifyReport {
  const fileProblems: { index: number; problem: Problem }[] = [];
  const headerProblems: Problem[] = [];
  const checks: { source: string; check: ChainCheck }[] = [];
  const sorted = [...sources].sort((a, b) => a.name.localeCompare(b.name));
  const formatProblem = (index: number, name: string, e: unknown): void => {
    if (!(e instanceof FormatError)) throw e;
    fileProblems.push({ index, problem: { kind: e.kind, location: `${name}:${e.line}`, message: e.message } });
  };

  // CSV exports: every organisation in a file is a chain of its own; a file that cannot be read
  // contributes no chain at all.
  const batches = new Map<string, { source: InputSource; header: BatchHeader; index: number }[]>();
  sorted.forEach((source, index) => {
    if (source.name.endsWith('.csv')) {
      const own = new Map<string, ChainCheck>();
      try {
        let headed = false;
        for (const { raw, row } of csvRowsOf(source)) {
          if (row === 1) {
            if (!isCsvHeader(raw)) throw new FormatError(1, 'malformed', `header must be ${csvHeader().trimEnd()}`);
            headed = true;
            continue;
          }
          const record = decodeCsvRow(raw, row);
          let check = own.get(record.orgId);
          if (!check) own.set(record.orgId, (check = new ChainCheck(record.orgId, false, options)));
          check.push(record, { location: `${source.name}:${row}` });
        }
        if (!headed) throw new FormatError(1, 'malformed', `header must be ${csvHeader().trimEnd()}`);
        for (const check of own.values()) checks.push({ source: source.name, check });
      } catch (e) {
        formatProblem(index, source.name, e);
      }
    } else if (source.name.endsWith('.jsonl')) {
      try {
        const header = batchHeaderOf(source);
        const named = BATCH_NAME.exec(path.basename(source.name));
        if (named && named[1] !== padSeq(header.firstSeq)) {
          fileProblems.push({
            index,
            problem: {
              kind: 'misnamed',
              location: `${source.name}:1`,
              orgId: header.orgId,
              message: `file name does not match the batch's first sequence ${header.firstSeq}`,
            },
          });
        }
        const list = batches.get(header.orgId) ?? [];
        list.push({ source, header, index });
        batches.set(header.orgId, list);
      } catch (e) {
        formatProblem(index, source.name, e);
      }
    }
  });

  // Archive batches: one chain per organisation across its files, in order of first sequence.
  for (const [orgId, list] of batches) {
    list.sort((a, b) => a.header.firstSeq - b.header.firstSeq || a.source.name.localeCompare(b.source.name));
    const check = new ChainCheck(orgId, true, options);
    const used: string[] = [];
    for (const { source, header: h, index } of list) {
      const restore = check.snapshot();
      let count = 0;
      let first: AuditRecord | undefined;
      let last: AuditRecord | undefined;
      try {
        for (const { record, line } of batchRecordsOf(source)) {
          count++;
          first ??= record;
          last = record;
          check.push(record, { location: `${source.name}:${line}`, batchStart: count === 1 });
        }
        if (count === 0) throw new FormatError(1, 'malformed', 'batch holds no records');
      } catch (e) {
        // A batch that cannot be read is left out of its chain, as if it were missing.
        restore();
        formatProblem(index, source.name, e);
        continue;
      }
      used.push(source.name);
      if (
        h.count !== count ||
        h.firstSeq !== first?.seq ||
        h.lastSeq !== last?.seq ||
        h.prevHash !== first.prevHash ||
        h.lastHash !== last.hash
      ) {
        headerProblems.push({
          kind: 'header-mismatch',
          location: `${source.name}:1`,
          orgId,
          message: 'batch header does not describe the records it holds',
        });
      }
    }
    if (used.length > 0) checks.push({ source: used.join(', '), check });
  }

  const problems: Problem[] = [
    ...fileProblems.sort((a, b) => a.index - b.index).map((p) => p.problem),
    ...headerProblems,
  ];
  const chains: ChainSummary[] = [];
  for (const { source, check } of checks) {
    const problem = check.finish();
    if (problem) problems.push(problem);
    if (check.first && check.last) {
      chains.push({
        orgId: check.orgId,
        source,
        records: check.records,
        firstSeq: check.first.seq,
        lastSeq: check.last.seq,
        headHash: check.last.hash,
      });
    }
  }
  for (const orgId of options.expectedHeads?.keys() ?? []) {
    if (!checks.some((c) => c.check.orgId === orgId)) {
      problems.push({ kind: 'truncated', location: '-', orgId, message: `no records found for ${orgId}` });
    }
  }
  const notes: string[] = [];
  const unchecked = chains.filter((c) => !options.expectedHeads?.has(c.orgId)).map((c) => c.orgId);
  if (unchecked.length > 0) {
    notes.push(
      `tail not checked for ${unchecked.length} chain(s) (${unchecked.join(', ')}): without --head <orgId>:<seq>:<hash> ` +
        '(the chain head from the database), records cut off after the last one read would go unnoticed',
    );
  }
  const gappy = problems.filter((p) => p.kind === 'missing-record' && /\.csv:\d+$/.test(p.location));
  if (!options.allowGaps && gappy.length > 0) {
    notes.push(
      `${[...new Set(gappy.map((p) => p.location.replace(/:\d+$/, '')))].join(', ')} skip(s) sequence numbers: ` +
        'if this is a filtered export (GET /audit/export with from, to, actor or event), run again with --filtered',
    );
  }
  return { ok: problems.length === 0, files: sources.length, chains, problems, notes };
}

/** Reads every `.jsonl` and `.csv` file under `dir` (recursively), or the one file `dir` names, and verifies them as streams. */
export function verifyDirectory(dir: string, options: VerifyOptions = {}): VerifyReport {
  const sources: InputSource[] = [];
  const stat = fs.statSync(dir);
  if (stat.isFile()) {
    sources.push(fileSource(path.basename(dir), dir));
  } else {
    const walk = (sub: string): void => {
      for (const entry of fs.readdirSync(path.join(dir, sub), { withFileTypes: true })) {
        const rel = path.join(sub, entry.name);
        if (entry.isDirectory()) walk(rel);
        else if (entry.isFile() && /\.(jsonl|csv)$/.test(entry.name))
          sources.push(fileSource(rel, path.join(dir, rel)));
      }
    };
    walk('');
  }
  return verifySources(sources, options);
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
  for (const n of report.notes) lines.push(`note: ${n}`);
  lines.push(report.ok && report.files > 0 ? `OK: ${report.files} file(s) verified` : 'FAILED');
  return lines;
}
