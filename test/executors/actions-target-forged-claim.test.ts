import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ActionsApi } from '../../src/executors/actions-target.js';
import { actionsApi } from '../../src/github/actions-api.js';
import { workflowFile } from '../../src/executors/actions-claims.js';
import type { Octokit } from '../../src/github/octokit.js';
import { eventually, scaled } from '../support/eventually.js';
import { StandIn } from './actions-stand-in.js';

/**
 * What a claim ref, which anyone who can push writes, can make the App do: the run it names is trusted
 * (asked about, cancelled) only when GitHub says it is a dispatch of the worker workflow; a claim that
 * names another run, or none, fails the attempt (the attempt's job could not claim, so no result can come)
 * instead of leaving it waiting until its timeout, or for ever; a run GitHub no longer has ends a
 * re-attached attempt as a lost runner.
 */
describe('the actions target and the run a claim names', () => {
  // A workflow of the repository unrelated to Agora (say, a production deploy), queued for a runner nobody has.
  const deploy = `name: deploy
on: workflow_dispatch
jobs:
  deploy:
    runs-on: [self-hosted, production]
    steps:
      - run: echo deploying
`;
  const s = new StandIn('agora-actions-forged-claim-', { '.github/workflows/deploy.yml': deploy });
  const { refs } = s;
  beforeAll(() => s.start(), scaled(60_000));
  // The deploy run never ends: the simulator's Actions are never idle.
  afterAll(() => s.close(['first', 'unnamed', 'victim', 'genuine', 'stopped-first', 'gone', 'other', 'jobless'], { idle: false }));

  const orchestrator = (wrap?: (api: ActionsApi) => ActionsApi) => s.orchestrator({ startTimeoutSeconds: 600, wrap });

  /** A maintainer's deploy run, queued (for a runner nobody has): what a forged claim names. */
  async function deployRun() {
    const runs = () => [...s.w.sim.sim.actions.runs.values()].filter((r) => r.name === 'deploy');
    const before = runs().length;
    await actionsApi(() => s.w.octokit as unknown as Octokit, 'octo', 'demo').dispatch('deploy.yml', 'main', {});
    const run = await eventually('the deploy run', () => (runs().length > before ? runs().at(-1) : undefined));
    expect(run.status).not.toBe('completed');
    return run;
  }

  /** Someone with `contents: write` (a deploy key suffices: no API access) pre-creates the claim of an attempt. */
  async function forgeClaim(item: string, by: string) {
    const attacker = await orchestrator();
    const claim = await attacker.store.writeCommit({
      tree: await attacker.store.writeTree([]),
      parents: [],
      message: `agora: r-1/${item} attempt 1 claimed${by}\n`,
      author: { name: 'x', email: 'x@x', timestamp: 1, timezoneOffset: 0 },
      committer: { name: 'x', email: 'x@x', timestamp: 1, timezoneOffset: 0 },
    });
    expect(await attacker.store.casRef(refs.claim('r-1', item, 1), claim, null)).toBe(true);
  }

  /** The attempt failed (to be retried) for its forged claim, long before its timeouts, and the deploy run goes on. */
  function failedForTheClaim(ended: { exitCode: number | null; infrastructureFailure?: boolean; reason?: string }, what: string) {
    expect(ended).toMatchObject({ exitCode: null, infrastructureFailure: true });
    expect(ended.reason).toContain(`the claim of the worker job agora r-1 `);
    expect(ended.reason).toContain(what);
    expect(ended.reason).toContain('it was not pushed by a worker job');
  }

  it(
    'a claim pushed before the first dispatch, naming another workflow’s run: the attempt fails at once, and that run is never touched',
    async () => {
      const deploy = await deployRun();
      await forgeClaim('first', ` by ${deploy.id}/1/evil`);
      const app = await orchestrator();
      // Its worker job runs, cannot claim, and ends; the claim names a run this process never heard of.
      const ended = await (await app.start('first')).done;
      failedForTheClaim(ended, `names workflow run ${deploy.id}, which is not a workflow_dispatch run of agora-worker.yml`);
      expect(app.calls).not.toContain(`cancel ${deploy.id}`);
      expect(s.w.sim.sim.actions.runs.get(deploy.id)?.conclusion).not.toBe('cancelled');
    },
    scaled(90_000),
  );

  it(
    'a claim that names no workflow run fails the attempt at once',
    async () => {
      await forgeClaim('unnamed', '');
      const ended = await (await (await orchestrator()).start('unnamed')).done;
      failedForTheClaim(ended, 'names no workflow run');
    },
    scaled(90_000),
  );

  it(
    'a forged claim found by a process that re-attaches: the attempt fails, and the run it names is never cancelled',
    async () => {
      const deploy = await deployRun();
      await forgeClaim('victim', ` by ${deploy.id}/1/evil`);
      // The App dispatches the attempt and dies; its worker job runs, cannot claim, and ends.
      const first = await orchestrator();
      void first.start('victim');
      await eventually('the worker job to end', () => s.jobsOf('victim')[0]?.status === 'completed', { within: scaled(30_000) });
      first.die();
      // The next process re-attaches: the claim names the deploy run, which it asks GitHub about.
      const app = await orchestrator();
      expect(await app.target.canResume('r-1', 'victim', 1)).toBe(true);
      failedForTheClaim(await (await app.start('victim')).done, `names workflow run ${deploy.id}`);
      expect(app.calls).not.toContain(`cancel ${deploy.id}`);
      expect(s.w.sim.sim.actions.runs.get(deploy.id)?.conclusion).not.toBe('cancelled');
    },
    scaled(90_000),
  );

  it.each([
    ['.github/workflows/agora-worker.yml', '.github/workflows/agora-worker.yml'],
    ['.github/workflows/agora-worker.yml@refs/heads/main', '.github/workflows/agora-worker.yml'],
    ['octo/demo/.github/workflows/agora-worker.yml@main', '.github/workflows/agora-worker.yml'],
    ['octo/demo/x.github/workflows/agora-worker.yml', 'octo/demo/x.github/workflows/agora-worker.yml'],
  ])('reads the workflow file out of a run path GitHub gives as %s', (path, file) => {
    expect(workflowFile(path)).toBe(file);
  });

  it(
    'a genuine claim whose run GitHub gives with its ref in the path (…yml@refs/heads/main) is not taken for a forged one',
    async () => {
      const app = await s.orchestrator({
        startTimeoutSeconds: 600,
        wrap: (api) => ({
          ...api,
          workflowRun: async (id) => ({ ...(await api.workflowRun(id)), path: `octo/demo/.github/workflows/agora-worker.yml@refs/heads/main` }),
        }),
      });
      const started = await app.start('genuine');
      await eventually('the worker job to claim the attempt', () => s.onGitHub(refs.claim('r-1', 'genuine', 1)));
      // The stand-in's webhooks never come here: the claimant is asked about at each look.
      await app.looked(2, 'genuine’s attempt', started.outcome);
      expect(started.outcome.ended).toBeUndefined();
      // Its jobs are listed once: the run's job is the attempt's, and stays so.
      const claimant = s.jobsOf('genuine')[0]!.runId;
      expect(app.calls.filter((c) => c === `get ${claimant}`).length).toBeGreaterThanOrEqual(2);
      expect(app.calls.filter((c) => c === `jobs ${claimant}`)).toEqual([`jobs ${claimant}`]);
      await s.open('genuine');
      expect(await started.done).toEqual({ exitCode: 0 });
    },
    scaled(90_000),
  );

  it(
    'a first dispatch that is stopped cancels the run that claimed it, though its webhooks never came here',
    async () => {
      const app = await orchestrator();
      const stop = new AbortController();
      const started = await app.start('stopped-first', stop.signal);
      await eventually('the worker job to claim the attempt', () => s.onGitHub(refs.claim('r-1', 'stopped-first', 1)));
      stop.abort('cancelled by the test');
      expect(await started.done).toEqual({ exitCode: null, reason: 'stopped' });
      const job = s.jobsOf('stopped-first')[0]!;
      expect(app.calls).toContain(`cancel ${job.runId}`);
      await eventually('the claimant’s workflow run to be cancelled', () => s.w.sim.sim.actions.runs.get(job.runId)?.conclusion === 'cancelled');
    },
    scaled(90_000),
  );

  it(
    'a re-attached attempt whose claimant run GitHub no longer has (404) ends as a lost runner',
    async () => {
      const first = await orchestrator();
      void first.start('gone');
      await eventually('the claim', () => s.onGitHub(refs.claim('r-1', 'gone', 1)));
      first.die();
      s.w.sim.killRunner(s.runner.id);
      await eventually('the worker job to end', () => s.jobsOf('gone')[0]?.status === 'completed');
      const next = await orchestrator((api) => ({
        ...api,
        workflowRun: () => Promise.reject(Object.assign(new Error('Not Found'), { status: 404 })),
      }));
      expect(await next.target.canResume('r-1', 'gone', 1)).toBe(true);
      const stopGone = new AbortController();
      const resumed = await next.start('gone', stopGone.signal);
      const ended = await resumed.done;
      expect(ended).toMatchObject({ exitCode: null, infrastructureFailure: true });
      expect(ended.reason).toContain('runner lost');
      expect(ended.reason).toContain('gone (GitHub no longer has the run)');
      s.runner = s.w.sim.addRunner({ labels: ['agora'], name: 'runner-2' });
    },
    scaled(90_000),
  );

  it(
    'a claim naming another attempt’s running worker fails the attempt at once, and no stop cancels that worker',
    async () => {
      // Attempt 1 of `other` runs on the runner, held at its gate: a genuine worker dispatch that claimed.
      const app = await orchestrator();
      const other = await app.start('other');
      await eventually('other’s worker job to claim', () => s.onGitHub(refs.claim('r-1', 'other', 1)));
      const otherRun = s.jobsOf('other')[0]!.runId;
      // Claims of three more attempts, pushed by someone else, all naming that worker's run.
      for (const item of ['twin', 'twin-stopped', 'twin-elsewhere']) await forgeClaim(item, ` by ${otherRun}/1/evil`);
      failedForTheClaim(await (await app.start('twin')).done, `names workflow run ${otherRun}, a run of agora-worker.yml with no job named agora r-1 twin 1`);
      const stop = new AbortController();
      stop.abort('cancelled by the test');
      expect(await (await app.start('twin-stopped', stop.signal)).done).toEqual({ exitCode: null, reason: 'stopped' });
      await app.target.stopElsewhere('r-1', 'twin-elsewhere', 1);
      expect(app.calls).not.toContain(`cancel ${otherRun}`);
      // The worker the claims named goes on to its result.
      await s.open('other');
      expect(await other.done).toEqual({ exitCode: 0 });
      expect(s.w.sim.sim.actions.runs.get(otherRun)?.conclusion).not.toBe('cancelled');
    },
    scaled(90_000),
  );

  it(
    'a claim naming a worker run that ended with no job (a startup failure) ends the attempt at once as a lost runner',
    async () => {
      // GitHub, as this process is told, says the claimant run ended before it had a job.
      const app = await s.orchestrator({
        startTimeoutSeconds: 600,
        wrap: (api) => ({
          ...api,
          workflowRun: async (id) => ({ ...(await api.workflowRun(id)), status: 'completed', conclusion: 'startup_failure' }),
          workflowRunJobNames: async () => [],
        }),
      });
      const ended = await (await app.start('jobless')).done;
      expect(ended).toMatchObject({ exitCode: null, infrastructureFailure: true });
      expect(ended.reason).toContain('runner lost');
      expect(ended.reason).toContain('ended startup_failure before it pushed a result');
      expect(app.calls.filter((c) => c.startsWith('jobs '))).toEqual([]);
      await s.open('jobless');
      await eventually('the held job to end', () => s.jobsOf('jobless')[0]?.status === 'completed');
    },
    scaled(90_000),
  );
});
