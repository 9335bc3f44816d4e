/**
 * Names in a plan that become parts of refs or file names are held to one conservative rule: ASCII
 * letters, digits, `.`, `_`, `-`, starting with a letter or digit, at most 100 characters, never
 * containing `..` and never ending in `.lock`.
 * - Run and item ids become git ref components (`refs/agora/patches/<run>/<item>`) and file names
 *   (`logs/<item>.<attempt>.log`, pidfiles).
 * - `needs` binding names become file names (the file `$AGORA_NEEDS` points the worker at).
 * Such a name is a single path component that is neither `.` nor `..`, so it can never lead out of the
 * directory it is joined to.
 */

const SAFE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/;

/** What an id (or binding name) may look like, for messages. */
export const ID_RULE = 'use 1–100 characters from A–Z a–z 0–9 . _ -, starting with a letter or digit, without ".." and not ending in ".lock"';

/** What a name is called in messages and why each part of the rule matters where it is used. */
interface NameUse {
  noun: string;
  characters: string;
  dots: string;
  lock: string;
}

const ID_USE: NameUse = {
  noun: 'id',
  characters: 'not allowed in a git ref component',
  dots: 'which git refuses in refs',
  lock: 'which git reserves',
};

const BINDING_USE: NameUse = {
  noun: 'binding name',
  characters: 'not allowed in a binding name (it becomes a file name)',
  dots: 'which could lead out of the directory its file is written to',
  lock: 'which is reserved (binding names follow the rule for ids)',
};

/** Why `name` breaks the rule, or undefined when it keeps it. The message says what is wrong and what is allowed. */
function safeNameProblem(name: string, use: NameUse): string | undefined {
  const { noun } = use;
  const shown = JSON.stringify(name);
  if (name.length === 0) return `${noun} is empty; ${ID_RULE}`;
  if (name.length > 100) return `${noun} is ${name.length} characters long, the limit is 100; ${ID_RULE}`;
  if (!/^[A-Za-z0-9]/.test(name)) return `${noun} ${shown} must start with a letter or digit; ${ID_RULE}`;
  const bad = [...new Set([...name].filter((c) => !/[A-Za-z0-9._-]/.test(c)))];
  if (bad.length > 0) {
    return `${noun} ${shown} contains ${bad.map((c) => JSON.stringify(c)).join(', ')}, ${use.characters}; ${ID_RULE}`;
  }
  if (name.includes('..')) return `${noun} ${shown} contains "..", ${use.dots}; ${ID_RULE}`;
  if (name.endsWith('.lock')) return `${noun} ${shown} ends in ".lock", ${use.lock}; ${ID_RULE}`;
  // Belt and braces: everything above must agree with the one-line rule.
  if (!SAFE_NAME.test(name)) return `${noun} ${shown} is not allowed; ${ID_RULE}`;
  return undefined;
}

/**
 * Why `id` is not safe as a git ref component, or undefined when it is. The message says what is wrong
 * and what is allowed.
 */
export function idProblem(id: string): string | undefined {
  return safeNameProblem(id, ID_USE);
}

/** True when `id` is safe as a git ref component (see {@link idProblem}). */
export function isSafeId(id: string): boolean {
  return idProblem(id) === undefined;
}

/**
 * Why a `needs` binding name is not safe as a file name, or undefined when it is. Binding names follow
 * the rule for ids.
 */
export function bindingNameProblem(name: string): string | undefined {
  return safeNameProblem(name, BINDING_USE);
}

/**
 * Why `runId` is not a run id Agora makes, or undefined when it is. A run is named by an id (the App's
 * `<plan id cut to 80>-<short sha>`) or by its plan's id and a number (`<plan id>-<n>`, the CLI), which
 * with a plan id of 100 characters is longer than an id may be. Either form is a single ref component.
 */
export function runIdProblem(runId: string): string | undefined {
  const numbered = /^(.+)-[1-9][0-9]*$/.exec(runId);
  if (numbered && idProblem(numbered[1]!) === undefined) return undefined;
  return idProblem(runId);
}
