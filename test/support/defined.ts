/**
 * `value`, or a failure naming what was missing. Narrowing for test code: where `value!` would
 * turn a missing value into a TypeError far from its cause, this fails at the cause and says so.
 */
export function defined<T>(value: T, what = 'a value'): NonNullable<T> {
  if (value === undefined || value === null) throw new Error(`expected ${what}, got ${String(value)}`);
  return value as NonNullable<T>;
}
