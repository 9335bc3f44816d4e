import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { collectGarbage } from '../../src/runs/gc.js';
import { gcVerb } from '../../src/cli/gc.js';
import { openRemoteRuns, pushPrune } from '../../src/cli/gc-remote.js';
import type { Output } from '../../src/cli/output.js';
import { runGit } from '../../src/git/git-cli.js';
import { RunRefs } from '../../src/runs/refs.js';
import { scaled } from '../support/eventually.js';
import { cleanupTempDirs, tempDir } from '../support/repo.js';
import { checkRuns, commandPlan, runReleases, startAppWorld, type AppWorld } from '../github/app-world.js';

const HOUR = 3_600_000;
const refs = new RunRefs();

function capture(): Output & { stdout: string[]; stderr: string[] } {
  const stdout: string[] = [];
  const stderr: string[] = [];
  return { stdout, stderr, tty: false, out: (t) => stdout.push(t), err: (t) => stderr.push(t) };
}

describe('agora orch gc --remote: pruning a GitHub repository the App ran plans in', () => {
  let w: AppWorld;
  let clone: string;
  let env: NodeJS.ProcessEnv;

  /** The remote's refs under refs/agora/, as the API lists them. */
  const remoteRefs = async () =>
    new Map((await w.octokit.rest.git.listMatchingRefs({ owner: w.owner, repo: w.repo, ref: 'agora/' })).data.map((r) => [r.ref, r.object.sha] as const));

  /** Runs a one-item plan on a new branch through the App to its green gate; returns the run id. */
  async function finishedRun(branch: string): Promise<string> {
    const sha = await w.sim.push(w.fullName, {
      branch,
      files: { 'plan.json': commandPlan(branch, [{ id: 'one', run: `echo ${branch} > ${branch}.txt`, locks: [`${branch}.txt`] }]) },
      message: `Plan ${branch}`,
    });
    await w.sim.openPullRequest(w.fullName, { head: branch, base: 'main', title: branch });
    await w.quiesce();
    // The gate is set on the branch's new head, the patches pushed onto the plan commit.
    const head = (await w.octokit.rest.git.getRef({ owner: w.owner, repo: w.repo, ref: `heads/${branch}` })).data.object.sha;
    expect((await checkRuns(w, head)).get('agora / audit')?.conclusion).toBe('success');
    return `${branch}-${sha.slice(0, 12)}`;
  }

  beforeAll(async () => {
    w = await startAppWorld({ sign: true });
    clone = tempDir('agora-gc-remote-clone-');
    await runGit(['init', '--quiet', clone]);
    await runGit(['remote', 'add', 'origin', `${w.sim.gitUrl}/${w.fullName}.git`], { cwd: clone });
    const app = await w.probot.auth();
    const { token } = (await app.request('POST /app/installations/{installation_id}/access_tokens', { installation_id: w.installationId })).data;
    env = { GITHUB_TOKEN: token, GITHUB_API_URL: w.sim.apiUrl };
  }, scaled(60_000));
  afterAll(async () => {
    await w?.close();
    await cleanupTempDirs();
  });

  it('prunes a run whose bundle the release holds: one atomic push leaves the anchor archive; a dry run changes nothing', async () => {
    const runId = await finishedRun('gcrem');
    const [release] = await runReleases(w, runId);
    const root = (JSON.parse(release!.assets.get(`${runId}.audit.json`)!) as { root: string }).root;
    const before = await remoteRefs();
    expect(before.has(refs.run(runId))).toBe(true);

    const dry = capture();
    expect(await gcVerb({ repo: clone, olderThan: '1h', remote: 'origin', bundlesInReleases: true, dryRun: true }, dry, Date.now() + 2 * HOUR, env)).toBe(0);
    expect(JSON.parse(dry.stdout.join('\n')).pruned.map((p: { runId: string }) => p.runId)).toEqual([runId]);
    expect(await remoteRefs()).toEqual(before);

    const io = capture();
    expect(await gcVerb({ repo: clone, olderThan: '1h', remote: 'origin', bundlesInReleases: true }, io, Date.now() + 2 * HOUR, env)).toBe(0);
    const report = JSON.parse(io.stdout.join('\n'));
    expect(report.pruned).toEqual([expect.objectContaining({ runId, bundle: expect.stringContaining(`${runId}.audit.json`) })]);
    const after = await remoteRefs();
    expect([...after.keys()].filter((r) => r.includes(runId))).toEqual([]);
    expect(after.has(refs.anchorArchive)).toBe(true);
    const archived = await w.octokit.rest.repos.getContent({ owner: w.owner, repo: w.repo, path: `${runId}.json`, ref: after.get(refs.anchorArchive)! });
    const anchored = JSON.parse(Buffer.from((archived.data as { content: string }).content, 'base64').toString('utf8'));
    expect(anchored).toMatchObject({ runId, root });
  });

  it('keeps a run whose release lost its bundle, and says so', async () => {
    const runId = await finishedRun('gcnorel');
    const [release] = await runReleases(w, runId);
    const asset = release!.release.assets.find((a) => a.name === `${runId}.audit.json`)!;
    await w.octokit.rest.repos.deleteReleaseAsset({ owner: w.owner, repo: w.repo, asset_id: asset.id });
    const io = capture();
    expect(await gcVerb({ repo: clone, olderThan: '1h', remote: 'origin', bundlesInReleases: true }, io, Date.now() + 2 * HOUR, env)).toBe(1);
    const report = JSON.parse(io.stdout.join('\n'));
    expect(report.pruned).toEqual([]);
    expect(report.skipped).toEqual([{ runId, why: expect.stringMatching(/^release agora-run-.* has no uploaded asset .*\.audit\.json; it stays/) }]);
    expect((await remoteRefs()).has(refs.run(runId))).toBe(true);
  });

  it('removes nothing on the remote when one of its refs moved after the fetch', async () => {
    const runId = await finishedRun('gcmoved');
    const now = Date.now() + 2 * HOUR;
    const runs = await openRemoteRuns(`${w.sim.gitUrl}/${w.fullName}.git`, env.GITHUB_TOKEN!, refs.ns);
    try {
      const report = await collectGarbage(runs.store, refs, { before: now - HOUR, now, keepBundle: async () => ({ kept: true, where: 'test' }) });
      expect(report.pruned.map((p) => p.runId)).toContain(runId);
      // Meanwhile a replica renews the run's lease on GitHub.
      const lease = refs.lease(runId).slice('refs/'.length);
      const moved = (await w.octokit.rest.git.getRef({ owner: w.owner, repo: w.repo, ref: `heads/gcmoved` })).data.object.sha;
      await w.octokit.rest.git.updateRef({ owner: w.owner, repo: w.repo, ref: lease, sha: moved, force: true });
      const before = await remoteRefs();
      await expect(pushPrune(runs, refs.ns)).rejects.toMatchObject({ code: 'gc-remote-moved', message: expect.stringContaining('nothing was removed') });
      expect(await remoteRefs()).toEqual(before);
    } finally {
      await runs.close();
    }
  });

  it('refuses to start without a token, or with --bundles-in-releases but no remote', async () => {
    await expect(gcVerb({ repo: clone, olderThan: '1h', remote: 'origin', discardBundles: true }, capture(), Date.now(), {})).rejects.toMatchObject({
      code: 'gc-remote',
      hint: expect.stringContaining('GITHUB_TOKEN'),
    });
    await expect(gcVerb({ repo: clone, olderThan: '1h', bundlesInReleases: true }, capture(), Date.now(), env)).rejects.toMatchObject({ code: 'gc-options' });
    await expect(gcVerb({ repo: clone, olderThan: '1h', remote: 'nosuch', discardBundles: true }, capture(), Date.now(), env)).rejects.toMatchObject({
      code: 'gc-remote',
    });
  });
});
