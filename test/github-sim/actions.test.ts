import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startWorld, type World } from '@agora/github-sim/harness';

const WORKFLOW = 'name: agora\non:\n  workflow_dispatch:\n    inputs:\n      run: { required: true }\njobs: {}\n';

describe('actions: workflow_dispatch with a runner hook, repository_dispatch', () => {
  let w: World;
  const o = { owner: 'octo', repo: 'demo' };
  beforeAll(async () => {
    w = await startWorld({ actions: false, files: { 'README.md': 'r', '.github/workflows/agora.yml': WORKFLOW, '.github/workflows/ci.yml': 'on: push\n' } });
  });
  afterAll(async () => {
    expect(w.sim.contractViolations.filter((v) => v.kind !== 'request')).toEqual([]);
    await w.close();
  });

  it('records a workflow_dispatch, hands it to the runner hook, which reports workflow_run and workflow_job', async () => {
    w.sim.onWorkflowDispatch(async (d, sim) => {
      const headSha = (await sim.repo(d.repo).git.resolve(d.ref!, 'commit'))!;
      const runId = await sim.emitWorkflowRun({ repo: d.repo, action: 'requested', name: 'agora', headSha, headBranch: d.ref });
      sim.emitWorkflowJob({ repo: d.repo, action: 'queued', name: 'item-a', headSha, runId, labels: ['self-hosted', 'agora'] });
      sim.emitWorkflowJob({ repo: d.repo, action: 'in_progress', name: 'item-a', headSha, runId, id: 77 });
      sim.emitWorkflowJob({ repo: d.repo, action: 'completed', name: 'item-a', headSha, runId, id: 77, conclusion: 'success' });
      await sim.emitWorkflowRun({ repo: d.repo, action: 'completed', name: 'agora', headSha, id: runId, conclusion: 'success' });
    });
    const res = await w.octokit.actions.createWorkflowDispatch({ ...o, workflow_id: 'agora.yml', ref: 'main', inputs: { run: 'r1' } });
    expect(res.status).toBe(204);
    await w.sim.settle();
    expect(w.sim.dispatches).toMatchObject([
      { kind: 'workflow_dispatch', workflowId: 'agora.yml', ref: 'main', inputs: { run: 'r1' }, installationId: w.installationId },
    ]);
    const names = w.receiver.received.filter((r) => r.name.startsWith('workflow_')).map((r) => `${r.name}.${String(r.payload.action)}`);
    expect(names).toEqual(['workflow_run.requested', 'workflow_job.queued', 'workflow_job.in_progress', 'workflow_job.completed', 'workflow_run.completed']);
    const completed = w.receiver.received.find((r) => r.name === 'workflow_job' && r.payload.action === 'completed')!;
    expect(completed.payload).toMatchObject({ workflow_job: { id: 77, conclusion: 'success', status: 'completed' } });
  });

  it('refuses unknown workflows, workflows without the trigger, too many inputs and unknown refs', async () => {
    await expect(w.octokit.actions.createWorkflowDispatch({ ...o, workflow_id: 'missing.yml', ref: 'main' })).rejects.toMatchObject({ status: 404 });
    await expect(w.octokit.actions.createWorkflowDispatch({ ...o, workflow_id: 'ci.yml', ref: 'main' })).rejects.toMatchObject({ status: 422 });
    const inputs = Object.fromEntries(Array.from({ length: 26 }, (_, i) => [`k${i}`, 'v']));
    await expect(w.octokit.actions.createWorkflowDispatch({ ...o, workflow_id: 'agora.yml', ref: 'main', inputs })).rejects.toMatchObject({ status: 422 });
    await expect(w.octokit.actions.createWorkflowDispatch({ ...o, workflow_id: 'agora.yml', ref: 'nope' })).rejects.toMatchObject({ status: 422 });
    expect(w.sim.dispatches).toHaveLength(1);
  });

  it('records repository_dispatch, emits its webhook, and caps client_payload at 10 keys', async () => {
    const res = await w.octokit.repos.createDispatchEvent({ ...o, event_type: 'agora-run', client_payload: { run: 'r1' } });
    expect(res.status).toBe(204);
    await w.sim.settle();
    const hook = w.receiver.received.find((r) => r.name === 'repository_dispatch');
    expect(hook?.payload).toMatchObject({ action: 'agora-run', client_payload: { run: 'r1' }, branch: 'main' });
    const payload = Object.fromEntries(Array.from({ length: 11 }, (_, i) => [`k${i}`, i]));
    await expect(w.octokit.repos.createDispatchEvent({ ...o, event_type: 'x', client_payload: payload })).rejects.toMatchObject({ status: 422 });
  });
});
