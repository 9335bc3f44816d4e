import { InvalidInputError, type ErrorCode } from '../errors.js';
import { formatJsonPath, lineColumn, type PathSegment } from './path.js';

/**
 * Duplicate object keys in JSON text. RFC 8259 leaves `{"run": "a", "run": "b"}` to the parser: JSON.parse
 * keeps the last, other parsers the first or refuse, so one document can mean two things — a reviewer reads
 * the first `run` while the second executes; a verifier reads one `merkleRoot` and another tool the other.
 * Agora refuses such documents wherever a person or a signature vouches for the bytes (plans, audit
 * bundles, Sigstore bundles, signed statements).
 *
 * Keys are compared after unescaping (`"run"` and `"\u0072un"` are the same key), as every parser does.
 * The scan is iterative (no recursion: nesting depth cannot overflow the stack) and linear in the text.
 */

export interface DuplicateKey {
  /** The key, unescaped. */
  key: string;
  /** The path of the repeated member: the enclosing object's path, then the key. */
  segments: PathSegment[];
  /** `segments` formatted: `$.items[0].run`. */
  path: string;
  /** Where the key first appears and where it appears again (offsets in UTF-16 units, 1-based lines). */
  first: { offset: number; line: number; column: number };
  again: { offset: number; line: number; column: number };
}

type Frame = { kind: 'object'; keys: Map<string, number>; key: string | null; expectKey: boolean } | { kind: 'array'; index: number };

/** Index just after the string literal that opens at `start` (a `"`), or the text's end if unterminated. */
function stringEnd(text: string, start: number): number {
  let at = start + 1;
  for (;;) {
    const quote = text.indexOf('"', at);
    if (quote === -1) return text.length;
    let backslashes = 0;
    for (let k = quote - 1; k > start && text.charCodeAt(k) === 0x5c; k--) backslashes++;
    if (backslashes % 2 === 0) return quote + 1;
    at = quote + 1;
  }
}

function keyOf(literal: string): string {
  if (!literal.includes('\\')) return literal.slice(1, -1);
  try {
    return JSON.parse(literal) as string;
  } catch {
    return literal.slice(1, -1); // not valid JSON: the caller's JSON.parse reports it
  }
}

/**
 * The first duplicate key in `text` (in document order of the second occurrence), or undefined when every
 * object's keys are distinct. Meant for text JSON.parse accepts; on other text it returns a best effort and
 * never throws.
 */
export function findDuplicateKey(text: string): DuplicateKey | undefined {
  const stack: Frame[] = [];
  for (let i = 0; i < text.length;) {
    const c = text.charCodeAt(i);
    if (c === 0x22) {
      const end = stringEnd(text, i);
      const top = stack[stack.length - 1];
      if (top?.kind === 'object' && top.expectKey) {
        const key = keyOf(text.slice(i, end));
        const first = top.keys.get(key);
        if (first !== undefined) return duplicate(text, stack, key, first, i);
        top.keys.set(key, i);
        top.key = key;
        top.expectKey = false;
      }
      i = end;
      continue;
    }
    if (c === 0x7b) stack.push({ kind: 'object', keys: new Map(), key: null, expectKey: true });
    else if (c === 0x5b) stack.push({ kind: 'array', index: 0 });
    else if (c === 0x7d || c === 0x5d) stack.pop();
    else if (c === 0x2c) {
      const top = stack[stack.length - 1];
      if (top?.kind === 'object') top.expectKey = true;
      else if (top?.kind === 'array') top.index++;
    }
    i++;
  }
  return undefined;
}

function duplicate(text: string, stack: readonly Frame[], key: string, first: number, again: number): DuplicateKey {
  const segments: PathSegment[] = stack.slice(0, -1).map((f) => (f.kind === 'array' ? f.index : (f.key ?? '')));
  segments.push(key);
  return {
    key,
    segments,
    path: formatJsonPath(segments),
    first: { offset: first, ...lineColumn(text, first) },
    again: { offset: again, ...lineColumn(text, again) },
  };
}

/** What is wrong, for a problem at the duplicate's path. */
export function describeDuplicateKey(d: DuplicateKey): string {
  return (
    `the key ${JSON.stringify(d.key)} appears twice in one object (line ${d.first.line}, column ${d.first.column} ` +
    `and line ${d.again.line}, column ${d.again.column}); JSON parsers disagree on which one counts`
  );
}

/**
 * A document with a duplicate key: one line naming the source, the key's JSON path and the problem (also
 * the one entry of `problems`), and the fix (the hint).
 */
export class DuplicateKeyError extends InvalidInputError {
  override readonly name: string = 'DuplicateKeyError';
  constructor(
    code: ErrorCode,
    source: string,
    readonly duplicate: DuplicateKey,
    hint: string,
  ) {
    super(code, source, [{ path: duplicate.path, message: describeDuplicateKey(duplicate) }], hint);
    this.message = `${source}: ${duplicate.path}: ${describeDuplicateKey(duplicate)}`;
  }
}
