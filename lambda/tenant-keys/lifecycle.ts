/**
 * Tenant lifecycle, as a pure state machine driven by an injected clock.
 *
 *   active --cancel--> cancelled --(billing period ends)--> grace --(30 days)--> shredded
 *      ^                   |                                  |
 *      +-----restore-------+-------------restore--------------+
 *
 * cancelled: the tenant keeps full access until the end of the billing period it has paid for.
 * grace: access is suspended; everything is kept and an Owner (or support) can restore it.
 * shredded: rows and objects are deleted and the tenant key is scheduled for deletion, so every
 * copy of its envelope-encrypted data, backups included, becomes unreadable. Final.
 *
 * Every transition yields the audit events that describe it and the effects the processor must
 * carry out; nothing here performs I/O.
 */
import type { ActorType, AuditEvent } from '../shared/audit';

export const LIFECYCLE_STATES = ['active', 'cancelled', 'grace', 'shredded'] as const;
export type LifecycleState = (typeof LIFECYCLE_STATES)[number];

export const GRACE_PERIOD_DAYS = 30;
const DAY_MS = 86_400_000;

export interface TenantLifecycle {
  readonly orgId: string;
  readonly state: LifecycleState;
  /** Set while cancelled: access ends at this instant (end of the paid billing period). */
  readonly accessUntil: Date | null;
  /** Set while in grace: data is shredded at this instant unless restored. */
  readonly graceEndsAt: Date | null;
  readonly cancelledAt: Date | null;
  readonly shreddedAt: Date | null;
}

export interface Actor {
  readonly type: ActorType;
  readonly userId: string | null;
  readonly email: string | null;
  readonly ip?: string | null;
  readonly userAgent?: string | null;
  readonly supportGrantId?: string | null;
}

export const SYSTEM_ACTOR: Actor = { type: 'system', userId: null, email: null };

/** Work the processor performs, in order, before the shredded state is committed. */
export type LifecycleEffect =
  | { readonly kind: 'delete_rows'; readonly orgId: string }
  | { readonly kind: 'delete_objects'; readonly orgId: string }
  | { readonly kind: 'schedule_key_deletion'; readonly orgId: string };

export interface Transition {
  readonly next: TenantLifecycle;
  readonly events: readonly AuditEvent[];
  readonly effects: readonly LifecycleEffect[];
}

export type LifecycleErrorCode = 'INVALID_TRANSITION' | 'INVALID_BILLING_PERIOD' | 'ALREADY_SHREDDED';

export class LifecycleError extends Error {
  constructor(
    readonly code: LifecycleErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'LifecycleError';
  }
}

export function activeTenant(orgId: string): TenantLifecycle {
  return { orgId, state: 'active', accessUntil: null, graceEndsAt: null, cancelledAt: null, shreddedAt: null };
}

function event(
  t: TenantLifecycle,
  name: string,
  actor: Actor,
  at: Date,
  metadata: Record<string, unknown>,
): AuditEvent {
  return {
    orgId: t.orgId,
    actorType: actor.type,
    actorUserId: actor.userId,
    actorEmail: actor.email,
    event: name,
    entityType: 'organisation',
    entityId: t.orgId,
    ip: actor.ip ?? null,
    userAgent: actor.userAgent ?? null,
    supportGrantId: actor.supportGrantId ?? null,
    metadata,
    occurredAt: at,
  };
}

/** Does the tenant have access to its data at `now`? */
export function hasAccess(t: TenantLifecycle, now: Date): boolean {
  if (t.state === 'active') return true;
  return t.state === 'cancelled' && t.accessUntil !== null && now < t.accessUntil;
}

/** Cancels an active tenant; access continues until `billingPeriodEnd`. */
export function cancel(t: TenantLifecycle, now: Date, billingPeriodEnd: Date, actor: Actor): Transition {
  if (t.state !== 'active') throw new LifecycleError('INVALID_TRANSITION', `cannot cancel a ${t.state} tenant`);
  if (!(billingPeriodEnd.getTime() >= now.getTime())) {
    throw new LifecycleError('INVALID_BILLING_PERIOD', 'billing period end is in the past');
  }
  const next: TenantLifecycle = { ...t, state: 'cancelled', cancelledAt: now, accessUntil: billingPeriodEnd };
  return {
    next,
    events: [event(t, 'tenant.cancelled', actor, now, { accessUntil: billingPeriodEnd.toISOString() })],
    effects: [],
  };
}

/** Restores a cancelled tenant or one in its grace period. A shredded tenant cannot come back. */
export function restore(t: TenantLifecycle, now: Date, actor: Actor): Transition {
  if (t.state === 'shredded') throw new LifecycleError('ALREADY_SHREDDED', 'the tenant was shredded');
  if (t.state === 'active') throw new LifecycleError('INVALID_TRANSITION', 'the tenant is active');
  // Due work wins: a grace period that has run out cannot be restored even if the processor is late.
  if (t.state === 'grace' && t.graceEndsAt && now >= t.graceEndsAt) {
    throw new LifecycleError('INVALID_TRANSITION', 'the grace period has ended');
  }
  return {
    next: activeTenant(t.orgId),
    events: [event(t, 'tenant.restored', actor, now, { from: t.state })],
    effects: [],
  };
}

/**
 * Advances a tenant whose deadline has passed by one step: cancelled -> grace at the end of the
 * billing period, grace -> shredded at the end of the grace period. Returns null when nothing is
 * due. (A late processor applies it repeatedly; each step is committed on its own.)
 */
export function advance(t: TenantLifecycle, now: Date): Transition | null {
  if (t.state === 'cancelled' && t.accessUntil && now >= t.accessUntil) {
    const graceEndsAt = new Date(t.accessUntil.getTime() + GRACE_PERIOD_DAYS * DAY_MS);
    return {
      next: { ...t, state: 'grace', graceEndsAt },
      events: [
        event(t, 'tenant.grace_started', SYSTEM_ACTOR, now, {
          accessEndedAt: t.accessUntil.toISOString(),
          graceEndsAt: graceEndsAt.toISOString(),
        }),
      ],
      effects: [],
    };
  }
  if (t.state === 'grace' && t.graceEndsAt && now >= t.graceEndsAt) {
    return {
      next: { ...t, state: 'shredded', shreddedAt: now },
      events: [event(t, 'tenant.shredded', SYSTEM_ACTOR, now, { graceEndedAt: t.graceEndsAt.toISOString() })],
      effects: [
        { kind: 'delete_rows', orgId: t.orgId },
        { kind: 'delete_objects', orgId: t.orgId },
        { kind: 'schedule_key_deletion', orgId: t.orgId },
      ],
    };
  }
  return null;
}
