import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ActionsApi } from '../../src/executors/actions-target.js';
import { actionsApi } from '../../src/github/actions-api.js';
import type { Octokit } from '../../src/github/octokit.js';
import { eventually, scaled } from '../support/eventually.js';
import { StandIn } from './actions-stand-in.js';

/**
 * What a claim ref, which anyone who can push writes, can make the App do: the run it names is trusted
 * (asked about, cancelled) only when GitHub says it is a dispatch of the worker workflow; a run GitHub no
 * longer has ends a re-attached attempt as a lost runner instead of leaving it waiting for ever.
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
  afterAll(() => s.close(['victim', 'gone'], { idle: false }));

  const orchestrator = (wrap?: (api: ActionsApi) => ActionsApi) => s.orchestrator({ startTimeoutSeconds: 600, wrap });

  it(
    'a claim pushed by someone with push access, naming another workflow’s run: stopping the attempt never cancels that run',
    async () => {
      // A maintainer's deploy run, queued.
      await actionsApi(() => s.w.octokit as unknown as Octokit, 'octo', 'demo').dispatch('deploy.yml', 'main', {});
      const deployRun = await eventually('the deploy run', () => [...s.w.sim.sim.actions.runs.values()].find((r) => r.name === 'deploy'));
      expect(deployRun.status).not.toBe('completed');

      // Someone with `contents: write` (a deploy key suffices: no API access) pre-creates the claim of an attempt.
      const attacker = await orchestrator();
      const claim = await attacker.store.writeCommit({
        tree: await attacker.store.writeTree([]),
        parents: [],
        message: `agora: r-1/victim attempt 1 claimed by ${deployRun.id}/1/evil\n`,
        author: { name: 'x', email: 'x@x', timestamp: 1, timezoneOffset: 0 },
        committer: { name: 'x', email: 'x@x', timestamp: 1, timezoneOffset: 0 },
      });
      expect(await attacker.store.casRef(refs.claim('r-1', 'victim', 1), claim, null)).toBe(true);

      // The App dispatches the attempt and dies; its worker job runs, cannot claim, and ends.
      const first = await orchestrator();
      void first.start('victim');
      await eventually('the worker job to end', () => s.jobsOf('victim')[0]?.status === 'completed', { within: scaled(30_000) });
      first.die();
      // The next process re-attaches: the claim names the deploy run, which it asks GitHub about.
      const app = await orchestrator();
      expect(await app.target.canResume('r-1', 'victim', 1)).toBe(true);
      const stop = new AbortController();
      const run = await app.start('victim', stop.signal);
      await app.looked(20, 'victim’s attempt', run.outcome, scaled(30_000));
      expect(run.outcome.ended).toBeUndefined();
      // The attempt is stopped (a user's cancel, the item's timeout, a graceful stop of the App, a lost lease).
      stop.abort('cancelled');
      expect(await run.done).toEqual({ exitCode: null, reason: 'stopped' });
      expect(app.calls).not.toContain(`cancel ${deployRun.id}`);
      expect(s.w.sim.sim.actions.runs.get(deployRun.id)?.conclusion).not.toBe('cancelled');
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
});
