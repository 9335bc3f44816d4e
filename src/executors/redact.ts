/**
 * Streaming secret redaction for worker logs and for every text made from them (reasons). Pure: no I/O.
 *
 * Each secret is looked for in its common forms (secret-forms.ts: as is, base64, hex, URL-encoded), and
 * each form also when one line break (`\n`, `\r\n` or `\r`) stands between any two of its characters, so
 * a value wrapped across lines at any point (by the worker, by `base64`'s 76 columns) is still caught.
 * The whole match, line breaks included, becomes `***`.
 *
 * Matching is leftmost-first, longest-first at a position, so overlapping secrets (`abcdefgh` and
 * `abcdefg`) redact the most text. A secret split across `push` calls is still caught: when the text
 * pushed so far ends with the beginning of a form (or of one wrapped across lines), that end is held
 * back until more text arrives or `flush` is called; other text is emitted at once. Pushing a text in any
 * number of pieces gives the same result as pushing it whole.
 *
 * This guards against accidents, not against a worker that means to leak a secret it holds: it can
 * always encode it some other way (docs/security.md).
 */
import { MIN_SECRET_LENGTH } from '../config/secrets.js';
import { secretForms } from './secret-forms.js';

/** What every secret value is replaced with. */
export const REDACTED = '***';

export { MIN_SECRET_LENGTH };

export interface Redactor {
  /** Redacts `text` appended to what came before; returns the part that is now safe to emit. */
  push(text: string): string;
  /** Redacts and returns whatever is still held back. The redactor can be reused afterwards. */
  flush(): string;
  /** How many matches were redacted so far (a secret found, in any of its forms). */
  readonly matches: number;
}

/** The buffer ended inside a possible match: more text decides. */
const UNFINISHED = -2;
const NO_MATCH = -1;

/**
 * Creates a redactor for the given secret values. Values shorter than MIN_SECRET_LENGTH are ignored
 * (the config refuses them before a worker starts; replacing every `ab1` would destroy the log).
 */
export function createRedactor(secrets: readonly string[]): Redactor {
  const forms = [...new Set(secrets.filter((s) => s.replace(/[\r\n]/g, '').length >= MIN_SECRET_LENGTH).flatMap((s) => secretForms(s, MIN_SECRET_LENGTH)))];
  if (forms.length === 0) return { push: (text) => text, flush: () => '', matches: 0 };
  // Longest first, so that at one position the longest form wins.
  forms.sort((a, b) => b.length - a.length);
  const byFirstChar = new Map<number, string[]>();
  for (const f of forms) byFirstChar.set(f.charCodeAt(0), [...(byFirstChar.get(f.charCodeAt(0)) ?? []), f]);
  let carry = '';
  let matches = 0;

  function scan(buffer: string, final: boolean): string {
    let out = '';
    let plainStart = 0;
    let hold = buffer.length;
    for (let pos = 0; pos < buffer.length; pos++) {
      const candidates = byFirstChar.get(buffer.charCodeAt(pos));
      if (!candidates) continue;
      let end = NO_MATCH;
      for (const form of candidates) {
        const r = matchEnd(buffer, pos, form);
        // The longest form that could still match here decides: wait for it, or take it.
        if (r === UNFINISHED && final) continue;
        if (r !== NO_MATCH) {
          end = r;
          break;
        }
      }
      if (end === UNFINISHED) {
        hold = pos;
        break;
      }
      if (end >= 0) {
        matches++;
        out += buffer.slice(plainStart, pos) + REDACTED;
        plainStart = end;
        pos = end - 1;
      }
    }
    let cut = Math.max(hold, plainStart);
    // Never split a surrogate pair between two outputs: each output must be valid text on its own.
    if (cut > plainStart && cut < buffer.length && isHighSurrogate(buffer.charCodeAt(cut - 1))) cut--;
    out += buffer.slice(plainStart, cut);
    carry = buffer.slice(cut);
    return out;
  }

  return {
    push: (text) => (text === '' ? '' : scan(carry + text, false)),
    flush: () => scan(carry, true),
    get matches() {
      return matches;
    },
  };
}

/** Redacts a whole text at once (a reason, a message) exactly as a log of that text would be. */
export function redactAll(text: string, secrets: readonly string[]): string {
  const r = createRedactor(secrets);
  return r.push(text) + r.flush();
}

/**
 * Where a match of `form` starting at `pos` ends (one line break allowed between any two characters),
 * NO_MATCH, or UNFINISHED when the buffer ends first.
 */
function matchEnd(buffer: string, pos: number, form: string): number {
  let i = pos;
  for (let k = 0; k < form.length; k++) {
    if (i === buffer.length) return UNFINISHED;
    let c = buffer.charCodeAt(i);
    if (k > 0 && (c === CR || c === LF)) {
      // `\r` as the buffer's last character may still become `\r\n`: then the check below waits.
      i += c === CR && buffer.charCodeAt(i + 1) === LF ? 2 : 1;
      if (i === buffer.length) return UNFINISHED;
      c = buffer.charCodeAt(i);
    }
    if (c !== form.charCodeAt(k)) return NO_MATCH;
    i++;
  }
  return i;
}

const CR = 13;
const LF = 10;

function isHighSurrogate(code: number): boolean {
  return code >= 0xd800 && code <= 0xdbff;
}
