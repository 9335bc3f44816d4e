/**
 * Whether an event triggers a workflow by its `on:` filters — the part the workflow parser checks
 * the shape of but does not match: `branches`/`tags` (and their `-ignore`), `paths` (and
 * `paths-ignore`) and a pull request's activity `types`, with GitHub's glob rules.
 */

/** An event's filters as the parser's converted template gives them (each a list of patterns). */
export interface RefFilter {
  branches?: string[];
  'branches-ignore'?: string[];
  tags?: string[];
  'tags-ignore'?: string[];
  paths?: string[];
  'paths-ignore'?: string[];
  types?: string[];
}

/** GitHub's filter globs: `*` within a path segment, `**` across them, `?` one character. */
export function globMatch(pattern: string, value: string): boolean {
  const re = pattern.replace(/[.+^$()|[\]\\{}]/g, '\\$&').replace(/\*\*|\*|\?/g, (t) => (t === '**' ? '.*' : t === '*' ? '[^/]*' : '.'));
  return new RegExp(`^${re}$`).test(value);
}

/**
 * Whether `name` passes an ordered pattern list: the last pattern that matches decides, a `!pattern`
 * excluding (GitHub's rule for `branches`, `tags` and `paths`, where a list may mix both).
 */
function passesList(patterns: string[], name: string): boolean {
  let ok = false;
  for (const p of patterns) {
    if (p.startsWith('!')) {
      if (globMatch(p.slice(1), name)) ok = false;
    } else if (globMatch(p, name)) ok = true;
  }
  return ok;
}

function included(name: string, include: string[] | undefined, exclude: string[] | undefined): boolean {
  if (include) return passesList(include, name);
  if (exclude) return !exclude.some((p) => globMatch(p, name));
  return true;
}

/**
 * GitHub's path filters: with `paths`, a run when at least one changed file passes the list; with
 * `paths-ignore`, a run unless every changed file matches an ignored pattern. `changed` null means
 * the change could not be listed, and then the filter does not hold the run back.
 */
export function pathsMatch(filter: RefFilter | null, changed: string[] | null): boolean {
  if (filter === null || changed === null) return true;
  const paths = filter.paths;
  const ignore = filter['paths-ignore'];
  if (paths) return changed.some((f) => passesList(paths, f));
  if (ignore) return !changed.every((f) => ignore.some((p) => globMatch(p, f)));
  return true;
}

/** Whether a push to `ref` triggers the workflow's `push` by its branch and tag filters (paths: `pathsMatch`). */
export function pushMatches(filter: RefFilter | null, ref: string): boolean {
  if (filter === null) return true;
  const f = filter;
  const hasBranch = f.branches !== undefined || f['branches-ignore'] !== undefined;
  const hasTag = f.tags !== undefined || f['tags-ignore'] !== undefined;
  if (ref.startsWith('refs/heads/')) {
    if (hasTag && !hasBranch) return false;
    return included(ref.slice('refs/heads/'.length), f.branches, f['branches-ignore']);
  }
  if (ref.startsWith('refs/tags/')) {
    if (hasBranch && !hasTag) return false;
    return included(ref.slice('refs/tags/'.length), f.tags, f['tags-ignore']);
  }
  return false;
}

/** Whether a pull request event of `action` against `base` triggers the workflow's `pull_request`. */
export function pullRequestMatches(filter: RefFilter | null, action: string, base: string): boolean {
  const types = filter?.types ?? ['opened', 'synchronize', 'reopened'];
  if (!types.includes(action)) return false;
  return included(base, filter?.branches, filter?.['branches-ignore']);
}
