import { ACTOR_TYPES, type AuditEvent } from '../../lambda/shared/audit';

/** Deterministic PRNG (mulberry32), so generated chains are identical run to run. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// Values chosen to exercise every escape: CSV quoting, formula prefixes, JSON escapes, non-ASCII.
const AWKWARD = [
  'plain',
  'with, comma',
  'with "quotes"',
  'multi\r\nline',
  '=SUM(A1)',
  "'quoted",
  '-1',
  'ünïcödé ✓',
  '',
];

export function sampleEvents(orgId: string, count: number, seed = 1): AuditEvent[] {
  const rnd = prng(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)] as T;
  const start = Date.UTC(2026, 0, 1);
  const out: AuditEvent[] = [];
  for (let i = 0; i < count; i++) {
    const actorType = pick(ACTOR_TYPES);
    out.push({
      orgId,
      actorType,
      actorUserId: actorType === 'system' ? null : `user-${Math.floor(rnd() * 50)}`,
      actorEmail: actorType === 'system' ? null : `user${Math.floor(rnd() * 50)}@dealer.example`,
      event: pick(['lead.created', 'lead.deleted', 'booking.state_changed', 'support_grant.opened', 'audit.exported']),
      entityType: rnd() < 0.2 ? null : pick(['lead', 'booking', 'user']),
      entityId: rnd() < 0.2 ? null : `e-${i}`,
      ip: rnd() < 0.3 ? null : `203.0.113.${Math.floor(rnd() * 255)}`,
      userAgent: rnd() < 0.3 ? null : pick(AWKWARD),
      supportGrantId: actorType === 'support_grant' ? `grant-${i}` : null,
      metadata:
        rnd() < 0.5 ? {} : { note: pick(AWKWARD), n: Math.floor(rnd() * 1e6) / 100, nested: { b: true, a: [1, null] } },
      occurredAt: new Date(start + i * 1000 + Math.floor(rnd() * 999)),
    });
  }
  return out;
}
