/** The organisation's audit log as CSV (`audit:view`); the export audits itself. */
import {
  ExportError,
  parseExportRequest,
  writeAuditCsv,
  type ExportRequest,
  type ParsedExportRequest,
} from '../../audit/export';
import { GuardError } from '../errors';
import { tenantRoute, type Route } from '../route';
import { need } from './common';

export const AUDIT_ROUTES: readonly Route[] = [
  tenantRoute('GET', '/audit/export', async (ctx) => {
    // RBAC here; row-level security keeps the rows to this organisation.
    need(ctx, 'audit', 'view');
    const q = ctx.req.query;
    let req: ParsedExportRequest;
    try {
      req = parseExportRequest({
        orgId: ctx.tenant.orgId,
        userId: ctx.tenant.userId,
        supportGrantId: ctx.tenant.supportGrantId,
        from: q['from'],
        to: q['to'],
        actorUserId: q['actor'],
        actorType: q['actor_type'] as ExportRequest['actorType'],
        events: q['event'] ? q['event'].split(',') : undefined,
        ip: ctx.req.ip,
        userAgent: ctx.req.userAgent,
      });
    } catch (e) {
      if (e instanceof ExportError) throw new GuardError('VALIDATION_FAILED', e.message, e.field);
      throw e;
    }
    let out;
    try {
      out = await writeAuditCsv(ctx.tx, req);
    } catch (e) {
      if (e instanceof ExportError && e.code === 'EXPORT_TOO_LARGE')
        throw new GuardError('EXPORT_TOO_LARGE', e.message);
      throw e;
    }
    return {
      status: 200,
      body: {},
      csv: { filename: `audit-${ctx.tenant.orgId}${out.filtered ? '-filtered' : ''}.csv`, text: out.csv },
    };
  }),
];
