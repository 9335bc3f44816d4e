import { randomUUID } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RETRY_ACTION } from '../../src/github/agora-github.js';
import { until, commandPlan, checkRuns, restartUntilRunEnds, startAppWorld, outcomesOf, type AppWorld } from './app-world.js';
import { scaled } from '../support/eventually.js';
import { workerGate } from '../support/gate.js';

/**
 * GitHub keeps at most 1,000 check runs of one name in a check suite and deletes the oldest beyond that
 * (issue 13, item 8). Here the simulator keeps one, so every new check run of a name deletes the one
 * before: the App's Retry and its resume after a restart must not need an old check run to exist.
 */
describe('a suite that keeps one check run of each name', () => {
  let w: AppWorld;
  const marker = join(tmpdir(), `agora-limit-${randomUUID()}`);
  beforeAll(async () => {
    w = await startAppWorld({ sign: true, checkRunsPerName: 1, sweepMs: 500 });
  }, scaled(60_000));
  afterAll(async () => {
    await w?.close();
    await rm(marker, { force: true });
  });

  it('Retry, then a restart while the retried attempt runs, with the old checks gone: the run resumes and ends green', async () => {
    const gate = workerGate(); // the retried attempt runs until the restart is over
    const flaky = `if [ -f ${marker} ]; then ${gate.wait}; echo fixed > fixed.txt; else echo x > ${marker}; echo first try fails; exit 1; fi`;
    const text = commandPlan('limit', [{ id: 'flaky', run: flaky, locks: ['fixed.txt'] }]);
    const sha = await w.sim.push(w.fullName, { branch: 'limit', files: { 'plan.json': text }, message: 'A flaky plan' });
    const pr = await w.sim.openPullRequest(w.fullName, { head: 'limit', base: 'main', title: 'Limit' });
    await w.quiesce();
    const failed = (await checkRuns(w, sha)).get('agora / flaky')!;
    expect(failed.conclusion).toBe('failure');

    w.sim.clickCheckRunButton(w.fullName, failed.id, RETRY_ACTION.identifier, 'octo');
    await until('the retried attempt to run', async () => (await checkRuns(w, sha)).get('agora / flaky')?.status === 'in_progress', w);
    // The Retry's new check run of that name deleted the failed one.
    await expect(w.octokit.rest.checks.get({ owner: w.owner, repo: w.repo, check_run_id: failed.id })).rejects.toMatchObject({ status: 404 });
    await w.agora.kill(); // a crash while the retried attempt runs
    // More check runs of the name than the suite keeps (the app's own, as GitHub counts): the one the killed process showed is gone too.
    const shown = (await checkRuns(w, sha)).get('agora / flaky')!;
    await w.octokit.rest.checks.create({
      owner: w.owner,
      repo: w.repo,
      name: 'agora / flaky',
      head_sha: sha,
      status: 'completed',
      conclusion: 'neutral',
      external_id: 'elsewhere',
    });
    await expect(w.octokit.rest.checks.get({ owner: w.owner, repo: w.repo, check_run_id: shown.id })).rejects.toMatchObject({ status: 404 });
    const fresh = await restartUntilRunEnds(w, sha, gate); // sweeps at start: the run is `running` on GitHub and nobody drives it

    const checks = await checkRuns(w, sha);
    expect(checks.get('agora / flaky')).toMatchObject({ status: 'completed', conclusion: 'success' });
    expect(checks.get('agora')).toMatchObject({ status: 'completed', conclusion: 'success' });
    const commits = (await w.octokit.rest.pulls.listCommits({ owner: w.owner, repo: w.repo, pull_number: pr.number })).data;
    expect((await checkRuns(w, commits.at(-1)!.sha)).get('agora / audit')).toMatchObject({ status: 'completed', conclusion: 'success' });
    expect(outcomesOf(fresh).plans).not.toContainEqual(expect.objectContaining({ kind: 'started' })); // resumed, not started again
    expect(w.sim.contractViolations).toEqual([]);
    expect(w.errors).toEqual([]);
  });
});
