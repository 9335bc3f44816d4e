import { AgoraError } from '../errors.js';

/**
 * The names a ref read or update is given: full ref names under `refs/` (git-check-ref-format's rules)
 * and full SHA-1 object ids, checked before any file is touched.
 */

const OID_RE = /^[0-9a-f]{40}$/;

/** True when `oid` is a full, lower-case SHA-1 object id. */
export function isOid(oid: string): boolean {
  return OID_RE.test(oid);
}

/**
 * Checks `ref` against git's ref-name rules (git-check-ref-format) restricted to names under `refs/`.
 * Throws AgoraError('ref-invalid') naming the ref and the broken rule.
 */
export function assertRefName(ref: string): void {
  const problem = refNameProblem(ref);
  if (problem) {
    throw new AgoraError('ref-invalid', `ref name "${ref}" is not valid: ${problem}`, 'use a full ref name such as refs/agora/runs/<run>');
  }
}

/** Whether `ref` is a ref name Agora accepts (see {@link assertRefName}). */
export function isRefName(ref: string): boolean {
  return refNameProblem(ref) === null;
}

function refNameProblem(ref: string): string | null {
  if (!ref.startsWith('refs/')) return 'it must start with refs/';
  if (ref.endsWith('/')) return 'it must not end with /';
  if (ref.endsWith('.')) return 'it must not end with .';
  if (ref.includes('..')) return 'it must not contain ..';
  if (ref.includes('@{')) return 'it must not contain @{';
  // eslint-disable-next-line no-control-regex
  if (/[\x00-\x20\x7f~^:?*[\\]/.test(ref)) return 'it must not contain spaces, control characters or any of ~ ^ : ? * [ \\';
  for (const part of ref.split('/')) {
    if (part === '') return 'it must not contain an empty component (//)';
    if (part.startsWith('.')) return `component "${part}" must not start with .`;
    if (part.endsWith('.lock')) return `component "${part}" must not end with .lock`;
  }
  return null;
}

export function assertOid(oid: string, what: string): void {
  if (!isOid(oid)) throw new AgoraError('oid-invalid', `${what} "${oid}" is not a 40-character hexadecimal object id`);
}
