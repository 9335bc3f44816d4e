import { existsSync } from 'node:fs';
import { chmod, mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AgoraError } from '../../src/errors.js';
import { GitCommandError, runGit } from '../../src/git/git-cli.js';
import { openLocalStore } from '../../src/git/local-store.js';
import { captureWorkspace, materializeWorkspace, retargetWorkspace } from '../../src/git/workspace.js';
import { RemoteMirror } from '../../src/github/remote-sync.js';
import { gitSync, initRepo, tempDir } from './git-fixtures.js';

const TOKEN = 'ghs_canaryTokenValue0123456789';

describe('the git runner', () => {
  it('fails with a typed error that names the command and git’s stderr, with the secret scrubbed', async () => {
    const repo = await initRepo();
    try {
      const err = await runGit(['cat-file', '-t', TOKEN], { gitDir: repo.gitdir, secrets: [TOKEN], hint: 'try again' }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(GitCommandError);
      expect(err).toBeInstanceOf(AgoraError);
      const e = err as GitCommandError;
      expect(e.code).toBe('git-failed');
      expect(e.hint).toBe('try again');
      expect(e.exitStatus).toBe(128);
      expect(e.message).toContain('git cat-file -t ***');
      expect(e.message).toContain('Not a valid object name ***');
      expect(`${e.message}${e.stderr}${e.stdout}${e.command}`).not.toContain(TOKEN);
    } finally {
      await repo.cleanup();
    }
  });

  it('keeps a secret setting out of the arguments and scrubs its value from what a failure carries', async () => {
    const repo = await initRepo();
    try {
      const header = `Authorization: Basic ${Buffer.from(`x-access-token:${TOKEN}`).toString('base64')}`;
      // The value reaches git (it prints it), and the failure that follows carries no copy of it.
      const err = await runGit(['config', '--get', 'http.extraheader'], { gitDir: repo.gitdir, secretConfig: [['http.extraHeader', header]] })
        .then(() =>
          runGit(['config', '--get', 'http.extraheader', 'no-such-value-pattern'], { gitDir: repo.gitdir, secretConfig: [['http.extraHeader', header]] }),
        )
        .catch((e: unknown) => e);
      expect(err).toBeInstanceOf(GitCommandError);
      const seen = await runGit(['config', '--get', 'http.extraheader'], { gitDir: repo.gitdir, secretConfig: [['http.extraHeader', header]] });
      expect(seen.trim()).toBe(header);
      expect(JSON.stringify(err)).not.toContain(header);
    } finally {
      await repo.cleanup();
    }
  });

  it('gives the mirror’s failures as typed errors without the token, raw or in its header', async () => {
    const tmp = await tempDir();
    try {
      // Port 1 on the loopback refuses at once: no network, a real failure of git fetch.
      const mirror = await RemoteMirror.open(join(tmp.path, 'm.git'), `http://127.0.0.1:1/${TOKEN}/repo.git`, async () => TOKEN);
      const err = await mirror.fetchRefs(['+refs/heads/*:refs/heads/*']).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(GitCommandError);
      const e = err as GitCommandError;
      expect(e.code).toBe('git-failed');
      expect(e.command).toMatch(/^git fetch /);
      const basic = Buffer.from(`x-access-token:${TOKEN}`).toString('base64');
      for (const text of [e.message, e.stderr, e.stdout, e.command]) {
        expect(text).not.toContain(TOKEN);
        expect(text).not.toContain(basic);
      }
    } finally {
      await tmp.cleanup();
    }
  });
});

describe('nothing the repository’s config names runs on an Agora git command', () => {
  let repo: { dir: string; gitdir: string; cleanup: () => Promise<void> };
  let markers: string;
  let base: string;
  let next: string;

  beforeAll(async () => {
    repo = await initRepo();
    markers = join(repo.dir, '..', 'markers');
    await mkdir(markers);
    await writeFile(join(repo.dir, '.gitattributes'), '*.txt filter=evil\n');
    await writeFile(join(repo.dir, 'a.txt'), 'one\n');
    gitSync(repo.dir, ['add', '--all']);
    gitSync(repo.dir, ['commit', '-q', '-m', 'base']);
    base = gitSync(repo.dir, ['rev-parse', 'HEAD']).trim();
    await writeFile(join(repo.dir, 'a.txt'), 'two\n');
    gitSync(repo.dir, ['commit', '-q', '-am', 'next']);
    next = gitSync(repo.dir, ['rev-parse', 'HEAD']).trim();
    // Planted after the commits: every hook git 2.39 runs on these commands (in .git/hooks and in a
    // hooks dir the config names), fsmonitor, and a required filter driver that would leave a marker.
    const plant = async (dir: string, label: string) => {
      await mkdir(dir, { recursive: true });
      for (const name of ['post-index-change', 'reference-transaction', 'post-checkout', 'post-merge', 'pre-auto-gc']) {
        await writeFile(join(dir, name), `#!/bin/sh\ntouch '${markers}/${label}-${name}'\n`);
        await chmod(join(dir, name), 0o755);
      }
    };
    await plant(join(repo.gitdir, 'hooks'), 'git');
    // Asked plainly, git runs the planted hook: the markers directory would show one.
    gitSync(repo.dir, ['update-ref', 'refs/heads/probe', base]);
    gitSync(repo.dir, ['update-ref', '-d', 'refs/heads/probe']);
    expect(await readdir(markers)).toContain('git-reference-transaction');
    await rm(markers, { recursive: true });
    await mkdir(markers);
    await plant(join(repo.dir, '..', 'other-hooks'), 'other');
    gitSync(repo.dir, ['config', 'core.hooksPath', join(repo.dir, '..', 'other-hooks')]);
    const script = (name: string) => `touch '${markers}/${name}'; cat`;
    gitSync(repo.dir, ['config', 'filter.evil.smudge', script('smudge')]);
    gitSync(repo.dir, ['config', 'filter.evil.clean', script('clean')]);
    gitSync(repo.dir, ['config', 'filter.evil.required', 'true']);
    const fsmonitor = join(repo.dir, '..', 'fsmonitor.sh');
    await writeFile(fsmonitor, `#!/bin/sh\ntouch '${markers}/fsmonitor'\n`);
    await chmod(fsmonitor, 0o755);
    gitSync(repo.dir, ['config', 'core.fsmonitor', fsmonitor]);
  });
  afterAll(() => repo.cleanup());

  it('materialise, capture and re-target a workspace, and a merge, run no hook, fsmonitor or filter', async () => {
    const store = await openLocalStore(repo.dir);
    const work = await tempDir('agora-ws-');
    try {
      const ws = await materializeWorkspace(store, base, join(work.path, 'w'), { method: 'cli' });
      await writeFile(join(ws.dir, 'b.txt'), 'new\n');
      const captured = await captureWorkspace(ws);
      expect(captured.changes.map((c) => c.path)).toEqual(['b.txt']);
      await retargetWorkspace(ws, next, captured);
      await runGit(['merge', '--ff-only', '--quiet', next], { cwd: repo.dir });
      await runGit(['status', '--porcelain'], { cwd: repo.dir });
      expect(await readdir(markers)).toEqual([]);
      expect(existsSync(join(ws.dir, 'a.txt'))).toBe(true);
    } finally {
      await work.cleanup();
    }
  });

  it("runs no signature program the repository's config names, for a merge of a signed commit", async () => {
    const other = await initRepo();
    try {
      const marker = join(other.dir, '..', 'gpg-ran');
      const gpg = join(other.dir, '..', 'gpg.sh');
      await writeFile(gpg, `#!/bin/sh\ntouch '${marker}'\nexit 1\n`);
      await chmod(gpg, 0o755);
      await writeFile(join(other.dir, 'a.txt'), 'one\n');
      gitSync(other.dir, ['add', '--all']);
      gitSync(other.dir, ['commit', '-q', '-m', 'base']);
      const head = gitSync(other.dir, ['rev-parse', 'HEAD']).trim();
      const tree = gitSync(other.dir, ['rev-parse', 'HEAD^{tree}']).trim();
      // A commit that says it is signed: checking it runs gpg.program.
      const body = [
        `tree ${tree}`,
        `parent ${head}`,
        'author A <a@a> 1700000000 +0000',
        'committer A <a@a> 1700000000 +0000',
        'gpgsig -----BEGIN PGP SIGNATURE-----',
        ' ',
        ' iQEzBAABCAAdFiEE',
        ' -----END PGP SIGNATURE-----',
        '',
        'signed, so it says',
        '',
      ].join('\n');
      const signed = gitSync(other.dir, ['hash-object', '-t', 'commit', '-w', '--stdin'], { input: body }).trim();
      gitSync(other.dir, ['config', 'merge.verifySignatures', 'true']);
      gitSync(other.dir, ['config', 'gpg.program', gpg]);
      await runGit(['merge', '--ff-only', '--quiet', signed], { cwd: other.dir });
      expect(existsSync(marker)).toBe(false);
      expect(gitSync(other.dir, ['rev-parse', 'HEAD']).trim()).toBe(signed);
    } finally {
      await other.cleanup();
    }
  });

  it('runs no filter a file included from the config defines either', async () => {
    const other = await initRepo();
    const work = await tempDir('agora-ws-');
    try {
      await writeFile(join(other.dir, '.gitattributes'), '* filter=elsewhere\n');
      await writeFile(join(other.dir, 'a.txt'), 'one\n');
      gitSync(other.dir, ['add', '--all']);
      gitSync(other.dir, ['commit', '-q', '-m', 'base']);
      const head = gitSync(other.dir, ['rev-parse', 'HEAD']).trim();
      const included = join(other.dir, '..', 'included.config');
      await writeFile(included, `[filter "elsewhere"]\n\tsmudge = touch '${markers}/included-smudge'; cat\n\trequired = true\n`);
      gitSync(other.dir, ['config', 'include.path', included]);
      const ws = await materializeWorkspace(await openLocalStore(other.dir), head, join(work.path, 'w'), { method: 'cli' });
      expect(await readdir(ws.dir)).toEqual(['.gitattributes', 'a.txt']);
      expect(await readdir(markers)).toEqual([]);
    } finally {
      await work.cleanup();
      await other.cleanup();
    }
  });
});
