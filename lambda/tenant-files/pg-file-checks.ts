/**
 * The checker's store: one call of `app.record_file_check` (migrations/0413), the only thing its
 * database role (`bulwark_file_checker`) may execute. The database decides; this only maps rows.
 */
import type { Pool } from 'pg';
import type { FileRejectReason } from '../../contracts/tenant-files';
import type { FileCheckOutcome, FileCheckStore, FileObservation } from './checker';

export class PgFileCheckStore implements FileCheckStore {
  constructor(private readonly pool: Pick<Pool, 'query'>) {}

  async record(o: FileObservation): Promise<FileCheckOutcome | undefined> {
    const r = await this.pool.query<{
      file_id: string;
      org_id: string;
      status: 'clean' | 'rejected';
      verdict: 'clean' | 'rejected';
      reason: FileRejectReason | null;
      changed: boolean;
    }>('SELECT * FROM app.record_file_check($1, $2, $3, $4, $5, $6)', [
      o.objectKey,
      o.size,
      o.sha256,
      o.contentType,
      o.kmsKeyArn,
      o.problem,
    ]);
    const row = r.rows[0];
    if (!row) return undefined;
    return {
      fileId: row.file_id,
      orgId: row.org_id,
      status: row.status,
      verdict: row.verdict,
      reason: row.reason,
      changed: row.changed,
    };
  }
}
