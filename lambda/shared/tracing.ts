/**
 * X-Ray subsegments for a function's AWS SDK calls, sent to the X-Ray daemon Lambda runs beside the
 * function, without the X-Ray SDK. Powertools Tracer's `captureAWSv3Client` added the X-Ray SDK
 * (`aws-xray-sdk-core` with `cls-hooked`: ~118 KB and ~40-60 ms of module init in every function that
 * called AWS) for this one job; this module does the same job in a client middleware:
 *
 * - one subsegment per SDK call (all its retries), named by the service (`KMS`, `S3`, ...), namespace
 *   `aws`, with the operation, region, request id, retries and HTTP status; `throttle`, `error` (4xx)
 *   or `fault` (5xx, or no response) flags, and on failure the error's class only (never its message,
 *   which can quote data; as the logs do);
 * - the call carries `X-Amzn-Trace-Id: Root=...;Parent=<subsegment>;Sampled=...`, so a service that
 *   traces (Lambda invoking the provisioner) joins the same trace;
 * - under the function's own segment, which Lambda records (active tracing) and names in the trace
 *   header it gives each invocation; nothing is sent for an unsampled invocation, nor outside Lambda
 *   (tests), nor with `POWERTOOLS_TRACE_ENABLED=false`.
 *
 * What the X-Ray SDK did and this does not: service-specific request parameters (its whitelist, e.g.
 * a KMS key id) and the error message and stack in `cause`.
 */
import { randomBytes } from 'node:crypto';
import { createSocket, type Socket } from 'node:dgram';

/** The part of an AWS SDK v3 client the tracer touches. */
export interface TraceableClient {
  readonly config: { region: unknown };
  readonly middlewareStack: {
    add(middleware: never, options: { step: 'build'; name: string; override?: boolean }): void;
    remove(name: string): boolean;
  };
}

export interface Tracer {
  /** Traces every call the client makes (idempotent); returns the same client. */
  captureAWSv3Client<T extends TraceableClient>(client: T): T;
}

/** A subsegment document, as the X-Ray daemon receives it. */
export interface SdkCallSubsegment {
  readonly id: string;
  readonly name: string;
  readonly type: 'subsegment';
  readonly trace_id: string;
  readonly parent_id: string;
  readonly start_time: number;
  readonly end_time: number;
  readonly namespace: 'aws';
  readonly aws: {
    readonly operation: string;
    readonly region?: string;
    readonly request_id?: string;
    readonly retries: number;
  };
  readonly http?: { readonly response: { readonly status: number } };
  readonly throttle?: true;
  readonly error?: true;
  readonly fault?: true;
  readonly cause?: { readonly exceptions: readonly { readonly id: string; readonly type: string }[] };
}

export interface TracerOptions {
  /** @default process.env */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /**
   * The invocation's trace header (`Root=...;Parent=...;Sampled=...`).
   * @default - the runtime's: its invoke store, else `_X_AMZN_TRACE_ID`
   */
  readonly traceHeader?: () => string | undefined;
  /** Where subsegments go. @default - UDP to `AWS_XRAY_DAEMON_ADDRESS` */
  readonly emit?: (subsegment: SdkCallSubsegment) => void;
  /** Milliseconds since the epoch. @default Date.now */
  readonly clock?: () => number;
}

const MIDDLEWARE = 'BulwarkXRaySubsegment';
const PROTOCOL_HEADER = '{"format":"json","version":1}\n';
const THROTTLING = /Throttl|TooManyRequests|RequestLimitExceeded|SlowDown|RequestThrottled|LimitExceeded$/;

/** The runtime's trace header for the current invocation (Node.js 24 keeps it in its invoke store). */
function runtimeTraceHeader(env: Readonly<Record<string, string | undefined>>): string | undefined {
  const store = (globalThis as { awslambda?: { InvokeStore?: { getXRayTraceId(): string | undefined } } }).awslambda
    ?.InvokeStore;
  return store?.getXRayTraceId() ?? env['_X_AMZN_TRACE_ID'];
}

/** `Root=...;Parent=...;Sampled=1` as a map. */
export function parseTraceHeader(header: string | undefined): Record<string, string> {
  const fields: Record<string, string> = {};
  for (const part of (header ?? '').split(';')) {
    const i = part.indexOf('=');
    if (i > 0) fields[part.slice(0, i).trim()] = part.slice(i + 1).trim();
  }
  return fields;
}

/** The daemon's UDP address: `host:port`, or `tcp:host:port udp:host:port`. */
export function daemonAddress(value: string | undefined): { host: string; port: number } {
  const udp = (value ?? '').split(/\s+/).find((p) => p.startsWith('udp:')) ?? value ?? '';
  const m = /^(?:udp:)?([^\s:]+):(\d+)$/.exec(udp);
  return m ? { host: m[1] as string, port: Number(m[2]) } : { host: '127.0.0.1', port: 2000 };
}

function udpEmitter(env: Readonly<Record<string, string | undefined>>): (s: SdkCallSubsegment) => void {
  let socket: Socket | undefined;
  return (s) => {
    const { host, port } = daemonAddress(env['AWS_XRAY_DAEMON_ADDRESS']);
    if (!socket) {
      socket = createSocket('udp4');
      // Never keeps the process alive, never fails the call it traces.
      socket.unref();
      socket.on('error', () => undefined);
    }
    socket.send(`${PROTOCOL_HEADER}${JSON.stringify(s)}`, port, host);
  };
}

interface CallMetadata {
  readonly httpStatusCode?: number;
  readonly requestId?: string;
  readonly attempts?: number;
}

/** The function's tracer: wrap each AWS SDK client with `tracer.captureAWSv3Client(client)`. */
export function createTracer(options: TracerOptions = {}): Tracer {
  const env = options.env ?? process.env;
  const enabled =
    env['POWERTOOLS_TRACE_ENABLED']?.toLowerCase() !== 'false' &&
    env['AWS_LAMBDA_FUNCTION_NAME'] !== undefined &&
    env['AWS_SAM_LOCAL'] === undefined;
  const traceHeader = options.traceHeader ?? (() => runtimeTraceHeader(env));
  const clock = options.clock ?? Date.now;
  let emit = options.emit;

  return {
    captureAWSv3Client(client) {
      if (!enabled) return client;
      const middleware =
        (
          next: (args: unknown) => Promise<{ output?: { $metadata?: CallMetadata } }>,
          context: Record<string, unknown>,
        ) =>
        async (args: { request?: { headers?: Record<string, string> } }) => {
          const trace = parseTraceHeader(traceHeader());
          const root = trace['Root'];
          const parent = trace['Parent'];
          if (!root || !parent) return next(args);
          const id = randomBytes(8).toString('hex');
          const sampled = trace['Sampled'] === '1';
          if (args.request?.headers) {
            args.request.headers['X-Amzn-Trace-Id'] = `Root=${root};Parent=${id};Sampled=${sampled ? '1' : '0'}`;
          }
          const start = clock();
          let metadata: CallMetadata | undefined;
          let failure: unknown;
          try {
            const res = await next(args);
            metadata = res.output?.$metadata;
            return res;
          } catch (e) {
            failure = e;
            metadata = (e as { $metadata?: CallMetadata } | null)?.$metadata;
            throw e;
          } finally {
            if (sampled) {
              const end = clock();
              const status = metadata?.httpStatusCode;
              const name =
                typeof (failure as { name?: unknown })?.name === 'string' ? (failure as Error).name : 'Error';
              const command = String(context['commandName'] ?? 'UnknownCommand').replace(/Command$/, '');
              let region: string | undefined;
              try {
                const r = (client.config.region as () => Promise<string> | string)();
                region = typeof r === 'string' ? r : await r;
              } catch {
                region = undefined;
              }
              const doc: SdkCallSubsegment = {
                id,
                name: String(context['clientName'] ?? 'AWS').replace(/Client$/, ''),
                type: 'subsegment',
                trace_id: root,
                parent_id: parent,
                start_time: start / 1000,
                end_time: end / 1000,
                namespace: 'aws',
                aws: {
                  operation: command,
                  ...(region ? { region } : {}),
                  ...(metadata?.requestId ? { request_id: metadata.requestId } : {}),
                  retries: Math.max(0, (metadata?.attempts ?? 1) - 1),
                },
                ...(status ? { http: { response: { status } } } : {}),
                ...(failure !== undefined && (status === 429 || THROTTLING.test(name))
                  ? { throttle: true as const }
                  : {}),
                ...(failure !== undefined && status !== undefined && status >= 400 && status < 500
                  ? { error: true as const }
                  : {}),
                ...(failure !== undefined && (status === undefined || status >= 500) ? { fault: true as const } : {}),
                ...(failure !== undefined
                  ? { cause: { exceptions: [{ id: randomBytes(8).toString('hex'), type: name }] } }
                  : {}),
              };
              try {
                (emit ??= udpEmitter(env))(doc);
              } catch {
                // Tracing never fails the call.
              }
            }
          }
        };
      client.middlewareStack.remove(MIDDLEWARE);
      client.middlewareStack.add(middleware as never, { step: 'build', name: MIDDLEWARE, override: true });
      return client;
    },
  };
}
