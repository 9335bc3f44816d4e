import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HttpError } from '@agora/github-sim/http';
import { git } from '@agora/github-sim/harness';
import { armAppCrash, until, commandPlan, checkRuns, restartUntilRunEnds, runReleases, startAppWorld, type AppWorld, outcomesOf } from './app-world.js';
import { scaled } from '../support/eventually.js';
import { workerGate } from '../support/gate.js';

/** A crashed app's runs are resumed by the next process; plan commits whose webhooks were lost are found. */
describe('restart recovery and the sweep', () => {
  let w: AppWorld;
  beforeAll(async () => {
    w = await startAppWorld({ sweepMs: 500 });
  }, scaled(60_000));
  afterAll(async () => w?.close());

  it('a fresh process resumes a run the killed one was driving: the lost attempt runs again, everything ends green', async () => {
    const gate = workerGate(); // slow runs until the crash is over
    const text = commandPlan('crash', [
      { id: 'slow', run: `${gate.wait}; echo slow > slow.txt`, locks: ['slow.txt'] },
      { id: 'next', run: 'echo next > next.txt', depends_on: ['slow'], locks: ['next.txt'] },
    ]);
    const sha = await w.sim.push(w.fullName, { branch: 'crash', files: { 'plan.json': text }, message: 'Crash plan' });
    const pr = await w.sim.openPullRequest(w.fullName, { head: 'crash', base: 'main', title: 'Crash' });
    await until('slow to run', async () => (await checkRuns(w, sha)).get('agora / slow')?.status === 'in_progress', w);
    await w.agora.kill(); // a crash: the worker dies, nothing is recorded
    const fresh = await restartUntilRunEnds(w, sha, gate); // sweeps at start: the run is `running` on GitHub and nobody drives it
    const checks = await checkRuns(w, sha);
    for (const name of ['agora', 'agora / slow', 'agora / next']) expect(checks.get(name)).toMatchObject({ status: 'completed', conclusion: 'success' });
    expect(checks.get('agora / slow')!.output.summary).toContain('2 attempts');
    const commits = (await w.octokit.rest.pulls.listCommits({ owner: w.owner, repo: w.repo, pull_number: pr.number })).data;
    expect(commits.map((c) => c.commit.message.split('\n')[0])).toEqual(['Crash plan', expect.stringMatching(/^slow: /), expect.stringMatching(/^next: /)]);
    expect((await checkRuns(w, commits.at(-1)!.sha)).get('agora / audit')).toMatchObject({ status: 'completed', conclusion: 'success' });
    expect(outcomesOf(fresh).plans).not.toContainEqual(expect.objectContaining({ kind: 'started' })); // resumed, not started again
    expect(outcomesOf(fresh).sweeps.flatMap((r) => r.resumed)).toEqual([`crash-${sha.slice(0, 12)}`]); // told by the sweep's report
    expect(w.errors).toEqual([]);
  });

  it('with the push and pull_request webhooks dropped, the periodic sweep finds the plan commit on the open PR and runs it', async () => {
    w.sim.setFaults({ dropWebhookRate: 1 });
    const sha = await w.sim.push(w.fullName, {
      branch: 'quiet',
      files: { 'plan.json': commandPlan('quiet', [{ id: 'one', run: 'echo one > one.txt', locks: ['one.txt'] }]) },
      message: 'Quiet plan',
    });
    await w.sim.openPullRequest(w.fullName, { head: 'quiet', base: 'main', title: 'Quiet' });
    await w.sim.settle();
    const dropped = w.sim.webhookDeliveries.filter((d) => d.event === 'push' || d.event === 'pull_request');
    expect(
      dropped
        .slice(-2)
        .map((d) => d.event)
        .sort(),
    ).toEqual(['pull_request', 'push']);
    w.sim.setFaults({});
    await until('the sweep to run the plan', async () => (await checkRuns(w, sha)).get('agora')?.status === 'completed', w);
    await w.quiesce();
    const checks = await checkRuns(w, sha);
    expect(checks.get('agora / one')).toMatchObject({ status: 'completed', conclusion: 'success' });
    expect(checks.get('agora')).toMatchObject({ status: 'completed', conclusion: 'success' });
    expect(outcomesOf(w.agora).plans).toContainEqual({ kind: 'started', runId: `quiet-${sha.slice(0, 12)}` });
    expect(outcomesOf(w.agora).sweeps.flatMap((r) => r.discovered)).toContainEqual({ kind: 'started', runId: `quiet-${sha.slice(0, 12)}` });
    expect(w.errors).toEqual([]);
  });
  it('a process killed after the run ended but before its finish: the next one finishes it (patches pushed, release, gate, agora check), once', async () => {
    const crashed = armAppCrash(w, 'run-ended', 1);
    const text = commandPlan('ended', [{ id: 'one', run: 'echo one > one.txt', locks: ['one.txt'] }]);
    const sha = await w.sim.push(w.fullName, { branch: 'ended', files: { 'plan.json': text }, message: 'Ended plan' });
    const pr = await w.sim.openPullRequest(w.fullName, { head: 'ended', base: 'main', title: 'Ended' });
    const runId = `ended-${sha.slice(0, 12)}`;
    await until('the app to crash once the run ended', async () => crashed(), w);
    await w.quiesce();
    // What the crash left: the run's final state is on GitHub, its finish not begun.
    expect((await checkRuns(w, sha)).get('agora')?.status).not.toBe('completed');
    expect(w.errors.filter((e) => !e.includes('crashed at run-ended'))).toEqual([]);
    w.errors.length = 0;

    const fresh = await w.restartApp();
    await until('the run check to be completed', async () => (await checkRuns(w, sha)).get('agora')?.status === 'completed', w);
    await w.quiesce();
    const checks = await checkRuns(w, sha);
    for (const name of ['agora', 'agora / one']) expect(checks.get(name)).toMatchObject({ status: 'completed', conclusion: 'success' });
    const commits = (await w.octokit.rest.pulls.listCommits({ owner: w.owner, repo: w.repo, pull_number: pr.number })).data;
    expect(commits.map((c) => c.commit.message.split('\n')[0])).toEqual(['Ended plan', expect.stringMatching(/^one: /)]);
    expect((await checkRuns(w, commits.at(-1)!.sha)).get('agora / audit')).toMatchObject({ status: 'completed', conclusion: 'success' });
    expect(await runReleases(w, runId)).toHaveLength(1);
    const drafts = (await w.octokit.paginate(w.octokit.rest.repos.listReleases, { owner: w.owner, repo: w.repo, per_page: 100 })).filter((r) => r.draft);
    expect(drafts).toEqual([]);
    const sweeps = outcomesOf(fresh).sweeps;
    expect(sweeps.flatMap((r) => r.finished)).toEqual([runId]); // finished once, never resumed as running
    expect(sweeps.flatMap((r) => r.resumed)).toEqual([]);
    // Later sweeps leave the finished run alone: its lease is given back.
    const before = sweeps.length;
    await until('two more sweeps', async () => outcomesOf(fresh).sweeps.length >= before + 2, w);
    expect(outcomesOf(fresh).sweeps.flatMap((r) => r.finished)).toEqual([runId]);
    expect(w.errors).toEqual([]);
  });

  it('an app closed while GitHub refuses its finish hands the lease back expired, and the next process finishes the run', async () => {
    // The finish is under way (patches pushed, bundle built) when the app is told to close, and GitHub
    // answers 503 to the release's creation until the app has closed: close() must not give the lease
    // of a run whose finish is not over back, or no sweep would ever finish it.
    let closing: Promise<void> | undefined;
    const closed = w.agora;
    w.sim.setFaults({
      beforeRequest: (r) => {
        if (r.method !== 'POST' || r.route !== '/repos/{owner}/{repo}/releases') return;
        closing ??= closed.close();
        throw new HttpError(503, 'Service Unavailable');
      },
    });
    const text = commandPlan('closed', [{ id: 'one', run: 'echo one > one.txt', locks: ['one.txt'] }]);
    const sha = await w.sim.push(w.fullName, { branch: 'closed', files: { 'plan.json': text }, message: 'Closed plan' });
    const pr = await w.sim.openPullRequest(w.fullName, { head: 'closed', base: 'main', title: 'Closed' });
    const runId = `closed-${sha.slice(0, 12)}`;
    await until('the app to be closed during the finish', async () => closing !== undefined, w);
    await closing;
    w.sim.setFaults({});
    expect((await checkRuns(w, sha)).get('agora')?.status).not.toBe('completed');
    // Handed back already expired (1), neither given back as after a finish (0) nor left to run out its time.
    const lease = await git(['log', '-1', '--format=%B', `refs/agora/leases/${runId}`], w.sim.repoDir(w.fullName));
    expect(lease).toMatch(/^Agora-Lease-Until: 1$/m);
    expect(w.errors.filter((e) => !e.includes('Service Unavailable'))).toEqual([]);
    w.errors.length = 0;

    const fresh = await w.restartApp();
    await until('the run check to be completed', async () => (await checkRuns(w, sha)).get('agora')?.status === 'completed', w);
    await w.quiesce();
    expect((await checkRuns(w, sha)).get('agora')).toMatchObject({ status: 'completed', conclusion: 'success' });
    const commits = (await w.octokit.rest.pulls.listCommits({ owner: w.owner, repo: w.repo, pull_number: pr.number })).data;
    expect(commits.map((c) => c.commit.message.split('\n')[0])).toEqual(['Closed plan', expect.stringMatching(/^one: /)]);
    expect((await checkRuns(w, commits.at(-1)!.sha)).get('agora / audit')).toMatchObject({ status: 'completed', conclusion: 'success' });
    expect(await runReleases(w, runId)).toHaveLength(1);
    expect(outcomesOf(fresh).sweeps.flatMap((r) => r.finished)).toEqual([runId]);
    expect(w.errors).toEqual([]);
  });

  it('a sweep that fails to take an ended, unfinished run over leaves it for the next sweep, which finishes it', async () => {
    const crashed = armAppCrash(w, 'run-ended', 1);
    const text = commandPlan('retaken', [{ id: 'one', run: 'echo one > one.txt', locks: ['one.txt'] }]);
    const sha = await w.sim.push(w.fullName, { branch: 'retaken', files: { 'plan.json': text }, message: 'Retaken plan' });
    await until('the app to crash once the run ended', async () => crashed(), w);
    await w.quiesce();
    w.errors.length = 0;
    // The first take-over's listing of the commit's check runs (after the one that found the finish pending) fails.
    let lists = 0;
    w.sim.setFaults({
      beforeRequest: (r) => {
        if (r.route !== '/repos/{owner}/{repo}/commits/{ref}/check-runs' || r.params.ref !== sha) return;
        lists += 1;
        if (lists === 2) throw new HttpError(403, 'Resource not accessible by integration');
      },
    });
    const fresh = await w.restartApp();
    // No listing of ours until the take-over's has failed: the hook counts every caller's.
    await until('the take-over to fail', async () => lists >= 2, w);
    await until('the run check to be completed', async () => (await checkRuns(w, sha)).get('agora')?.status === 'completed', w);
    await w.quiesce();
    w.sim.setFaults({});
    expect(outcomesOf(fresh).sweeps.flatMap((r) => r.errors)).toContainEqual(expect.stringContaining('Resource not accessible by integration'));
    expect((await checkRuns(w, sha)).get('agora')).toMatchObject({ status: 'completed', conclusion: 'success' });
    expect(outcomesOf(fresh).sweeps.flatMap((r) => r.finished)).toEqual([`retaken-${sha.slice(0, 12)}`]);
  });

  it('a paused sweep, resumed, is idle at once and then sweeps every interval again', async () => {
    const app = w.agora;
    app.pauseSweeping();
    await app.idle(); // a pass under way finishes
    const before = outcomesOf(app).sweeps.length;
    app.resumeSweeping();
    expect(app.busy).toBe(false); // no pass at once: whoever paused it to drain the app finds it drained
    await until('two periodic passes', async () => outcomesOf(app).sweeps.length >= before + 2, w);
  });
});
