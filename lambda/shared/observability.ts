/**
 * Logs and metrics for every handler, with Powertools for AWS Lambda (TypeScript); traces of the AWS
 * SDK calls with lambda/shared/tracing.ts (X-Ray subsegments without the X-Ray SDK).
 *
 * Handlers build one `Observability` per cold start and pass its logger and metrics to the pure
 * logic as the two small interfaces below, which Powertools satisfies and tests fake. Log fields
 * are scalars chosen by the code, never copied from a request: there is no way to hand the logger
 * a body, a headers object or a secret.
 */
import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import type { Context } from 'aws-lambda';

export { MetricUnit };

/** Scalar fields only. */
export type LogFields = Readonly<Record<string, string | number | boolean | null | undefined>>;

/** What the logic logs through (Powertools' `Logger`); several field objects are merged. */
export interface Log {
  debug(message: string, ...fields: LogFields[]): void;
  info(message: string, ...fields: LogFields[]): void;
  warn(message: string, ...fields: LogFields[]): void;
  error(message: string, ...fields: LogFields[]): void;
}

/**
 * What the logic records metrics through (Powertools' `Metrics`): `publishStoredMetrics` writes the
 * metrics added since the last publish, under the dimensions added since, as one Embedded Metric
 * Format line (no API call), and clears both.
 */
export interface MetricsRecorder {
  addDimension(name: string, value: string): void;
  addMetric(name: string, unit: (typeof MetricUnit)[keyof typeof MetricUnit], value: number): void;
  setTimestamp(timestamp: number | Date): void;
  publishStoredMetrics(): void;
}

export interface Observability {
  readonly logger: Logger;
  readonly metrics: Metrics;
}

const LOG_LEVELS = ['TRACE', 'DEBUG', 'INFO', 'WARN', 'ERROR', 'CRITICAL', 'SILENT'] as const;
type LogLevel = (typeof LOG_LEVELS)[number];

/** `POWERTOOLS_LOG_LEVEL`, else `LOG_LEVEL`, else INFO; an unknown level is a configuration error. */
export function logLevelFrom(env: Readonly<Record<string, string | undefined>>): LogLevel {
  const raw = (env['POWERTOOLS_LOG_LEVEL'] || env['LOG_LEVEL'] || 'INFO').toUpperCase();
  if (!(LOG_LEVELS as readonly string[]).includes(raw)) {
    throw new Error(`invalid log level ${JSON.stringify(raw)} (POWERTOOLS_LOG_LEVEL / LOG_LEVEL)`);
  }
  return raw as LogLevel;
}

export interface ObservabilityOptions {
  /** The `service` key of every log line and trace segment. */
  readonly service: string;
  /** Namespace of the metrics this function emits. @default - the function emits no metrics */
  readonly namespace?: string;
  /** @default process.env */
  readonly env?: Readonly<Record<string, string | undefined>>;
}

/** Builds the function's logger and metrics; call once per cold start. */
export function createObservability(options: ObservabilityOptions): Observability {
  const env = options.env ?? process.env;
  const logger = new Logger({ serviceName: options.service, logLevel: logLevelFrom(env) });
  const metrics = new Metrics({ namespace: options.namespace ?? 'Bulwark', serviceName: options.service });
  // Powertools adds a `service` dimension to every metric by default; the alarms watch the exact
  // dimension sets each function has always emitted, so the metrics carry only their own.
  metrics.clearDefaultDimensions();
  return { logger, metrics };
}

/**
 * Wraps a handler so that every log line of the invocation carries the Lambda request id (and cold
 * start, function name), plus the correlation ids `correlate` reads from the event (an API
 * Gateway request id, an organisation id), and none of them leaks into the next invocation.
 */
export function observed<E, R>(
  logger: Logger,
  handler: (event: E, context: Context) => Promise<R>,
  correlate: (event: E) => LogFields = () => ({}),
): (event: E, context: Context) => Promise<R> {
  return async (event, context) => {
    logger.addContext(context);
    logger.appendKeys({ ...correlate(event) });
    try {
      return await handler(event, context);
    } finally {
      logger.resetKeys();
    }
  };
}
