/**
 * What each carrier sends. Telnyx's scheme is its documented one. FreJun's and DIDLogic's header
 * names, encodings and event fields are this project's stated assumptions (docs/webhooks.md): they
 * live here, in one place, so matching a carrier's actual format is a one-line change under test.
 */
import * as z from 'zod/mini';
import type { HmacProvider, Provider } from '../../contracts/webhooks';
import { WebhookError } from './errors';
import { memberSource } from './json-source';
import type { SignatureEncoding } from './hmac';

/** The fields the ingress needs from a verified event; the rest goes to the processor untouched. */
export interface EventEnvelope {
  readonly eventId: string;
  readonly eventType: string;
  /**
   * Signed send time, checked against the tolerance; Telnyx's is the signed header instead. A JSON
   * number arrives as its source text, so `1.79e9` and `N.0` stay distinguishable from `N`.
   */
  readonly timestamp?: unknown;
}

const eventId = z
  .string()
  .check(z.minLength(1), z.maxLength(200), z.regex(/^[\x21-\x7e]+$/, 'printable ASCII without spaces'));
const eventType = z.string().check(z.minLength(1), z.maxLength(200));

const telnyxEvent = z.object({ data: z.object({ id: eventId, event_type: eventType }) });
/** Assumed FreJun event: `{ "event_id", "event", "timestamp" (Unix seconds), ... }`. */
const frejunEvent = z.object({ event_id: eventId, event: eventType, timestamp: z.unknown() });
/** Assumed DIDLogic event: `{ "id", "type", "timestamp" (Unix seconds), ... }`. */
const didlogicEvent = z.object({ id: eventId, type: eventType, timestamp: z.unknown() });

export interface HmacScheme {
  readonly signatureHeader: string;
  readonly encoding: SignatureEncoding;
}

export const HMAC_SCHEMES: Readonly<Record<HmacProvider, HmacScheme>> = {
  frejun: { signatureHeader: 'x-frejun-signature', encoding: 'hex' },
  didlogic: { signatureHeader: 'x-didlogic-signature', encoding: 'base64' },
};

/** Parses a verified body into its envelope; never called before the signature verified. */
export function parseEnvelope(provider: Provider, body: Buffer): { envelope: EventEnvelope; payload: unknown } {
  let payload: unknown;
  const text = body.toString('utf8');
  try {
    payload = JSON.parse(text);
  } catch {
    throw new WebhookError('PAYLOAD_INVALID', 'body is not JSON');
  }
  switch (provider) {
    case 'telnyx': {
      const r = telnyxEvent.safeParse(payload);
      if (!r.success) throw new WebhookError('PAYLOAD_INVALID', 'no data.id / data.event_type');
      return { envelope: { eventId: r.data.data.id, eventType: r.data.data.event_type }, payload };
    }
    case 'frejun': {
      const r = frejunEvent.safeParse(payload);
      if (!r.success) throw new WebhookError('PAYLOAD_INVALID', 'no event_id / event');
      return {
        envelope: { eventId: r.data.event_id, eventType: r.data.event, timestamp: signedTime(r.data.timestamp, text) },
        payload,
      };
    }
    case 'didlogic': {
      const r = didlogicEvent.safeParse(payload);
      if (!r.success) throw new WebhookError('PAYLOAD_INVALID', 'no id / type');
      return {
        envelope: { eventId: r.data.id, eventType: r.data.type, timestamp: signedTime(r.data.timestamp, text) },
        payload,
      };
    }
  }
}

/** The `timestamp` member as checkTimestamp reads it: a JSON number as its source text, anything else as parsed. */
function signedTime(parsed: unknown, text: string): unknown {
  return typeof parsed === 'number' ? memberSource(text, 'timestamp') : parsed;
}
