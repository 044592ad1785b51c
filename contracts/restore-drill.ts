/** Metric namespace, names and dimension the restore drill reports and its alarms watch. */
export const DRILL_METRICS = {
  namespace: 'Bulwark/DataTier',
  restoreSeconds: 'RestoreDrillSeconds',
  failed: 'RestoreDrillFailed',
  /** Age of the data restored when the restore started: the RPO the drill achieved. */
  recoveryPointAgeSeconds: 'RestoreDrillRecoveryPointAgeSeconds',
  dimension: 'Deployment',
} as const;
