import { stat } from 'node:fs/promises';
import { basename, delimiter, dirname, isAbsolute, join, resolve } from 'node:path';

/**
 * Finds the repository a command run in `cwd` means, as git does: `GIT_DIR` when set; otherwise the
 * nearest directory at or above `cwd` that holds `.git` (a work tree) or is itself a git directory (a bare
 * repository or the inside of `.git`), not walking into a directory `GIT_CEILING_DIRECTORIES` lists.
 * Returns the directory to open (a work tree root or a git directory), or null when there is none.
 */
export async function discoverRepository(cwd: string, env: NodeJS.ProcessEnv = process.env): Promise<string | null> {
  const start = resolve(cwd);
  if (env.GIT_DIR) {
    const gitdir = resolve(start, env.GIT_DIR);
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
    if (await exists(join(dir, '.git'))) return dir;
    if (await looksLikeGitdir(dir)) return basename(dir) === '.git' ? dirname(dir) : dir;
    const parent = dirname(dir);
    if (parent === dir || ceilings.has(parent)) return null;
  }
}

async function exists(path: string): Promise<boolean> {
  return (await stat(path).catch(() => null)) !== null;
}

/** A git directory: `HEAD` a file, `objects` and `refs` directories (what git itself checks first). */
export async function looksLikeGitdir(path: string): Promise<boolean> {
  const [head, objects, refs] = await Promise.all(['HEAD', 'objects', 'refs'].map((name) => stat(join(path, name)).catch(() => null)));
  return Boolean(head?.isFile() && objects?.isDirectory() && refs?.isDirectory());
}
