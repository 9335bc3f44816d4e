/**
 * Actions faults as an App or Action author meets them: slow runners (a job stays `queued` while its
 * runner takes its time, and a fast runner with the same labels takes the next job), and
 * `workflow_run` / `workflow_job` webhooks dropped (listed as failed, redelivered with the same GUID)
 * or duplicated (arriving twice with the same GUID), every payload contract-checked in strict mode.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, scaled } from '../support/eventually.js';
import { startWorld, type World } from './harness.js';

const o = { owner: 'octo', repo: 'demo' };
const TWO_JOBS = `on: workflow_dispatch
jobs:
  first:
    runs-on: [self-hosted, build]
    steps:
      - run: echo first
  second:
    runs-on: [self-hosted, build]
    steps:
      - run: echo second
`;
const ONE_JOB = `on: workflow_dispatch
jobs:
  only:
    runs-on: [self-hosted, slow]
    steps:
      - run: echo one
      - run: echo two
`;

describe('actions faults: slow runners', () => {
  let w: World;
  beforeAll(async () => {
    w = await startWorld({ files: { 'README.md': 'r', '.github/workflows/two.yml': TWO_JOBS, '.github/workflows/one.yml': ONE_JOB } });
  });
  afterAll(async () => {
    expect(w.sim.contractViolations).toEqual([]);
    await w.close();
  });

  const latestRun = async (file: string) => (await w.octokit.request('GET /repos/{owner}/{repo}/actions/workflows/{workflow_id}/runs', { ...o, workflow_id: file })).data.workflow_runs[0];
  const jobsByName = async (runId: number | bigint) =>
    Object.fromEntries((await w.octokit.request('GET /repos/{owner}/{repo}/actions/runs/{run_id}/jobs', { ...o, run_id: Number(runId) })).data.jobs.map((j) => [j.name, j]));
  const jobHooks = (jobId: number | bigint) =>
    w.receiver.received.filter((r) => r.name === 'workflow_job' && (r.payload.workflow_job as { id: number }).id === Number(jobId)).map((r) => r.payload.action);

  it("a slow runner's job stays queued, with no runner, while a fast runner with the same labels takes the next job; removed before it starts, the job goes to another runner", async () => {
    // The slow runner registers first, so it is given the first job; it would take ten minutes to start it.
    const slow = w.sim.addRunner({ labels: ['build'], name: 'slow-1', pickupDelayMs: 600_000 });
    const fast = w.sim.addRunner({ labels: ['build'], name: 'fast-1' });
    await w.octokit.request('POST /repos/{owner}/{repo}/actions/workflows/{workflow_id}/dispatches', { ...o, workflow_id: 'two.yml', ref: 'main' });
    const run = await eventually('a run of two.yml', () => latestRun('two.yml'));
    const second = await eventually('the second job completed on the fast runner', async () => {
      const jobs = await jobsByName(run.id);
      return jobs.second?.status === 'completed' ? jobs.second : undefined;
    });
    expect(second.runner_name).toBe('fast-1');
    expect(second.conclusion).toBe('success');
    const waiting = (await jobsByName(run.id)).first!;
    expect({ status: waiting.status, runner: waiting.runner_name }).toEqual({ status: 'queued', runner: null });
    expect((await latestRun('two.yml'))!.status).toBe('in_progress');
    await w.sim.settle();
    expect(jobHooks(waiting.id)).toEqual(['queued']);

    // The slow runner goes away before it started the job: the job was never started, so it is queued
    // again and the fast runner (idle now) runs it.
    w.sim.removeRunner(slow.id);
    const done = await eventually('two.yml completed', async () => {
      const r = await latestRun('two.yml');
      return r?.status === 'completed' ? r : undefined;
    });
    expect(done.conclusion).toBe('success');
    const first = (await jobsByName(run.id)).first!;
    expect({ conclusion: first.conclusion, runner: first.runner_name }).toEqual({ conclusion: 'success', runner: 'fast-1' });
    await w.sim.settle();
    expect(jobHooks(first.id)).toEqual(['queued', 'in_progress', 'completed']);
    w.sim.removeRunner(fast.id);
  });

  it('a slow runner holds the job queued for its pickup delay and each step queued for its step delay', async () => {
    const pickupDelayMs = scaled(1_500);
    const stepDelayMs = 700;
    w.sim.addRunner({ labels: ['slow'], pickupDelayMs, stepDelayMs });
    const dispatched = Date.now();
    await w.octokit.request('POST /repos/{owner}/{repo}/actions/workflows/{workflow_id}/dispatches', { ...o, workflow_id: 'one.yml', ref: 'main' });
    const run = await eventually('a run of one.yml', () => latestRun('one.yml'));
    // Seen queued first: the runner has it but has not started it.
    const before = (await jobsByName(run.id)).only!;
    const started = await eventually('the job in progress', async () => {
      const j = (await jobsByName(run.id)).only;
      return j?.status === 'in_progress' || j?.status === 'completed' ? Date.now() : undefined;
    });
    expect(before.status).toBe('queued');
    expect(started - dispatched).toBeGreaterThanOrEqual(pickupDelayMs);
    const completed = await eventually('one.yml completed', async () => {
      const r = await latestRun('one.yml');
      return r?.status === 'completed' ? Date.now() : undefined;
    });
    expect(completed - dispatched).toBeGreaterThanOrEqual(pickupDelayMs + 2 * stepDelayMs);
    const job = (await jobsByName(run.id)).only!;
    expect(job.steps!.map((s) => s.conclusion)).toEqual(['success', 'success']);
  });
});
