/**
 * The per-organisation audit hash chain.
 *
 * Each record carries a sequence number (1, 2, 3, ... per organisation), the hash of its
 * predecessor (`prevHash`; the first record's is {@link GENESIS_HASH}) and its own hash: SHA-256
 * over the canonical serialisation of every field, `prevHash` and `seq` included. Editing any
 * field breaks that record's hash; deleting or reordering records breaks the sequence and the
 * `prevHash` links. The same function hashes system events (PgSystemAuditSink), in the shipper and
 * in the verifier; the database builds the same bytes in SQL for the events it links itself
 * (`app_private.audit_hash`, migrations/0404) and checks system events against them, so all agree
 * byte for byte (test/audit/audit-log.test.ts checks database rows with the verifier).
 */
import { createHash } from 'node:crypto';
import { ACTOR_TYPES, type ActorType, type AuditEvent } from '../shared/audit';
import { canonicalJson, normaliseMetadata, type JsonValue } from './canonical';

/** Version tag hashed into every record, so a future format can never collide with this one. */
export const CHAIN_FORMAT = 'bulwark-audit/1';
export const GENESIS_HASH = '0'.repeat(64);
const HASH = /^[0-9a-f]{64}$/;

/**
 * An audit event as stored: the event (its metadata narrowed to JSON, as hashed) plus its place in
 * its organisation's chain.
 */
export interface AuditRecord extends Omit<AuditEvent, 'metadata'> {
  readonly seq: number;
  readonly metadata: Readonly<Record<string, JsonValue>>;
  readonly prevHash: string;
  readonly hash: string;
}

export type UnhashedRecord = Omit<AuditRecord, 'hash'>;

/** The exact bytes that are hashed; field order is part of the format. */
export function canonicalRecord(r: UnhashedRecord): string {
  // Equivalent to canonicalJson([...]) over these values, written out because it is the hot path.
  const s = JSON.stringify;
  if (!Number.isSafeInteger(r.seq)) throw new TypeError('audit record: seq must be a safe integer');
  return (
    `[${s(CHAIN_FORMAT)},${s(r.orgId)},${r.seq},${s(r.prevHash)},${s(r.occurredAt.toISOString())},` +
    `${s(r.actorType)},${s(r.actorUserId)},${s(r.actorEmail)},${s(r.event)},${s(r.entityType)},` +
    `${s(r.entityId)},${s(r.ip)},${s(r.userAgent)},${s(r.supportGrantId)},${canonicalJson(r.metadata)}]`
  );
}

export function hashRecord(r: UnhashedRecord): string {
  return createHash('sha256').update(canonicalRecord(r), 'utf8').digest('hex');
}

export function isHash(value: unknown): value is string {
  return typeof value === 'string' && HASH.test(value);
}

export function isActorType(value: unknown): value is ActorType {
  return typeof value === 'string' && (ACTOR_TYPES as readonly string[]).includes(value);
}

/** The head of a chain: what the next record links to. */
export interface ChainHead {
  readonly seq: number;
  readonly hash: string;
}

export const EMPTY_HEAD: ChainHead = { seq: 0, hash: GENESIS_HASH };

/** Validates an event for the chain; throws a TypeError naming the field. */
export function validateEvent(e: AuditEvent): void {
  if (typeof e.orgId !== 'string' || e.orgId.length === 0) throw new TypeError('audit event: orgId is required');
  if (!isActorType(e.actorType)) throw new TypeError(`audit event: actorType must be one of ${ACTOR_TYPES.join(', ')}`);
  if (typeof e.event !== 'string' || !/^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$/.test(e.event)) {
    throw new TypeError('audit event: event must be a dotted lower-case name such as lead.deleted');
  }
  if (!(e.occurredAt instanceof Date) || Number.isNaN(e.occurredAt.getTime())) {
    throw new TypeError('audit event: occurredAt must be a valid Date');
  }
}

/** Appends `event` after `head`, returning the complete record. */
export function link(head: ChainHead, event: AuditEvent): AuditRecord {
  validateEvent(event);
  const unhashed: UnhashedRecord = {
    seq: head.seq + 1,
    orgId: event.orgId,
    // Millisecond precision is what JavaScript and the archive carry; PostgreSQL stores it exactly.
    occurredAt: new Date(event.occurredAt.getTime()),
    actorType: event.actorType,
    actorUserId: event.actorUserId ?? null,
    actorEmail: event.actorEmail ?? null,
    event: event.event,
    entityType: event.entityType ?? null,
    entityId: event.entityId ?? null,
    ip: event.ip ?? null,
    userAgent: event.userAgent ?? null,
    supportGrantId: event.supportGrantId ?? null,
    metadata: normaliseMetadata(event.metadata),
    prevHash: head.hash,
  };
  return { ...unhashed, hash: hashRecord(unhashed) };
}

/** Builds a whole chain from events of one organisation (tests, benchmarks, re-imports). */
export function buildChain(events: readonly AuditEvent[], from: ChainHead = EMPTY_HEAD): AuditRecord[] {
  const out: AuditRecord[] = [];
  let head = from;
  for (const e of events) {
    const r = link(head, e);
    out.push(r);
    head = r;
  }
  return out;
}
