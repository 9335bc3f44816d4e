import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RunLease } from '../../src/runs/lease.js';
import { RunRefs } from '../../src/runs/refs.js';
import { openLocalStore } from '../../src/git/local-store.js';
import { scaled } from '../support/eventually.js';
import { checkRuns, commandPlan, runBound, startAppWorld, until, type AppWorld, outcomesOf } from './app-world.js';

/**
 * A GitHub slower than the run lease: every git request to the simulator takes 150 ms more, so a push
 * (ref advertisement + pack) takes over 300 ms, against a lease of 200 ms with no skew allowance. A lease
 * written for its configured length would land already expired, and three replicas would take the run
 * from each other on every write; a lease sized by the round trips it measured holds, and the run is
 * driven once, to a green gate.
 */
describe('three replicas against a GitHub whose pushes outlast the lease', () => {
  let w: AppWorld;
  const GIT_LATENCY_MS = 150;
  const LEASE = { ttlMs: 200, refreshMs: 200, skewMs: 0 };
  beforeAll(async () => {
    w = await startAppWorld({ replicas: 3, delivery: 'all', sweepMs: 300, agoraOptions: { lease: LEASE } });
  }, scaled(60_000));
  afterAll(async () => w?.close());

  it(
    'the run converges: one driver, each item run once, the lease never lost, a green gate',
    async () => {
      const from = w.sim.requests.length;
      w.sim.setFaults({ gitLatencyMs: GIT_LATENCY_MS });
      const text = commandPlan('slowgit', [
        { id: 'one', run: 'echo one > one.txt', locks: ['one.txt'] },
        { id: 'two', run: 'echo two > two.txt', depends_on: ['one'], locks: ['two.txt'] },
      ]);
      const sha = await w.sim.push(w.fullName, { branch: 'slowgit', files: { 'plan.json': text }, message: 'Plan on a slow GitHub' });
      const pr = await w.sim.openPullRequest(w.fullName, { head: 'slowgit', base: 'main', title: 'Slow GitHub' });
      await until('the run to end', async () => (await checkRuns(w, sha)).get('agora')?.status === 'completed', w, runBound(2, 4));
      // The run check completes last, after the branch, the release and the gate: the run converged under the
      // latency. Lift it before waiting for quiet: three replicas sweeping every 300 ms over a slow git on a
      // loaded machine are never all idle at once.
      const to = w.sim.requests.length;
      w.sim.setFaults({});
      await w.quiesce();

      // The pushes really were slower than the lease.
      const pushes = w.sim.requests.slice(from, to).filter((r) => r.route === 'git-http' && r.write);
      expect(pushes.length).toBeGreaterThan(0);
      expect(Math.min(...pushes.map((r) => r.durationMs))).toBeGreaterThanOrEqual(GIT_LATENCY_MS);

      const checks = await checkRuns(w, sha);
      for (const name of ['agora', 'agora / one', 'agora / two']) expect(checks.get(name), name).toMatchObject({ status: 'completed', conclusion: 'success' });
      // Never taken over: a take-over records the running attempt lost and runs it again.
      for (const item of ['one', 'two']) expect(checks.get(`agora / ${item}`)!.output.summary, item).toContain('**done** after 1 attempt.');
      expect(w.replicas.flatMap((a) => outcomesOf(a).plans.filter((o) => o.kind === 'started'))).toHaveLength(1);
      const commits = (await w.octokit.rest.pulls.listCommits({ owner: w.owner, repo: w.repo, pull_number: pr.number })).data;
      expect(commits.map((c) => c.commit.message.split('\n')[0])).toEqual([
        'Plan on a slow GitHub',
        expect.stringMatching(/^one: /),
        expect.stringMatching(/^two: /),
      ]);
      expect((await checkRuns(w, commits.at(-1)!.sha)).get('agora / audit')).toMatchObject({ status: 'completed', conclusion: 'success' });
      // The lease was written long enough for the pushes that carry it, and given back when the run ended.
      const store = await openLocalStore(w.sim.repoDir(w.fullName));
      expect((await RunLease.read(store, new RunRefs(), `slowgit-${sha.slice(0, 12)}`))?.until).toBe(0);
      expect(w.errors).toEqual([]);
    },
    scaled(runBound(2, 6)),
  );
});
