/**
 * A workspace's one walk for what is untracked: the capture lists everything untracked a worker left
 * (ignored files too) and adds what is not ignored; the next re-target removes exactly that list instead
 * of `git clean` walking the workspace again, where the list is known to find everything.
 */
import { lstat, rm, writeFile } from 'node:fs/promises';
import { lstatSync } from 'node:fs';
import { join } from 'node:path';
import { pathInside } from '../path-inside.js';
import type { GitStep } from './git-cli.js';
import type { Oid } from './types.js';
import { catchUpFile, runGitSequence, splitNulList } from './workspace-git.js';
import type { TreeLayout, Workspace, WorkspaceSurvey } from './workspace-types.js';
import { captureTracked } from './workspace-walk.js';

/**
 * Whether a capture's list of what is untracked, with the old base's layout, finds everything the
 * worker left. Not where the layout is unknown or not exact, nor where the old base has submodules: git
 * lists nothing inside a submodule's directory, and one the new base makes a tree keeps what was there.
 */
export function listingSuffices(ws: Workspace): boolean {
  return ws.layout !== undefined && ws.layout.exact && ws.layout.gitlinks.length === 0;
}

/**
 * Removes each directory of `before` that `after` does not have (as a tree or a submodule), where a
 * directory (not a link) is still there: what is left in it is nothing of the new base's. `before` has
 * no submodules: a base with any never gets here (see {@link listingSuffices}).
 */
export async function removeDirectoriesGone(ws: Workspace, before: TreeLayout, after: TreeLayout): Promise<void> {
  const kept = new Set([...after.dirs, ...after.gitlinks]);
  await removeDirectories(
    ws,
    before.dirs.filter((p) => !kept.has(p)),
  );
}

/**
 * Removes each of `dirs`, directories of the old base that the new one does not have (as a tree or a
 * submodule), where a directory (not a link) is still there and lies under directories only.
 */
export async function removeDirectories(ws: Workspace, dirs: readonly string[]): Promise<void> {
  const gone = [...dirs].sort((a, b) => a.length - b.length);
  for (const path of gone) {
    if (!underDirectoriesOnly(ws, path)) continue; // a parent went first, or is now a file or link of the new base
    const abs = pathInside(ws.dir, path, 'tree path');
    if (lstatSync(abs, { throwIfNoEntry: false })?.isDirectory()) await rm(abs, { recursive: true, force: true, maxRetries: 3 });
  }
}

/**
 * Whether every parent of `path` (relative to the workspace) is a directory, not a link or a file: a
 * path so placed names something in the workspace, and removing it acts nowhere else.
 */
export function underDirectoriesOnly(ws: Workspace, path: string): boolean {
  const parts = path.replace(/\/+$/, '').split('/');
  let at = ws.dir;
  for (const part of parts.slice(0, -1)) {
    at = join(at, part);
    try {
      if (!lstatSync(at, { throwIfNoEntry: false })?.isDirectory()) return false;
    } catch {
      return false;
    }
  }
  return true;
}

/**
 * The capture's one walk of the workspace: `ls-files --others --directory` with no exclude rules lists
 * everything untracked (ignored files too; an untracked directory once, as `dir/`, empty or not: what
 * `git clean -ffdx` would remove). Of those, the ones `check-ignore` does not match are added (see
 * {@link recordAndWriteTree}), and `add -u` records what changed of the tracked files by the index's stat
 * data alone. Fails (for the careful path) where git refuses a path, e.g. a repository the worker made
 * without a commit.
 */
export async function captureQuickly(ws: Workspace, onCopy: Workspace, start: GitStep[]): Promise<{ tree: Oid; untracked: string[] }> {
  const untracked = splitNulList(await runGitSequence(onCopy, [...start, ['ls-files', '-z', '--others', '--directory']], captureEnv(ws)));
  // git's output is read as UTF-8: a name that is not would come back as another name, which nothing
  // could then remove. Such a workspace takes the careful path (and clean).
  if (untracked.some((p) => p.includes('\uFFFD'))) throw new Error('an untracked name is not UTF-8');
  const tree = await recordAndWriteTree(ws, onCopy, untracked, [], [['add', '--update', '--', '.']]);
  return { tree, untracked };
}

/**
 * A capture from the comparison with the workspace's stamps (workspace-stamps.ts), which did the walk:
 * git looks only at the tracked files it found touched and at what it found untracked. Where it found
 * nothing, the tree is the base's and git does not run at all.
 */
export async function captureSurveyed(
  ws: Workspace,
  onCopy: Workspace,
  start: GitStep[],
  survey: WorkspaceSurvey,
): Promise<{ tree: Oid; untracked: string[] }> {
  const untracked = [...survey.untracked];
  if (survey.touched.length === 0 && untracked.length === 0) return { tree: ws.baseTree, untracked };
  // Only tracked files touched: hashed here, where no attributes could make git record them otherwise.
  if (untracked.length === 0 && ws.layout && !(await attributesMayApply(ws, ws.layout))) {
    const tree = await captureTracked(ws.store, ws.dir, ws.baseTree, ws.layout.files, survey.touched);
    if (tree !== null) return { tree, untracked };
  }
  if (start.length > 0) await runGitSequence(onCopy, start, captureEnv(ws)); // the copy first: check-ignore reads it
  return { tree: await recordAndWriteTree(ws, onCopy, untracked, survey.touched, []), untracked };
}

/**
 * Whether git could record or write a file otherwise than as its bytes: the base has a `.gitattributes`
 * (an end of line conversion, `ident`, a working-tree encoding) or the repository has `info/attributes`.
 */
export async function attributesMayApply(ws: Workspace, layout: TreeLayout): Promise<boolean> {
  if (hasAttributesFile(layout)) return true;
  return (await lstat(join(ws.store.gitdir, 'info', 'attributes')).catch(() => null)) !== null;
}

const attributesFiles = new WeakMap<TreeLayout, boolean>();

const isAttributesFile = (path: string) => path === '.gitattributes' || path.endsWith('/.gitattributes');

/** Whether the layout has a `.gitattributes` anywhere (looked for once per layout). */
function hasAttributesFile(layout: TreeLayout): boolean {
  let found = attributesFiles.get(layout);
  if (found === undefined) {
    found = false;
    for (const path of layout.files.keys()) if (isAttributesFile(path)) found = true;
    attributesFiles.set(layout, found);
  }
  return found;
}

/**
 * Notes that `after` (`before` with `changed` paths changed) has no `.gitattributes` where `before` had
 * none and none of those paths is one, so that it is not looked for again in every path of `after`.
 */
export function inheritNoAttributes(before: TreeLayout, after: TreeLayout, changed: readonly string[]): void {
  if (attributesFiles.get(before) === false && !changed.some(isAttributesFile)) attributesFiles.set(after, false);
}

/** The capture's copy of the workspace's index (a hard link to it, or a copy). */
export function captureIndexFile(ws: Workspace): string {
  return `${ws.indexFile}.capture`;
}

function captureEnv(ws: Workspace): Record<string, string> {
  return { AGORA_WORKSPACE_INDEX: ws.indexFile, AGORA_INDEX_INFO: catchUpFile(captureIndexFile(ws)), GIT_LITERAL_PATHSPECS: '1' };
}

/**
 * Records `tracked` and the untracked paths that `check-ignore` does not match (`add --all` limited to
 * them, literal paths read from a file: it walks only under them), after `steps`, and writes the tree.
 */
async function recordAndWriteTree(ws: Workspace, onCopy: Workspace, untracked: readonly string[], tracked: readonly string[], steps: GitStep[]): Promise<Oid> {
  const listed = `${onCopy.indexFile}.untracked`;
  const paths = [...tracked];
  if (untracked.length > 0) {
    const ignored = await ignoredOf(onCopy, untracked, listed);
    paths.push(...untracked.filter((_, i) => !ignored[i]));
  }
  const finish: GitStep[] = [...steps, ['write-tree']];
  if (paths.length > 0) {
    await writeFile(listed, paths.map((p) => `${p}\0`).join(''));
    finish.unshift(['add', '--all', `--pathspec-from-file=${listed}`, '--pathspec-file-nul']);
  }
  return (await runGitSequence(onCopy, finish, captureEnv(ws))).trim();
}

/**
 * Which of the listed untracked paths git's exclude rules ignore, by position. Each goes to check-ignore
 * as `./<path>` without a trailing slash: `./` so that no name is read as pathspec magic (`:x`), no slash
 * so that a directory is judged as itself (`dir/` would match `dir/*` and hide a `!dir/keep` that `add`
 * takes). Its `-v -n` answer has one record per path, in order: a pattern that is not negated ignores it.
 */
async function ignoredOf(ws: Workspace, paths: readonly string[], file: string): Promise<boolean[]> {
  await writeFile(file, paths.map((p) => `./${p.replace(/\/+$/, '')}\0`).join(''));
  const fields = (await runGitSequence(ws, [{ shell: CHECK_IGNORE }], { AGORA_UNTRACKED: file })).split('\0');
  const ignored: boolean[] = [];
  for (let i = 0; i < paths.length; i++) {
    const pattern = fields[i * 4 + 2];
    if (pattern === undefined) throw new Error('check-ignore answered fewer paths than it was given');
    ignored.push(pattern !== '' && !pattern.startsWith('!'));
  }
  return ignored;
}

/** Each path listed in $AGORA_UNTRACKED with the exclude rule that decides it, if any (fixed text; exit 1: none ignored). */
const CHECK_IGNORE = 'git "$@" check-ignore -v -n -z --stdin < "$AGORA_UNTRACKED" || [ $? -eq 1 ]';

/**
 * Removes what a capture listed as untracked (see {@link captureQuickly}): paths git gave, each checked
 * to lie inside the workspace; a directory goes whole, a symlink itself (never what it points at).
 */
export async function removeListed(ws: Workspace, untracked: readonly string[]): Promise<void> {
  for (const entry of untracked) {
    await rm(pathInside(ws.dir, entry.replace(/\/+$/, ''), 'untracked path'), { recursive: true, force: true, maxRetries: 3 });
  }
}
