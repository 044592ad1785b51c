/**
 * Export limits, in a module of constants only, so the CDK app (bucket lifecycle) reads them without
 * loading the S3 client and presigner at synth.
 */

/** The longest a download link may live. */
export const MAX_URL_TTL_SECONDS = 900;
/** Exports older than this are gone (the bucket lifecycle expires them too). */
export const EXPORT_RETENTION_DAYS = 7;
