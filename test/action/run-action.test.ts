import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { startSigstoreMock, type SigstoreMock } from '../audit/sigstore-mock.js';
import { BUSYBOX, DEFAULT_ENGINE, engineClient, managedContainers } from '../docker/engine.js';
import { startWorld, type World } from '@agora/github-sim/harness';
import { node24 } from '@agora/github-sim/actions/node24';
import { agora } from '../support/repo.js';
import { eventually, scaled } from '../support/eventually.js';

/**
 * `mode: run` as a user runs it, with no App anywhere: the repository holds the shipped
 * examples/workflows/agora-run.yml (its `with:` pointed at the mock Sigstore and the test image), a pull
 * request adds a plan, and the job runs the committed action/dist under Node 24 on a simulated runner.
 * What the user sees: a check run per item, the patch as a commit on the pull request, the release with
 * the keyless-signed bundle, the gate on the new head, and a bundle `agora verify` accepts for the
 * workflow's identity only. A job without `id-token: write`, and a pull request from a fork, are refused
 * before anything is written.
 */

// The items run on the runner's container engine, as a runner's DOCKER_HOST says (the step inherits it).
process.env.DOCKER_HOST ??= DEFAULT_ENGINE;

const ACTION_REPO = { owner: 'agora-orchestrator', name: 'agora' };
const o = { owner: 'octo', repo: 'demo' };
const WORKFLOW = '.github/workflows/agora.yml';

/** Three items: one writes a file (the one patch), one reads it after, one looks for the job's credentials. */
const PLAN = `${JSON.stringify(
  {
    id: 'small',
    queue: 'default',
    items: [
      { id: 'write', executor: 'command', inputs: { run: 'mkdir -p out && echo hello > out/hello.txt' }, depends_on: [], resourceLocks: ['out/'] },
      { id: 'read', executor: 'command', inputs: { run: 'grep -q hello out/hello.txt' }, depends_on: ['write'], resourceLocks: [] },
      {
        id: 'creds',
        executor: 'command',
        // Neither in its environment nor in any process's it can see: the job's token and OIDC request token.
        inputs: {
          run: "env | grep -qE '^(GITHUB_TOKEN|ACTIONS_ID_TOKEN_REQUEST_TOKEN|ACTIONS_ID_TOKEN_REQUEST_URL|ACTIONS_RUNTIME_TOKEN|INPUT_TOKEN)=' && exit 1; cat /proc/[0-9]*/environ 2>/dev/null | grep -qE 'GITHUB_TOKEN|ACTIONS_ID_TOKEN|ACTIONS_RUNTIME|INPUT_TOKEN' && exit 1; exit 0",
        },
        depends_on: [],
        resourceLocks: [],
      },
    ],
  },
  null,
  2,
)}\n`;

describe('the Agora Action, mode: run, on a pull request (no App)', () => {
  let w: World;
  let mock: SigstoreMock;
  let dir: string;
  let runner: { id: number };
  beforeAll(async () => {
    await node24();
    // The real Fulcio certifies an Actions token for its job_workflow_ref; the mock is told to do the same.
    mock = await startSigstoreMock({ subjectClaim: 'job_workflow_ref' });
    dir = await mkdtemp(join(tmpdir(), 'agora-run-action-'));
    w = await startWorld({ files: { 'README.md': '# demo\n' } });
    const files: Record<string, string> = {};
    for (const f of ['action.yml', 'dist/index.js', 'dist/package.json']) files[`action/${f}`] = await readFile(join('action', f), 'utf8');
    const actionRepo = await w.sim.createRepo(ACTION_REPO.owner, ACTION_REPO.name, files);
    await w.sim.push(actionRepo.fullName, { branch: 'v1', files: {}, message: 'v1' });
    // The shipped workflow, with the inputs a test world needs: the mock Sigstore and the test image.
    const workflow = parse(await readFile('examples/workflows/agora-run.yml', 'utf8')) as {
      jobs: { run: { steps: Array<{ with?: Record<string, string> }> } };
    };
    const step = workflow.jobs.run.steps[0]!;
    Object.assign(step.with!, {
      image: BUSYBOX,
      concurrency: '2',
      'fulcio-url': mock.fulcioUrl,
      'rekor-url': mock.rekorUrl,
      'tsa-url': mock.tsaUrl,
      'rekor-entry-type': 'intoto',
    });
    // The same job without id-token: write, for pull requests that add plan-no-id.json.
    const noIdToken = {
      ...workflow,
      name: 'agora-no-id',
      on: { pull_request: { paths: ['plan-no-id.json'] } },
      permissions: { contents: 'write', checks: 'write' },
    };
    await w.sim.push(w.repo.fullName, {
      branch: 'main',
      files: { [WORKFLOW]: stringify(workflow), '.github/workflows/agora-no-id.yml': stringify(noIdToken) },
      message: 'Run Agora plans from pull requests',
    });
    runner = w.sim.addRunner({ labels: ['ubuntu-latest'], name: 'runner-1' });
  }, scaled(300_000));
  afterAll(async () => {
    await w?.close();
    await mock?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const runsOf = async (path: string) =>
    (await w.octokit.request('GET /repos/{owner}/{repo}/actions/runs', o)).data.workflow_runs.filter((r) => r.path === path);
  const completedJob = async (path: string, headSha: string) => {
    const run = await eventually(
      `the ${path} run of ${headSha.slice(0, 12)} to complete`,
      async () => (await runsOf(path)).find((r) => r.head_sha === headSha && r.status === 'completed'),
      { within: 240_000 },
    );
    const jobs = (await w.octokit.request('GET /repos/{owner}/{repo}/actions/runs/{run_id}/jobs', { ...o, run_id: Number(run.id) })).data.jobs;
    const job = jobs[0]!;
    const log = String((await w.octokit.request('GET /repos/{owner}/{repo}/actions/jobs/{job_id}/logs', { ...o, job_id: Number(job.id) })).data);
    return { run, conclusion: job.conclusion, summary: w.sim.sim.actions.jobs.get(Number(job.id))!.summary, log };
  };
  // Every check run on the commit. Those the job creates with its GITHUB_TOKEN belong to the github-actions
  // app, as on GitHub, and so does the job's own check run (named as the job, `run`).
  const checksOn = async (sha: string) =>
    new Map((await w.octokit.rest.checks.listForRef({ ...o, ref: sha, per_page: 100 })).data.check_runs.map((c) => [c.name, c]));

  it(
    'drives the plan: a check per item, the patch as a PR commit, the signed bundle released, a green gate; agora verify accepts the workflow identity only',
    async () => {
      const planSha = await w.sim.push(w.repo.fullName, { branch: 'small', files: { 'plan.json': PLAN }, message: 'Add a small plan' });
      const pr = await w.sim.openPullRequest(w.repo.fullName, { head: 'small', base: 'main', title: 'A small plan' });
      const job = await completedJob(WORKFLOW, planSha);
      expect(job.log).toMatch(/node24 under .*node/);
      expect(job.conclusion, `${job.log}\n${job.summary}`).toBe('success');
      const runId = `small-${planSha.slice(0, 12)}`;
      expect(job.summary).toContain('## Agora run: done');
      expect(job.log).toMatch(new RegExp(`agora done run=${runId} bundle=\\S+/${runId}\\.audit\\.json`));

      // One check run per item (and the run's own), on the plan commit.
      const planChecks = await checksOn(planSha);
      for (const name of ['agora', 'agora / write', 'agora / read', 'agora / creds']) {
        expect(planChecks.get(name), name).toMatchObject({ status: 'completed', conclusion: 'success' });
      }
      // The patch is a commit on the pull request, on top of the plan commit, holding the item's file.
      const head = (await w.octokit.rest.pulls.get({ ...o, pull_number: pr.number })).data.head.sha;
      const commits = (await w.octokit.rest.pulls.listCommits({ ...o, pull_number: pr.number })).data;
      expect(commits.map((c) => c.sha)).toEqual([planSha, head]);
      expect(commits[1]!.commit.message).toMatch(/Agora-Run: small-/);
      expect(commits[1]!.commit.message).toContain('Agora-Item: write');
      const file = (await w.octokit.rest.repos.getContent({ ...o, path: 'out/hello.txt', ref: head })).data as { content: string };
      expect(Buffer.from(file.content, 'base64').toString()).toBe('hello\n');
      // The gate on the new head, set by the job itself (its push starts no workflow run).
      expect((await checksOn(head)).get('agora / audit')).toMatchObject({ status: 'completed', conclusion: 'success' });
      expect((await runsOf(WORKFLOW)).map((r) => r.head_sha)).toEqual([planSha]);

      // The release carries the bundle and its Sigstore bundle.
      const releases = (await w.octokit.rest.repos.listReleases(o)).data.filter((r) => r.tag_name.startsWith(`agora-run-${runId}-`));
      expect(releases).toHaveLength(1);
      expect(releases[0]!.assets.map((a) => a.name).sort()).toEqual([`${runId}.audit.json`, `${runId}.audit.sigstore.json`, `${runId}.report.html`]);
      for (const a of releases[0]!.assets) {
        const res = await w.octokit.request('GET /repos/{owner}/{repo}/releases/assets/{asset_id}', {
          ...o,
          asset_id: a.id,
          headers: { accept: 'application/octet-stream' },
        });
        await writeFile(join(dir, a.name), Buffer.from(res.data as unknown as ArrayBuffer));
      }
      await writeFile(join(dir, 'trusted_root.json'), JSON.stringify(mock.trustedRoot));

      // Keyless: the certificate names the workflow that ran, under the simulator's OIDC issuer.
      const identity = `${w.repo.fullName}/${WORKFLOW}@refs/pull/${pr.number}/merge`;
      const issuer = w.sim.sim.actions.oidc.issuer;
      const bundle = join(dir, `${runId}.audit.json`);
      const verify = (id: string) =>
        agora(dir, [
          'verify',
          bundle,
          '--sigstore',
          join(dir, `${runId}.audit.sigstore.json`),
          '--certificate-identity',
          id,
          '--certificate-oidc-issuer',
          issuer,
          '--trusted-root',
          join(dir, 'trusted_root.json'),
        ]);
      const accepted = await verify(identity);
      expect(accepted.code, accepted.stdout + accepted.stderr).toBe(0);
      expect(accepted.stdout).toMatch(/tamper-evident \(external-immutable\)/);
      const other = await verify(`${w.repo.fullName}/.github/workflows/release.yml@refs/heads/main`);
      expect(other.code).not.toBe(0);
      expect(other.stdout).toContain(`FAIL signature: certificate identity is ${JSON.stringify(identity)}`);
    },
    scaled(400_000),
  );

  it(
    'a job without id-token: write is refused in its summary and fails, having written nothing',
    async () => {
      const refs = async () => [...(await w.sim.sim.repo(w.repo.fullName).git.refs()).keys()];
      const planSha = await w.sim.push(w.repo.fullName, { branch: 'no-id', files: { 'plan-no-id.json': '{}\n' }, message: 'A plan the no-id workflow sees' });
      const before = new Set(await refs());
      const pr = await w.sim.openPullRequest(w.repo.fullName, { head: 'no-id', base: 'main', title: 'No OIDC' });
      const job = await completedJob('.github/workflows/agora-no-id.yml', planSha);
      expect(job.conclusion).toBe('failure');
      expect(job.summary).toContain('## Agora run: refused');
      expect(job.summary).toContain('`permissions: id-token: write`');
      expect(job.log).toContain('the job has no OIDC identity');
      // No check of Agora's: the only one is the refused job's own.
      expect([...(await checksOn(planSha)).keys()]).toEqual(['run']);
      // The only new refs are the pull request's own (GitHub's refs/pull/N/*): nothing under refs/agora/.
      expect((await refs()).filter((r) => !before.has(r)).sort()).toEqual([`refs/pull/${pr.number}/head`, `refs/pull/${pr.number}/merge`]);
    },
    scaled(300_000),
  );

  /**
   * Runs the bundled action under Node 24 as a runner would for `payload` (the simulator sends no such
   * event: a pull request from a fork, a closed one), in a job environment with an OIDC identity or without.
   */
  async function runDist(
    name: string,
    payload: Record<string, unknown>,
    oidc: boolean,
  ): Promise<{ code: number | null; stdout: string; summary: string; output: string; requests: number }> {
    const node = await node24();
    const event = join(dir, `${name}-event.json`);
    await writeFile(
      event,
      JSON.stringify({
        ...payload,
        repository: { id: 1, full_name: w.repo.fullName, clone_url: `${w.sim.gitUrl}/${w.repo.fullName}.git`, html_url: `${w.sim.apiUrl}/${w.repo.fullName}` },
      }),
    );
    const summary = join(dir, `${name}-summary.md`);
    const output = join(dir, `${name}-output`);
    await writeFile(summary, '');
    await writeFile(output, '');
    const token = await w.token();
    const requests = w.sim.sim.requests.length;
    const env = {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? '',
      RUNNER_TEMP: dir,
      GITHUB_ACTIONS: 'true',
      GITHUB_EVENT_NAME: 'pull_request',
      GITHUB_EVENT_PATH: event,
      GITHUB_STEP_SUMMARY: summary,
      GITHUB_OUTPUT: output,
      GITHUB_API_URL: w.sim.apiUrl,
      INPUT_MODE: 'run',
      INPUT_TOKEN: token,
      INPUT_IMAGE: BUSYBOX,
      ...(oidc ? { ACTIONS_ID_TOKEN_REQUEST_URL: `${w.sim.apiUrl}/oidc-never-asked`, ACTIONS_ID_TOKEN_REQUEST_TOKEN: 'never-used' } : {}),
    };
    const exit = await new Promise<{ code: number | null; stdout: string }>((resolve) => {
      execFile(node, [join('action', 'dist', 'index.js')], { env }, (err, stdout) =>
        resolve({ code: err ? ((err as { code?: number }).code ?? null) : 0, stdout }),
      );
    });
    // What the action asked GitHub (the token above was the test's own request).
    return { ...exit, summary: await readFile(summary, 'utf8'), output: await readFile(output, 'utf8'), requests: w.sim.sim.requests.length - requests };
  }

  /**
   * Runs the action for a pull request `number` whose head (a commit of `plan.json` on `branch`) is in
   * `headRepo`, with event `action`, and checks what a refused job shows: the error, the summary, the
   * `refused` status output, not one request to GitHub, no check on the head.
   */
  async function expectRefused(p: {
    name: string;
    number: number;
    branch: string;
    headRepo: string;
    action: string;
    oidc: boolean;
    error: string;
    summary: string;
  }): Promise<void> {
    const base = (await w.sim.sim.repo(w.repo.fullName).git.resolve('refs/heads/main', 'commit'))!;
    const head = await w.sim.push(w.repo.fullName, { branch: p.branch, files: { 'plan.json': PLAN }, message: `The plan of ${p.name}` });
    const exit = await runDist(
      p.name,
      {
        action: p.action,
        number: p.number,
        pull_request: {
          number: p.number,
          head: { sha: head, ref: p.branch, repo: { full_name: p.headRepo } },
          base: { sha: base, ref: 'main', repo: { full_name: w.repo.fullName } },
        },
      },
      p.oidc,
    );
    expect(exit.code).toBe(1);
    expect(exit.stdout).toContain(`::error::${p.error}`);
    expect(exit.summary).toContain('## Agora run: refused');
    expect(exit.summary).toContain('nothing was run and nothing was written');
    expect(exit.summary).toContain(p.summary);
    expect(exit.output).toMatch(/status<<.*\nrefused\n/);
    expect(exit.requests).toBe(0);
    expect(await checksOn(head)).toEqual(new Map());
  }

  it(
    'a pull request from a fork is refused in the job summary and the job fails, having asked GitHub nothing',
    async () => {
      // A fork's job has no OIDC identity.
      await expectRefused({
        name: 'fork',
        number: 99,
        branch: 'fork-head',
        headRepo: 'mallory/demo',
        action: 'opened',
        oidc: false,
        error: 'pull request #99 comes from the fork mallory/demo',
        summary: 'push the branch to this repository',
      });
    },
    scaled(120_000),
  );

  it(
    'a closed pull request (a workflow with `types: [closed]`) is refused in the job summary, and the job fails having run nothing',
    async () => {
      // Everything else a run needs is there: the job of a closed pull request would run the plan.
      await expectRefused({
        name: 'closed',
        number: 98,
        branch: 'closed-head',
        headRepo: w.repo.fullName,
        action: 'closed',
        oidc: true,
        error: 'this job ran on a pull_request event with action "closed"',
        summary: 'opened, synchronize or reopened',
      });
    },
    scaled(120_000),
  );

  it(
    'a job that dies mid-run: the re-run of the workflow takes the run over from its refs and finishes it',
    async () => {
      const plan = JSON.parse(PLAN) as { id: string; items: unknown[] };
      const longPlan = `${JSON.stringify({ ...plan, id: 'long', items: [{ id: 'slow', executor: 'command', inputs: { run: 'echo started; sleep 30; mkdir -p long && echo done > long/slow.txt' }, depends_on: [], resourceLocks: ['long/'] }] }, null, 2)}\n`;
      const planSha = await w.sim.push(w.repo.fullName, { branch: 'long', files: { 'plan.json': longPlan }, message: 'A plan longer than its first job' });
      await w.sim.openPullRequest(w.repo.fullName, { head: 'long', base: 'main', title: 'A long plan' });
      // The runner dies while the item runs (its check shows in_progress): the job fails as a lost runner.
      await eventually('the slow item running', async () => (await checksOn(planSha)).get('agora / slow')?.status === 'in_progress', { within: 240_000 });
      w.sim.killRunner(runner.id);
      const first = await eventually(
        'the killed job to complete',
        async () => (await runsOf(WORKFLOW)).find((r) => r.head_sha === planSha && r.status === 'completed'),
        { within: 120_000 },
      );
      expect(first.conclusion).toBe('failure');
      runner = w.sim.addRunner({ labels: ['ubuntu-latest'], name: 'runner-2' });
      await w.octokit.request('POST /repos/{owner}/{repo}/actions/runs/{run_id}/rerun', { ...o, run_id: Number(first.id) });
      const again = await eventually(
        'the re-run to complete',
        async () => (await runsOf(WORKFLOW)).find((r) => r.head_sha === planSha && r.run_attempt === 2 && r.status === 'completed'),
        { within: 400_000 },
      );
      const job = [...w.sim.sim.actions.jobs.values()].filter((j) => j.runId === Number(again.id)).at(-1)!;
      const log = job.log.join('\n');
      expect(again.conclusion, `${log}\n${job.summary}`).toBe('success');
      expect(log).toMatch(/agora: long-[0-9a-f]{12}: resumed/);
      expect(job.summary).toContain('## Agora run: done');
      expect(job.summary).toContain('already existed (an earlier job of this head)');
      const head = (await w.octokit.rest.git.getRef({ ...o, ref: 'heads/long' })).data.object.sha;
      expect(head).not.toBe(planSha);
      expect((await checksOn(planSha)).get('agora / slow')).toMatchObject({ status: 'completed', conclusion: 'success' });
      expect((await checksOn(head)).get('agora / audit')).toMatchObject({ status: 'completed', conclusion: 'success' });
    },
    scaled(900_000),
  );

  it(
    "a cancelled job stops its item's container and gives the run back before the runner kills the step",
    async () => {
      const plan = JSON.parse(PLAN) as { id: string };
      const sleepy = { id: 'sleepy', executor: 'command', inputs: { run: 'echo started; sleep 300' }, depends_on: [], resourceLocks: [] };
      const planSha = await w.sim.push(w.repo.fullName, {
        branch: 'cancel',
        files: { 'plan.json': `${JSON.stringify({ ...plan, id: 'cancel', items: [sleepy] }, null, 2)}\n` },
        message: 'A plan to cancel',
      });
      await w.sim.openPullRequest(w.repo.fullName, { head: 'cancel', base: 'main', title: 'A plan to cancel' });
      await eventually('the sleepy item running', async () => (await checksOn(planSha)).get('agora / sleepy')?.status === 'in_progress', { within: 240_000 });
      const runId = `cancel-${planSha.slice(0, 12)}`;
      const containers = () => managedContainers(engineClient(), runId);
      await eventually("the item's container", async () => (await containers()).length === 1, { within: 120_000 });
      const started = (await runsOf(WORKFLOW)).find((r) => r.head_sha === planSha)!;
      await w.octokit.request('POST /repos/{owner}/{repo}/actions/runs/{run_id}/cancel', { ...o, run_id: Number(started.id) });
      const ended = await eventually(
        'the cancelled run to complete',
        async () => (await runsOf(WORKFLOW)).find((r) => r.id === started.id && r.status === 'completed'),
        { within: 120_000 },
      );
      expect(ended.conclusion).toBe('cancelled');
      const job = [...w.sim.sim.actions.jobs.values()].filter((j) => j.runId === Number(started.id)).at(-1)!;
      expect(job.log.join('\n')).toContain('the workflow run was cancelled; stopping the items and giving the run back');
      // Stopped and removed by the step itself, within the runner's grace: nothing outlives the job.
      expect(await containers()).toEqual([]);
    },
    scaled(600_000),
  );
});
