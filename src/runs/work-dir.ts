import { createHash } from 'node:crypto';
import { lstat, mkdir, realpath } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { AgoraError } from '../errors.js';
import { GitCommandError, runGit } from '../git/git-cli.js';

/**
 * A repository's work dir: where its workers' directories live (the workspace pool, each attempt's
 * `needs`), OUTSIDE the repository. `git` run by a worker in its workspace looks for a repository in
 * every parent directory; under `<gitdir>/agora/` it found the orchestrator's own (issue 11: a read-only
 * item ran `git replace` there, another wrote `.git/hooks/post-merge`). Workers get an empty environment,
 * so GIT_CEILING_DIRECTORIES cannot stop that walk: the location does.
 *
 * `<AGORA_WORK_DIR or the OS temp dir>/agora-<uid>/<repo name>-<hash of the git dir>/`, both levels
 * private to the user (0700; a directory someone else made, or a symlink, is refused), and checked
 * once: git, asked from there, must find no repository at all.
 */
export async function workDirFor(gitdir: string, base: string = process.env.AGORA_WORK_DIR || tmpdir()): Promise<string> {
  const real = await realpath(gitdir);
  const user = join(resolve(base), `agora-${process.getuid?.() ?? 'user'}`);
  await privateDir(user);
  const name =
    basename(basename(real) === '.git' ? dirname(real) : real)
      .replace(/[^A-Za-z0-9._-]/g, '_')
      .replace(/^\.+/, '') || 'repo';
  const dir = join(user, `${name.slice(0, 40)}-${createHash('sha256').update(real).digest('hex').slice(0, 16)}`);
  await privateDir(dir);
  const found = await runGit(['rev-parse', '--absolute-git-dir'], { cwd: dir }).then(
    (out) => out.trim(),
    (e: unknown) => {
      if (e instanceof GitCommandError) return null; // not inside a repository: what we want
      throw e;
    },
  );
  if (found !== null) {
    throw new AgoraError(
      'work-dir-in-repository',
      `the work dir ${dir} is inside the git repository ${found}: git run by a worker in its workspace would act on that repository`,
      'set AGORA_WORK_DIR (or TMPDIR) to a directory that is not inside any git repository',
    );
  }
  return dir;
}

/** Creates `dir` (0700) if missing; refuses one that is a symlink, not ours, or open to others. */
async function privateDir(dir: string): Promise<void> {
  await mkdir(dir, { mode: 0o700, recursive: true });
  const info = await lstat(dir);
  const uid = process.getuid?.();
  if (!info.isDirectory() || (uid !== undefined && info.uid !== uid) || (info.mode & 0o077) !== 0) {
    throw new AgoraError(
      'work-dir-unsafe',
      `the work dir ${dir} is not a private directory of this user (a symlink, another owner, or open to others)`,
      'remove it, or set AGORA_WORK_DIR to a directory only this user can enter',
    );
  }
}
