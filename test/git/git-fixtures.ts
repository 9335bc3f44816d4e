/** Real repositories in temp dirs and the `git` CLI, for the git adapter's tests. */
import { execFile, execFileSync, spawnSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The environment for git in tests: nothing inherited from GIT_*, a fixed identity, no user config. */
export function cliEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('GIT_') && v !== undefined) env[k] = v;
  return {
    ...env,
    GIT_CONFIG_NOSYSTEM: '1',
    GIT_CONFIG_GLOBAL: '/dev/null',
    GIT_AUTHOR_NAME: 'Test',
    GIT_AUTHOR_EMAIL: 'test@example.com',
    GIT_COMMITTER_NAME: 'Test',
    GIT_COMMITTER_EMAIL: 'test@example.com',
    GIT_AUTHOR_DATE: '1700000000 +0000',
    GIT_COMMITTER_DATE: '1700000000 +0000',
    LC_ALL: 'C',
    ...extra,
  };
}

/** git run on a workspace's own index and directory (the hermetic test environment); returns stdout. */
export function gitOnWorkspace(ws: { dir: string; indexFile: string; store: { gitdir: string } }, ...args: string[]): string {
  return execFileSync('git', args, {
    cwd: ws.dir,
    encoding: 'utf8',
    env: cliEnv({ GIT_DIR: ws.store.gitdir, GIT_WORK_TREE: ws.dir, GIT_INDEX_FILE: ws.indexFile }),
  });
}

/** Runs git synchronously in `cwd`; returns stdout. Throws with stderr on failure. */
export function gitSync(cwd: string, args: string[], opts: { input?: string; env?: Record<string, string> } = {}): string {
  return execFileSync('git', args, {
    cwd,
    env: cliEnv(opts.env),
    input: opts.input,
    encoding: 'utf8',
    maxBuffer: 256 * 1024 * 1024,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
}

/** Runs git asynchronously; resolves with exit code, stdout and stderr (never rejects on a non-zero exit). */
export function gitAsync(cwd: string, args: string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((done) => {
    execFile('git', args, { cwd, env: cliEnv(env), encoding: 'utf8' }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
      done({ code, stdout, stderr });
    });
  });
}

/** A fresh temp directory, removed by the returned cleanup. */
export async function tempDir(prefix = 'agora-git-'): Promise<{ path: string; cleanup: () => Promise<void> }> {
  const path = await mkdtemp(join(tmpdir(), prefix));
  return { path, cleanup: () => rm(path, { recursive: true, force: true, maxRetries: 3 }) };
}

/** `git init` (optionally bare) in a fresh temp directory with `main` as the initial branch. */
export async function initRepo(opts: { bare?: boolean } = {}): Promise<{ dir: string; gitdir: string; cleanup: () => Promise<void> }> {
  const tmp = await tempDir();
  const dir = join(tmp.path, opts.bare ? 'repo.git' : 'repo');
  gitSync(tmp.path, ['init', '-q', '-b', 'main', ...(opts.bare ? ['--bare'] : []), dir]);
  return { dir, gitdir: opts.bare ? dir : join(dir, '.git'), cleanup: tmp.cleanup };
}

/** The tree git itself builds for these non-tree entries (a temporary index, `update-index`, `write-tree`). */
export function gitBuildTree(gitdir: string, entries: Iterable<{ path: string; mode: string; oid: string }>, scratch: string): string {
  const index = join(scratch, `index-${process.pid}-${Math.random().toString(36).slice(2)}`);
  const lines = [...entries].map((e) => `${e.mode} ${e.oid}\t${e.path}\n`).join('');
  const env = { GIT_INDEX_FILE: index, GIT_DIR: gitdir };
  gitSync(scratch, ['update-index', '--add', '--index-info'], { input: lines, env });
  return gitSync(scratch, ['write-tree'], { env }).trim();
}

/** `git ls-tree -r` of a tree as `mode oid path` lines (non-tree entries only). */
export function gitListTree(gitdir: string, tree: string): string[] {
  return gitSync(gitdir, ['--git-dir', gitdir, 'ls-tree', '-r', '--full-tree', tree])
    .split('\n')
    .filter(Boolean)
    .map((l) => {
      const [meta, path] = l.split('\t');
      const [mode, , oid] = (meta ?? '').split(' ');
      return `${mode} ${oid} ${path}`;
    });
}

/**
 * Runs test/git/cas-child.ts's writer once on `ref` of the repository at `dir` (the ref must exist), with
 * crash point `at` armed (src/crash-points.ts, `AGORA_CRASH_AT`): the child is killed there as a crash would
 * kill it. Its pid, and the signal that ended it.
 */
export function killedCasWriter(dir: string, ref: string, at: string): { pid: number; signal: NodeJS.Signals | null } {
  const child = spawnSync(process.execPath, ['--import', 'tsx', fileURLToPath(new URL('./cas-child.ts', import.meta.url)), 'write', dir, ref, 'w', '1'], {
    cwd: fileURLToPath(new URL('../..', import.meta.url)),
    env: { ...process.env, AGORA_CRASH_AT: at },
    encoding: 'utf8',
  });
  return { pid: child.pid!, signal: child.signal };
}
