/**
 * The worker result channel of the Agora Action: a step after the item pushes the result commit to a
 * per-attempt ref with the job's GITHUB_TOKEN over the simulator's git smart HTTP (no artifacts).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually } from '../support/eventually.js';
import { cloneUrl, git, startWorld, type World } from '@agora/github-sim/harness';

const o = { owner: 'octo', repo: 'demo' };

const pushingWorkflow = (level: 'read' | 'write'): string => `on: workflow_dispatch
permissions:
  contents: ${level}
jobs:
  item:
    runs-on: [self-hosted, build]
    steps:
      - uses: actions/checkout@v4
      - run: echo "result of the item" > result.txt
      - name: push the result
        run: |
          git add result.txt
          git -c user.name=agora -c user.email=agora@example.com commit -q -m "item result"
          git push origin "HEAD:refs/agora/attempts/\${{ github.run_id }}/\${{ github.run_attempt }}"
`;

/** A job that pushes a branch with its GITHUB_TOKEN, and a workflow that a push of such a branch would start. */
const BRANCH_PUSHING = `on: workflow_dispatch
permissions:
  contents: write
jobs:
  push:
    runs-on: [self-hosted, build]
    steps:
      - uses: actions/checkout@v4
      - run: |
          echo "pushed by the job" > pushed.txt
          git add pushed.txt
          git -c user.name=agora -c user.email=agora@example.com commit -q -m "pushed by the job"
          git push origin "HEAD:refs/heads/results/\${{ github.run_id }}"
`;
const ON_RESULTS_PUSH = `on:
  push:
    branches: ['results/**']
jobs:
  seen:
    runs-on: [self-hosted, build]
    steps:
      - run: echo seen
`;

describe('actions: a job pushes its result commit with its GITHUB_TOKEN', () => {
  let w: World;
  beforeAll(async () => {
    w = await startWorld({
      files: {
        'README.md': '# demo\n',
        '.github/workflows/write.yml': pushingWorkflow('write'),
        '.github/workflows/read.yml': pushingWorkflow('read'),
        '.github/workflows/branch.yml': BRANCH_PUSHING,
        '.github/workflows/on-results.yml': ON_RESULTS_PUSH,
      },
    });
    w.sim.addRunner({ labels: ['build'] });
  });
  afterAll(async () => {
    expect(w.sim.contractViolations).toEqual([]);
    await w.close();
  });

  const finished = (path: string) =>
    eventually(
      `a completed run of ${path}`,
      async () => {
        const runs = (await w.octokit.request('GET /repos/{owner}/{repo}/actions/runs', o)).data.workflow_runs.filter((r) => r.path === path);
        return runs[0]?.status === 'completed' ? runs[0] : undefined;
      },
      { within: 60_000 },
    );
  const onlyJob = async (runId: number) =>
    (await w.octokit.request('GET /repos/{owner}/{repo}/actions/runs/{run_id}/jobs', { ...o, run_id: runId })).data.jobs[0]!;
  const logOf = async (jobId: number) =>
    String((await w.octokit.request('GET /repos/{owner}/{repo}/actions/jobs/{job_id}/logs', { ...o, job_id: jobId })).data);

  it('contents: write — the push lands on refs/agora/attempts/<run>/<attempt>; the token is refused once the job ends', async () => {
    await w.octokit.request('POST /repos/{owner}/{repo}/actions/workflows/{workflow_id}/dispatches', { ...o, workflow_id: 'write.yml', ref: 'main' });
    const run = await finished('.github/workflows/write.yml');
    expect(run.conclusion).toBe('success');
    const repo = w.sim.sim.repo('octo/demo');
    const result = await repo.git.resolve(`refs/agora/attempts/${run.id}/1`, 'commit');
    expect(result).toMatch(/^[0-9a-f]{40}$/);
    expect(await repo.git.text(['show', `${result}:result.txt`])).toBe('result of the item\n');
    // The pushed commit sits on the commit the run was for.
    expect((await repo.git.text(['rev-parse', `${result}^`])).trim()).toBe(run.head_sha);

    const job = await onlyJob(Number(run.id));
    const token = w.sim.sim.actions.jobs.get(Number(job.id))!.token!;
    const dir = await mkdtemp(join(tmpdir(), 'sim-late-push-'));
    try {
      await expect(git(['ls-remote', cloneUrl(w.sim, 'octo/demo', token)], dir)).rejects.toThrow(/Invalid username or token|Authentication failed|401/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('contents: read — the same push is refused 403 and the job fails', async () => {
    await w.octokit.request('POST /repos/{owner}/{repo}/actions/workflows/{workflow_id}/dispatches', { ...o, workflow_id: 'read.yml', ref: 'main' });
    const run = await finished('.github/workflows/read.yml');
    expect(run.conclusion).toBe('failure');
    const job = await onlyJob(Number(run.id));
    expect(job.steps!.map((s) => s.conclusion)).toEqual(['success', 'success', 'failure']);
    expect(await logOf(Number(job.id))).toMatch(/403/);
    expect(await w.sim.sim.repo('octo/demo').git.resolve(`refs/agora/attempts/${run.id}/1`, 'commit')).toBeNull();
    const pushes = w.sim.sim.requests.filter((r) => r.route === 'git-http' && r.write && r.status === 403);
    expect(pushes.length).toBeGreaterThan(0);
  });

  it('a push made with the job token starts no workflow run (as on GitHub); the same push by a person does', async () => {
    await w.octokit.request('POST /repos/{owner}/{repo}/actions/workflows/{workflow_id}/dispatches', { ...o, workflow_id: 'branch.yml', ref: 'main' });
    const run = await finished('.github/workflows/branch.yml');
    expect(run.conclusion).toBe('success');
    const repo = w.sim.sim.repo('octo/demo');
    expect(await repo.git.resolve(`refs/heads/results/${run.id}`, 'commit')).toMatch(/^[0-9a-f]{40}$/);
    await w.sim.actionsIdle();
    const onResults = async () =>
      (await w.octokit.request('GET /repos/{owner}/{repo}/actions/runs', o)).data.workflow_runs.filter((r) => r.path === '.github/workflows/on-results.yml');
    expect(await onResults()).toEqual([]);
    const byHand = await w.sim.push('octo/demo', { branch: 'results/by-hand', files: { 'pushed.txt': 'by hand\n' }, message: 'by hand' });
    const seen = await eventually('the run of on-results.yml for the push by hand', async () => (await onResults()).find((r) => r.head_sha === byHand));
    expect(seen.event).toBe('push');
  });
});
