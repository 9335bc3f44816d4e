import { isAbsolute, relative, resolve, sep } from 'node:path';
import { AgoraError } from './errors.js';

/**
 * Names that come from a plan, a repository or a worker (binding names, item ids, archive entries)
 * become file names. Each is validated where it enters, and joined with {@link pathInside}, which proves
 * the resolved path stays strictly inside its directory: a rule that a name slipped past still cannot
 * write outside it. The check is on the path's text (symlinks are not followed here); writers that
 * meet files a worker could have planted use no-follow opens on top of it.
 */

/** A name that, joined to its directory, would resolve outside it (or to the directory itself). */
export class PathOutsideDirectoryError extends AgoraError {
  override readonly name = 'PathOutsideDirectoryError';
  constructor(
    /** What the name is, for the message: `needs binding name`, `item id`. */
    readonly what: string,
    readonly parts: readonly string[],
    readonly dir: string,
  ) {
    super(
      'path-outside-directory',
      `${what} ${parts.map((p) => JSON.stringify(p)).join(' + ')} would resolve to ${describe(dir, parts)}, not to a path inside ${dir}; nothing was written`,
      'a name that becomes a file name must be one path component, like an id: 1–100 characters from A–Z a–z 0–9 . _ -, starting with a letter or digit, without ".." (docs/plan.md, Ids)',
    );
  }
}

function describe(dir: string, parts: readonly string[]): string {
  if (parts.some((p) => p.includes('\0'))) return 'a path containing NUL';
  return resolve(dir, ...parts);
}

/**
 * `join(dir, ...parts)`, resolved, after proving that each part names something strictly inside the
 * path before it (not that path itself, not outside it): `pathInside(logs, [run, file])` keeps `run`
 * inside `logs` and `file` inside `logs/<run>`. Throws {@link PathOutsideDirectoryError} otherwise;
 * `what` names the input.
 */
export function pathInside(dir: string, parts: string | readonly string[], what: string): string {
  const list = typeof parts === 'string' ? [parts] : parts;
  const root = resolve(dir);
  let path = root;
  for (const part of list) {
    const next = resolve(path, part);
    const rel = relative(path, next);
    if (part.includes('\0') || rel === '' || rel === '..' || rel.startsWith(`..${sep}`) || isAbsolute(rel)) {
      throw new PathOutsideDirectoryError(what, list, root);
    }
    path = next;
  }
  return path;
}

/** Whether `path` is `dir` or lies below it (by the paths' text, after resolving both). */
export function isWithin(path: string, dir: string): boolean {
  const rel = relative(resolve(dir), resolve(path));
  return !isAbsolute(rel) && rel.split(sep)[0] !== '..';
}
