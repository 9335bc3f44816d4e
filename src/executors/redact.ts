/**
 * Streaming secret redaction for worker logs. Pure: no I/O.
 *
 * Matching is leftmost-first, longest-first at a position, so overlapping secrets (`abcd` and `abc`)
 * redact the most text. A secret split across `push` calls is still caught: when the text pushed so far
 * ends with the beginning of a secret (at most `maxLen - 1` characters, maxLen = the longest secret),
 * that end is held back until more text arrives or `flush` is called; other text is emitted at once.
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
    // Positions whose rest of the buffer is an unfinished secret: the next push may complete it.
    const pending = final ? [] : pendingStarts(buffer);
    const next = needles.map((n) => buffer.indexOf(n));
    let out = '';
    let plainStart = 0;
    let p = 0;
    for (;;) {
      while (p < pending.length && pending[p]! < plainStart) p++;
      const firstPending = pending[p] ?? buffer.length;
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
      // A match is final only when no unfinished secret starts at or before it (leftmost, then longest, wins).
      if (best < 0 || bestPos >= firstPending) break;
      out += buffer.slice(plainStart, bestPos) + REDACTED;
      plainStart = bestPos + needles[best]!.length;
    }
    while (p < pending.length && pending[p]! < plainStart) p++;
    let cut = pending[p] ?? buffer.length;
    // Never split a surrogate pair between two outputs: each output must be valid text on its own.
    if (cut > plainStart && cut < buffer.length && isHighSurrogate(buffer.charCodeAt(cut - 1))) cut--;
    out += buffer.slice(plainStart, cut);
    carry = buffer.slice(cut);
    return out;
  }

  /** Ascending positions p where `buffer.slice(p)` is a proper prefix of some secret. */
  function pendingStarts(buffer: string): number[] {
    const starts: number[] = [];
    for (let p = Math.max(0, buffer.length - holdBack); p < buffer.length; p++) {
      const rest = buffer.slice(p);
      if (needles.some((n) => n.length > rest.length && n.startsWith(rest))) starts.push(p);
    }
    return starts;
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
