import { AgoraError } from '../errors.js';

/**
 * The refspecs Agora fetches with, built in one place. Each mirrors a remote ref (or every ref under a
 * prefix) into the same name, forced: for `refs/agora/*` and the branches it reads, the remote is the
 * source of truth and a local value is only a cache of it.
 */

/** `+<ref>:<ref>`: one ref, mirrored. */
export function mirrorRef(ref: string): string {
  assertPlainRef(ref, 'ref');
  return `+${ref}:${ref}`;
}

/** `+<prefix>*:<prefix>*`: every ref under `prefix` (which ends in `/`), mirrored. */
export function mirrorPrefix(prefix: string): string {
  assertPlainRef(prefix, 'ref prefix');
  if (!prefix.endsWith('/')) throw new AgoraError('ref-invalid', `ref prefix "${prefix}" does not end in "/"`, 'pass a namespace such as refs/agora/runs/');
  return `+${prefix}*:${prefix}*`;
}

/** The full name of branch `name`. */
export function branchRef(name: string): string {
  return `refs/heads/${name}`;
}

function assertPlainRef(ref: string, what: string): void {
  // eslint-disable-next-line no-control-regex -- matching control characters is the point
  if (!ref.startsWith('refs/') || /[\s:*?[\\^~\x00-\x1f\x7f]/.test(ref)) {
    throw new AgoraError(
      'ref-invalid',
      `${what} "${ref}" cannot go into a refspec`,
      'use a full ref name under refs/ without spaces, ":", "*", "?", "[", "\\\\", "^" or "~"',
    );
  }
}
