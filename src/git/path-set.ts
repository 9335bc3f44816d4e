/**
 * A set of repository paths that answers, in the depth of the path, whether another path meets one of
 * them: equal to one, below one (a file became a directory) or above one (a directory became a file),
 * always at `/` boundaries — the overlap rule of lock keys (`locksOverlap`), indexed for many paths.
 */
export class PathSet {
  private readonly paths: Set<string>;
  /** Every proper directory prefix of a path in the set. */
  private readonly dirs = new Set<string>();

  constructor(paths: Iterable<string>) {
    this.paths = new Set(paths);
    for (const p of this.paths) for (const dir of ancestors(p)) this.dirs.add(dir);
  }

  get size(): number {
    return this.paths.size;
  }

  meets(path: string): boolean {
    if (this.paths.has(path) || this.dirs.has(path)) return true;
    for (const dir of ancestors(path)) if (this.paths.has(dir)) return true;
    return false;
  }
}

/** `a/b/c` → `a`, `a/b`. */
function ancestors(path: string): string[] {
  const out: string[] = [];
  for (let i = path.indexOf('/'); i !== -1; i = path.indexOf('/', i + 1)) out.push(path.slice(0, i));
  return out;
}
