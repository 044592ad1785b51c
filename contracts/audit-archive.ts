/** Metric namespace, names and dimension the audit archive shipper publishes and its alarm watches. */
export const ARCHIVE_METRICS = {
  namespace: 'Bulwark/Audit',
  /** Age of the oldest audit record not yet in the archive (0 when nothing is owed), after each run. */
  oldestUnshippedSeconds: 'ArchiveOldestUnshippedSeconds',
  /** Organisations with records not yet in the archive, after each run. */
  owedOrganisations: 'ArchiveOwedOrganisations',
  dimension: 'Deployment',
} as const;
