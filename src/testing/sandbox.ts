/**
 * A throwaway repository for one fixture: the project's files as they are on disk (tracked and
 * untracked, minus what .gitignore excludes) committed as the base, in a temp dir outside every
 * repository, with the workspace pool's work dir beside it. The user's repository is only read: no ref,
 * object or file of it changes.
 */
import { copyFile, lstat, mkdir, mkdtemp, readdir, readlink, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { GitCommandError, runGit } from '../git/git-cli.js';
import { openLocalStore, type LocalGitStore } from '../git/local-store.js';
import type { Oid } from '../git/types.js';

export interface Sandbox {
  store: LocalGitStore;
  /** The base commit: the project's files. */
  base: Oid;
  /** The work dir for the workspace pool (outside the sandbox repository). */
  workDir: string;
  /** Removes the repository and the work dir. */
  dispose(): Promise<void>;
}

const IDENTITY = {
  GIT_AUTHOR_NAME: 'agora test',
  GIT_AUTHOR_EMAIL: 'agora-test@localhost',
  GIT_COMMITTER_NAME: 'agora test',
  GIT_COMMITTER_EMAIL: 'agora-test@localhost',
  GIT_AUTHOR_DATE: '2000-01-01T00:00:00Z',
  GIT_COMMITTER_DATE: '2000-01-01T00:00:00Z',
};

/** Creates the sandbox of `projectDir` (a directory of a git work tree, or a plain directory). */
export async function createSandbox(projectDir: string): Promise<Sandbox> {
  const root = await mkdtemp(join(tmpdir(), 'agora-test-'));
  const dispose = () => rm(root, { recursive: true, force: true });
  try {
    const repo = join(root, 'repo');
    const workDir = join(root, 'work');
    await mkdir(workDir, { mode: 0o700 });
    await copyFiles(projectDir, repo, await projectFiles(projectDir));
    await runGit(['init', '--quiet', '--initial-branch=main'], { cwd: repo });
    await runGit(['add', '--all'], { cwd: repo });
    await runGit(['commit', '--quiet', '--allow-empty', '--no-verify', '-m', 'agora test: the project as it is on disk'], { cwd: repo, env: IDENTITY });
    const store = await openLocalStore(repo);
    const base = await store.resolveRef('HEAD');
    if (base === null) throw new Error(`the sandbox repository ${repo} has no HEAD after its first commit`);
    return { store, base, workDir, dispose };
  } catch (e) {
    await dispose();
    throw e;
  }
}

/** The project's files relative to `dir`: git's view of the work tree when `dir` is in one, else every file but `.git` and `node_modules`. */
async function projectFiles(dir: string): Promise<string[]> {
  try {
    const out = await runGit(['ls-files', '-z', '--cached', '--others', '--exclude-standard'], { cwd: dir });
    return [...new Set(out.split('\0').filter(Boolean))];
  } catch (e) {
    if (!(e instanceof GitCommandError)) throw e;
    return walk(dir, dir);
  }
}

async function walk(root: string, dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    if (entry.name === '.git' || entry.name === 'node_modules') continue;
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...(await walk(root, path)));
    else out.push(relative(root, path));
  }
  return out;
}

/** Copies files (mode kept) and symlinks (as links); a tracked file deleted on disk is left out, as it is on disk. */
async function copyFiles(from: string, to: string, files: readonly string[]): Promise<void> {
  await mkdir(to, { recursive: true });
  for (const file of files) {
    const src = join(from, file);
    const info = await lstat(src).catch(() => null);
    if (info === null || info.isDirectory()) continue; // deleted, or a submodule's directory
    const dst = join(to, file);
    await mkdir(dirname(dst), { recursive: true });
    if (info.isSymbolicLink()) await symlink(await readlink(src), dst);
    else if (info.isFile()) await copyFile(src, dst);
  }
}
