/**
 * The source text of a JSON member, for the one place where its spelling matters: JSON.parse turns
 * `1.79e9`, `1790000000.0` and `1790000000` into the same number, and a signed timestamp must be the
 * last of these only (docs/webhooks.md "Timestamps").
 */

const WHITESPACE = new Set([' ', '\t', '\n', '\r']);

function skipWhitespace(text: string, i: number): number {
  while (i < text.length && WHITESPACE.has(text.charAt(i))) i++;
  return i;
}

/** Index just past the string literal starting at `i` (a '"'). */
function stringEnd(text: string, i: number): number {
  let j = i + 1;
  while (j < text.length && text.charAt(j) !== '"') j += text.charAt(j) === '\\' ? 2 : 1;
  return j + 1;
}

/** Index just past the JSON value starting at `i`. */
function valueEnd(text: string, i: number): number {
  const c = text.charAt(i);
  if (c === '"') return stringEnd(text, i);
  if (c === '{' || c === '[') {
    let depth = 0;
    let j = i;
    while (j < text.length) {
      const d = text.charAt(j);
      if (d === '"') {
        j = stringEnd(text, j);
        continue;
      }
      if (d === '{' || d === '[') depth++;
      else if (d === '}' || d === ']') depth--;
      j++;
      if (depth === 0) return j;
    }
    return j;
  }
  // A number or a literal: runs to the next separator.
  let j = i;
  while (j < text.length && !',}] \t\n\r'.includes(text.charAt(j))) j++;
  return j;
}

/**
 * The source text of the top-level member `name` of the JSON object `text` (the last one if repeated,
 * as JSON.parse keeps), or undefined. `text` must already have parsed as JSON.
 */
export function memberSource(text: string, name: string): string | undefined {
  let i = skipWhitespace(text, 0);
  if (text.charAt(i) !== '{') return undefined;
  let found: string | undefined;
  i = skipWhitespace(text, i + 1);
  while (i < text.length && text.charAt(i) === '"') {
    const keyEnd = stringEnd(text, i);
    // Member names may be escaped ("time\u0073tamp"); compare them as JSON.parse reads them.
    const key = JSON.parse(text.slice(i, keyEnd)) as string;
    const start = skipWhitespace(text, skipWhitespace(text, keyEnd) + 1); // past ':'
    const end = valueEnd(text, start);
    if (key === name) found = text.slice(start, end);
    i = skipWhitespace(text, end);
    if (text.charAt(i) !== ',') break;
    i = skipWhitespace(text, i + 1);
  }
  return found;
}
