/** The workflows REST surface: list, get by id or file name, runs of one workflow, dispatch by either, GitHub's 404s and 422s. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually } from '../support/eventually.js';
import { startWorld, type World } from '@agora/github-sim/harness';

const o = { owner: 'octo', repo: 'demo' };

const MANUAL = `name: Manual
on:
  workflow_dispatch:
    inputs:
      count: { type: number, required: true }
jobs:
  one:
    runs-on: [self-hosted, build]
    steps:
      - run: echo "count=\${{ inputs.count }}"
`;
const PUSH_ONLY = `name: On push
on:
  push:
    branches: [nothing-pushes-here]
jobs:
  one:
    runs-on: [self-hosted, build]
    steps:
      - run: echo push
`;

describe('actions: the workflows REST surface', () => {
  let w: World;
  beforeAll(async () => {
    w = await startWorld({
      files: { 'README.md': 'r', '.github/workflows/manual.yml': MANUAL, '.github/workflows/push.yaml': PUSH_ONLY, '.github/workflows/broken.yml': 'on: [\n' },
    });
    w.sim.addRunner({ labels: ['build'] });
  });
  afterAll(async () => {
    expect(w.sim.contractViolations).toEqual([]);
    await w.close();
  });

  it('lists the default branch workflow files (a broken one under its path) and gets one by id or by file name', async () => {
    const list = (await w.octokit.request('GET /repos/{owner}/{repo}/actions/workflows', o)).data;
    expect(list.total_count).toBe(3);
    expect(list.workflows.map((x) => [x.path, x.name, x.state])).toEqual([
      ['.github/workflows/broken.yml', '.github/workflows/broken.yml', 'active'],
      ['.github/workflows/manual.yml', 'Manual', 'active'],
      ['.github/workflows/push.yaml', 'On push', 'active'],
    ]);
    const manual = list.workflows[1]!;
    const byId = (await w.octokit.request('GET /repos/{owner}/{repo}/actions/workflows/{workflow_id}', { ...o, workflow_id: manual.id })).data;
    const byFile = (await w.octokit.request('GET /repos/{owner}/{repo}/actions/workflows/{workflow_id}', { ...o, workflow_id: 'manual.yml' })).data;
    expect(byId).toEqual(manual);
    expect(byFile).toEqual(manual);
    await expect(w.octokit.request('GET /repos/{owner}/{repo}/actions/workflows/{workflow_id}', { ...o, workflow_id: 'nope.yml' })).rejects.toMatchObject({
      status: 404,
    });
    await expect(w.octokit.request('GET /repos/{owner}/{repo}/actions/workflows/{workflow_id}', { ...o, workflow_id: 999_999 })).rejects.toMatchObject({
      status: 404,
    });
  });

  it('dispatches by id or file name; lists the runs of one workflow only', async () => {
    const manual = (await w.octokit.request('GET /repos/{owner}/{repo}/actions/workflows/{workflow_id}', { ...o, workflow_id: 'manual.yml' })).data;
    await w.octokit.request('POST /repos/{owner}/{repo}/actions/workflows/{workflow_id}/dispatches', {
      ...o,
      workflow_id: manual.id,
      ref: 'main',
      inputs: { count: '3' },
    });
    await w.octokit.request('POST /repos/{owner}/{repo}/actions/workflows/{workflow_id}/dispatches', {
      ...o,
      workflow_id: 'manual.yml',
      ref: 'main',
      inputs: { count: '4' },
    });
    const runs = await eventually(
      'two completed runs of manual.yml',
      async () => {
        const r = (await w.octokit.request('GET /repos/{owner}/{repo}/actions/workflows/{workflow_id}/runs', { ...o, workflow_id: 'manual.yml' })).data;
        return r.total_count === 2 && r.workflow_runs.every((x) => x.status === 'completed') ? r.workflow_runs : undefined;
      },
      { within: 60_000 },
    );
    expect(runs.map((r) => [r.workflow_id, r.run_number, r.conclusion])).toEqual([
      [manual.id, 2, 'success'],
      [manual.id, 1, 'success'],
    ]);
    const byId = (await w.octokit.request('GET /repos/{owner}/{repo}/actions/workflows/{workflow_id}/runs', { ...o, workflow_id: manual.id })).data;
    expect(byId.workflow_runs.map((r) => r.id)).toEqual(runs.map((r) => r.id));
    const push = (await w.octokit.request('GET /repos/{owner}/{repo}/actions/workflows/{workflow_id}/runs', { ...o, workflow_id: 'push.yaml' })).data;
    expect(push).toEqual({ total_count: 0, workflow_runs: [] });
    await expect(w.octokit.request('GET /repos/{owner}/{repo}/actions/workflows/{workflow_id}/runs', { ...o, workflow_id: 'nope.yml' })).rejects.toMatchObject({
      status: 404,
    });
  });

  it('answers a dispatch as GitHub does: 404 for an unknown workflow, 422 without the trigger, a missing or mistyped required input', async () => {
    const dispatch = (workflow_id: string | number, inputs?: Record<string, string>) =>
      w.octokit.request('POST /repos/{owner}/{repo}/actions/workflows/{workflow_id}/dispatches', { ...o, workflow_id, ref: 'main', inputs });
    await expect(dispatch('nope.yml')).rejects.toMatchObject({ status: 404 });
    await expect(dispatch(999_999)).rejects.toMatchObject({ status: 404 });
    await expect(dispatch('push.yaml')).rejects.toMatchObject({
      status: 422,
      message: expect.stringContaining("Workflow does not have 'workflow_dispatch' trigger"),
    });
    await expect(dispatch('manual.yml')).rejects.toMatchObject({ status: 422, message: expect.stringContaining("Required input 'count' not provided") });
    await expect(dispatch('manual.yml', { count: 'three' })).rejects.toMatchObject({
      status: 422,
      message: expect.stringContaining("'three' for input 'count' is not a number"),
    });
  });

  it('a workflow file removed after it ran is listed as deleted', async () => {
    await w.sim.push('octo/demo', { branch: 'main', files: { '.github/workflows/manual.yml': null }, message: 'drop manual' });
    const list = (await w.octokit.request('GET /repos/{owner}/{repo}/actions/workflows', o)).data;
    expect(list.workflows.find((x) => x.path === '.github/workflows/manual.yml')).toMatchObject({ name: 'Manual', state: 'deleted' });
  });
});
