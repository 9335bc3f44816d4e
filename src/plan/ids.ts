/**
 * Run and item ids become git ref components (`refs/agora/patches/<run>/<item>`), so they are held to a
 * conservative subset of what git allows: ASCII letters, digits, `.`, `_`, `-`, starting with a letter
 * or digit, at most 100 characters, never containing `..` and never ending in `.lock`.
 */

const SAFE_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/;

/** What an id may look like, for messages. */
export const ID_RULE =
  'use 1–100 characters from A–Z a–z 0–9 . _ -, starting with a letter or digit, without ".." and not ending in ".lock"';

/**
 * Why `id` is not safe as a git ref component, or undefined when it is. The message says what is wrong
 * and what is allowed.
 */
export function idProblem(id: string): string | undefined {
  if (id.length === 0) return `id is empty; ${ID_RULE}`;
  if (id.length > 100) return `id is ${id.length} characters long, the limit is 100; ${ID_RULE}`;
  if (!/^[A-Za-z0-9]/.test(id)) return `id ${JSON.stringify(id)} must start with a letter or digit; ${ID_RULE}`;
  const bad = [...new Set([...id].filter((c) => !/[A-Za-z0-9._-]/.test(c)))];
  if (bad.length > 0) {
    const shown = bad.map((c) => JSON.stringify(c)).join(', ');
    return `id ${JSON.stringify(id)} contains ${shown}, not allowed in a git ref component; ${ID_RULE}`;
  }
  if (id.includes('..')) return `id ${JSON.stringify(id)} contains "..", which git refuses in refs; ${ID_RULE}`;
  if (id.endsWith('.lock')) return `id ${JSON.stringify(id)} ends in ".lock", which git reserves; ${ID_RULE}`;
  // Belt and braces: everything above must agree with the one-line rule.
  if (!SAFE_ID.test(id)) return `id ${JSON.stringify(id)} is not allowed; ${ID_RULE}`;
  return undefined;
}

/** True when `id` is safe as a git ref component (see {@link idProblem}). */
export function isSafeId(id: string): boolean {
  return idProblem(id) === undefined;
}
