import { randomUUID } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RETRY_ACTION } from '../../src/github/agora-github.js';
import { until, commandPlan, checkRuns, startAppWorld, type AppWorld, outcomesOf } from './app-world.js';
import { scaled } from '../support/eventually.js';

/** The check-run buttons as a user presses them (Retry on a failed item, Re-run), and how a person cancels a run. */
describe('check run buttons', () => {
  let w: AppWorld;
  const marker = join(tmpdir(), `agora-retry-${randomUUID()}`);
  beforeAll(async () => {
    w = await startAppWorld({ sign: true });
  }, scaled(60_000));
  afterAll(async () => {
    await w?.close();
    await rm(marker, { force: true });
  });

  it('Retry on a failed item runs it again; its dependent runs, the PR gets the commits, the gate turns green', async () => {
    // Fails the first time (leaves a marker), succeeds the second.
    const flaky = `if [ -f ${marker} ]; then echo fixed > fixed.txt; else echo x > ${marker}; echo first try fails; exit 1; fi`;
    const text = commandPlan('flaky', [
      { id: 'flaky', run: flaky, locks: ['fixed.txt'] },
      { id: 'after', run: 'echo after > after.txt', depends_on: ['flaky'], locks: ['after.txt'] },
    ]);
    const sha = await w.sim.push(w.fullName, { branch: 'flaky', files: { 'plan.json': text }, message: 'A flaky plan' });
    const pr = await w.sim.openPullRequest(w.fullName, { head: 'flaky', base: 'main', title: 'Flaky' });
    await w.quiesce();
    let checks = await checkRuns(w, sha);
    const failed = checks.get('agora / flaky')!;
    expect(failed).toMatchObject({ status: 'completed', conclusion: 'failure' });
    expect(checks.get('agora / after')).toMatchObject({ conclusion: 'skipped' });
    expect(checks.get('agora')).toMatchObject({ conclusion: 'failure' });
    expect(w.sim.sim.state.checkRuns.get(failed.id)!.actions).toEqual([RETRY_ACTION]);
    expect(w.sim.sim.state.checkRuns.get(checks.get('agora')!.id)!.actions).toEqual([]); // no Cancel once finished
    expect(RETRY_ACTION.identifier.length).toBeLessThanOrEqual(20);
    expect(RETRY_ACTION.description.length).toBeLessThanOrEqual(40);

    w.sim.clickCheckRunButton(w.fullName, failed.id, RETRY_ACTION.identifier, 'octo');
    await w.quiesce();

    checks = await checkRuns(w, sha);
    expect(checks.get('agora / flaky')).toMatchObject({ status: 'completed', conclusion: 'success' });
    expect(checks.get('agora / flaky')!.output.title).toContain('flaky');
    expect(checks.get('agora / after')).toMatchObject({ status: 'completed', conclusion: 'success' });
    expect(checks.get('agora')).toMatchObject({ status: 'completed', conclusion: 'success' });
    const commits = (await w.octokit.rest.pulls.listCommits({ owner: w.owner, repo: w.repo, pull_number: pr.number })).data;
    expect(commits.map((c) => c.commit.message.split('\n')[0])).toEqual(['A flaky plan', expect.stringMatching(/^flaky: /), expect.stringMatching(/^after: /)]);
    const head = commits.at(-1)!.sha;
    const gate = (await checkRuns(w, head)).get('agora / audit')!;
    expect(gate).toMatchObject({ status: 'completed', conclusion: 'success' });
    const run = await w.octokit.rest.checks.listForRef({ owner: w.owner, repo: w.repo, ref: sha, check_name: 'agora / flaky', filter: 'all' });
    expect(run.data.check_runs.map((c) => c.conclusion).sort()).toEqual(['failure', 'success']); // the history stays
    expect(outcomesOf(w.agora).actions).toEqual([{ kind: 'recorded', runId: expect.stringMatching(/^flaky-/), event: 'retry-item', resumed: true }]);
    expect(w.errors).toEqual([]);
  });

  it('an item called audit gets its own check: its Retry retries the item and never re-runs the plan', async () => {
    const m = `${marker}-audit`;
    const text = commandPlan('named-audit', [
      { id: 'audit', run: `if [ -f ${m} ]; then echo ok > audited.txt; else echo x > ${m}; exit 4; fi`, locks: ['audited.txt'] },
    ]);
    const sha = await w.sim.push(w.fullName, { branch: 'named-audit', files: { 'plan.json': text }, message: 'An item called audit' });
    await w.quiesce();
    let checks = await checkRuns(w, sha);
    const failed = checks.get('agora / item audit')!;
    expect(failed).toMatchObject({ status: 'completed', conclusion: 'failure', external_id: expect.stringMatching(/^named-audit-.*\/audit$/) });
    // The red gate of the failed run sits on the same commit, under its own name and external id.
    expect(checks.get('agora / audit')).toMatchObject({ conclusion: 'failure', external_id: expect.stringMatching(/^named-audit-.*:audit$/) });
    const before = outcomesOf(w.agora).actions.length;
    w.sim.clickCheckRunButton(w.fullName, failed.id, RETRY_ACTION.identifier, 'octo');
    await w.quiesce();
    await rm(m, { force: true });
    expect(outcomesOf(w.agora).actions.slice(before)).toEqual([
      { kind: 'recorded', runId: expect.stringMatching(/^named-audit-/), event: 'retry-item', resumed: true },
    ]);
    checks = await checkRuns(w, sha);
    expect(checks.get('agora / item audit')).toMatchObject({ status: 'completed', conclusion: 'success' });
    expect(checks.get('agora')).toMatchObject({ status: 'completed', conclusion: 'success' });
    expect(w.errors).toEqual([]);
  });

  it('Re-run (rerequested) on a failed item check retries it too', async () => {
    const m = `${marker}-rerun`;
    const text = commandPlan('rerun', [{ id: 'once', run: `if [ -f ${m} ]; then echo ok > ok.txt; else echo x > ${m}; exit 2; fi`, locks: ['ok.txt'] }]);
    const sha = await w.sim.push(w.fullName, { branch: 'rerun', files: { 'plan.json': text }, message: 'Rerun plan' });
    await w.quiesce();
    const failed = (await checkRuns(w, sha)).get('agora / once')!;
    expect(failed.conclusion).toBe('failure');
    w.sim.rerequestCheckRun(w.fullName, failed.id);
    await w.quiesce();
    await rm(m, { force: true });
    const checks = await checkRuns(w, sha);
    expect(checks.get('agora / once')).toMatchObject({ status: 'completed', conclusion: 'success' });
    expect(checks.get('agora')).toMatchObject({ status: 'completed', conclusion: 'success' });
    expect(w.errors).toEqual([]);
  });

  it('closing the pull request cancels its running run: every item check ends cancelled with the reason', async () => {
    const text = commandPlan('long', [
      { id: 'slow', run: 'sleep 600' },
      { id: 'later', run: 'true', depends_on: ['slow'] },
    ]);
    const sha = await w.sim.push(w.fullName, { branch: 'long', files: { 'plan.json': text }, message: 'Slow plan' });
    const pr = await w.sim.openPullRequest(w.fullName, { head: 'long', base: 'main', title: 'Slow' });
    await until('the slow item to run', async () => (await checkRuns(w, sha)).get('agora / slow')?.status === 'in_progress', w);
    const agora = (await checkRuns(w, sha)).get('agora')!;
    expect(agora.status).toBe('in_progress');
    // GitHub would not show a button on a running check run, so the run check offers none.
    expect(w.sim.sim.state.checkRuns.get(agora.id)!.actions).toEqual([]);
    await w.sim.setPullRequestState(w.fullName, pr.number, 'closed');
    await w.quiesce(); // the app goes idle at all: the 10-minute sleep was stopped, not waited out
    const checks = await checkRuns(w, sha);
    for (const name of ['agora / slow', 'agora / later', 'agora']) {
      expect(checks.get(name)).toMatchObject({ status: 'completed', conclusion: 'cancelled' });
    }
    // The reason is shown as text: a word joiner after @ keeps GitHub from turning it into a mention.
    expect(checks.get('agora / slow')!.output.summary).toContain(`cancelled: pull request #\u2060${pr.number} was closed by @\u2060${w.owner}`);
    expect(checks.get('agora / later')!.output.summary).toContain(`pull request #\u2060${pr.number} was closed`);
    expect(w.errors).toEqual([]);
  });

  it('deleting the branch cancels its running run; a branch that still points at the commit keeps it', async () => {
    const text = commandPlan('doomed', [{ id: 'slow', run: 'sleep 600' }]);
    const sha = await w.sim.push(w.fullName, { branch: 'doomed', files: { 'plan.json': text }, message: 'Doomed plan' });
    await until('the slow item to run', async () => (await checkRuns(w, sha)).get('agora / slow')?.status === 'in_progress', w);
    await w.octokit.rest.git.createRef({ owner: w.owner, repo: w.repo, ref: 'refs/heads/doomed-copy', sha });
    const before = outcomesOf(w.agora).actions.length;
    await w.octokit.rest.git.deleteRef({ owner: w.owner, repo: w.repo, ref: 'heads/doomed' });
    await until('the deletion to be handled', async () => outcomesOf(w.agora).actions.length > before, w);
    expect(outcomesOf(w.agora).actions.slice(before)).toEqual([
      { kind: 'ignored', code: 'branch-still-at-commit', why: `branch doomed-copy still points at ${sha.slice(0, 12)}` },
    ]);
    expect((await checkRuns(w, sha)).get('agora / slow')!.status).toBe('in_progress');
    await w.octokit.rest.git.deleteRef({ owner: w.owner, repo: w.repo, ref: 'heads/doomed-copy' });
    await w.quiesce();
    const checks = await checkRuns(w, sha);
    expect(checks.get('agora / slow')).toMatchObject({ status: 'completed', conclusion: 'cancelled' });
    expect(checks.get('agora / slow')!.output.summary).toContain('cancelled: branch doomed-copy was deleted by @');
    expect(w.errors).toEqual([]);
  });
});
