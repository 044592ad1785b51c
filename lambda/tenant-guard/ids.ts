/**
 * Identifier shapes shared by the guard, the token verifier and the routes. A module of its own so
 * that guard.ts and jwt.ts need not import each other.
 */
export const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
