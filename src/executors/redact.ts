/**
 * Streaming secret redaction for worker logs. Pure: no I/O.
 *
 * Matching is leftmost-first, longest-first at a position, so overlapping secrets (`abcd` and `abc`)
 * redact the most text. A secret split across `push` calls is still caught: the last `maxLen - 1`
 * characters (maxLen = the longest secret) are held back until more text arrives or `flush` is called.
 * Pushing a text in any number of pieces gives the same result as pushing it whole.
 */

/** What every secret value is replaced with. */
export const REDACTED = '***';

/** Shorter values are not redacted: replacing every `a` or `12` would destroy the log and hide nothing. */
export const MIN_SECRET_LENGTH = 3;

export interface Redactor {
  /** Redacts `text` appended to what came before; returns the part that is now safe to emit. */
  push(text: string): string;
  /** Redacts and returns whatever is still held back. The redactor can be reused afterwards. */
  flush(): string;
}

/** Creates a redactor for the given secret values (empty and too short values are ignored). */
export function createRedactor(secrets: readonly string[]): Redactor {
  const needles = [...new Set(secrets.filter((s) => s.length >= MIN_SECRET_LENGTH))].sort(
    (a, b) => b.length - a.length,
  );
  if (needles.length === 0) return { push: (text) => text, flush: () => '' };
  const holdBack = needles[0]!.length - 1;
  let carry = '';

  function scan(buffer: string, final: boolean): string {
    // Matches may only start before `limit`: beyond it a longer secret could still be completed by the next push.
    const limit = final ? buffer.length : buffer.length - holdBack;
    const next = needles.map((n) => buffer.indexOf(n));
    let out = '';
    let plainStart = 0;
    for (;;) {
      let best = -1;
      let bestPos = Infinity;
      for (let k = 0; k < needles.length; k++) {
        if (next[k]! >= 0 && next[k]! < plainStart) next[k] = buffer.indexOf(needles[k]!, plainStart);
        // Strict `<` keeps the longest needle on a tie: needles are sorted longest first.
        if (next[k]! >= 0 && next[k]! < bestPos) {
          best = k;
          bestPos = next[k]!;
        }
      }
      if (best < 0 || bestPos >= limit) break;
      out += buffer.slice(plainStart, bestPos) + REDACTED;
      plainStart = bestPos + needles[best]!.length;
    }
    let cut = final ? buffer.length : Math.max(plainStart, limit);
    // Never split a surrogate pair between two outputs: each output must be valid text on its own.
    if (cut > plainStart && cut < buffer.length && isHighSurrogate(buffer.charCodeAt(cut - 1))) cut--;
    out += buffer.slice(plainStart, cut);
    carry = buffer.slice(cut);
    return out;
  }

  return {
    push: (text) => (text === '' ? '' : scan(carry + text, false)),
    flush: () => scan(carry, true),
  };
}

/** Redacts a whole text at once. */
export function redactAll(text: string, secrets: readonly string[]): string {
  const r = createRedactor(secrets);
  return r.push(text) + r.flush();
}

function isHighSurrogate(code: number): boolean {
  return code >= 0xd800 && code <= 0xdbff;
}
