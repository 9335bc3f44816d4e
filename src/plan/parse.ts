/**
 * plan.json text → an unknown JSON value, with syntax errors located by line and column. The result
 * still has to go through validatePlan.
 */
import parseJson, { JSONError } from 'parse-json';
import { InvalidInputError } from '../errors.js';
import { pathBeyondDepth } from '../json/depth.js';
import { DuplicateKeyError, findDuplicateKey } from '../json/duplicate-keys.js';
import { formatJsonPath } from '../json/path.js';

/** The largest plan accepted, in bytes of UTF-8: 5 MiB. */
export const MAX_PLAN_BYTES = 5 * 1024 * 1024;

/**
 * InvalidInputError `plan-too-large`: `bytes` is over {@link MAX_PLAN_BYTES}. Thrown by parsePlanText, and
 * by readers that know a plan's size before reading it (the app checks the blob's header first).
 */
export function planTooLarge(bytes: number, source: string): InvalidInputError {
  const mib = (bytes / (1024 * 1024)).toFixed(1);
  return new InvalidInputError(
    'plan-too-large',
    source,
    [{ path: '$', message: `the plan is ${mib} MiB (${bytes} bytes); the limit is 5 MiB (${MAX_PLAN_BYTES} bytes)` }],
    'split the work into several smaller plans, or move large data out of `inputs` into files in the repository',
  );
}

/**
 * The deepest a plan may nest objects and arrays (the plan object is level 1; an item's `inputs` is level
 * 4): 64. A plan nested thousands deep validated and ran, then overflowed the stack of `orch audit`.
 */
export const MAX_PLAN_DEPTH = 64;

/**
 * Parses plan.json. `source` names the input in errors (a file path, `refs/agora/inbox/x`).
 * Throws InvalidInputError `plan-too-large` above {@link MAX_PLAN_BYTES} and `plan-not-json` for a syntax
 * error, with one problem at `$` saying what is wrong and where (`Unexpected token … at line 3, column 5`);
 * the hint shows the offending line. A key repeated in one object is DuplicateKeyError `plan-duplicate-key`
 * at that key's JSON path, the hint showing both lines. A value nested deeper than {@link MAX_PLAN_DEPTH}
 * levels is `plan-too-deep` at the path of the first such value.
 */
export function parsePlanText(text: string, source: string): unknown {
  const bytes = Buffer.byteLength(text, 'utf8');
  if (bytes > MAX_PLAN_BYTES) throw planTooLarge(bytes, source);
  // A UTF-8 byte order mark is harmless; JSON.parse would reject it.
  const body = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
  let value: unknown;
  try {
    value = parseJson(body);
  } catch (error) {
    if (!(error instanceof JSONError)) throw error;
    const cause = error.cause instanceof Error ? error.cause.message : error.message;
    const offset = syntaxErrorOffset(body) ?? body.length;
    const { line, column, lineText } = locate(body, offset);
    const where = `line ${line}, column ${column}`;
    throw new InvalidInputError(
      'plan-not-json',
      source,
      [{ path: '$', message: `${describeSyntaxError(body, cause)} at ${where}` }],
      `fix the JSON syntax at ${where} of ${source} (plan.json is one JSON object):\n${frame(lineText, line, column)}`,
    );
  }
  rejectDuplicateKeys(body, source);
  const deep = pathBeyondDepth(value, MAX_PLAN_DEPTH);
  if (deep !== undefined) {
    throw new InvalidInputError(
      'plan-too-deep',
      source,
      [{ path: deep, message: `nested deeper than ${MAX_PLAN_DEPTH} levels of objects and arrays; the limit is ${MAX_PLAN_DEPTH}` }],
      'flatten that value, or put deeply nested data in a file in the repository and pass its path in `inputs`',
    );
  }
  return value;
}

/**
 * A key given twice means two plans: JSON.parse (and so Agora) keeps the last, a reviewer or another tool
 * may read the first. Throws DuplicateKeyError `plan-duplicate-key` at the key's JSON path.
 */
function rejectDuplicateKeys(body: string, source: string): void {
  const dup = findDuplicateKey(body);
  if (!dup) return;
  const object = formatJsonPath(dup.segments.slice(0, -1));
  throw new DuplicateKeyError(
    'plan-duplicate-key',
    source,
    dup,
    `keep one ${JSON.stringify(dup.key)} at ${object} in ${source} and delete the other, so that what is reviewed is what runs:\n` +
      `${frame(lineOf(body, dup.first.offset), dup.first.line, dup.first.column)}\n${frame(lineOf(body, dup.again.offset), dup.again.line, dup.again.column)}`,
  );
}

function lineOf(text: string, offset: number): string {
  return locate(text, offset).lineText;
}

/** V8's message without its position or its echo of the input. */
function describeSyntaxError(body: string, message: string): string {
  if (body.trim() === '') return 'the plan is empty';
  return message
    .replace(/, ".*" is not valid JSON$/s, '')
    .replace(/ (in JSON )?at position \d+.*$/s, '')
    .replace(/ in JSON$/, '');
}

/** 1-based line and column (in UTF-16 units) of `offset`, and the text of that line. */
function locate(text: string, offset: number): { line: number; column: number; lineText: string } {
  let line = 1;
  let lineStart = 0;
  const end = Math.min(offset, text.length);
  for (let i = 0; i < end; i++) {
    if (text.charCodeAt(i) === 10) {
      line++;
      lineStart = i + 1;
    }
  }
  const lineEnd = text.indexOf('\n', lineStart);
  const lineText = text.slice(lineStart, lineEnd === -1 ? text.length : lineEnd).replace(/\r$/, '');
  return { line, column: end - lineStart + 1, lineText };
}

/** The offending line (at most ~100 characters of it, around the column) with a caret under the error. */
function frame(lineText: string, line: number, column: number): string {
  const start = Math.max(0, column - 60);
  const shown = lineText.slice(start, start + 100).replace(/\t/g, ' ');
  const prefix = `  ${line} | `;
  return `${prefix}${shown}\n${' '.repeat(prefix.length + column - 1 - start)}^`;
}

/**
 * The offset of the first character that makes `s` invalid JSON (RFC 8259), or undefined when it is
 * valid. Iterative, so deep nesting cannot overflow the stack. V8's messages do not always carry a
 * position; this always does.
 */
export function syntaxErrorOffset(s: string): number | undefined {
  let i = 0;
  const stack: Array<'{' | '['> = [];
  let want: 'value' | 'member' | 'after' = 'value';
  const skipWhitespace = () => {
    while (i < s.length && (s[i] === ' ' || s[i] === '\t' || s[i] === '\n' || s[i] === '\r')) i++;
  };
  const string = (): boolean => {
    i++; // opening quote
    while (i < s.length) {
      const c = s.charCodeAt(i);
      if (c === 34) {
        i++;
        return true;
      }
      if (c < 0x20) return false;
      if (c === 92) {
        const e = s[i + 1];
        if (e !== undefined && '"\\/bfnrt'.includes(e)) {
          i += 2;
          continue;
        }
        if (e === 'u') {
          i += 2;
          for (let k = 0; k < 4; k++, i++) if (!/[0-9a-fA-F]/.test(s[i] ?? '')) return false;
          continue;
        }
        i++;
        return false;
      }
      i++;
    }
    return false;
  };
  const scalar = (): boolean => {
    const c = s[i];
    if (c === '"') return string();
    for (const word of ['true', 'false', 'null']) {
      if (c === word[0]) {
        for (const ch of word) {
          if (s[i] !== ch) return false;
          i++;
        }
        return true;
      }
    }
    const number = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;
    number.lastIndex = i;
    const m = number.exec(s);
    if (!m || m[0] === '' || m[0] === '-') {
      if (m?.[0] === '-') i++;
      return false;
    }
    i += m[0].length;
    return true;
  };
  for (;;) {
    skipWhitespace();
    if (want === 'value') {
      const c = s[i];
      if (c === '{' || c === '[') {
        i++;
        skipWhitespace();
        const close = c === '{' ? '}' : ']';
        if (s[i] === close) {
          i++;
          want = 'after';
        } else {
          stack.push(c);
          want = c === '{' ? 'member' : 'value';
        }
        continue;
      }
      if (!scalar()) return i;
      want = 'after';
      continue;
    }
    if (want === 'member') {
      if (s[i] !== '"' || !string()) return i;
      skipWhitespace();
      if (s[i] !== ':') return i;
      i++;
      want = 'value';
      continue;
    }
    const top = stack[stack.length - 1];
    if (top === undefined) return i < s.length ? i : undefined;
    if (s[i] === ',') {
      i++;
      want = top === '{' ? 'member' : 'value';
    } else if (s[i] === (top === '{' ? '}' : ']')) {
      i++;
      stack.pop();
    } else {
      return i;
    }
  }
}
