import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, scaled } from '../support/eventually.js';
import { startWorld, type World } from '@agora/github-sim/harness';
import { node24 } from '@agora/github-sim/actions/node24';

const o = { owner: 'octo', repo: 'demo' };

/** A tiny JavaScript action: reads its inputs, calls the API with the token it is given, writes outputs and a summary. */
const PROBE_ACTION = `name: probe
inputs:
  greeting: { required: true }
  token: { default: '\${{ github.token }}' }
runs:
  using: node24
  main: index.js
`;
const PROBE_JS = `const fs = require('node:fs');
const api = process.env.GITHUB_API_URL, repo = process.env.GITHUB_REPOSITORY;
const auth = { authorization: 'token ' + process.env.INPUT_TOKEN, 'content-type': 'application/json' };
(async () => {
  const read = await fetch(api + '/repos/' + repo + '/contents/README.md', { headers: auth });
  const write = await fetch(api + '/repos/' + repo + '/check-runs', { method: 'POST', headers: auth, body: JSON.stringify({ name: 'x', head_sha: process.env.GITHUB_SHA }) });
  const out = ['node=' + process.version, 'greeting=' + process.env.INPUT_GREETING, 'read=' + read.status, 'write=' + write.status, 'token=' + process.env.INPUT_TOKEN, 'runner=' + process.env.RUNNER_NAME, 'temp=' + (process.env.RUNNER_TEMP ? 'set' : 'unset')];
  fs.appendFileSync(process.env.GITHUB_OUTPUT, out.join('\\n') + '\\n');
  fs.appendFileSync(process.env.GITHUB_STEP_SUMMARY, '### probe ran on ' + process.version + '\\n');
})().catch((e) => { console.error(e); process.exit(1); });
`;

const PUSH_WORKFLOW = `name: ci
on:
  push:
    branches: [main]
permissions:
  contents: read
jobs:
  probe:
    runs-on: [self-hosted, build]
    steps:
      - uses: actions/checkout@v4
      - id: first
        run: echo "word=hello-$GITHUB_EVENT_NAME" >> "$GITHUB_OUTPUT"
      - id: probe
        uses: ./.github/actions/probe
        with:
          greeting: \${{ steps.first.outputs.word }}
      - run: |
          echo "saw node=\${{ steps.probe.outputs.node }} greeting=\${{ steps.probe.outputs.greeting }} sha=\${{ github.sha }}"
          test -f README.md
`;

const DISPATCH_WORKFLOW = `name: manual
on:
  workflow_dispatch:
    inputs:
      who: { required: true, type: string }
      mode: { type: choice, options: [fast, slow], default: fast }
      loud: { type: boolean, default: false }
jobs:
  hello:
    runs-on: [self-hosted, build]
    steps:
      - run: echo "hi \${{ inputs.who }} mode=\${{ inputs.mode }} loud=\${{ inputs.loud }}"
`;

const SLOW_WORKFLOW = `on: workflow_dispatch
jobs:
  slow:
    runs-on: [self-hosted, build]
    steps:
      - run: |
          trap 'echo "got SIGINT"' INT
          trap 'echo "got SIGTERM"; exit 143' TERM
          echo waiting
          while :; do sleep 1 || true; done
      - run: echo never
      - if: always()
        run: echo "cleanup ran, job status \${{ job.status }}"
      - if: cancelled()
        run: echo "cancelled() ran"
      - if: failure()
        run: echo "failure() ran"
`;

const GPU_WORKFLOW = `on: workflow_dispatch
jobs:
  train:
    runs-on: [self-hosted, gpu]
    steps:
      - run: echo trained
`;

const REFUSED_WORKFLOW = `on: workflow_dispatch
jobs:
  odd:
    runs-on: [self-hosted, build]
    steps:
      - run: echo "\${{ fromJSON('not json') }}"
`;

describe('actions runtime: workflows run on simulated self-hosted runners', () => {
  let w: World;
  beforeAll(async () => {
    await node24();
    w = await startWorld({
      files: {
        'README.md': '# demo\n',
        '.github/actions/probe/action.yml': PROBE_ACTION,
        '.github/actions/probe/index.js': PROBE_JS,
        '.github/workflows/manual.yml': DISPATCH_WORKFLOW,
        '.github/workflows/slow.yml': SLOW_WORKFLOW,
        '.github/workflows/gpu.yml': GPU_WORKFLOW,
        '.github/workflows/refused.yml': REFUSED_WORKFLOW,
      },
    });
    w.sim.addRunner({ labels: ['build'], name: 'builder-1' });
    w.sim.addRunner({ labels: ['build'], name: 'builder-2' });
  }, scaled(300_000));
  afterAll(async () => {
    expect(w.sim.contractViolations).toEqual([]);
    await w.close();
  });

  const runsOf = async (path: string) =>
    (await w.octokit.request('GET /repos/{owner}/{repo}/actions/runs', o)).data.workflow_runs.filter((r) => r.path === path);
  const completed = (path: string, n = 1) =>
    eventually(
      `${n} completed run(s) of ${path}`,
      async () => {
        const runs = await runsOf(path);
        return runs.length >= n && runs.every((r) => r.status === 'completed') ? runs : undefined;
      },
      { within: 120_000 },
    );
  const jobsOf = async (runId: number) => (await w.octokit.request('GET /repos/{owner}/{repo}/actions/runs/{run_id}/jobs', { ...o, run_id: runId })).data.jobs;
  const logOf = async (jobId: number) =>
    String((await w.octokit.request('GET /repos/{owner}/{repo}/actions/jobs/{job_id}/logs', { ...o, job_id: jobId })).data);
  const outputsOf = (jobId: number) => w.sim.sim.actions.jobs.get(jobId)!;

  it('a push runs checkout, a run: step and a local JS action under Node 24; outputs flow; the token has exactly the job permissions', async () => {
    await w.sim.push('octo/demo', { branch: 'main', files: { '.github/workflows/ci.yml': PUSH_WORKFLOW }, message: 'ci' });
    const [run] = await completed('.github/workflows/ci.yml');
    expect(run).toMatchObject({ event: 'push', conclusion: 'success', head_branch: 'main', run_attempt: 1 });
    const [job] = await jobsOf(Number(run!.id));
    expect(job).toMatchObject({ status: 'completed', conclusion: 'success', labels: ['self-hosted', 'build'] });
    expect(job!.steps!.map((s) => s.conclusion)).toEqual(['success', 'success', 'success', 'success']);
    const log = await logOf(Number(job!.id));
    // Outputs of the action (run under Node 24) reach the next step's expressions.
    expect(log).toMatch(/saw node=v24\.\d+\.\d+ greeting=hello-push sha=[0-9a-f]{40}/);
    expect(outputsOf(Number(job!.id)).summary).toMatch(/^### probe ran on v24\./);
    // contents: read lets it read; it may not create a check run (checks: write is not granted).
    const record = outputsOf(Number(job!.id));
    expect(record.tokenPermissions).toEqual({ contents: 'read', metadata: 'read' });
    const probe = w.sim.sim.requests.filter((r) => r.path === '/repos/octo/demo/check-runs' && r.method === 'POST');
    expect(probe.map((r) => r.status)).toEqual([403]);
    const read = w.sim.sim.requests.filter((r) => r.path === '/repos/octo/demo/contents/README.md');
    expect(read.map((r) => r.status)).toEqual([200]);
    await w.sim.settle();
    const runIdOf = (p: Record<string, unknown>) =>
      (p as { workflow_run?: { id: number } }).workflow_run?.id ?? (p as { workflow_job?: { run_id: number } }).workflow_job?.run_id;
    const hooks = w.receiver.received.filter((r) => r.name.startsWith('workflow_') && runIdOf(r.payload) === run!.id);
    expect(hooks.map((r) => `${r.name}.${String(r.payload.action)}`)).toEqual([
      'workflow_run.requested',
      'workflow_job.queued',
      'workflow_run.in_progress',
      'workflow_job.in_progress',
      'workflow_job.completed',
      'workflow_run.completed',
    ]);
  });

  it('the job token is refused once the job has completed', async () => {
    const [run] = await completed('.github/workflows/ci.yml');
    const [job] = await jobsOf(Number(run!.id));
    const token = w.sim.sim.actions.jobs.get(Number(job!.id))!.token!;
    const res = await fetch(`${w.sim.apiUrl}/repos/octo/demo/contents/README.md`, { headers: { authorization: `token ${token}` } });
    expect(res.status).toBe(401);
  });

  it('workflow_dispatch passes typed inputs; bad inputs are 422', async () => {
    await w.octokit.request('POST /repos/{owner}/{repo}/actions/workflows/{workflow_id}/dispatches', {
      ...o,
      workflow_id: 'manual.yml',
      ref: 'main',
      inputs: { who: 'ada', loud: 'true' },
    });
    const [run] = await completed('.github/workflows/manual.yml');
    expect(run).toMatchObject({ event: 'workflow_dispatch', conclusion: 'success' });
    const [job] = await jobsOf(Number(run!.id));
    expect(await logOf(Number(job!.id))).toContain('hi ada mode=fast loud=true');
    const dispatch = (inputs: Record<string, string>) =>
      w.octokit.request('POST /repos/{owner}/{repo}/actions/workflows/{workflow_id}/dispatches', { ...o, workflow_id: 'manual.yml', ref: 'main', inputs });
    await expect(dispatch({ who: 'ada', mode: 'medium' })).rejects.toMatchObject({ status: 422, message: expect.stringContaining("input 'mode'") });
    await expect(dispatch({ mode: 'fast' })).rejects.toMatchObject({ status: 422, message: expect.stringContaining("Required input 'who'") });
    await expect(dispatch({ who: 'ada', extra: 'x' })).rejects.toMatchObject({ status: 422, message: expect.stringContaining('Unexpected inputs') });
    expect(await runsOf('.github/workflows/manual.yml')).toHaveLength(1);
  });

  it("an expression that fails as it is evaluated fails the job naming it, with the expression engine's reason", async () => {
    await w.octokit.request('POST /repos/{owner}/{repo}/actions/workflows/{workflow_id}/dispatches', { ...o, workflow_id: 'refused.yml', ref: 'main' });
    const [run] = await completed('.github/workflows/refused.yml');
    expect(run!.conclusion).toBe('failure');
    const [job] = await jobsOf(Number(run!.id));
    expect(await logOf(Number(job!.id))).toMatch(/##\[error\]`\$\{\{ fromJSON\('not json'\) \}\}`: .*JSON/);
  });

  it('a bad workflow file creates no run and its error names the file and line', async () => {
    const bad = 'on: push\njobs:\n  build:\n    runs-on: [self-hosted, build]\n    stepz:\n      - run: echo no\n';
    await w.sim.push('octo/demo', { branch: 'main', files: { '.github/workflows/bad.yml': bad }, message: 'bad workflow' });
    await w.sim.settle();
    expect(await runsOf('.github/workflows/bad.yml')).toEqual([]);
    const problem = w.sim.sim.actions.fileProblems.find((p) => p.path === '.github/workflows/bad.yml');
    expect(problem?.message).toMatch(/^Invalid workflow file: \.github\/workflows\/bad\.yml \(Line: 5, Col: 5\): Unexpected value 'stepz'/);
    // Dispatching a file that does not parse is GitHub's 422 with the same message.
    await w.sim.push('octo/demo', { branch: 'main', files: { '.github/workflows/broken.yml': 'on: workflow_dispatch\njobs:\n  a: [\n' }, message: 'broken' });
    await expect(
      w.octokit.request('POST /repos/{owner}/{repo}/actions/workflows/{workflow_id}/dispatches', { ...o, workflow_id: 'broken.yml', ref: 'main' }),
    ).rejects.toMatchObject({ status: 422, message: expect.stringMatching(/broken\.yml \(Line: \d+/) });
    await w.sim.push('octo/demo', {
      branch: 'main',
      files: { '.github/workflows/bad.yml': null, '.github/workflows/broken.yml': null },
      message: 'remove bad workflows',
    });
  });

  it('a job whose labels no runner has stays queued until a runner with them registers', async () => {
    await w.octokit.request('POST /repos/{owner}/{repo}/actions/workflows/{workflow_id}/dispatches', { ...o, workflow_id: 'gpu.yml', ref: 'main' });
    const [queued] = await eventually('the gpu run', async () => {
      const runs = await runsOf('.github/workflows/gpu.yml');
      return runs.length > 0 ? runs : undefined;
    });
    await w.sim.actionsIdle();
    const [job] = await jobsOf(Number(queued!.id));
    expect(job).toMatchObject({ status: 'queued', runner_name: null });
    expect((await w.octokit.request('GET /repos/{owner}/{repo}/actions/runs/{run_id}', { ...o, run_id: Number(queued!.id) })).data.status).toBe('queued');
    const gpu = w.sim.addRunner({ labels: ['gpu'], ephemeral: true, name: 'gpu-1' });
    const [done] = await completed('.github/workflows/gpu.yml');
    expect(done!.conclusion).toBe('success');
    expect((await jobsOf(Number(done!.id)))[0]).toMatchObject({ runner_name: 'gpu-1', conclusion: 'success' });
    // Ephemeral: it de-registered after its one job.
    expect(w.sim.sim.actions.runners.has(gpu.id)).toBe(false);
  });

  it('cancel signals a running step (SIGINT, then SIGTERM), skips the rest but for if: always() / cancelled(), which still run; re-run makes a second attempt', async () => {
    await w.octokit.request('POST /repos/{owner}/{repo}/actions/workflows/{workflow_id}/dispatches', { ...o, workflow_id: 'slow.yml', ref: 'main' });
    const run = await eventually('the slow run', async () => (await runsOf('.github/workflows/slow.yml'))[0]);
    const job = await eventually('the slow step printed waiting', async () => {
      const [j] = await jobsOf(Number(run.id));
      return j && j.status === 'in_progress' && (await logOf(Number(j.id))).includes('waiting') ? j : undefined;
    });
    const cancel = await w.octokit.request('POST /repos/{owner}/{repo}/actions/runs/{run_id}/cancel', { ...o, run_id: Number(run.id) });
    expect(cancel.status).toBe(202);
    const [ended] = await completed('.github/workflows/slow.yml');
    expect(ended!.conclusion).toBe('cancelled');
    const [after] = await jobsOf(Number(run.id));
    expect(after).toMatchObject({ id: job.id, conclusion: 'cancelled' });
    expect(after!.steps!.map((s) => s.conclusion)).toEqual(['cancelled', 'skipped', 'success', 'success', 'skipped']);
    const log = await logOf(Number(job.id));
    expect(log).toContain('cleanup ran, job status cancelled');
    expect(log).toContain('cancelled() ran');
    expect(log).not.toContain('failure() ran');
    // As from GitHub's runner: SIGINT first, SIGTERM once the step has ignored it for 7.5 s.
    expect(log).toMatch(/got SIGINT\n(?:.*\n)*?.*got SIGTERM/);
    await expect(w.octokit.request('POST /repos/{owner}/{repo}/actions/runs/{run_id}/cancel', { ...o, run_id: Number(run.id) })).rejects.toMatchObject({
      status: 409,
    });

    const [ci] = await completed('.github/workflows/ci.yml');
    expect((await w.octokit.request('POST /repos/{owner}/{repo}/actions/runs/{run_id}/rerun', { ...o, run_id: Number(ci!.id) })).status).toBe(201);
    const again = await eventually(
      'the second attempt completes',
      async () => {
        const r = (await w.octokit.request('GET /repos/{owner}/{repo}/actions/runs/{run_id}', { ...o, run_id: Number(ci!.id) })).data;
        return r.run_attempt === 2 && r.status === 'completed' ? r : undefined;
      },
      { within: 120_000 },
    );
    expect(again).toMatchObject({ conclusion: 'success', previous_attempt_url: expect.stringContaining('/attempts/1') });
  });

  it('a pull request runs at the merge commit GitHub would test, reported against the head', async () => {
    const wf = PUSH_WORKFLOW.replace('  push:\n    branches: [main]', '  pull_request:').replace('name: ci', 'name: pr');
    await w.sim.push('octo/demo', { branch: 'main', files: { '.github/workflows/pr.yml': wf }, message: 'pr workflow' });
    const head = await w.sim.push('octo/demo', { branch: 'topic', files: { 'topic.txt': 't' }, message: 'topic' });
    const { number } = await w.sim.openPullRequest('octo/demo', { head: 'topic', base: 'main', title: 'T' });
    const [run] = await completed('.github/workflows/pr.yml');
    expect(run).toMatchObject({ event: 'pull_request', head_sha: head, head_branch: 'topic', conclusion: 'success' });
    const merge = (await w.sim.sim.repo('octo/demo').git.resolve(`refs/pull/${number}/merge`, 'commit'))!;
    const [job] = await jobsOf(Number(run!.id));
    expect(await logOf(Number(job!.id))).toContain(`sha=${merge}`);
    expect(merge).not.toBe(head);
  });
});
