/**
 * The one row a statement always returns (INSERT ... RETURNING, a SELECT of a function call):
 * narrowed with an explicit error instead of asserted, so a broken invariant fails with its code.
 */
export function firstRow<T>(rows: readonly T[]): T {
  const row = rows[0];
  if (row === undefined) throw new Error('DB_ROW_MISSING: the statement returned no row');
  return row;
}
