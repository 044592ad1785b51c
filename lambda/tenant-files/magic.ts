/**
 * The content type the first bytes of a file identify, for the declared types the file routes
 * accept (contracts/tenant-files.ts FILE_CONTENT_TYPES). The checker compares it with the declared
 * type; the database decides (migrations/0413). Only magic numbers: a file that starts right and
 * goes on as something else is the malware scanner's to find (docs/tenant-files.md).
 */
import type { FileContentType } from '../../contracts/tenant-files';

const ascii = (s: string): number[] => [...s].map((c) => c.charCodeAt(0));

/** Each type's signature: bytes at fixed offsets (`null` = any byte). */
const SIGNATURES: readonly { readonly type: FileContentType; readonly bytes: readonly (number | null)[] }[] = [
  { type: 'image/jpeg', bytes: [0xff, 0xd8, 0xff] },
  { type: 'image/png', bytes: [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a] },
  // RIFF <4 bytes of length> WEBP
  { type: 'image/webp', bytes: [...ascii('RIFF'), null, null, null, null, ...ascii('WEBP')] },
  { type: 'application/pdf', bytes: ascii('%PDF-') },
];

/** The longest signature: how many bytes `detectContentType` needs at most. */
export const MAGIC_LENGTH = Math.max(...SIGNATURES.map((s) => s.bytes.length));

/** The content type `head` (the first bytes of a file) starts with, or `undefined` for none of them. */
export function detectContentType(head: Uint8Array): FileContentType | undefined {
  return SIGNATURES.find((s) => head.length >= s.bytes.length && s.bytes.every((b, i) => b === null || head[i] === b))
    ?.type;
}
