/**
 * The ingress's one metric record per request, through Powertools Metrics (Embedded Metric Format:
 * no API call, no extra latency). Names, namespace and dimension sets are the contract the alarms
 * watch (contracts/webhooks.ts `WEBHOOK_METRICS`).
 */
import { WEBHOOK_METRICS, type Provider } from '../../contracts/webhooks';
import { MetricUnit, type MetricsRecorder } from '../shared/observability';

/** `accepted`, `duplicate`, `unverified_accepted` or a WebhookErrorCode. */
export type WebhookOutcome = string;

/**
 * Records one request: `Requests` 1 and its `Latency`, by [Provider, Outcome], [Provider] and
 * [Outcome] ([Outcome] lets one alarm watch a refusal code across providers). One EMF document per
 * dimension set: Powertools warns about a key shared by two sets of one document, and CloudWatch
 * derives the same data points either way.
 */
export function recordRequest(
  metrics: MetricsRecorder,
  provider: Provider | 'unknown',
  outcome: WebhookOutcome,
  latencyMs: number,
): void {
  const { provider: p, outcome: o } = WEBHOOK_METRICS;
  for (const dimensions of [{ [p]: provider, [o]: outcome }, { [p]: provider }, { [o]: outcome }]) {
    for (const [name, value] of Object.entries(dimensions)) metrics.addDimension(name, value);
    metrics.addMetric(WEBHOOK_METRICS.requests, MetricUnit.Count, 1);
    metrics.addMetric(WEBHOOK_METRICS.latency, MetricUnit.Milliseconds, latencyMs);
    metrics.publishStoredMetrics();
  }
}
