-- Narrow UPDATE on gate-sensitive tables to the columns the API legitimately changes, so an
-- application bug cannot extend a support grant, re-point an API key at another minter, or swap a
-- key's secret: the application may only revoke (and rename keys).
REVOKE UPDATE ON support_grants FROM bulwark_app;
GRANT UPDATE (revoked_at, revoked_by) ON support_grants TO bulwark_app;

REVOKE UPDATE ON api_keys FROM bulwark_app;
GRANT UPDATE (revoked_at, name) ON api_keys TO bulwark_app;
