/**
 * Metric namespace and names the restore drill reports and its alarms watch. A module of constants
 * only, so the CDK app reads them without loading the drill's AWS SDK clients at synth.
 */
export const DRILL_METRICS = {
  namespace: 'Bulwark/DataTier',
  restoreSeconds: 'RestoreDrillSeconds',
  failed: 'RestoreDrillFailed',
  dimension: 'Deployment',
} as const;
