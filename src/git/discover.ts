import { stat } from 'node:fs/promises';
import { basename, delimiter, dirname, isAbsolute, join, resolve } from 'node:path';
import { AgoraError } from '../errors.js';

/**
 * Finds the repository a command run in `cwd` means, as git does: `GIT_DIR` when set; otherwise the
 * nearest directory at or above `cwd` that holds `.git` (a work tree) or is itself a git directory (a bare
 * repository or the inside of `.git`), not walking into a directory `GIT_CEILING_DIRECTORIES` lists.
 * Returns the directory to open (a work tree root or a git directory), or null when there is none.
 */
export async function discoverRepository(cwd: string, env: NodeJS.ProcessEnv = process.env): Promise<string | null> {
  const start = resolve(cwd);
  if (env.GIT_DIR) {
    const gitdir = resolve(process.cwd(), env.GIT_DIR); // relative to the working directory, as git reads it
    // A `.git` directory named by GIT_DIR has its work tree around it (GIT_WORK_TREE is not followed: Agora
    // reads and writes the repository, never a work tree elsewhere).
    return basename(gitdir) === '.git' ? dirname(gitdir) : gitdir;
  }
  const ceilings = new Set(
    (env.GIT_CEILING_DIRECTORIES ?? '')
      .split(delimiter)
      .filter((d) => d !== '' && isAbsolute(d))
      .map((d) => resolve(d)),
  );
  for (let dir = start; ; dir = dirname(dir)) {
    const dotGit = join(dir, '.git');
    const info = await stat(dotGit).catch(() => null);
    // A `.git` file (a linked worktree, a submodule) is returned too: opening it says why Agora cannot use it.
    if (info?.isFile() || (info?.isDirectory() && (await looksLikeGitdir(dotGit)))) return ownedByUs(dir, info.uid);
    if (await looksLikeGitdir(dir)) {
      const found = basename(dir) === '.git' ? dirname(dir) : dir;
      return ownedByUs(found, (await stat(dir)).uid);
    }
    const parent = dirname(dir);
    if (parent === dir || ceilings.has(parent)) return null;
  }
}

/**
 * A repository found by walking up, owned by another user, is refused as git refuses it ("dubious
 * ownership"): someone else's `/tmp/.git` must not become the repository, nor its config the one run.
 */
function ownedByUs(dir: string, uid: number): string {
  const me = process.getuid?.();
  if (me === undefined || uid === me) return dir;
  throw new AgoraError(
    'repo-not-owned',
    `the repository found at ${dir} belongs to user id ${uid}, not to you (${me}); agora does not use a repository it found that someone else owns`,
    `if you trust it, name it with --repo ${dir}; otherwise run agora inside your own repository`,
  );
}

/** A git directory: `HEAD` a file, `objects` and `refs` directories (what git itself checks first). */
export async function looksLikeGitdir(path: string): Promise<boolean> {
  const [head, objects, refs] = await Promise.all(['HEAD', 'objects', 'refs'].map((name) => stat(join(path, name)).catch(() => null)));
  return Boolean(head?.isFile() && objects?.isDirectory() && refs?.isDirectory());
}
