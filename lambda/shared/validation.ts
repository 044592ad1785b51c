/**
 * zod/mini with zod's English messages. zod/mini loads no locale (every issue would read "Invalid
 * input"); the full `zod` loads all of them (~258 KB of every bundle). This loads English only
 * (~5 KB), once per process, for every schema in the bundle: whoever reports an issue's message
 * goes through `issueList`, so the messages are configured before any is read.
 */
import * as z from 'zod/mini';
import { en } from 'zod/locales';

z.config(en());

/** `path: message` per issue (names and zod's reason, never the value). */
export function issueList(error: { readonly issues: readonly z.core.$ZodIssue[] }): string[] {
  return error.issues.map((i) => `${i.path.map(String).join('.')}: ${i.message}`);
}
