import { execFileSync } from 'node:child_process';
import { chmod, mkdir, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GitCommandError, runGitSequence, type GitInvocation } from '../../src/git/git-cli.js';
import { shellsStarted } from '../../src/git/git-shell.js';
import { gitSync, initRepo, tempDir } from './git-fixtures.js';

/** Sequences run in the process's long-lived shells (git-shell.ts) instead of a shell forked from Node each. */
describe('git sequences in a long-lived shell', () => {
  let repo: { dir: string; gitdir: string; cleanup: () => Promise<void> };
  let head: string;
  const persistent = (how: GitInvocation = {}): GitInvocation => ({ gitDir: repo.gitdir, ...how, persistentShell: true });

  beforeAll(async () => {
    repo = await initRepo();
    await writeFile(join(repo.dir, 'a.txt'), 'one\n');
    gitSync(repo.dir, ['add', '--all']);
    gitSync(repo.dir, ['commit', '-q', '-m', 'base']);
    head = gitSync(repo.dir, ['rev-parse', 'HEAD']).trim();
  });
  afterAll(() => repo.cleanup());

  it('gives the same output and the same typed failure as a shell of its own', async () => {
    for (const persistentShell of [false, true]) {
      const how: GitInvocation = { gitDir: repo.gitdir, persistentShell, hint: 'check the id' };
      expect(
        await runGitSequence(
          [
            ['rev-parse', 'HEAD'],
            ['cat-file', '-t', head],
          ],
          how,
        ),
      ).toBe(`${head}\ncommit\n`);
      expect(await runGitSequence([['cat-file', '-t', head]], how)).toBe('commit\n');
      const err = await runGitSequence(
        [
          ['cat-file', '-t', head],
          ['cat-file', '-t', 'f'.repeat(40)],
        ],
        how,
      ).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(GitCommandError);
      const e = err as GitCommandError;
      expect(e.exitStatus).toBe(128);
      expect(e.stdout).toBe('commit\n'); // what ran before the failing step
      expect(e.stderr).toContain('could not get object info');
      expect(e.message).toContain(`git cat-file -t ${head} && git cat-file -t ${'f'.repeat(40)} failed (exit 128)`);
      expect(e.hint).toBe('check the id');
    }
  });

  it('reuses one shell for sequences run one after another', async () => {
    await runGitSequence([['rev-parse', 'HEAD']], persistent());
    const before = shellsStarted();
    for (let i = 0; i < 5; i += 1) expect((await runGitSequence([['rev-parse', 'HEAD']], persistent())).trim()).toBe(head);
    expect(shellsStarted()).toBe(before);
  });

  it('gives each sequence exactly its own environment and directory, nothing of the one before or of GIT_* in the parent', async () => {
    const show = { shell: 'printf "%s|%s|%s" "${GIT_INDEX_FILE-unset}" "${GIT_DIR-unset}" "$(pwd)"' };
    const work = await tempDir('agora-shell-cwd-');
    const saved = process.env.GIT_DIR;
    try {
      expect(await runGitSequence([show], persistent({ cwd: work.path, env: { GIT_INDEX_FILE: '/tmp/one-index' } }))).toBe(`/tmp/one-index|unset|${work.path}`);
      process.env.GIT_DIR = '/nonexistent/git';
      expect(await runGitSequence([show], persistent({ cwd: repo.dir }))).toBe(`unset|unset|${repo.dir}`);
    } finally {
      if (saved === undefined) delete process.env.GIT_DIR;
      else process.env.GIT_DIR = saved;
      await work.cleanup();
    }
  });

  it('runs sequences side by side: one that waits for another does not block it', async () => {
    const work = await tempDir('agora-shell-fifo-');
    try {
      const fifo = join(work.path, 'fifo');
      execFileSync('mkfifo', [fifo]);
      // The reader blocks until the writer runs; with one sequence at a time this would never end.
      const reader = runGitSequence([{ shell: 'read agora_line < fifo; printf "%s" "$agora_line"' }], persistent({ cwd: work.path }));
      const writer = runGitSequence([{ shell: 'printf "sent\\n" > fifo' }], persistent({ cwd: work.path }));
      expect(await Promise.all([reader, writer])).toEqual(['sent', '']);
    } finally {
      await work.cleanup();
    }
  });

  it('reports a shell that dies mid-sequence as a git failure, and the next sequence runs', async () => {
    // In a subshell $$ is the long-lived shell itself.
    const err = await runGitSequence([{ shell: 'kill -9 $$' }], persistent()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(GitCommandError);
    expect((err as GitCommandError).exitStatus).toBe(null);
    expect((err as GitCommandError).message).toMatch(/the git shell \d+ exited \(SIGKILL\)/);
    expect((await runGitSequence([['rev-parse', 'HEAD']], persistent())).trim()).toBe(head);
    // Its request file (and what the sequence wrote) is gone too: nothing of the environment stays on disk.
    const dir = process.env.TMPDIR ?? '/tmp';
    const mine = (await readdir(dir)).filter((n) => n.startsWith('agora-git-shell-'));
    for (const d of mine) expect((await readdir(join(dir, d)).catch(() => [])).filter((n) => n.startsWith(`r${process.pid}-`))).toEqual([]);
  });

  it('runs no hook and none of what the config names, as a shell of its own does not', async () => {
    const markers = join(repo.dir, '..', 'shell-markers');
    await mkdir(markers, { recursive: true });
    const hooks = join(repo.dir, '..', 'shell-hooks');
    await mkdir(hooks, { recursive: true });
    for (const dir of [join(repo.gitdir, 'hooks'), hooks]) {
      await mkdir(dir, { recursive: true });
      await writeFile(join(dir, 'reference-transaction'), `#!/bin/sh\ntouch '${markers}/reference-transaction'\n`);
      await chmod(join(dir, 'reference-transaction'), 0o755);
    }
    gitSync(repo.dir, ['config', 'core.hooksPath', hooks]);
    await runGitSequence(
      [
        ['update-ref', 'refs/heads/probe', head],
        ['update-ref', '-d', 'refs/heads/probe'],
      ],
      persistent(),
    );
    expect(await readdir(markers)).toEqual([]);
    // The planted hook is live: git run plainly runs it.
    gitSync(repo.dir, ['update-ref', 'refs/heads/probe', head]);
    expect(await readdir(markers)).toEqual(['reference-transaction']);
  });
});
