-- The domain every dealership trusts us with: customers, vehicles, leads, deals, messages, calls.
-- Every table follows docs/tenancy.md: id uuid PK, org_id NOT NULL, UNIQUE (org_id, id) as the
-- org_id-led index, composite foreign keys so no row can point into another tenant, other unique
-- constraints lead with org_id, and app.protect_tenant_table for RLS and grants.

CREATE TABLE customers (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  org_id uuid NOT NULL REFERENCES organisations (id),
  name text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
  email text CHECK (length(email) <= 320),
  phone text CHECK (length(phone) <= 32),
  created_at timestamptz NOT NULL DEFAULT now(),
  UNIQUE (org_id, id),
  UNIQUE (org_id, email)
);

CREATE TABLE vehicles (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  org_id uuid NOT NULL REFERENCES organisations (id),
  vin text NOT NULL CHECK (vin ~ '^[A-HJ-NPR-Z0-9]{17}$'),
  make text NOT NULL CHECK (length(make) BETWEEN 1 AND 60),
  model text NOT NULL CHECK (length(model) BETWEEN 1 AND 60),
  year integer NOT NULL CHECK (year BETWEEN 1900 AND 2100),
  price_cents bigint CHECK (price_cents >= 0),
  status text NOT NULL DEFAULT 'in_stock' CHECK (status IN ('in_stock', 'reserved', 'sold')),
  created_at timestamptz NOT NULL DEFAULT now(),
  UNIQUE (org_id, id),
  UNIQUE (org_id, vin)
);

CREATE TABLE leads (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  org_id uuid NOT NULL REFERENCES organisations (id),
  customer_id uuid,
  vehicle_id uuid,
  source text NOT NULL DEFAULT 'manual' CHECK (source IN ('manual', 'web', 'phone', 'email', 'walk_in', 'partner')),
  status text NOT NULL DEFAULT 'new' CHECK (status IN ('new', 'contacted', 'qualified', 'won', 'lost')),
  name text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
  email text CHECK (length(email) <= 320),
  phone text CHECK (length(phone) <= 32),
  notes text CHECK (length(notes) <= 10000),
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  UNIQUE (org_id, id),
  FOREIGN KEY (org_id, customer_id) REFERENCES customers (org_id, id) ON DELETE SET NULL (customer_id),
  FOREIGN KEY (org_id, vehicle_id) REFERENCES vehicles (org_id, id) ON DELETE SET NULL (vehicle_id)
);
CREATE INDEX leads_org_created_idx ON leads (org_id, created_at DESC);

CREATE TABLE deals (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  org_id uuid NOT NULL REFERENCES organisations (id),
  customer_id uuid NOT NULL,
  lead_id uuid,
  vehicle_id uuid,
  stage text NOT NULL DEFAULT 'open' CHECK (stage IN ('open', 'negotiating', 'won', 'lost')),
  amount_cents bigint CHECK (amount_cents >= 0),
  created_at timestamptz NOT NULL DEFAULT now(),
  UNIQUE (org_id, id),
  FOREIGN KEY (org_id, customer_id) REFERENCES customers (org_id, id),
  FOREIGN KEY (org_id, lead_id) REFERENCES leads (org_id, id) ON DELETE SET NULL (lead_id),
  FOREIGN KEY (org_id, vehicle_id) REFERENCES vehicles (org_id, id) ON DELETE SET NULL (vehicle_id)
);

CREATE TABLE messages (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  org_id uuid NOT NULL REFERENCES organisations (id),
  lead_id uuid,
  customer_id uuid,
  channel text NOT NULL CHECK (channel IN ('sms', 'email', 'whatsapp')),
  direction text NOT NULL CHECK (direction IN ('inbound', 'outbound')),
  body text NOT NULL CHECK (length(body) <= 100000),
  sent_at timestamptz NOT NULL DEFAULT now(),
  UNIQUE (org_id, id),
  FOREIGN KEY (org_id, lead_id) REFERENCES leads (org_id, id) ON DELETE SET NULL (lead_id),
  FOREIGN KEY (org_id, customer_id) REFERENCES customers (org_id, id) ON DELETE SET NULL (customer_id)
);
CREATE INDEX messages_org_sent_idx ON messages (org_id, sent_at DESC);

CREATE TABLE calls (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  org_id uuid NOT NULL REFERENCES organisations (id),
  lead_id uuid,
  customer_id uuid,
  direction text NOT NULL CHECK (direction IN ('inbound', 'outbound')),
  from_number text NOT NULL CHECK (length(from_number) <= 32),
  to_number text NOT NULL CHECK (length(to_number) <= 32),
  duration_seconds integer NOT NULL DEFAULT 0 CHECK (duration_seconds >= 0),
  started_at timestamptz NOT NULL DEFAULT now(),
  UNIQUE (org_id, id),
  FOREIGN KEY (org_id, lead_id) REFERENCES leads (org_id, id) ON DELETE SET NULL (lead_id),
  FOREIGN KEY (org_id, customer_id) REFERENCES customers (org_id, id) ON DELETE SET NULL (customer_id)
);
CREATE INDEX calls_org_started_idx ON calls (org_id, started_at DESC);

SELECT app.protect_tenant_table('customers');
SELECT app.protect_tenant_table('vehicles');
SELECT app.protect_tenant_table('leads');
SELECT app.protect_tenant_table('deals');
SELECT app.protect_tenant_table('messages');
SELECT app.protect_tenant_table('calls');

-- Pipeline summary. security_invoker: the caller's RLS applies, never the view owner's.
CREATE VIEW lead_pipeline WITH (security_invoker = true) AS
  SELECT org_id, status, count(*) AS leads, max(created_at) AS latest
  FROM leads GROUP BY org_id, status;
REVOKE ALL ON lead_pipeline FROM PUBLIC;
GRANT SELECT ON lead_pipeline TO bulwark_app;

-- API keys: created_by is always the verified user, and the grid can only narrow that user's own
-- role in the organisation (checked again here, under the caller's RLS, not just in the app).
CREATE FUNCTION app.api_key_narrowing() RETURNS trigger LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE v_grid text[];
BEGIN
  NEW.created_by := app.current_user_id();
  IF NEW.created_by IS NULL OR app.current_support_grant_id() IS NOT NULL THEN
    RAISE EXCEPTION 'PERMISSION_DENIED' USING ERRCODE = 'BW008';
  END IF;
  SELECT app.membership_permissions(m.role, cr.permissions) INTO v_grid
    FROM public.memberships m
    LEFT JOIN public.custom_roles cr ON cr.org_id = m.org_id AND cr.id = m.custom_role_id
   WHERE m.org_id = NEW.org_id AND m.user_id = NEW.created_by AND m.status = 'active';
  IF v_grid IS NULL OR NOT NEW.permissions <@ v_grid THEN
    RAISE EXCEPTION 'API_KEY_EXCEEDS_ROLE' USING ERRCODE = 'BW010';
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER api_keys_narrowing BEFORE INSERT OR UPDATE OF permissions ON api_keys
  FOR EACH ROW EXECUTE FUNCTION app.api_key_narrowing();

CREATE FUNCTION app.touch_updated_at() RETURNS trigger LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$ BEGIN NEW.updated_at := now(); RETURN NEW; END $$;
CREATE TRIGGER leads_updated_at BEFORE UPDATE ON leads FOR EACH ROW EXECUTE FUNCTION app.touch_updated_at();
