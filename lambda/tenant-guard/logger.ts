/**
 * What the tenant API logs through: the subset of Powertools for AWS Lambda's `Logger`
 * (`logger.error(message, attributes)`) it uses, so a handler passes its Powertools logger and a
 * test passes a recording one. Rest parameters, as Powertools declares them (an optional second
 * parameter would not accept its signature).
 */
export interface ApiLogger {
  error(message: string, ...attributes: Record<string, unknown>[]): void;
  warn(message: string, ...attributes: Record<string, unknown>[]): void;
}

/** An error's name, message, stack and driver code: never its other properties (a driver error's
 * `detail` may quote row values). */
export function describeError(e: unknown): Record<string, unknown> {
  if (!(e instanceof Error)) return { name: typeof e, message: String(e) };
  const code = (e as { code?: unknown }).code;
  return { name: e.name, message: e.message, stack: e.stack, ...(typeof code === 'string' ? { code } : {}) };
}
