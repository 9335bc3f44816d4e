/**
 * Actions faults as an App or Action author meets them: slow runners (a job stays `queued` while its
 * runner takes its time, and a fast runner with the same labels takes the next job), and
 * `workflow_run` / `workflow_job` webhooks dropped (listed as failed, redelivered with the same GUID)
 * or duplicated (arriving twice with the same GUID), every payload contract-checked in strict mode.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, scaled } from '../support/eventually.js';
import { startWorld, type Received, type World } from '@agora/github-sim/harness';
import { sharedWebhookValidator } from '@agora/github-sim/contract';

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

  const latestRun = async (file: string) =>
    (await w.octokit.request('GET /repos/{owner}/{repo}/actions/workflows/{workflow_id}/runs', { ...o, workflow_id: file })).data.workflow_runs[0];
  const jobsByName = async (runId: number | bigint) =>
    Object.fromEntries(
      (await w.octokit.request('GET /repos/{owner}/{repo}/actions/runs/{run_id}/jobs', { ...o, run_id: Number(runId) })).data.jobs.map((j) => [j.name, j]),
    );
  const jobHooks = (jobId: number | bigint) =>
    w.receiver.received
      .filter((r) => r.name === 'workflow_job' && (r.payload.workflow_job as { id: number }).id === Number(jobId))
      .map((r) => r.payload.action);

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
    // Long enough that the three requests below see the job before it starts, on a loaded machine too.
    const pickupDelayMs = scaled(4_000);
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

describe('actions faults: workflow_run and workflow_job deliveries dropped or duplicated', () => {
  let w: World;
  beforeAll(async () => {
    w = await startWorld({ files: { 'README.md': 'r', '.github/workflows/two.yml': TWO_JOBS } });
    w.sim.addRunner({ labels: ['build'] });
  });
  afterAll(async () => {
    expect(w.sim.contractViolations).toEqual([]);
    await w.close();
  });

  /** Dispatches two.yml with `faults` on, waits until the run completed and every delivery was attempted, then turns them off. */
  const runWithFaults = async (faults: Parameters<World['sim']['setFaults']>[0]) => {
    w.sim.setFaults(faults);
    const before = (await w.octokit.request('GET /repos/{owner}/{repo}/actions/runs', o)).data.total_count;
    await w.octokit.request('POST /repos/{owner}/{repo}/actions/workflows/{workflow_id}/dispatches', { ...o, workflow_id: 'two.yml', ref: 'main' });
    const run = await eventually('the faulted run completed', async () => {
      const { data } = await w.octokit.request('GET /repos/{owner}/{repo}/actions/runs', o);
      const r = data.workflow_runs[0];
      return data.total_count > before && r?.status === 'completed' ? r : undefined;
    });
    // The run reads completed a moment before its last webhook is queued: wait for the runtime, then the deliveries.
    await w.sim.actionsIdle();
    await w.sim.settle();
    w.sim.setFaults({});
    return Number(run.id);
  };
  const runIdOf = (r: Received): number | undefined =>
    r.name === 'workflow_job'
      ? (r.payload.workflow_job as { run_id: number }).run_id
      : r.name === 'workflow_run'
        ? (r.payload.workflow_run as { id: number }).id
        : undefined;
  const arrivals = (runId: number) => w.receiver.received.filter((r) => runIdOf(r) === runId);
  const contractErrors = (list: Received[]) => list.flatMap((r) => sharedWebhookValidator().validate(r.name, r.payload));

  it('a dropped workflow_job delivery is listed as failed for the app and is redelivered with the same GUID and redelivery: true', async () => {
    const runId = await runWithFaults({ dropWebhookRate: 1 });
    expect(arrivals(runId)).toEqual([]);
    const { data: listed } = await w.appOctokit.request('GET /app/hook/deliveries', { per_page: 100 });
    const dropped = listed.filter((d) => d.event === 'workflow_job' && d.status !== 'OK');
    // Two jobs, each queued, in_progress and completed: six deliveries, none of which arrived.
    expect(dropped.map((d) => d.action).sort()).toEqual(['completed', 'completed', 'in_progress', 'in_progress', 'queued', 'queued']);
    expect(dropped.every((d) => d.status === 'failed to connect to host' && d.status_code === 0 && !d.redelivery)).toBe(true);
    expect(listed.filter((d) => d.event === 'workflow_run').map((d) => d.status)).toEqual(expect.arrayContaining(['failed to connect to host']));

    const completed = dropped.find((d) => d.action === 'completed')!;
    await w.appOctokit.request('POST /app/hook/deliveries/{delivery_id}/attempts', { delivery_id: Number(completed.id) });
    const arrived = await eventually('the redelivered workflow_job', () => arrivals(runId).find((r) => r.id === completed.guid));
    expect(arrived.name).toBe('workflow_job');
    expect(arrived.payload.action).toBe('completed');
    expect((arrived.payload.workflow_job as { conclusion: string }).conclusion).toBe('success');
    expect(contractErrors([arrived])).toEqual([]);
    const again = await eventually('the redelivery listed', async () => {
      const { data } = await w.appOctokit.request('GET /app/hook/deliveries', { per_page: 100 });
      return data.find((d) => d.guid === completed.guid && d.redelivery);
    });
    expect({ status: again.status, status_code: again.status_code, event: again.event, action: again.action }).toEqual({
      status: 'OK',
      status_code: 200,
      event: 'workflow_job',
      action: 'completed',
    });
  });

  it('a duplicated workflow_run / workflow_job delivery arrives twice with the same GUID and the same payload', async () => {
    const runId = await runWithFaults({ duplicateWebhookRate: 1 });
    const got = arrivals(runId);
    const byGuid = new Map<string, Received[]>();
    for (const r of got) byGuid.set(r.id, [...(byGuid.get(r.id) ?? []), r]);
    // workflow_run requested, in_progress, completed; each of two jobs queued, in_progress, completed.
    expect(byGuid.size).toBe(9);
    for (const [guid, copies] of byGuid) {
      expect(copies.length, guid).toBe(2);
      expect(copies[1]!.payload).toEqual(copies[0]!.payload);
    }
    expect([...byGuid.values()].map((c) => `${c[0]!.name}.${String(c[0]!.payload.action)}`).sort()).toEqual([
      'workflow_job.completed',
      'workflow_job.completed',
      'workflow_job.in_progress',
      'workflow_job.in_progress',
      'workflow_job.queued',
      'workflow_job.queued',
      'workflow_run.completed',
      'workflow_run.in_progress',
      'workflow_run.requested',
    ]);
    expect(contractErrors(got)).toEqual([]);
    // The app's delivery log shows both attempts, neither a redelivery.
    const { data: listed } = await w.appOctokit.request('GET /app/hook/deliveries', { per_page: 100 });
    for (const guid of byGuid.keys())
      expect(listed.filter((d) => d.guid === guid).map((d) => [d.status, d.redelivery])).toEqual([
        ['OK', false],
        ['OK', false],
      ]);
  });
});
