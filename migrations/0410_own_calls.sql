-- Voice surfaces: members and viewers see only their own calls (issue 16). Enforced here, not only
-- in the handler: whatever SQL the tenant API's role sends, a Member or Viewer reads, changes and
-- attaches recordings to the calls it handled itself, and nobody else's.
--
--   1. calls gains the agent who handled it (agent_user_id, a member of the same organisation by
--      composite foreign key), when it ended, its status and the carrier's call id (unique per
--      organisation, so an integration retrying a POST cannot record a call twice).
--   2. call_recordings: recording metadata per call. file_id names the recording's object in the
--      tenant file store (migrations/0408, built in parallel); no foreign key to a table this
--      migration does not know. A recording is visible exactly when its call is: its policies
--      read the call under the caller's own row-level security, so the scoping has one source.
--   3. app.context_reads_all_agents(): whether the context reads every agent's rows. True for the
--      Owner and Admins (in person, through their API keys, or overseeing from an ancestor dealer
--      group or network), a support grant (granted for the whole tenant) and the export worker (an
--      export is the whole tenant); false for Members, Viewers and custom roles (least privilege:
--      the grid has no "every agent" permission; a custom role sees its holder's own calls).
--      Every calls policy is `org_id = (SELECT app.grid_org_id('calls:…')) AND (reads_all OR
--      agent_user_id = (SELECT app.current_user_id()))`: InitPlans, planned like literals.
--
-- Writes follow the same rule: a Member (calls:create, calls:edit) logs and edits its own calls
-- only, cannot attribute a call to someone else (WITH CHECK) and cannot take another agent's call
-- (USING hides it: UPDATE ... SET agent_user_id = me touches nothing).

-- ---------------------------------------------------------------------------------------------
-- 1. calls: agent, end, status, carrier id.
-- ---------------------------------------------------------------------------------------------
ALTER TABLE calls
  ADD COLUMN agent_user_id uuid,
  ADD COLUMN ended_at timestamptz,
  ADD COLUMN status text NOT NULL DEFAULT 'completed'
    CHECK (status IN ('ringing', 'in_progress', 'completed', 'missed', 'busy', 'failed')),
  ADD COLUMN carrier_call_id text CHECK (length(carrier_call_id) BETWEEN 1 AND 200),
  ADD CONSTRAINT calls_ended_after_start CHECK (ended_at IS NULL OR ended_at >= started_at),
  -- The agent is a member (or former member: memberships are revoked, never deleted) of the call's
  -- own organisation.
  ADD CONSTRAINT calls_agent_membership FOREIGN KEY (org_id, agent_user_id) REFERENCES memberships (org_id, user_id),
  ADD CONSTRAINT calls_org_carrier_call_key UNIQUE (org_id, carrier_call_id);
-- A Member's own list, in GET /calls' order (the route adds the agent to its WHERE for Members and
-- Viewers so that the planner can use this index; RLS alone filters the organisation's index scan).
CREATE INDEX calls_org_agent_started_idx ON calls (org_id, agent_user_id, started_at DESC, id DESC);

-- New columns get no grant by default (0403 made UPDATE column-level): a call is reassigned, ended
-- and its status changed; its carrier id is fixed once recorded.
GRANT UPDATE (agent_user_id, ended_at, status) ON calls TO bulwark_app;

-- ---------------------------------------------------------------------------------------------
-- 2. call_recordings.
-- ---------------------------------------------------------------------------------------------
CREATE TABLE call_recordings (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  org_id uuid NOT NULL REFERENCES organisations (id),
  call_id uuid NOT NULL,
  -- The recording's object in the tenant file store (files, migrations/0408); NULL until stored.
  file_id uuid,
  carrier_recording_id text CHECK (length(carrier_recording_id) BETWEEN 1 AND 200),
  content_type text CHECK (content_type IN ('audio/mpeg', 'audio/wav', 'audio/ogg')),
  duration_seconds integer CHECK (duration_seconds >= 0),
  created_at timestamptz NOT NULL DEFAULT now(),
  UNIQUE (org_id, id),
  FOREIGN KEY (org_id, call_id) REFERENCES calls (org_id, id) ON DELETE CASCADE
);
CREATE INDEX call_recordings_org_call_idx ON call_recordings (org_id, call_id, created_at DESC);
SELECT app.protect_tenant_table('call_recordings', p_module => 'calls');
SELECT app.allow_tenant_erasure('call_recordings');

-- ---------------------------------------------------------------------------------------------
-- 3. Who reads every agent's rows, and the policies.
-- ---------------------------------------------------------------------------------------------
-- Built-in roles (and the gate's own context roles) that read every agent's calls. One place.
CREATE FUNCTION app.role_reads_all_agents(p_role text) RETURNS boolean LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$ SELECT coalesce(p_role IN ('owner', 'admin', 'platform_support', 'export'), false) $$;

-- The context's role, through the context accessor (never the context's storage); false without one.
CREATE FUNCTION app.context_reads_all_agents() RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER PARALLEL RESTRICTED
SET search_path = pg_catalog, pg_temp
AS $$ SELECT coalesce((SELECT app.role_reads_all_agents(g.role) FROM app_private.context_grid() g), false) $$;

REVOKE ALL ON FUNCTION app.role_reads_all_agents(text), app.context_reads_all_agents() FROM PUBLIC;
-- The API, and the lifecycle role whose export context reads the tenant's domain tables: calls and
-- their recordings are exported with the tenant (every agent's: the export context reads all).
GRANT EXECUTE ON FUNCTION app.context_reads_all_agents() TO bulwark_app, bulwark_lifecycle;
GRANT SELECT ON calls, call_recordings TO bulwark_lifecycle;

-- Calls: the grid (0403) and the agent. A call without an agent is the Owner's and Admins' alone.
DO $$
DECLARE
  own constant text := '((SELECT app.context_reads_all_agents()) OR agent_user_id = (SELECT app.current_user_id()))';
BEGIN
  EXECUTE format('ALTER POLICY tenant_select ON calls USING (org_id = (SELECT app.grid_org_id(%L)) AND %s)',
                 'calls:view', own);
  EXECUTE format('ALTER POLICY tenant_insert ON calls WITH CHECK (org_id = (SELECT app.grid_writable_org_id(%L)) AND %s)',
                 'calls:create', own);
  EXECUTE format('ALTER POLICY tenant_update ON calls USING (org_id = (SELECT app.grid_writable_org_id(%L)) AND %s) '
                 'WITH CHECK (org_id = (SELECT app.grid_writable_org_id(%L)) AND %s)', 'calls:edit', own, 'calls:edit', own);
  EXECUTE format('ALTER POLICY tenant_delete ON calls USING (org_id = (SELECT app.grid_writable_org_id(%L)) AND %s)',
                 'calls:delete', own);
END $$;

-- Recordings: visible, attachable, changeable and deletable exactly when the call is visible to the
-- caller (the sub-select runs under the caller's own policies on calls).
DO $$
DECLARE
  own constant text := 'EXISTS (SELECT 1 FROM public.calls c WHERE c.org_id = call_recordings.org_id '
                       'AND c.id = call_recordings.call_id)';
BEGIN
  EXECUTE format('ALTER POLICY tenant_select ON call_recordings USING (org_id = (SELECT app.grid_org_id(%L)) AND %s)',
                 'calls:view', own);
  EXECUTE format('ALTER POLICY tenant_insert ON call_recordings WITH CHECK '
                 '(org_id = (SELECT app.grid_writable_org_id(%L)) AND %s)', 'calls:create', own);
  EXECUTE format('ALTER POLICY tenant_update ON call_recordings USING (org_id = (SELECT app.grid_writable_org_id(%L)) '
                 'AND %s) WITH CHECK (org_id = (SELECT app.grid_writable_org_id(%L)) AND %s)',
                 'calls:edit', own, 'calls:edit', own);
  EXECUTE format('ALTER POLICY tenant_delete ON call_recordings USING '
                 '(org_id = (SELECT app.grid_writable_org_id(%L)) AND %s)', 'calls:delete', own);
END $$;

-- A recording stays with its call.
REVOKE UPDATE (call_id) ON call_recordings FROM bulwark_app;
