/** Metric namespace, names and dimension the restore drill reports and its alarms watch. */
export const DRILL_METRICS = {
  namespace: 'Bulwark/DataTier',
  restoreSeconds: 'RestoreDrillSeconds',
  failed: 'RestoreDrillFailed',
  dimension: 'Deployment',
} as const;
