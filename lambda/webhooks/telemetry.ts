/**
 * Metrics as CloudWatch Embedded Metric Format log lines (no API call, no extra latency) and
 * structured JSON logs. Neither ever carries a body, signature, key or secret: log fields are
 * chosen by the handler from a fixed set, never copied from the request.
 */
import { WEBHOOK_METRICS, type Provider } from '../../contracts/webhooks';

/** `accepted`, `duplicate`, `unverified_accepted` or a WebhookErrorCode. */
export type WebhookOutcome = string;

export interface WebhookMetrics {
  count(provider: Provider | 'unknown', outcome: WebhookOutcome, latencyMs: number): void;
}

export type LineWriter = (line: string) => void;

const stdout: LineWriter = (line) => {
  process.stdout.write(`${line}\n`);
};

export class EmfMetrics implements WebhookMetrics {
  constructor(
    private readonly write: LineWriter = stdout,
    private readonly clock: () => number = Date.now,
  ) {}

  count(provider: Provider | 'unknown', outcome: WebhookOutcome, latencyMs: number): void {
    this.write(
      JSON.stringify({
        _aws: {
          Timestamp: this.clock(),
          CloudWatchMetrics: [
            {
              Namespace: WEBHOOK_METRICS.namespace,
              // [Outcome] lets one alarm watch a refusal code across providers.
              Dimensions: [['Provider', 'Outcome'], ['Provider'], ['Outcome']],
              Metrics: [
                { Name: 'Requests', Unit: 'Count' },
                { Name: 'Latency', Unit: 'Milliseconds' },
              ],
            },
          ],
        },
        Provider: provider,
        Outcome: outcome,
        Requests: 1,
        Latency: latencyMs,
      }),
    );
  }
}

export type LogLevel = 'info' | 'warn' | 'error';
/** Only scalar fields: there is no way to hand the logger a body or a headers object. */
export type LogFields = Readonly<Record<string, string | number | boolean | null | undefined>>;

export interface Logger {
  log(level: LogLevel, message: string, fields?: LogFields): void;
}

export class JsonLogger implements Logger {
  constructor(
    private readonly write: LineWriter = stdout,
    private readonly clock: () => number = Date.now,
  ) {}

  log(level: LogLevel, message: string, fields: LogFields = {}): void {
    this.write(
      JSON.stringify({ level, time: new Date(this.clock()).toISOString(), service: 'webhooks', message, ...fields }),
    );
  }
}
