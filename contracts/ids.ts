/** Identifier formats both sides check. */

/**
 * A UUID in either case. Organisation ids, grant ids and row ids are UUIDs: anything else could
 * escape a key alias prefix, a policy condition or a path segment. Compare after lower-casing.
 */
export const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
