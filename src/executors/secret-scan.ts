/**
 * Which secrets a text or a file holds, in any form the redactor knows (redact.ts, secret-forms.ts: as
 * is, base64, hex, URL-encoded, each wrapped across lines). Pure: no I/O. Used where a secret must not be
 * kept at all rather than redacted (a file in a patch), so it answers with the secrets' names only.
 */
import { StringDecoder } from 'node:string_decoder';
import { createRedactor } from './redact.js';

/** Bytes decoded and scanned per step, so that a large file is never one huge string. */
const CHUNK_BYTES = 1024 * 1024;

/**
 * The names (sorted) of the secrets whose value `content` holds. Bytes are read as UTF-8 (an invalid
 * sequence becomes U+FFFD, which no form contains, so the text around it is still matched).
 */
export function secretsIn(content: Uint8Array | string, secrets: Readonly<Record<string, string>>): string[] {
  const scanners = Object.entries(secrets).map(([name, value]) => ({ name, redactor: createRedactor([value]) }));
  if (scanners.length === 0) return [];
  const push = (text: string) => {
    for (const s of scanners) s.redactor.push(text);
  };
  if (typeof content === 'string') push(content);
  else {
    const decoder = new StringDecoder('utf8');
    for (let at = 0; at < content.byteLength; at += CHUNK_BYTES)
      push(decoder.write(Buffer.from(content.buffer, content.byteOffset + at, Math.min(CHUNK_BYTES, content.byteLength - at))));
    push(decoder.end());
  }
  for (const s of scanners) s.redactor.flush();
  return scanners
    .filter((s) => s.redactor.matches > 0)
    .map((s) => s.name)
    .sort();
}
