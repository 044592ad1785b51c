/**
 * X-Ray tracing of a function's AWS SDK calls (Powertools Tracer). Its own module, so a function
 * that makes no AWS call (the authorizer) does not bundle the X-Ray SDK. Outside Lambda, and when
 * the function's tracing is off, the clients are returned unwrapped.
 */
import { Tracer } from '@aws-lambda-powertools/tracer';

/** The function's tracer: wrap each AWS SDK client with `tracer.captureAWSv3Client(client)`. */
export function createTracer(service: string): Tracer {
  return new Tracer({ serviceName: service });
}
