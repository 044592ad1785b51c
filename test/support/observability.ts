/**
 * Recording fakes of the handlers' logger and metrics (lambda/shared/observability.ts). Each entry
 * is also written as one JSON line (the log line, or the Embedded Metric Format document Powertools
 * would print), so tests can search everything the function would have written for a secret.
 */
import type { Context } from 'aws-lambda';
import type { Log, LogFields, MetricsRecorder } from '../../lambda/shared/observability';

export interface LogEntry {
  readonly level: 'debug' | 'info' | 'warn' | 'error';
  readonly message: string;
  readonly fields: LogFields;
}

type Write = (line: string) => void;

export class RecordingLog implements Log {
  readonly entries: LogEntry[] = [];
  constructor(private readonly write: Write = () => undefined) {}
  private add(level: LogEntry['level'], message: string, all: LogFields[]): void {
    const fields: LogFields = Object.assign({}, ...all);
    this.entries.push({ level, message, fields });
    this.write(JSON.stringify({ level, message, ...fields }));
  }
  debug(message: string, ...fields: LogFields[]): void {
    this.add('debug', message, fields);
  }
  info(message: string, ...fields: LogFields[]): void {
    this.add('info', message, fields);
  }
  warn(message: string, ...fields: LogFields[]): void {
    this.add('warn', message, fields);
  }
  error(message: string, ...fields: LogFields[]): void {
    this.add('error', message, fields);
  }
}

/** One published record: its dimensions, and metric values and units. */
export interface PublishedMetrics {
  readonly dimensions: Readonly<Record<string, string>>;
  readonly values: Readonly<Record<string, number>>;
  readonly units: Readonly<Record<string, string>>;
  readonly timestamp: number | undefined;
}

/** Follows Powertools Metrics with no default dimensions (as createObservability builds it). */
export class RecordingMetrics implements MetricsRecorder {
  readonly published: PublishedMetrics[] = [];
  private dimensions: Record<string, string> = {};
  private values: Record<string, number> = {};
  private units: Record<string, string> = {};
  private timestamp: number | undefined;

  constructor(private readonly write: Write = () => undefined) {}

  addDimension(name: string, value: string): void {
    this.dimensions[name] = value;
  }
  addMetric(name: string, unit: string, value: number): void {
    this.values[name] = value;
    this.units[name] = unit;
  }
  setTimestamp(timestamp: number | Date): void {
    this.timestamp = timestamp instanceof Date ? timestamp.getTime() : timestamp;
  }
  publishStoredMetrics(): void {
    const dimensions = this.dimensions;
    const entry = { dimensions, values: this.values, units: this.units, timestamp: this.timestamp };
    this.published.push(entry);
    this.write(
      JSON.stringify({
        _aws: {
          Timestamp: this.timestamp,
          CloudWatchMetrics: [
            {
              Dimensions: [Object.keys(dimensions)],
              Metrics: Object.entries(this.units).map(([Name, Unit]) => ({ Name, Unit })),
            },
          ],
        },
        ...dimensions,
        ...this.values,
      }),
    );
    this.dimensions = {};
    this.values = {};
    this.units = {};
  }
}

/** The Lambda context an invocation receives (what Powertools Logger reads for correlation). */
export function lambdaContext(awsRequestId = 'c6af9ac6-7b61-11e6-9a41-93e812345678'): Context {
  return {
    awsRequestId,
    functionName: 'bulwark-test',
    functionVersion: '$LATEST',
    invokedFunctionArn: 'arn:aws:lambda:eu-west-1:111111111111:function:bulwark-test',
    memoryLimitInMB: '256',
    logGroupName: '/aws/lambda/bulwark-test',
    logStreamName: '2026/12/02/[$LATEST]0123456789abcdef',
    callbackWaitsForEmptyEventLoop: true,
    getRemainingTimeInMillis: () => 30_000,
    done: () => undefined,
    fail: () => undefined,
    succeed: () => undefined,
  };
}
