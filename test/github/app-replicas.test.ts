import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AgoraGitHub } from '../../src/github/agora-github.js';
import { RunLease } from '../../src/runs/lease.js';
import { RunRefs } from '../../src/runs/refs.js';
import { openLocalStore } from '../../src/git/local-store.js';
import { runReleases, until, commandPlan, checkRuns, examplePlan, startAppWorld, type AppWorld, outcomesOf } from './app-world.js';
import { scaled } from '../support/eventually.js';
import { workerGate } from '../support/gate.js';

/** Every check run on `sha` (not only the latest of each name): duplicates would show here. */
async function allCheckRuns(w: AppWorld, sha: string) {
  return w.octokit.paginate(w.octokit.rest.checks.listForRef, { owner: w.owner, repo: w.repo, ref: sha, filter: 'all', per_page: 100 });
}

/** Who holds a run's lease, as the repository on GitHub says. */
async function leaseHolder(w: AppWorld, runId: string): Promise<string | undefined> {
  const store = await openLocalStore(w.sim.repoDir(w.fullName));
  return (await RunLease.read(store, new RunRefs(), runId))?.holder;
}

/** Three app replicas behind one webhook URL, each receiving every webhook: the repository is the database. */
describe('three replicas of the app', () => {
  let w: AppWorld;
  beforeAll(async () => {
    // A lease of 4 s (times the machine factor) renewed every third of that: slack for a loaded machine, so
    // a live driver never loses its run; a dead one's run is taken over about ttl + 0.5 s after its last
    // renewal. (Unscaled, a full CI run once saw the taker lose the run to a third replica: 3 attempts.)
    w = await startAppWorld({
      replicas: 3,
      delivery: 'all',
      sweepMs: 300,
      sign: true,
      agoraOptions: { lease: { ttlMs: scaled(4000), refreshMs: 200, skewMs: 500 } },
    });
  }, scaled(60_000));
  afterAll(async () => w?.close());

  it('run the offload-fanout plan once: one check run per item, one set of PR commits, one release, a green gate', async () => {
    const sha = await w.sim.push(w.fullName, { branch: 'fanout', files: { 'plan.json': await examplePlan() }, message: 'Add the fan-out plan' });
    const pr = await w.sim.openPullRequest(w.fullName, { head: 'fanout', base: 'main', title: 'Fan out' });
    await until('the run to end', async () => (await checkRuns(w, sha)).get('agora')?.status === 'completed', w, 60_000);
    await w.quiesce();
    const runs = await allCheckRuns(w, sha);
    const names = runs.map((c) => c.name).sort();
    expect(names).toEqual(['agora', 'agora / edit-alpha', 'agora / edit-beta', 'agora / edit-shared', 'agora / verify']);
    for (const c of runs) expect(c, c.name).toMatchObject({ status: 'completed', conclusion: 'success' });
    const started = w.replicas.flatMap((a) => outcomesOf(a).plans.filter((o) => o.kind === 'started'));
    expect(started).toHaveLength(1);
    const commits = (await w.octokit.rest.pulls.listCommits({ owner: w.owner, repo: w.repo, pull_number: pr.number })).data;
    expect(commits).toHaveLength(4);
    const runId = `fanout-1-${sha.slice(0, 12)}`;
    const releases = await runReleases(w, runId);
    expect(releases).toHaveLength(1);
    const { release } = releases[0]!;
    expect(release.assets.map((a) => a.name).sort()).toEqual([`${runId}.audit.json`, `${runId}.audit.sigstore.json`, `${runId}.report.html`]);
    const gates = await allCheckRuns(w, commits.at(-1)!.sha);
    expect(gates.map((c) => [c.name, c.conclusion])).toEqual([['agora / audit', 'success']]);
    // The run ended: its lease was given back.
    const store = await openLocalStore(w.sim.repoDir(w.fullName));
    expect((await RunLease.read(store, new RunRefs(), runId))?.until).toBe(0);
    expect(w.errors).toEqual([]);
  });

  it('a cancel reaches the replica that drives the run, whichever replica records it', async () => {
    const sha = await w.sim.push(w.fullName, {
      branch: 'long',
      files: {
        'plan.json': commandPlan('long', [
          { id: 'slow', run: 'sleep 600' },
          { id: 'later', run: 'true', depends_on: ['slow'] },
        ]),
      },
      message: 'Slow plan',
    });
    const pr = await w.sim.openPullRequest(w.fullName, { head: 'long', base: 'main', title: 'Slow' });
    await until('the slow item to run', async () => (await checkRuns(w, sha)).get('agora / slow')?.status === 'in_progress', w);
    const runId = `long-${sha.slice(0, 12)}`;
    const holder = await leaseHolder(w, runId);
    const driver = w.replicas.find((a) => a.holder === holder)!;
    expect(driver).toBeDefined();
    await w.sim.setPullRequestState(w.fullName, pr.number, 'closed');
    await until('the run to end', async () => (await checkRuns(w, sha)).get('agora')?.status === 'completed', w);
    await w.quiesce(); // no driver is busy: the 10-minute sleep was stopped, not waited for
    const checks = await checkRuns(w, sha);
    for (const name of ['agora / slow', 'agora / later', 'agora'])
      expect(checks.get(name), name).toMatchObject({ status: 'completed', conclusion: 'cancelled' });
    expect(checks.get('agora / slow')!.output.summary).toContain(`cancelled: pull request #\u2060${pr.number} was closed by @\u2060`); // no mention: see untrusted-markdown.ts
    // Every replica received the closing; one recorded the cancel, the others found it recorded.
    const presses = w.replicas.flatMap((a) => outcomesOf(a).actions.filter((o) => 'runId' in o && o.runId === runId));
    expect(presses.filter((o) => o.kind === 'recorded')).toHaveLength(1);
    expect(presses.filter((o) => o.kind === 'no-change')).toHaveLength(2);
    expect((await allCheckRuns(w, sha)).filter((c) => c.name === 'agora / slow')).toHaveLength(1);
    expect(w.errors).toEqual([]);
  });

  it('when the driving replica dies mid-run, another takes the run over once its lease expires, and it ends green', async () => {
    const gate = workerGate(); // slow runs until the crash is over
    const text = commandPlan('crash', [
      { id: 'slow', run: `${gate.wait}; echo slow > slow.txt`, locks: ['slow.txt'] },
      { id: 'next', run: 'echo next > next.txt', depends_on: ['slow'], locks: ['next.txt'] },
    ]);
    const sha = await w.sim.push(w.fullName, { branch: 'crash', files: { 'plan.json': text }, message: 'Crash plan' });
    const pr = await w.sim.openPullRequest(w.fullName, { head: 'crash', base: 'main', title: 'Crash' });
    await until('slow to run', async () => (await checkRuns(w, sha)).get('agora / slow')?.status === 'in_progress', w);
    const runId = `crash-${sha.slice(0, 12)}`;
    const holder = await leaseHolder(w, runId);
    const dead: AgoraGitHub = w.replicas.find((a) => a.holder === holder)!;
    await dead.kill(); // a crash: its worker dies, nothing is recorded, the lease is left to expire
    w.removeReplica(dead);
    await gate.open();
    // The lease runs out (4 s, or longer if pushes were slow), then a sweep takes the run over and reruns slow.
    await until('the run to end', async () => (await checkRuns(w, sha)).get('agora')?.status === 'completed', w, 60_000);
    await w.quiesce();
    await gate.remove();
    const taker = await leaseHolder(w, runId);
    expect(taker).not.toBe(holder);
    expect(w.replicas.map((a) => a.holder)).toContain(taker);
    const checks = await checkRuns(w, sha);
    for (const name of ['agora', 'agora / slow', 'agora / next']) expect(checks.get(name), name).toMatchObject({ status: 'completed', conclusion: 'success' });
    expect(checks.get('agora / slow')!.output.summary).toContain('2 attempts');
    const commits = (await w.octokit.rest.pulls.listCommits({ owner: w.owner, repo: w.repo, pull_number: pr.number })).data;
    expect(commits.map((c) => c.commit.message.split('\n')[0])).toEqual(['Crash plan', expect.stringMatching(/^slow: /), expect.stringMatching(/^next: /)]);
    expect((await checkRuns(w, commits.at(-1)!.sha)).get('agora / audit')).toMatchObject({ status: 'completed', conclusion: 'success' });
    // Item checks were found again, not created twice.
    const all = await allCheckRuns(w, sha);
    expect(all.filter((c) => c.name === 'agora / next')).toHaveLength(1);
    expect(w.errors).toEqual([]);
  });
});
