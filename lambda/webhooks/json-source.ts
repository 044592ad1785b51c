/**
 * The source text of a JSON member, for the one place where its spelling matters: JSON.parse turns
 * `1.79e9`, `1790000000.0` and `1790000000` into the same number, and a signed timestamp must be the
 * last of these only (docs/webhooks.md "Timestamps"). One pass over the top level, skipping strings
 * with indexOf: it runs on every verified HMAC event.
 */

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COMMA = 0x2c;

function isWhitespace(c: number): boolean {
  return c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d;
}

function skipWhitespace(text: string, i: number): number {
  while (i < text.length && isWhitespace(text.charCodeAt(i))) i++;
  return i;
}

/** Index just past the string literal starting at `i` (a '"'). */
function stringEnd(text: string, i: number): number {
  let from = i + 1;
  for (;;) {
    const q = text.indexOf('"', from);
    if (q < 0) return text.length;
    let k = q - 1;
    while (text.charCodeAt(k) === BACKSLASH) k--;
    // An even run of backslashes before the quote escapes only themselves: the string ends here.
    if ((q - 1 - k) % 2 === 0) return q + 1;
    from = q + 1;
  }
}

/** Index just past the JSON value starting at `i`. */
function valueEnd(text: string, i: number): number {
  const c = text.charCodeAt(i);
  if (c === QUOTE) return stringEnd(text, i);
  if (c === 0x7b || c === 0x5b) {
    // '{' or '[': to the matching close, skipping strings (which may contain brackets).
    let depth = 0;
    let j = i;
    while (j < text.length) {
      const d = text.charCodeAt(j);
      if (d === QUOTE) {
        j = stringEnd(text, j);
        continue;
      }
      if (d === 0x7b || d === 0x5b) depth++;
      else if (d === 0x7d || d === 0x5d) depth--;
      j++;
      if (depth === 0) return j;
    }
    return j;
  }
  // A number or a literal: runs to the next separator.
  let j = i;
  for (; j < text.length; j++) {
    const d = text.charCodeAt(j);
    if (d === COMMA || d === 0x7d || d === 0x5d || isWhitespace(d)) break;
  }
  return j;
}

/**
 * The source text of the top-level member `name` of the JSON object `text` (the last one if repeated,
 * as JSON.parse keeps), or undefined. `text` must already have parsed as JSON.
 */
export function memberSource(text: string, name: string): string | undefined {
  let i = skipWhitespace(text, 0);
  if (text.charCodeAt(i) !== 0x7b) return undefined;
  let found: string | undefined;
  i = skipWhitespace(text, i + 1);
  while (i < text.length && text.charCodeAt(i) === QUOTE) {
    const keyEnd = stringEnd(text, i);
    const raw = text.slice(i + 1, keyEnd - 1);
    // Member names may be escaped ("time\u0073tamp"); compare them as JSON.parse reads them.
    const key = raw.includes('\\') ? (JSON.parse(text.slice(i, keyEnd)) as string) : raw;
    const start = skipWhitespace(text, skipWhitespace(text, keyEnd) + 1); // past ':'
    const end = valueEnd(text, start);
    if (key === name) found = text.slice(start, end);
    i = skipWhitespace(text, end);
    if (text.charCodeAt(i) !== COMMA) break;
    i = skipWhitespace(text, i + 1);
  }
  return found;
}
