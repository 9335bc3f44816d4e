/** Jobs as a workflow author writes them: needs, if:, continue-on-error, timeout-minutes and strategy.matrix. */
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually } from '../support/eventually.js';
import { startWorld, type World } from '@agora/github-sim/harness';

const o = { owner: 'octo', repo: 'demo' };
const on = `on:
  workflow_dispatch:
    inputs:
      target: { default: prod }
`;
const runsOn = 'runs-on: [self-hosted, build]';

const NEEDS = `${on}jobs:
  build:
    ${runsOn}
    outputs:
      version: \${{ steps.v.outputs.version }}
    steps:
      - id: v
        run: echo "version=1.2.3" >> "$GITHUB_OUTPUT"
  test:
    needs: build
    ${runsOn}
    steps:
      - run: echo "testing \${{ needs.build.outputs.version }} result=\${{ needs.build.result }}"
  broken:
    ${runsOn}
    steps:
      - run: exit 3
  after-broken:
    needs: [broken]
    ${runsOn}
    steps:
      - run: echo never
  report:
    needs: [broken, test]
    if: always()
    ${runsOn}
    steps:
      - run: echo "broken=\${{ needs.broken.result }} test=\${{ needs.test.result }}"
  cleanup:
    needs: broken
    if: \${{ failure() }}
    ${runsOn}
    steps:
      - run: echo cleanup
  deploy:
    needs: test
    if: github.ref == 'refs/heads/main' && inputs.target != 'none'
    ${runsOn}
    steps:
      - run: echo "deploy to \${{ inputs.target }}"
  tolerated:
    continue-on-error: true
    ${runsOn}
    steps:
      - run: exit 1
`;

const STEPS = `${on}jobs:
  steps:
    ${runsOn}
    steps:
      - id: flaky
        continue-on-error: true
        run: exit 2
      - run: echo "flaky outcome=\${{ steps.flaky.outcome }} conclusion=\${{ steps.flaky.conclusion }}"
      - name: slow
        timeout-minutes: 0.02
        run: sleep 60
      - if: failure()
        run: echo "after the timeout"
      - run: echo "not after a failure"
      - if: always()
        run: echo "always ran"
      - if: steps.flaky.outcome == 'failure'
        run: echo "implicit success() holds this back"
`;

const MATRIX = `${on}jobs:
  m:
    ${runsOn}
    strategy:
      max-parallel: 1
      matrix:
        os: [linux, mac]
        node: [20, 24]
        exclude:
          - os: mac
            node: 20
        include:
          - os: linux
            node: 24
            extra: yes
          - os: windows
            node: 22
    steps:
      - run: echo "os=\${{ matrix.os }} node=\${{ matrix.node }} extra=\${{ matrix.extra }}"
`;

const FAIL_FAST = `${on}jobs:
  ff:
    ${runsOn}
    strategy:
      matrix:
        n: [1, 2]
    steps:
      - run: |
          if [ "\${{ matrix.n }}" = 1 ]; then exit 1; fi
          echo started-long
          sleep 600
`;

const JOB_TIMEOUT = `${on}jobs:
  slow:
    ${runsOn}
    timeout-minutes: 0.02
    steps:
      - run: sleep 60
`;

const GITHUB_FUNCTIONS = `${on}jobs:
  on-main:
    ${runsOn}
    if: contains(github.ref, 'main') && startsWith(github.ref, 'refs/heads/')
    steps:
      - run: echo "joined=\${{ join(fromJSON('["a","b"]'), '+') }} formatted=\${{ format('{0}-{1}', github.event_name, 'x') }}"
  not-main:
    ${runsOn}
    if: endsWith(github.ref, '/release')
    steps:
      - run: echo no
  env-step:
    ${runsOn}
    env:
      X: y
    steps:
      - if: env.X == 'Y'
        run: echo "env-step-ran"
      - uses: actions/checkout@v4
      - run: echo "hash=\${{ hashFiles('README.*', '!*.txt') }} none=[\${{ hashFiles('nothing/**') }}]"
  bad-value:
    ${runsOn}
    if: fromJSON('{not json')
    steps:
      - run: echo no
`;

describe('actions jobs: needs, if, continue-on-error, timeout-minutes, matrix', () => {
  let w: World;
  beforeAll(async () => {
    w = await startWorld({
      files: {
        'README.md': 'r',
        '.github/workflows/needs.yml': NEEDS,
        '.github/workflows/steps.yml': STEPS,
        '.github/workflows/matrix.yml': MATRIX,
        '.github/workflows/fail-fast.yml': FAIL_FAST,
        '.github/workflows/job-timeout.yml': JOB_TIMEOUT,
        '.github/workflows/functions.yml': GITHUB_FUNCTIONS,
      },
    });
    for (let i = 0; i < 3; i++) w.sim.addRunner({ labels: ['build'] });
  });
  afterAll(async () => {
    expect(w.sim.contractViolations).toEqual([]);
    await w.close();
  });

  const dispatchAndWait = async (file: string) => {
    await w.octokit.request('POST /repos/{owner}/{repo}/actions/workflows/{workflow_id}/dispatches', { ...o, workflow_id: file, ref: 'main' });
    return eventually(
      `a completed run of ${file}`,
      async () => {
        const r = (await w.octokit.request('GET /repos/{owner}/{repo}/actions/workflows/{workflow_id}/runs', { ...o, workflow_id: file })).data
          .workflow_runs[0];
        return r?.status === 'completed' ? r : undefined;
      },
      { within: 120_000 },
    );
  };
  const jobsOf = async (runId: number) => (await w.octokit.request('GET /repos/{owner}/{repo}/actions/runs/{run_id}/jobs', { ...o, run_id: runId })).data.jobs;
  const logOf = async (jobId: number | bigint) =>
    String((await w.octokit.request('GET /repos/{owner}/{repo}/actions/jobs/{job_id}/logs', { ...o, job_id: Number(jobId) })).data);
  const byName = async (runId: number) => Object.fromEntries((await jobsOf(runId)).map((j) => [j.name, j]));

  it('needs orders jobs and passes outputs; a failed need skips its dependents unless if: always() or failure(); continue-on-error keeps the run from failing on its own', async () => {
    const run = await dispatchAndWait('needs.yml');
    const jobs = await byName(Number(run.id));
    expect(Object.fromEntries(Object.entries(jobs).map(([n, j]) => [n, j.conclusion]))).toEqual({
      build: 'success',
      test: 'success',
      broken: 'failure',
      'after-broken': 'skipped',
      report: 'success',
      cleanup: 'success',
      deploy: 'success',
      tolerated: 'failure',
    });
    expect(run.conclusion).toBe('failure');
    expect(jobs['after-broken']!.steps).toEqual([]);
    expect(Date.parse(jobs.test!.started_at)).toBeGreaterThanOrEqual(Date.parse(jobs.build!.completed_at!));
    expect(await logOf(jobs.test!.id)).toContain('testing 1.2.3 result=success');
    expect(await logOf(jobs.report!.id)).toContain('broken=failure test=success');
    expect(await logOf(jobs.deploy!.id)).toContain('deploy to prod');
  });

  it('step if:, continue-on-error (outcome failure, conclusion success) and a step timeout', async () => {
    const run = await dispatchAndWait('steps.yml');
    const [job] = await jobsOf(Number(run.id));
    expect(job!.steps!.map((s) => s.conclusion)).toEqual(['success', 'success', 'failure', 'success', 'skipped', 'success', 'skipped']);
    expect(job!.conclusion).toBe('failure');
    const log = await logOf(job!.id);
    expect(log).toContain('flaky outcome=failure conclusion=success');
    expect(log).toContain("The action 'slow' has timed out after 0.02 minutes.");
    expect(log).toContain('after the timeout');
    expect(log).toContain('always ran');
    expect(log).not.toContain('implicit success() holds this back');
  });

  it('a matrix expands with exclude and include, runs one at a time under max-parallel: 1, and renders matrix.*', async () => {
    const run = await dispatchAndWait('matrix.yml');
    const jobs = await jobsOf(Number(run.id));
    expect(jobs.map((j) => j.name)).toEqual(['m (linux, 20)', 'm (linux, 24, yes)', 'm (mac, 24)', 'm (windows, 22)']);
    expect(jobs.every((j) => j.conclusion === 'success')).toBe(true);
    expect(await logOf(jobs[1]!.id)).toContain('os=linux node=24 extra=yes');
    expect(await logOf(jobs[3]!.id)).toContain('os=windows node=22 extra=');
    await w.sim.settle();
    const ids = new Set(jobs.map((j) => j.id));
    const events = w.receiver.received
      .filter((r) => r.name === 'workflow_job' && ids.has((r.payload.workflow_job as { id: number }).id))
      .map((r) => String(r.payload.action))
      .filter((a) => a !== 'queued');
    expect(events).toEqual(['in_progress', 'completed', 'in_progress', 'completed', 'in_progress', 'completed', 'in_progress', 'completed']);
  });

  it('fail-fast cancels the rest of the matrix when one job fails', async () => {
    const run = await dispatchAndWait('fail-fast.yml');
    const jobs = await jobsOf(Number(run.id));
    expect(jobs.map((j) => [j.name, j.conclusion])).toEqual([
      ['ff (1)', 'failure'],
      ['ff (2)', 'cancelled'],
    ]);
    expect(run.conclusion).toBe('cancelled');
  });

  it("a job past its timeout-minutes fails with GitHub's message", async () => {
    const run = await dispatchAndWait('job-timeout.yml');
    const [job] = await jobsOf(Number(run.id));
    expect(job!.conclusion).toBe('failure');
    expect(await logOf(job!.id)).toMatch(/The job running on runner sim-runner-\d+ has exceeded the maximum execution time of 0\.02 minutes\./);
  });

  it('expressions evaluate as on GitHub: its functions, case-insensitive comparison, the env context; a value that fails names the file and the expression', async () => {
    const run = await dispatchAndWait('functions.yml');
    const jobs = await byName(Number(run.id));
    expect(jobs['on-main']!.conclusion).toBe('success');
    expect(await logOf(jobs['on-main']!.id)).toContain('joined=a+b formatted=workflow_dispatch-x');
    expect(jobs['not-main']!.conclusion).toBe('skipped');
    expect(jobs['env-step']!.conclusion).toBe('success');
    expect(await logOf(jobs['env-step']!.id)).toContain('env-step-ran');
    // hashFiles: SHA-256 over each matching file's SHA-256, '' when nothing matches.
    const readme = createHash('sha256').update(createHash('sha256').update('r').digest()).digest('hex');
    expect(await logOf(jobs['env-step']!.id)).toContain(`hash=${readme} none=[]`);
    expect(jobs['bad-value']!.conclusion).toBe('failure');
    expect(await logOf(jobs['bad-value']!.id)).toContain(
      ".github/workflows/functions.yml: job 'bad-value' `if: success() && (fromJSON('{not json'))`: `${{ success() && (fromJSON('{not json')) }}`: ",
    );
  });

  it("an expression naming a function or context GitHub does not have is an invalid workflow file (the parser's message)", async () => {
    const bad = `on: push\njobs:\n  a:\n    ${runsOn}\n    steps:\n      - run: echo \${{ nosuchfn(github.ref) }}\n`;
    await w.sim.push('octo/demo', { branch: 'main', files: { '.github/workflows/bad-fn.yml': bad }, message: 'bad function' });
    expect(w.sim.sim.actions.fileProblems.find((p) => p.path === '.github/workflows/bad-fn.yml')?.message).toBe(
      "Invalid workflow file: .github/workflows/bad-fn.yml (Line: 6, Col: 14): Unrecognized function: 'nosuchfn'",
    );
  });

  it('needs naming no job is an invalid workflow file', async () => {
    const bad = `on: push\njobs:\n  a:\n    ${runsOn}\n    needs: [nope]\n    steps:\n      - run: echo\n  root:\n    ${runsOn}\n    steps:\n      - run: echo\n`;
    await w.sim.push('octo/demo', { branch: 'main', files: { '.github/workflows/bad-needs.yml': bad }, message: 'bad needs' });
    expect(w.sim.sim.actions.fileProblems.find((p) => p.path === '.github/workflows/bad-needs.yml')?.message).toBe(
      "Invalid workflow file: .github/workflows/bad-needs.yml (Line: 5, Col: 13): Job 'a' depends on unknown job 'nope'.",
    );
  });

  it('needs that go round in a cycle are an invalid workflow file, not jobs queued forever', async () => {
    const cycle = `  a:\n    ${runsOn}\n    needs: c\n    steps:\n      - run: echo\n  b:\n    ${runsOn}\n    needs: a\n    steps:\n      - run: echo\n  c:\n    ${runsOn}\n    needs: [b]\n    steps:\n      - run: echo\n`;
    const root = `  root:\n    ${runsOn}\n    steps:\n      - run: echo\n`;
    await w.sim.push('octo/demo', {
      branch: 'main',
      files: { '.github/workflows/cyclic.yml': `on: push\njobs:\n${cycle}${root}`, '.github/workflows/all-wait.yml': `on: push\njobs:\n${cycle}` },
      message: 'cyclic needs',
    });
    const problem = (path: string) => w.sim.sim.actions.fileProblems.find((p) => p.path === path)?.message;
    expect(problem('.github/workflows/cyclic.yml')?.split('\n')).toEqual([
      "Invalid workflow file: .github/workflows/cyclic.yml (Line: 5, Col: 12): Job 'a' depends on job 'c' which creates a cycle in the dependency graph.",
      "Invalid workflow file: .github/workflows/cyclic.yml (Line: 10, Col: 12): Job 'b' depends on job 'a' which creates a cycle in the dependency graph.",
      "Invalid workflow file: .github/workflows/cyclic.yml (Line: 15, Col: 13): Job 'c' depends on job 'b' which creates a cycle in the dependency graph.",
    ]);
    // With no job free of needs, GitHub (and its parser) names that instead.
    expect(problem('.github/workflows/all-wait.yml')).toBe(
      'Invalid workflow file: .github/workflows/all-wait.yml (Line: 3, Col: 3): The workflow must contain at least one job with no dependencies.',
    );
  });
});
