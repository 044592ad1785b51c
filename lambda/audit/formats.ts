/**
 * On-disk forms of the audit chain, each with exactly one encoding per record so that the verifier
 * can demand byte equality (any byte changed in a file either changes a hashed value or makes the
 * file non-canonical):
 *
 *  - archive batch (`.jsonl`): a header line (organisation, first/last sequence, the hash the batch
 *    continues from and the hash it ends on, record count), then one record per line;
 *  - CSV export (`.csv`, RFC 4180, CRLF): one row per record with the chain columns, so a full
 *    export verifies on its own and a filtered one still verifies row by row.
 */
import { canonicalJson, type JsonValue } from './canonical';
import { isActorType, isHash, type AuditRecord } from './chain';

export const BATCH_FORMAT = 'bulwark-audit-batch/1';

export class FormatError extends Error {
  constructor(
    /** 1-based line (JSON Lines) or row (CSV, header = 1) where the problem is. */
    readonly line: number,
    readonly kind: 'malformed' | 'non-canonical',
    message: string,
  ) {
    super(message);
    this.name = 'FormatError';
  }
}

// ---------------------------------------------------------------------------------------------
// Records as JSON objects (fixed member order)

function encodeRecordJson(r: AuditRecord): string {
  const s = JSON.stringify;
  return (
    `{"seq":${r.seq},"orgId":${s(r.orgId)},"occurredAt":${s(r.occurredAt.toISOString())},` +
    `"actorType":${s(r.actorType)},"actorUserId":${s(r.actorUserId)},"actorEmail":${s(r.actorEmail)},` +
    `"event":${s(r.event)},"entityType":${s(r.entityType)},"entityId":${s(r.entityId)},"ip":${s(r.ip)},` +
    `"userAgent":${s(r.userAgent)},"supportGrantId":${s(r.supportGrantId)},"metadata":${canonicalJson(r.metadata)},` +
    `"prevHash":${s(r.prevHash)},"hash":${s(r.hash)}}`
  );
}

type Fields = Record<string, unknown>;

function str(f: Fields, key: string, line: number): string {
  const v = f[key];
  if (typeof v !== 'string' || v.length === 0) throw new FormatError(line, 'malformed', `${key} must be a string`);
  return v;
}

function nullable(f: Fields, key: string, line: number): string | null {
  const v = f[key];
  if (v === null) return null;
  if (typeof v !== 'string') throw new FormatError(line, 'malformed', `${key} must be a string or null`);
  return v;
}

/** Builds a record from loosely typed fields, checking every type; the encoders do the rest. */
function recordFrom(f: Fields, line: number): AuditRecord {
  const seq = f['seq'];
  if (typeof seq !== 'number' || !Number.isSafeInteger(seq) || seq < 1) {
    throw new FormatError(line, 'malformed', 'seq must be a positive integer');
  }
  const occurredAt = new Date(str(f, 'occurredAt', line));
  if (Number.isNaN(occurredAt.getTime())) throw new FormatError(line, 'malformed', 'occurredAt is not a timestamp');
  const actorType = f['actorType'];
  if (!isActorType(actorType)) throw new FormatError(line, 'malformed', 'actorType is not a known actor type');
  const metadata = f['metadata'];
  if (metadata === null || typeof metadata !== 'object' || Array.isArray(metadata)) {
    throw new FormatError(line, 'malformed', 'metadata must be a JSON object');
  }
  const prevHash = str(f, 'prevHash', line);
  const hash = str(f, 'hash', line);
  for (const [key, v] of [
    ['prevHash', prevHash],
    ['hash', hash],
  ] as const) {
    if (!isHash(v)) throw new FormatError(line, 'malformed', `${key} must be 64 lower-case hex digits`);
  }
  return {
    seq,
    orgId: str(f, 'orgId', line),
    occurredAt,
    actorType,
    actorUserId: nullable(f, 'actorUserId', line),
    actorEmail: nullable(f, 'actorEmail', line),
    event: str(f, 'event', line),
    entityType: nullable(f, 'entityType', line),
    entityId: nullable(f, 'entityId', line),
    ip: nullable(f, 'ip', line),
    userAgent: nullable(f, 'userAgent', line),
    supportGrantId: nullable(f, 'supportGrantId', line),
    metadata: metadata as Record<string, JsonValue>,
    prevHash,
    hash,
  };
}

function parseJsonLine(text: string, line: number): Fields {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    throw new FormatError(line, 'malformed', 'not valid JSON');
  }
  if (v === null || typeof v !== 'object' || Array.isArray(v)) {
    throw new FormatError(line, 'malformed', 'not a JSON object');
  }
  return v as Fields;
}

// ---------------------------------------------------------------------------------------------
// Archive batches

export interface BatchHeader {
  readonly format: typeof BATCH_FORMAT;
  readonly orgId: string;
  readonly firstSeq: number;
  readonly lastSeq: number;
  readonly count: number;
  /** Hash of the record before `firstSeq` (the genesis hash for the first batch). */
  readonly prevHash: string;
  /** Hash of the record `lastSeq`: the next batch's `prevHash`. */
  readonly lastHash: string;
}

export interface Batch {
  readonly header: BatchHeader;
  readonly records: readonly AuditRecord[];
}

function encodeHeader(h: BatchHeader): string {
  const s = JSON.stringify;
  return (
    `{"format":${s(h.format)},"orgId":${s(h.orgId)},"firstSeq":${h.firstSeq},"lastSeq":${h.lastSeq},` +
    `"count":${h.count},"prevHash":${s(h.prevHash)},"lastHash":${s(h.lastHash)}}`
  );
}

/** The header a non-empty, single-organisation run of consecutive records gets. */
export function batchHeader(records: readonly AuditRecord[]): BatchHeader {
  const first = records[0];
  const last = records[records.length - 1];
  if (!first || !last) throw new Error('a batch holds at least one record');
  return {
    format: BATCH_FORMAT,
    orgId: first.orgId,
    firstSeq: first.seq,
    lastSeq: last.seq,
    count: records.length,
    prevHash: first.prevHash,
    lastHash: last.hash,
  };
}

export function encodeBatch(records: readonly AuditRecord[]): string {
  const lines = [encodeHeader(batchHeader(records)), ...records.map(encodeRecordJson)];
  return `${lines.join('\n')}\n`;
}

/**
 * Parses a batch file. Throws a FormatError for anything that is not exactly what
 * {@link encodeBatch} would write for the values read; chain checks are the verifier's job.
 */
export function decodeBatch(text: string): Batch {
  if (!text.endsWith('\n')) throw new FormatError(text.split('\n').length, 'malformed', 'file must end with a newline');
  const lines = text.slice(0, -1).split('\n');
  const header = decodeBatchHeader(lines[0] ?? '');
  const records: AuditRecord[] = [];
  for (let i = 1; i < lines.length; i++) records.push(decodeBatchRecord(lines[i] ?? '', i + 1));
  if (records.length === 0) throw new FormatError(1, 'malformed', 'batch holds no records');
  return { header, records };
}

/** Parses a batch's first line (without its terminator); what {@link decodeBatch} demands of it. */
export function decodeBatchHeader(headLine: string): BatchHeader {
  const h = parseJsonLine(headLine, 1);
  if (h['format'] !== BATCH_FORMAT) throw new FormatError(1, 'malformed', `header format must be ${BATCH_FORMAT}`);
  for (const k of ['firstSeq', 'lastSeq', 'count']) {
    const v = h[k];
    if (!(typeof v === 'number' && Number.isSafeInteger(v) && v >= 1)) {
      throw new FormatError(1, 'malformed', `header ${k} must be a positive integer`);
    }
  }
  for (const k of ['prevHash', 'lastHash']) {
    if (!isHash(h[k])) throw new FormatError(1, 'malformed', `header ${k} must be 64 lower-case hex digits`);
  }
  if (typeof h['orgId'] !== 'string') throw new FormatError(1, 'malformed', 'header orgId must be a string');
  const header: BatchHeader = {
    format: BATCH_FORMAT,
    orgId: h['orgId'],
    firstSeq: h['firstSeq'] as number,
    lastSeq: h['lastSeq'] as number,
    count: h['count'] as number,
    prevHash: h['prevHash'] as string,
    lastHash: h['lastHash'] as string,
  };
  if (encodeHeader(header) !== headLine) throw new FormatError(1, 'non-canonical', 'header is not in canonical form');
  return header;
}

/** Parses one record line of a batch (1-based `line`, without its terminator). */
export function decodeBatchRecord(text: string, line: number): AuditRecord {
  const r = recordFrom(parseJsonLine(text, line), line);
  if (encodeRecordJson(r) !== text) throw new FormatError(line, 'non-canonical', 'record is not in canonical form');
  return r;
}

/**
 * Archive object key of a batch: sorts by organisation, then sequence. Keyed by the first sequence
 * only, so a retried shipment of the same position hits the same key (and a conditional write
 * refuses to create an overlapping second batch).
 */
export function batchKey(prefix: string, header: Pick<BatchHeader, 'orgId' | 'firstSeq'>): string {
  return `${prefix}${header.orgId}/${padSeq(header.firstSeq)}.jsonl`;
}

export function padSeq(seq: number): string {
  return String(seq).padStart(16, '0');
}

// ---------------------------------------------------------------------------------------------
// CSV export

export const CSV_COLUMNS = [
  'seq',
  'occurred_at',
  'org_id',
  'actor_type',
  'actor_user_id',
  'actor_email',
  'event',
  'entity_type',
  'entity_id',
  'ip',
  'user_agent',
  'support_grant_id',
  'metadata',
  'prev_hash',
  'hash',
] as const;

const CSV_HEADER = CSV_COLUMNS.join(',');

/**
 * One cell. `null` is an empty unquoted cell, the empty string a quoted one. Values a spreadsheet
 * would run as a formula (leading = + - @ tab CR) get a leading apostrophe, and so does any value
 * that already starts with one, so the escape is reversible and the hash still verifies.
 */
function encodeCell(v: string | null): string {
  if (v === null) return '';
  const s = /^[=+\-@\t\r']/.test(v) ? `'${v}` : v;
  return s === '' || /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

function encodeCsvRow(r: AuditRecord): string {
  return [
    String(r.seq),
    r.occurredAt.toISOString(),
    r.orgId,
    r.actorType,
    r.actorUserId,
    r.actorEmail,
    r.event,
    r.entityType,
    r.entityId,
    r.ip,
    r.userAgent,
    r.supportGrantId,
    canonicalJson(r.metadata),
    r.prevHash,
    r.hash,
  ]
    .map(encodeCell)
    .join(',');
}

/** Streams well: header, then one CRLF-terminated row per record. */
export function csvHeader(): string {
  return `${CSV_HEADER}\r\n`;
}

export function csvRow(r: AuditRecord): string {
  return `${encodeCsvRow(r)}\r\n`;
}

export function encodeCsv(records: readonly AuditRecord[]): string {
  return csvHeader() + records.map(csvRow).join('');
}

interface Cell {
  readonly value: string;
  readonly quoted: boolean;
}

/** RFC 4180 rows, each with its raw text (terminator excluded) for the canonical comparison. */
function parseCsvRows(text: string): { cells: Cell[]; raw: string; row: number }[] {
  const rows: { cells: Cell[]; raw: string; row: number }[] = [];
  const special = /[,\r\n"]/g;
  let i = 0;
  let row = 0;
  while (i < text.length) {
    row++;
    const start = i;
    const cells: Cell[] = [];
    for (;;) {
      if (text.charCodeAt(i) === 34 /* " */) {
        let value = '';
        let from = i + 1;
        for (;;) {
          const q = text.indexOf('"', from);
          if (q < 0) throw new FormatError(row, 'malformed', 'unterminated quoted cell');
          value += text.slice(from, q);
          if (text.charCodeAt(q + 1) === 34) {
            value += '"';
            from = q + 2;
            continue;
          }
          i = q + 1;
          break;
        }
        cells.push({ value, quoted: true });
      } else {
        special.lastIndex = i;
        const m = special.exec(text);
        const end = m ? m.index : text.length;
        if (m && m[0] === '"') throw new FormatError(row, 'malformed', 'quote inside an unquoted cell');
        cells.push({ value: text.slice(i, end), quoted: false });
        i = end;
      }
      const ch = text[i];
      if (ch === ',') {
        i++;
        continue;
      }
      if (ch === '\r' && text[i + 1] === '\n') {
        rows.push({ cells, raw: text.slice(start, i), row });
        i += 2;
        break;
      }
      throw new FormatError(row, 'malformed', 'row must end with CRLF');
    }
  }
  return rows;
}

function decodeCell(c: Cell): string | null {
  if (!c.quoted && c.value === '') return null;
  return c.value.startsWith("'") ? c.value.slice(1) : c.value;
}

export function decodeCsv(text: string): AuditRecord[] {
  const rows = parseCsvRows(text);
  const head = rows[0];
  if (!head || head.raw !== CSV_HEADER) throw new FormatError(1, 'malformed', `header must be ${CSV_HEADER}`);
  return rows.slice(1).map((r) => recordFromCsvRow(r.cells, r.raw, r.row));
}

/** True when `raw` (a CSV header row without its CRLF) is the export's header. */
export function isCsvHeader(raw: string): boolean {
  return raw === CSV_HEADER;
}

/**
 * Parses one CSV row given as its raw text without the terminating CRLF (`row` is 1-based, the
 * header being row 1): what {@link decodeCsv} demands of each row, for readers that stream.
 */
export function decodeCsvRow(raw: string, row: number): AuditRecord {
  let parsed;
  try {
    parsed = parseCsvRows(`${raw}\r\n`);
  } catch (e) {
    if (e instanceof FormatError) throw new FormatError(row, e.kind, e.message);
    throw e;
  }
  const [only, extra] = parsed;
  if (!only || extra) throw new FormatError(row, 'malformed', 'row must end with CRLF');
  return recordFromCsvRow(only.cells, raw, row);
}

function recordFromCsvRow(cells: readonly Cell[], raw: string, row: number): AuditRecord {
  if (cells.length !== CSV_COLUMNS.length) {
    throw new FormatError(row, 'malformed', `expected ${CSV_COLUMNS.length} cells, found ${cells.length}`);
  }
  const v = cells.map(decodeCell);
  const seqText = v[0] ?? '';
  if (!/^[1-9][0-9]*$/.test(seqText)) throw new FormatError(row, 'malformed', 'seq must be a positive integer');
  let metadata: unknown;
  try {
    metadata = JSON.parse(v[12] ?? '');
  } catch {
    throw new FormatError(row, 'malformed', 'metadata is not valid JSON');
  }
  const r = recordFrom(
    {
      seq: Number(seqText),
      occurredAt: v[1],
      orgId: v[2],
      actorType: v[3],
      actorUserId: v[4],
      actorEmail: v[5],
      event: v[6],
      entityType: v[7],
      entityId: v[8],
      ip: v[9],
      userAgent: v[10],
      supportGrantId: v[11],
      metadata,
      prevHash: v[13],
      hash: v[14],
    },
    row,
  );
  if (encodeCsvRow(r) !== raw) throw new FormatError(row, 'non-canonical', 'row is not in canonical form');
  return r;
}
