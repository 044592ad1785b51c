/**
 * Canonical JSON: one byte sequence per value, so a hash over it is stable across processes,
 * PostgreSQL `jsonb` round trips and archive copies. Object keys are sorted by UTF-16 code unit,
 * no whitespace, `undefined` members dropped (as JSON does), non-finite numbers refused.
 */
export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

export function canonicalJson(value: unknown): string {
  if (value === null) return 'null';
  switch (typeof value) {
    case 'boolean':
      return value ? 'true' : 'false';
    case 'number':
      if (!Number.isFinite(value)) throw new TypeError('canonical JSON cannot hold a non-finite number');
      return JSON.stringify(value);
    case 'string':
      return JSON.stringify(value);
    case 'object': {
      if (Array.isArray(value)) {
        return `[${value.map((v) => (v === undefined ? 'null' : canonicalJson(v))).join(',')}]`;
      }
      const obj = value as Record<string, unknown>;
      const keys = Object.keys(obj)
        .filter((k) => obj[k] !== undefined)
        .sort();
      return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(obj[k])}`).join(',')}}`;
    }
    default:
      throw new TypeError(`canonical JSON cannot hold a ${typeof value}`);
  }
}

/**
 * Metadata as it will read back from `jsonb`: what `JSON.stringify` keeps (Dates become ISO
 * strings, `undefined` members vanish). Hashing the normalised form is what makes a row read back
 * from PostgreSQL hash to the value computed before the insert.
 */
export function normaliseMetadata(metadata: Readonly<Record<string, unknown>>): Record<string, JsonValue> {
  const text = JSON.stringify(metadata ?? {});
  const parsed: unknown = JSON.parse(text);
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new TypeError('audit metadata must be a JSON object');
  }
  if (text.includes('\\u0000')) throw new TypeError('audit metadata must not contain NUL characters');
  return parsed as Record<string, JsonValue>;
}
