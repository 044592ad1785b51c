-- Webhook replay protection: one row per carrier event ever processed, written in the same
-- transaction as the event's effect (lambda/webhooks/dedup.ts).
--
-- Key: (provider, scope, event_id). `scope` is 'platform' for platform-wide carrier accounts
-- (Telnyx) and the organisation id for carriers that sign with a per-organisation secret
-- (FreJun, DIDLogic): an organisation can sign any event id with its own secret, so an unscoped key
-- would let one tenant pre-empt another tenant's event ids.
--
-- Retention: rows expire 7 days after receipt and are purged in small batches by the ingress
-- function. 7 days is longer than the providers' retry horizon (assumed at most 72 hours; see
-- docs/webhooks.md), and every accepted request also carries a signed timestamp that must be
-- within 300 s of now, so an event older than the retention window cannot be replayed at all.
CREATE TABLE webhook_event_dedup (
  provider    text        NOT NULL CHECK (provider IN ('telnyx', 'frejun', 'didlogic')),
  scope       text        NOT NULL CHECK (scope = 'platform' OR scope ~ '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'),
  event_id    text        NOT NULL CHECK (length(event_id) BETWEEN 1 AND 200),
  event_type  text        NOT NULL CHECK (length(event_type) BETWEEN 1 AND 200),
  received_at timestamptz NOT NULL DEFAULT now(),
  expires_at  timestamptz NOT NULL DEFAULT now() + interval '7 days',
  CONSTRAINT webhook_event_dedup_key UNIQUE (provider, scope, event_id),
  CONSTRAINT webhook_event_dedup_expiry CHECK (expires_at > received_at)
);

CREATE INDEX webhook_event_dedup_expires_at ON webhook_event_dedup (expires_at);

COMMENT ON TABLE webhook_event_dedup IS
  'Carrier events already processed; rows expire after 7 days (longer than any carrier retry horizon).';

-- The application records and purges; it never rewrites history.
GRANT SELECT, INSERT, DELETE ON webhook_event_dedup TO bulwark_app;
