/**
 * What every shipper run publishes (Powertools Metrics, Embedded Metric Format: one log line, no
 * API call): the oldest unshipped record's age, which the archive-delay alarm watches, and how many
 * organisations are still owed. A run that fails before measuring publishes nothing, and the alarm
 * treats missing data as breaching.
 */
import { ARCHIVE_METRICS } from '../../contracts/audit-archive';
import { MetricUnit, type MetricsRecorder } from '../shared/observability';
import type { ShipResult } from './shipper';

export function publishArchiveMetrics(metrics: MetricsRecorder, deployment: string, result: ShipResult): void {
  metrics.addDimension(ARCHIVE_METRICS.dimension, deployment);
  metrics.addMetric(ARCHIVE_METRICS.oldestUnshippedSeconds, MetricUnit.Seconds, result.owed.oldestAgeSeconds);
  metrics.addMetric(ARCHIVE_METRICS.owedOrganisations, MetricUnit.Count, result.owed.organisations);
  metrics.publishStoredMetrics();
}
