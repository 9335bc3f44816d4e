import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash, randomBytes } from 'node:crypto';
import { cloneUrl, git, startWorld, type World } from '@agora/github-sim/harness';
import { PUSHES_PER_REPACK, startGitHubSim } from '@agora/github-sim';

describe('git smart HTTP (git http-backend) with installation tokens', () => {
  let w: World;
  let dirs: string[] = [];
  const tmp = async (): Promise<string> => {
    const d = await mkdtemp(join(tmpdir(), 'ghsim-clone-'));
    dirs.push(d);
    return d;
  };
  beforeAll(async () => {
    w = await startWorld();
  });
  afterEach(async () => {
    await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
    dirs = [];
  });
  afterAll(async () => {
    expect(w.sim.contractViolations).toEqual([]);
    await w.close();
  });

  const events = (name: string): Record<string, unknown>[] => w.receiver.received.filter((r) => r.name === name).map((r) => r.payload);

  it('clones with x-access-token, pushes a branch, and emits a push webhook with the commits', async () => {
    const token = await w.token();
    const dir = await tmp();
    await git(['clone', '--quiet', cloneUrl(w.sim, 'octo/demo', token), dir]);
    expect(await readFile(join(dir, 'README.md'), 'utf8')).toBe('# demo\n');
    await git(['checkout', '-q', '-b', 'feature'], dir);
    await writeFile(join(dir, 'new.txt'), 'new\n');
    await git(['add', '.'], dir);
    await git(['commit', '-q', '-m', 'add new'], dir);
    const sha = (await git(['rev-parse', 'HEAD'], dir)).trim();
    await git(['push', '-q', 'origin', 'feature'], dir);
    await w.sim.settle();
    expect((await git(['--git-dir', w.sim.repoDir('octo/demo'), 'rev-parse', 'refs/heads/feature'])).trim()).toBe(sha);
    const push = events('push').find((p) => p.ref === 'refs/heads/feature')!;
    expect(push).toMatchObject({ after: sha, created: true, deleted: false, forced: false, installation: { id: w.installationId } });
    const commits = push.commits as { id: string; added: string[] }[];
    expect(commits.map((c) => c.id)).toEqual([sha]);
    expect(commits[0]!.added).toEqual(['new.txt']);
    expect((push.sender as { login: string }).login).toBe(`${w.app.slug}[bot]`);
  });

  it('a push that deletes a packed branch emits its push webhook (deleted), as one that deletes a loose one does', async () => {
    const token = await w.token();
    const dir = await tmp();
    await git(['clone', '--quiet', cloneUrl(w.sim, 'octo/demo', token), dir]);
    await git(['push', '-q', 'origin', 'HEAD:refs/heads/gone-packed'], dir);
    await git(['--git-dir', w.sim.repoDir('octo/demo'), 'pack-refs', '--all']);
    await git(['push', '-q', 'origin', 'HEAD:refs/heads/gone-loose'], dir);
    const head = (await git(['rev-parse', 'HEAD'], dir)).trim();
    await git(['push', '-q', 'origin', '--delete', 'gone-packed'], dir);
    await git(['push', '-q', 'origin', '--delete', 'gone-loose'], dir);
    await w.sim.settle();
    for (const ref of ['refs/heads/gone-packed', 'refs/heads/gone-loose']) {
      expect(
        events('push').find((p) => p.ref === ref && p.deleted === true),
        ref,
      ).toMatchObject({ before: head, deleted: true, created: false });
    }
  });

  it('pushes via http.extraHeader too, and any refs/ namespace works; custom refs emit no webhook by default', async () => {
    const token = await w.token();
    const dir = await tmp();
    const header = `Authorization: Basic ${Buffer.from(`x-access-token:${token}`).toString('base64')}`;
    const url = `${w.sim.gitUrl}/octo/demo.git`;
    await git(['-c', `http.extraHeader=${header}`, 'clone', '--quiet', url, dir]);
    await writeFile(join(dir, 'state.json'), '{}');
    await git(['add', '.'], dir);
    await git(['commit', '-q', '-m', 'state'], dir);
    const before = w.receiver.received.length;
    await git(['-c', `http.extraHeader=${header}`, 'push', '-q', url, 'HEAD:refs/agora/runs/r1'], dir);
    await w.sim.settle();
    const refs = await git(['--git-dir', w.sim.repoDir('octo/demo'), 'for-each-ref', 'refs/agora/']);
    expect(refs).toContain('refs/agora/runs/r1');
    expect(w.receiver.received.slice(before).filter((r) => r.name === 'push')).toEqual([]);
    const listed = await w.octokit.git.listMatchingRefs({ owner: 'octo', repo: 'demo', ref: 'agora/runs/' });
    expect(listed.data.map((r) => r.ref)).toEqual(['refs/agora/runs/r1']);
  });

  it('rejects a push whose expected old id is stale (receive-pack is the compare-and-swap)', async () => {
    const token = await w.token();
    const a = await tmp();
    const b = await tmp();
    await git(['clone', '--quiet', cloneUrl(w.sim, 'octo/demo', token), a]);
    await git(['clone', '--quiet', cloneUrl(w.sim, 'octo/demo', token), b]);
    for (const [dir, text] of [
      [a, 'a'],
      [b, 'b'],
    ] as const) {
      await writeFile(join(dir, 'race.txt'), text);
      await git(['add', '.'], dir);
      await git(['commit', '-q', '-m', text], dir);
    }
    const base = (await git(['rev-parse', 'HEAD~1'], a)).trim();
    await git(['push', '-q', 'origin', 'HEAD:refs/agora/lease'], a);
    // b pushes with an explicit lease on the old value (absent): the server must refuse.
    await expect(git(['push', '-q', `--force-with-lease=refs/agora/lease:${base}`, 'origin', 'HEAD:refs/agora/lease'], b)).rejects.toThrow(/stale|rejected/);
    // non-fast-forward on a branch is refused too
    await git(['push', '-q', 'origin', 'HEAD:main'], a);
    await expect(git(['push', '-q', 'origin', 'HEAD:main'], b)).rejects.toThrow(/rejected|fetch first/);
  });

  it('keeps a repository packed as pushes come, as GitHub does: the loose objects pushes bring are rolled into packs', async () => {
    const token = await w.token();
    const dir = await tmp();
    await git(['clone', '--quiet', cloneUrl(w.sim, 'octo/demo', token), dir]);
    await git(['checkout', '-q', '-b', 'many-pushes'], dir);
    const loose = async () => Number(/^count: (\d+)$/m.exec(await git(['--git-dir', w.sim.repoDir('octo/demo'), 'count-objects', '-v']))![1]);
    const counts: number[] = [];
    for (let i = 0; i <= PUSHES_PER_REPACK; i += 1) {
      await writeFile(join(dir, 'pushed.txt'), `push ${i}\n`);
      await git(['add', 'pushed.txt'], dir);
      await git(['commit', '-q', '-m', `push ${i}`], dir);
      await git(['push', '-q', 'origin', 'HEAD:refs/agora/many-pushes'], dir); // a ref no webhook or check suite follows
      await w.sim.settle(); // the repack runs after the push has been answered
      counts.push(await loose());
    }
    // Within PUSHES_PER_REPACK + 1 pushes the loose count falls once (a repack), whatever came before this test.
    expect(
      counts.some((c, i) => i > 0 && c < counts[i - 1]!),
      `loose objects after each push: ${counts.join(' ')}`,
    ).toBe(true);
    await git(['--git-dir', w.sim.repoDir('octo/demo'), 'fsck', '--connectivity-only', '--no-dangling']);
    expect((await git(['--git-dir', w.sim.repoDir('octo/demo'), 'rev-parse', 'refs/agora/many-pushes'])).trim()).toBe(
      (await git(['rev-parse', 'HEAD'], dir)).trim(),
    );
  });

  it('refuses a push whose new commits touch .github/workflows without the workflows permission, naming the file', async () => {
    const token = await w.token();
    const dir = await tmp();
    await git(['clone', '--quiet', cloneUrl(w.sim, 'octo/demo', token), dir]);
    await git(['checkout', '-q', '-b', 'ci'], dir);
    await mkdir(join(dir, '.github', 'workflows'), { recursive: true });
    await writeFile(join(dir, '.github', 'workflows', 'ci.yml'), 'on: push\n');
    await git(['add', '.'], dir);
    await git(['commit', '-q', '-m', 'add a workflow'], dir);
    const refused = git(['push', 'origin', 'ci'], dir);
    await expect(refused).rejects.toThrow(
      /refusing to allow a GitHub App to create or update workflow `\.github\/workflows\/ci\.yml` without `workflows` permission/,
    );
    await expect(refused).rejects.toThrow(/pre-receive hook declined/);
    await expect(git(['--git-dir', w.sim.repoDir('octo/demo'), 'rev-parse', '--verify', '-q', 'refs/heads/ci'])).rejects.toThrow();
    // Commits that leave workflows alone are pushed as ever, even on top of a branch that has some.
    await git(['reset', '-q', '--hard', 'HEAD~1'], dir);
    await writeFile(join(dir, 'plain.txt'), 'no workflow after all\n');
    await git(['add', '.'], dir);
    await git(['commit', '-q', '-m', 'no workflow after all'], dir);
    await git(['push', '-q', 'origin', 'ci'], dir);
    expect((await git(['--git-dir', w.sim.repoDir('octo/demo'), 'rev-parse', 'refs/heads/ci'])).trim()).toBe((await git(['rev-parse', 'HEAD'], dir)).trim());
    // One push of several refs, the workflow only in the last one's commits: the whole push is refused.
    await git(['commit', '-q', '--allow-empty', '-m', 'plain again'], dir);
    await git(['branch', 'plain'], dir);
    await mkdir(join(dir, '.github', 'workflows'), { recursive: true });
    await writeFile(join(dir, '.github', 'workflows', 'late ci.yml'), 'on: push\n');
    await git(['add', '.'], dir);
    await git(['commit', '-q', '-m', 'a workflow, later'], dir);
    await expect(git(['push', 'origin', 'plain', 'HEAD:refs/heads/late'], dir)).rejects.toThrow(
      /workflow `\.github\/workflows\/late ci\.yml` without `workflows` permission/,
    );
    await expect(git(['--git-dir', w.sim.repoDir('octo/demo'), 'rev-parse', '--verify', '-q', 'refs/heads/plain'])).rejects.toThrow();
    // A push that only deletes has no new commits to check.
    await git(['push', '-q', 'origin', ':ci'], dir);
    await expect(git(['--git-dir', w.sim.repoDir('octo/demo'), 'rev-parse', '--verify', '-q', 'refs/heads/ci'])).rejects.toThrow();
  });

  it('the server itself refuses a receive-pack command whose old id is not the current one', async () => {
    const token = await w.token();
    const repoDir = w.sim.repoDir('octo/demo');
    const main = (await git(['--git-dir', repoDir, 'rev-parse', 'refs/heads/main'])).trim();
    const parent = (await git(['--git-dir', repoDir, 'rev-parse', 'refs/heads/main~1'])).trim();
    const target = (await git(['--git-dir', repoDir, 'rev-parse', 'refs/heads/feature'])).trim();
    const pkt = (line: string): string => (line.length + 4).toString(16).padStart(4, '0') + line;
    const header = Buffer.from([...'PACK'].map((c) => c.charCodeAt(0)).concat([0, 0, 0, 2, 0, 0, 0, 0]));
    const pack = Buffer.concat([header, createHash('sha1').update(header).digest()]);
    const body = Buffer.concat([Buffer.from(pkt(`${parent} ${target} refs/heads/main\0report-status\n`) + '0000'), pack]);
    const res = await fetch(`${w.sim.gitUrl}/octo/demo.git/git-receive-pack`, {
      method: 'POST',
      headers: {
        authorization: `Basic ${Buffer.from(`x-access-token:${token}`).toString('base64')}`,
        'content-type': 'application/x-git-receive-pack-request',
      },
      body,
    });
    const text = await res.text();
    expect(res.status).toBe(200);
    expect(text).toMatch(/ng refs\/heads\/main/);
    expect((await git(['--git-dir', repoDir, 'rev-parse', 'refs/heads/main'])).trim()).toBe(main);
  });

  it('accepts a chunked multi-megabyte push (no CONTENT_LENGTH) and serves it back', async () => {
    const token = await w.token();
    const dir = await tmp();
    await git(['clone', '--quiet', cloneUrl(w.sim, 'octo/demo', token), dir]);
    await writeFile(join(dir, 'big.bin'), randomBytes(3 * 1024 * 1024));
    await git(['add', '.'], dir);
    await git(['commit', '-q', '-m', 'big'], dir);
    const from = w.sim.requests.length;
    await git(['-c', 'http.postBuffer=65536', 'push', '-q', 'origin', 'HEAD:refs/heads/big'], dir);
    // The request log counts what the push uploaded: the 3 MiB of random bytes (incompressible) and a little more.
    await w.sim.settle(); // a request is logged once its handler is done, which may be after the client has its answer
    const uploaded = w.sim.requests
      .slice(from)
      .filter((r) => r.route === 'git-http' && r.method === 'POST')
      .reduce((sum, r) => sum + (r.requestBytes ?? 0), 0);
    expect(uploaded).toBeGreaterThan(3 * 1024 * 1024);
    expect(uploaded).toBeLessThan(3 * 1024 * 1024 + 64 * 1024);
    const again = await tmp();
    await git(['clone', '--quiet', '--branch', 'big', cloneUrl(w.sim, 'octo/demo', token), again]);
    expect((await readFile(join(again, 'big.bin'))).equals(await readFile(join(dir, 'big.bin')))).toBe(true);
    expect(w.sim.requests.some((r) => r.route === 'git-http' && r.write && r.status === 200)).toBe(true);
  });

  it('refuses anonymous, bad-token and read-only pushes, and hides uninstalled repos', async () => {
    const dir = await tmp();
    await expect(git(['clone', '--quiet', `${w.sim.gitUrl}/octo/demo.git`, dir + '/x'])).rejects.toThrow();
    await expect(git(['clone', '--quiet', cloneUrl(w.sim, 'octo/demo', 'ghs_bad'), dir + '/y'])).rejects.toThrow(/Authentication failed|401/);
    const ro = await w.appOctokit.apps.createInstallationAccessToken({ installation_id: w.installationId, permissions: { contents: 'read' } });
    await git(['clone', '--quiet', cloneUrl(w.sim, 'octo/demo', ro.data.token), dir + '/z']);
    await writeFile(join(dir, 'z', 'ro.txt'), 'ro');
    await git(['add', '.'], dir + '/z');
    await git(['commit', '-q', '-m', 'ro'], dir + '/z');
    await expect(git(['push', '-q', 'origin', 'HEAD:refs/heads/ro'], dir + '/z')).rejects.toThrow(/403|denied/);
    await w.sim.createRepo('octo', 'private', { 'a.txt': 'a' });
    await expect(git(['clone', '--quiet', cloneUrl(w.sim, 'octo/private', await w.token()), dir + '/p'])).rejects.toThrow(/not found|404/);
    const logged = w.sim.requests.filter((r) => r.route === 'git-http');
    expect(logged.some((r) => r.status === 401)).toBe(true);
    expect(logged.some((r) => r.status === 403 && r.write)).toBe(true);
  });

  it('a push to a pull request head emits pull_request synchronize and moves refs/pull/N/head', async () => {
    const featureSha = await w.sim.push('octo/demo', { branch: 'pr-branch', files: { 'pr.txt': '1' }, message: 'pr 1' });
    const pr = await w.sim.openPullRequest('octo/demo', { head: 'pr-branch', base: 'main', title: 'PR' });
    const token = await w.token();
    const dir = await tmp();
    await git(['clone', '--quiet', '--branch', 'pr-branch', cloneUrl(w.sim, 'octo/demo', token), dir]);
    await writeFile(join(dir, 'pr.txt'), '2');
    await git(['commit', '-q', '-am', 'pr 2'], dir);
    const next = (await git(['rev-parse', 'HEAD'], dir)).trim();
    await git(['push', '-q', 'origin', 'pr-branch'], dir);
    await w.sim.settle();
    const sync = events('pull_request').find((p) => p.action === 'synchronize')!;
    expect(sync).toMatchObject({ number: pr.number, before: featureSha, after: next });
    expect((sync.pull_request as { head: { sha: string } }).head.sha).toBe(next);
    expect((await git(['--git-dir', w.sim.repoDir('octo/demo'), 'rev-parse', `refs/pull/${pr.number}/head`])).trim()).toBe(next);
    const got = await w.octokit.pulls.get({ owner: 'octo', repo: 'demo', pull_number: pr.number });
    expect(got.data.head.sha).toBe(next);
  });

  it('emits push webhooks for custom refs when webhookEventsForCustomRefs is on', async () => {
    const w2 = await startWorld({ webhookEventsForCustomRefs: true });
    try {
      const dir = await tmp();
      await git(['clone', '--quiet', cloneUrl(w2.sim, 'octo/demo', await w2.token()), dir]);
      await git(['push', '-q', 'origin', 'HEAD:refs/agora/runs/r2'], dir);
      await w2.sim.settle();
      const push = w2.receiver.received.find((r) => r.name === 'push');
      expect(push?.payload).toMatchObject({ ref: 'refs/agora/runs/r2', created: true });
      expect(w2.sim.contractViolations).toEqual([]);
    } finally {
      await w2.close();
    }
  });

  it('emits no push webhook for HEAD when a push moves the branch HEAD names', async () => {
    const w2 = await startWorld({ webhookEventsForCustomRefs: true });
    try {
      const dir = await tmp();
      await git(['clone', '--quiet', cloneUrl(w2.sim, 'octo/demo', await w2.token()), dir]);
      await git(['commit', '--allow-empty', '-q', '-m', 'next'], dir);
      const branch = (await git(['symbolic-ref', '--short', 'HEAD'], dir)).trim();
      await git(['push', '-q', 'origin', `HEAD:refs/heads/${branch}`], dir);
      await w2.sim.settle();
      const refs = w2.receiver.received.filter((r) => r.name === 'push').map((r) => (r.payload as { ref: string }).ref);
      expect(refs).toEqual([`refs/heads/${branch}`]);
      expect(w2.sim.contractViolations).toEqual([]);
    } finally {
      await w2.close();
    }
  });

  it('startGitHubSim keeps repos in dataDir when given and serves them', async () => {
    const data = await tmp();
    const sim = await startGitHubSim({ dataDir: data });
    await sim.createRepo('o', 'r', { 'f.txt': 'f' });
    expect(sim.repoDir('o/r')).toBe(join(data, 'repos', 'o', 'r.git'));
    await sim.close();
  });
});
