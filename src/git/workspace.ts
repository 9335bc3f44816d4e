/**
 * Workspaces: a commit's tree materialised into a directory for a worker, and the directory captured
 * back into a tree afterwards (DESIGN.md §2, §4). With the `git` CLI present this uses a private index
 * file kept next to (outside) the directory: `read-tree` + `checkout-index` to materialise, `add -A` +
 * `write-tree` to capture. Without it (or with AGORA_GIT_CLI=0) an in-process walk does the same with
 * isomorphic-git. Both honour `.gitignore` files in the tree and `info/exclude` (tracked files stay
 * tracked even when ignored), keep the exec bit and symlinks, and give identical trees.
 *
 * Both paths are hermetic with respect to the user's configuration: the CLI runs through the one git
 * runner (`git-cli.ts`: no global or system config, no hooks, no filters, nothing the repository's config
 * could execute) and without a global excludes file, so a capture depends on the repository alone.
 */
import { link, mkdir, readdir, rm } from 'node:fs/promises';
import { chmodSync, lstatSync } from 'node:fs';
import { resolve, sep } from 'node:path';
import { AgoraError } from '../errors.js';
import { gitCliAvailable, type GitStep } from './git-cli.js';
import { pathInside } from '../path-inside.js';
import type { LocalGitStore } from './local-store.js';
import { diffTrees, type TreeChange, type TreeChangeSide } from './tree-diff.js';
import type { Oid } from './types.js';
import { runGit, runGitSequence } from './workspace-git.js';
import type { TreeLayout, Workspace, WorkspaceCapture, WorkspaceMethod, WorkspaceOptions, WorkspaceStamps, WorkspaceSurvey } from './workspace-types.js';
import {
  attributesMayApply,
  captureIndexFile,
  captureQuickly,
  captureSurveyed,
  inheritNoAttributes,
  listingSuffices,
  removeDirectories,
  removeDirectoriesGone,
  removeListed,
  underDirectoriesOnly,
} from './workspace-untracked.js';
import { hasDirectory, surveyWorkspace, takeStamps, withParents } from './workspace-stamps.js';
import { emptySubmoduleDirectories, hideNestedRepositories, removeDotGitIn, removeEveryDotGit, restoreNestedRepositories } from './workspace-repositories.js';
import { captureByWalk, writeTreeInto } from './workspace-walk.js';
import {
  baseMove,
  droppedPaths,
  indexBehindAfter,
  indexCatchUp,
  moveSteps,
  pathsWritten,
  removeFiles,
  removeMoveFiles,
  writeMoveFiles,
  writesInProcess,
  type BaseMove,
} from './workspace-move.js';

export type { TreeLayout, Workspace, WorkspaceCapture, WorkspaceMethod, WorkspaceOptions } from './workspace-types.js';

async function chooseMethod(options: WorkspaceOptions): Promise<WorkspaceMethod> {
  const available = await gitCliAvailable();
  if (options.method === 'cli' && !available) {
    throw new AgoraError(
      'git-cli-missing',
      'the git command is not available',
      'install git, or leave the workspace method unset to use the built-in fallback',
    );
  }
  return options.method ?? (available ? 'cli' : 'isomorphic-git');
}

/**
 * Materialises `commit` into `dir` (created if missing; it must be empty, except that a leftover under
 * `options.scratch` from a crashed attempt is cleared) and returns the workspace. `dir` must be outside
 * the repository (its git dir and its work tree): `git` run there by a worker would find the repository.
 */
export async function materializeWorkspace(store: LocalGitStore, commit: Oid, dir: string, options: WorkspaceOptions = {}): Promise<Workspace> {
  const method = await chooseMethod(options);
  const abs = resolve(dir);
  for (const repo of [store.gitdir, store.dir]) {
    if (repo !== null && (abs === resolve(repo) || abs.startsWith(resolve(repo) + sep))) {
      throw new AgoraError(
        'workspace-in-repository',
        `workspace directory ${abs} is inside the repository ${repo}: git run by a worker there would act on the repository`,
        'materialise workspaces outside the repository (the workspace pool uses its work dir; see docs/security.md)',
      );
    }
  }
  const ws: Workspace = { store, commit, baseTree: (await store.readCommit(commit)).tree, dir: abs, indexFile: `${abs}.index`, method };
  await prepareEmptyDir(ws, options.scratch);
  if (method === 'cli') {
    const layout = parseTreeListing(
      await runGitSequence(ws, [
        ['read-tree', commit],
        ['checkout-index', '--all', '--force', '--index'],
        ['ls-tree', '-r', '-t', '-z', commit],
      ]),
    );
    return { ...ws, layout, stamps: takeStamps(abs, stampMarker(ws), layout) };
  }
  await writeTreeInto(store, ws.baseTree, abs);
  return ws;
}

/**
 * Captures the workspace as a tree (writing any new blobs and trees) and lists its changes against the
 * materialised commit's tree. Ignored untracked files are left out; deleted files are gone from the tree.
 *
 * The CLI method walks the workspace's directories once (see {@link captureQuickly}) and keeps what it
 * found untracked for the next re-target.
 */
export async function captureWorkspace(ws: Workspace, options: WorkspaceOptions = {}): Promise<WorkspaceCapture> {
  const method = options.method ?? ws.method;
  let tree: Oid;
  if (method === 'cli') {
    await chooseMethod({ method });
    const onCopy = captureIndex(ws);
    // The workspace's own index keeps only stat data git recorded when it wrote the files; `add` runs
    // on a copy (times kept, so git's racy-entry check judges it as it would the original) and records
    // what the worker left there. See {@link retargetWorkspace} for why that matters.
    let start: GitStep[] = [['read-tree', ws.commit]]; // no index yet: start from the base
    if (ws.method === 'cli') start = (await linkIndexCopy(ws.indexFile, onCopy.indexFile)) ? [] : [{ shell: COPY_INDEX }];
    // What the index lacks after moves written in-process goes into the copy before git reads it.
    const catchUp = ws.method === 'cli' ? await indexCatchUp(onCopy.indexFile, ws.indexBehind) : null;
    if (catchUp) start.push(catchUp.step);
    // The workspace's stamps, where it has them, tell what the worker touched without git walking it.
    const survey = ws.method === 'cli' && ws.stamps && ws.layout ? await surveyWorkspace(ws.dir, ws.layout, ws.stamps) : null;
    // The common case needs no scan for nested repositories (a walk of the whole workspace): record, and
    // redo carefully only if git refused one or recorded one as a gitlink.
    const quick = await (survey ? captureSurveyed(ws, onCopy, start, survey) : captureQuickly(ws, onCopy, start)).catch(() => null);
    const changes = quick === null ? null : await diffTrees(ws.store, ws.baseTree, quick.tree);
    if (quick !== null && changes && !changes.some((c) => addsGitlink(c) || becameDirectory(ws, c)))
      return { tree: quick.tree, changes, untracked: quick.untracked, ...(survey ? { survey } : {}) };
    await runGit(onCopy, ['read-tree', ws.commit]);
    const hidden = await hideNestedRepositories(onCopy);
    try {
      await runGit(onCopy, ['-c', `core.excludesFile=${hidden.excludesFile}`, 'add', '--all', '--', '.']);
    } finally {
      await restoreNestedRepositories(hidden);
    }
    tree = (await runGit(onCopy, ['write-tree'])).trim();
  } else {
    tree = await captureByWalk(ws.store, ws.dir, ws.baseTree);
  }
  return { tree, changes: await diffTrees(ws.store, ws.baseTree, tree) };
}

/**
 * Re-targets a workspace to `commit`, touching only what differs from what it holds now (whatever the
 * worker did to it) and removing everything untracked or ignored: it ends exactly as a fresh
 * materialisation would. In-process workspaces are materialised afresh.
 *
 * `captured` is what {@link captureWorkspace} found the last worker changed. With its survey (the
 * workspace's stamps), every file the worker touched is written again and the workspace moves to the
 * new base by the difference between the bases (workspace-move.ts): no step compares every tracked file.
 * What the capture listed as untracked (ignored files too) is removed without walking the workspace.
 * Otherwise (no stamps, or the worker failed or was stopped and nothing was captured) a one-tree
 * `read-tree --reset` compares every tracked file with the index's stat data and rewrites what differs,
 * and, where the capture listed nothing, `git clean -ffdx` removes what is untracked or ignored. Either way every `.git` that git does not list (see {@link removeEveryDotGit}) and whatever is
 * in a submodule's directory go too.
 *
 * Why the index only ever holds stat data from git's own writes: a worker controls its files' times and
 * sizes, not their inode change time (ctime), which git also compares (in whole seconds on most builds).
 * Had a capture refreshed the index with the stat data of a file the worker touched, a next worker
 * running within the same second could change that file, restore its mtime and size, and leave stat data
 * git takes as unchanged. A file git wrote has ctime = mtime: within the second the index was written it
 * is "racily clean" and git compares its content; later, any change gives it a later ctime.
 */
export async function retargetWorkspace(ws: Workspace, commit: Oid, captured?: Pick<WorkspaceCapture, 'changes' | 'untracked' | 'survey'>): Promise<Workspace> {
  if (ws.method !== 'cli') {
    await removeWorkspace(ws);
    return materializeWorkspace(ws.store, commit, ws.dir, { method: ws.method });
  }
  const before = ws.layout; // the old base's; the new one's is listed below
  const { indexBehind, ...kept } = ws;
  // What the index lacks (moves written in-process) goes into it with the first git step below; where no
  // git step reads it, the new entries are added to what it lacks.
  const next: Workspace = { ...kept, commit, baseTree: (await ws.store.readCommit(commit)).tree };
  const changed = captured?.changes;
  // What the capture's walk found untracked goes first (nothing has run in the workspace since), when
  // that list and the old base's layout find everything (see listingSuffices) and no listed path lies
  // under anything but directories now. Otherwise `git clean` walks the workspace for it after the move.
  const listed =
    captured?.untracked !== undefined && listingSuffices(ws) && captured.untracked.every((p) => underDirectoriesOnly(ws, p)) ? captured.untracked : null;
  // A survey read every directory whose entries changed: a .git can only be in one of those.
  const survey = listed && before && ws.stamps ? captured?.survey : undefined;
  if (survey && before && commit === ws.commit && changed?.length === 0 && listed?.length === 0 && survey.touched.length === 0) {
    // The worker touched no file and left nothing (at most a directory's times, or a .git): no file needs git.
    removeDotGitIn(ws, survey.changedDirs, before);
    restoreDirectoryModes(ws, survey.changedDirs, before, ws.stamps!);
    return { ...ws, stamps: takeStamps(ws.dir, stampMarker(ws), before, { from: ws.stamps!, restat: new Set(survey.changedDirs) }) };
  }
  const clean: GitStep[] = listed ? [] : [['clean', '-ffdxq']];
  if (listed) await removeListed(next, listed);
  // With a survey the workspace is the old base once the worker's changes are undone: it moves by the
  // difference between the bases (workspace-move.ts), undoing them on the way, rather than by a read-tree.
  const movable = survey && before && changed;
  // Every tracked file the worker touched is written again, not only those whose content git records as
  // changed: a mode git does not record (0600), a time, or bytes a filter normalises stay otherwise. This,
  // and whether attributes may apply, are asked of the old layout before a move takes it over.
  const rewrite = movable
    ? [...new Set([...changed.filter((c) => c.before !== null).map((c) => c.path), ...survey.touched.filter((p) => before.files.has(p))])]
    : [];
  const attributesBefore = movable ? await attributesMayApply(ws, before) : true;
  const byDifference = movable ? await baseMove(ws.store, ws.baseTree, next.baseTree, before) : null;
  if (survey && before && changed && byDifference) {
    await removeFiles(next, [...rewrite, ...droppedPaths(byDifference)]);
    const layout = byDifference.layout;
    const written = pathsWritten(byDifference, rewrite);
    const behind = indexBehindAfter(indexBehind, byDifference);
    inheritNoAttributes(before, layout, baseDifferencePaths(byDifference));
    const attributes = attributesBefore || (await attributesMayApply(ws, layout));
    let stillBehind: Map<string, TreeChangeSide | null> | undefined;
    if (writesInProcess(written, layout, behind, attributes)) {
      await writeMoveFiles(next, layout, byDifference.dirsAdded, written);
      stillBehind = behind;
    } else {
      const moved = await moveSteps(ws.indexFile, behind, written);
      if (moved.steps.length > 0) await runGitSequence(next, moved.steps, moved.env);
      await removeMoveFiles(ws.indexFile);
    }
    await removeDirectories(next, byDifference.dirsRemoved);
    removeDotGitIn(next, survey.changedDirs, layout);
    restoreDirectoryModes(next, survey.changedDirs, layout, ws.stamps!);
    const restat = touchedByRetarget(changed, listed ?? [], survey, baseDifferencePaths(byDifference));
    const stamps = takeStamps(next.dir, stampMarker(next), layout, { from: ws.stamps!, restat });
    return { ...next, layout, stamps, ...(stillBehind && stillBehind.size > 0 ? { indexBehind: stillBehind } : {}) };
  }
  // Otherwise a one-tree reset compares every tracked file with the index's stat data (git's own writes)
  // and writes again what differs, whatever the worker did: a two-tree one would leave a file whose
  // content git finds unchanged as the worker left it (its mode, its times). What the stamps found
  // touched goes first, since git compares times in whole seconds.
  if (survey && before)
    await removeFiles(
      next,
      survey.touched.filter((p) => before.files.has(p)),
    );
  const catchUp = await indexCatchUp(ws.indexFile, indexBehind);
  const move: GitStep[] = [...(catchUp ? [catchUp.step] : []), ['read-tree', '--reset', '-u', commit]];
  // One listing of the target (its trees too): where a `.git` may be left, and its submodules.
  const layout = parseTreeListing(await runGitSequence(next, [...move, ...clean, ['ls-tree', '-r', '-t', '-z', commit]], catchUp?.env));
  if (catchUp) await removeMoveFiles(ws.indexFile);
  // A submodule whose name is not UTF-8 cannot be found by its listed name to be emptied (the name
  // listed may even be another path's): such a target is checked out afresh.
  if (layout.gitlinks.some((path) => path.includes('\uFFFD'))) {
    await removeWorkspace(next);
    return materializeWorkspace(ws.store, commit, ws.dir, { method: ws.method });
  }
  // The move removed the old base's files; a directory or submodule only it had stays where something
  // git does not list is in it (a `.git`, a submodule's content). Without clean, nothing else removes it.
  if (listed && before) await removeDirectoriesGone(next, before, layout);
  if (survey) removeDotGitIn(next, survey.changedDirs, layout);
  else removeEveryDotGit(next, layout);
  await emptySubmoduleDirectories(next, layout.gitlinks);
  const reuse =
    survey && before && ws.stamps
      ? { from: ws.stamps, restat: touchedByRetarget(changed ?? [], listed ?? [], survey, layoutDifference(before, layout)) }
      : undefined;
  return { ...next, layout, stamps: takeStamps(next.dir, stampMarker(next), layout, reuse) };
}

/**
 * The workspace with its private index current: what moves written in-process left it lacking is put
 * there (see workspace-move.ts). For whoever runs git on a workspace's index other than through this
 * module.
 */
export async function catchUpIndex(ws: Workspace): Promise<Workspace> {
  const { indexBehind, ...current } = ws;
  const catchUp = await indexCatchUp(ws.indexFile, indexBehind);
  if (catchUp) {
    await runGitSequence(ws, [catchUp.step], catchUp.env);
    await removeMoveFiles(ws.indexFile);
  }
  return current;
}

/**
 * The capture's copy of the workspace's index: a hard link, so it is the same file, times and all (git's
 * racy-entry check judges the copy exactly as it would the original). git never writes an index in
 * place: `add` writes `<copy>.lock` and renames it over the copy's name, and the workspace's own index
 * stays as it was. False when the file system makes no hard links: the caller copies it instead.
 */
async function linkIndexCopy(index: string, copy: string): Promise<boolean> {
  await rm(copy, { force: true });
  try {
    await link(index, copy);
    return true;
  } catch (e) {
    if (['EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'EMLINK', 'EXDEV'].includes((e as NodeJS.ErrnoException).code ?? '')) return false;
    throw e;
  }
}

/** Where the work dir's file system has no hard links: a copy that keeps the index's times (fixed text). */
const COPY_INDEX = 'cp -p -- "$AGORA_WORKSPACE_INDEX" "$GIT_INDEX_FILE"';

/** The workspace as a capture sees it: the same directory and objects, the copy of its index. */
function captureIndex(ws: Workspace): Workspace {
  return { ...ws, indexFile: captureIndexFile(ws) };
}

/**
 * Gives each of `dirs` that `layout` still has the permissions it had when the workspace was last exact
 * (as its stamp recorded them): git records no directory modes, so a worker's `chmod` of a directory
 * would otherwise reach the next item. Only directories whose stat data changed can differ.
 */
function restoreDirectoryModes(ws: Workspace, dirs: readonly string[], layout: TreeLayout, recorded: WorkspaceStamps): void {
  for (const dir of dirs) {
    const then = recorded.stamps.get(dir);
    if (then === undefined || (dir !== '' && !hasDirectory(layout, dir))) continue;
    const path = dir === '' ? ws.dir : pathInside(ws.dir, dir, 'tree path');
    const now = lstatSync(path, { throwIfNoEntry: false });
    if (now?.isDirectory() && (now.mode & 0o7777) !== (then.mode & 0o7777)) chmodSync(path, then.mode & 0o7777);
  }
}

/** Where a workspace's stamp marker is written: beside its index, outside the directory. */
function stampMarker(ws: Workspace): string {
  return `${ws.indexFile}.stamp`;
}

/**
 * The paths a re-target may have changed, whose stamps are taken again: what the worker changed or left
 * (restored or removed), what the two bases differ in (`bases`), the directories a survey found changed
 * (a `.git` may have gone from them), and every directory above any of these.
 */
function touchedByRetarget(changes: readonly TreeChange[], untracked: readonly string[], survey: WorkspaceSurvey, bases: readonly string[]): Set<string> {
  const paths = [...changes.map((c) => c.path), ...untracked.map((p) => p.replace(/\/+$/, '')), ...survey.touched, ...survey.changedDirs, ...bases];
  return new Set(paths.flatMap(withParents));
}

/** The paths (files, links and directories) two layouts differ in, found by comparing them whole. */
function layoutDifference(before: TreeLayout, after: TreeLayout): string[] {
  const paths: string[] = [];
  for (const [path, entry] of after.files) if (before.files.get(path) !== entry) paths.push(path);
  for (const [path] of before.files) if (!after.files.has(path)) paths.push(path);
  const dirsBefore = new Set(before.dirs);
  const dirsAfter = new Set(after.dirs);
  for (const dir of after.dirs) if (!dirsBefore.has(dir)) paths.push(dir);
  for (const dir of before.dirs) if (!dirsAfter.has(dir)) paths.push(dir);
  return paths;
}

/** The paths a move by the difference between bases changes. */
function baseDifferencePaths(move: BaseMove): string[] {
  return [...move.changes.map((c) => c.path), ...move.dirsAdded, ...move.dirsRemoved];
}

/** The directories (trees), files and submodule entries (gitlinks) in `git ls-tree -r -t -z` output. */
function parseTreeListing(listing: string): TreeLayout {
  const dirs: string[] = [];
  const gitlinks: string[] = [];
  const files = new Map<string, string>();
  for (const line of listing.split('\0')) {
    const tab = line.indexOf('\t');
    if (line.startsWith('040000 ')) dirs.push(line.slice(tab + 1));
    else if (line.startsWith('160000 ')) gitlinks.push(line.slice(tab + 1));
    else if (tab > 0) files.set(line.slice(tab + 1), line.slice(0, tab));
  }
  return { dirs, files, gitlinks, exact: !listing.includes('\uFFFD') };
}

/**
 * A tracked file (or link) the worker replaced with a directory: `ls-files --others --directory` does not
 * list such a directory (nor does `git clean` remove it), so the quick capture missed what is in it.
 */
function becameDirectory(ws: Workspace, change: TreeChange): boolean {
  if (change.after !== null || change.before?.mode === '040000') return false;
  try {
    return lstatSync(pathInside(ws.dir, change.path, 'changed path'), { throwIfNoEntry: false })?.isDirectory() === true;
  } catch {
    return false; // a parent is no directory (ENOTDIR): nothing there
  }
}

/** A gitlink that the base did not have: `git add` took a repository the worker made for a submodule. */
function addsGitlink(change: TreeChange): boolean {
  return change.after?.mode === '160000' && change.before?.mode !== '160000';
}

/** Removes the workspace directory and its index file. */
export async function removeWorkspace(ws: Workspace): Promise<void> {
  await rm(ws.dir, { recursive: true, force: true, maxRetries: 3 });
  await rm(ws.indexFile, { force: true });
  await rm(`${ws.indexFile}.lock`, { force: true });
  for (const suffix of [
    '.exclude',
    '.capture',
    '.capture.lock',
    '.capture.exclude',
    '.capture.untracked',
    '.capture.move',
    '.restore',
    '.stamp',
    '.move',
    '.checkout',
  ]) {
    await rm(`${ws.indexFile}${suffix}`, { force: true });
  }
}

async function prepareEmptyDir(ws: Workspace, scratch: string | undefined): Promise<void> {
  const entries = await readdir(ws.dir).catch((e: NodeJS.ErrnoException) => {
    if (e.code === 'ENOENT') return [];
    throw e;
  });
  if (entries.length > 0) {
    if (scratch === undefined || !ws.dir.startsWith(resolve(scratch) + sep)) {
      throw new AgoraError('workspace-not-empty', `workspace directory ${ws.dir} is not empty`, 'choose a new directory or remove this one first');
    }
    await rm(ws.dir, { recursive: true, force: true, maxRetries: 3 });
  }
  await rm(ws.indexFile, { force: true });
  await mkdir(ws.dir, { recursive: true });
}
