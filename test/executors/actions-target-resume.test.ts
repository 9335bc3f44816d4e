import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dispatchedJob, dispatchRecord } from '../../src/executors/actions-job.js';
import { workerJobName } from '../../src/executors/actions-job.js';
import { HandOver } from '../../src/executors/hand-over.js';
import { eventually, scaled } from '../support/eventually.js';
import { StandIn } from './actions-stand-in.js';

/**
 * An orchestrator that dies while an attempt of the `actions` target is out on a runner, and the process
 * that comes after it (a restart, or a replica taking the run over): the attempt's refs on GitHub are all
 * the later process has. It must pick the attempt up again (`canResume`, then `run` re-attaches) rather than
 * have it recorded lost and run a second time, and it must never dispatch the attempt again. Each process
 * is a target wired as the App wires it, over a mirror of its own (a fresh cache); a dead one fetches and
 * calls nothing more. The worker is the stand-in workflow (claim, the item held at a gate, result) on the
 * simulator's Actions runtime.
 */
describe('the actions target across a restart of the orchestrator', () => {
  const s = new StandIn('agora-actions-resume-');
  const { refs } = s;
  const items = ['held', 'meanwhile', 'unsent', 'stopped', 'lost', 'handed', 'cancelled-meanwhile'];
  beforeAll(() => s.start(), scaled(60_000));
  afterAll(() => s.close(items, { idle: true }));

  /** The workflow_dispatch requests of the worker workflow for `item`, as the simulator recorded them. */
  const dispatchesOf = (item: string) => s.w.sim.dispatches.filter((d) => d.kind === 'workflow_dispatch' && d.inputs?.item === item).length;

  /** One orchestrator process (StandIn.orchestrator), its clock in the test's hands. */
  async function orchestrator(clock = { now: Date.now() }) {
    const o = await s.orchestrator({ startTimeoutSeconds: 1, clock });
    /** Waits until the target looked at the attempt's refs twice from now (a whole look began after this call), or ended it. */
    const lookedTwice = (what: string, outcome: { ended?: unknown }) => o.looked(2, what, outcome);
    return { ...o, clock, lookedTwice };
  }

  it(
    'dies while the job runs the item: the next process re-attaches, dispatches nothing, and collects the result',
    async () => {
      const first = await orchestrator();
      void first.start('held');
      await eventually('the worker job to claim held’s attempt', () => s.onGitHub(refs.claim('r-1', 'held', 1)));
      first.die();

      const next = await orchestrator();
      expect(await next.target.canResume('r-1', 'held', 1)).toBe(true);
      const resumed = await next.start('held');
      await next.lookedTwice('held’s attempt', resumed.outcome);
      expect(resumed.outcome.ended).toBeUndefined(); // waiting for the job, not failed as unstarted
      await s.open('held');
      expect(await resumed.done).toEqual({ exitCode: 0 });
      expect(await readFile(join(resumed.workspaceDir, 'out.txt'), 'utf8')).toBe('made on the runner\n');
      expect(resumed.log.tail()).toBe('the item ran\n');
      // One dispatch, one workflow run: the runner ran the item once.
      expect(dispatchesOf('held')).toBe(1);
      expect(s.jobsOf('held')).toHaveLength(1);
    },
    scaled(60_000),
  );

  it(
    'the job pushed its result while no process ran: collected at once, and again harmlessly by a second resume',
    async () => {
      const first = await orchestrator();
      void first.start('meanwhile');
      await eventually('the worker job to claim meanwhile’s attempt', () => s.onGitHub(refs.claim('r-1', 'meanwhile', 1)));
      first.die();
      await s.open('meanwhile');
      await eventually('the worker job to push meanwhile’s result', () => s.onGitHub(refs.result('r-1', 'meanwhile', 1)));

      const next = await orchestrator();
      expect(await next.target.canResume('r-1', 'meanwhile', 1)).toBe(true);
      const resumed = await next.start('meanwhile');
      expect(await resumed.done).toEqual({ exitCode: 0 });
      expect(await readFile(join(resumed.workspaceDir, 'out.txt'), 'utf8')).toBe('made on the runner\n');
      // Read and applied once: the check whether to send the recorded job again only looks at the refs.
      expect(resumed.log.tail()).toBe('the item ran\n');
      // A process that dies after collecting it, before its outcome is recorded, leaves it to the next:
      // collecting again (here, and in the same process) gives the same result and dispatches nothing.
      const again = await (await orchestrator()).start('meanwhile');
      expect(await again.done).toEqual({ exitCode: 0 });
      expect(await readFile(join(again.workspaceDir, 'out.txt'), 'utf8')).toBe('made on the runner\n');
      expect(await (await next.start('meanwhile')).done).toEqual({ exitCode: 0 });
      expect(dispatchesOf('meanwhile')).toBe(1);
    },
    scaled(60_000),
  );

  it('an attempt nothing was recorded for is not resumable: the driver records it lost', async () => {
    const next = await orchestrator();
    expect(await next.target.canResume('r-1', 'never', 1)).toBe(false);
    // Nor is a later attempt of an item whose first one was dispatched.
    expect(await next.target.canResume('r-1', 'held', 2)).toBe(false);
  });

  it(
    'recorded but never dispatched (a death between the two): the recorded job is sent once more, and the item runs once',
    async () => {
      const clock = { now: Date.now() };
      const first = await orchestrator(clock);
      const job = s.jobOf('unsent', s.dir);
      const text = JSON.stringify(dispatchedJob(job));
      const record = await dispatchRecord(first.store, workerJobName('r-1', 'unsent', 1), text, clock.now);
      expect(await first.store.casRef(refs.dispatch('r-1', 'unsent', 1), record, null)).toBe(true);
      first.die();

      const next = await orchestrator(clock);
      expect(await next.target.canResume('r-1', 'unsent', 1)).toBe(true);
      const resumed = await next.start('unsent');
      // Nothing of it on GitHub: no claim, no result. Before, it waited out its start timeout and failed.
      await eventually('the recorded job to be dispatched again', () => dispatchesOf('unsent') === 1 || undefined);
      expect(s.w.sim.dispatches.find((d) => d.kind === 'workflow_dispatch' && d.inputs?.item === 'unsent')?.inputs?.job).toBe(text);
      await s.open('unsent');
      expect(await resumed.done).toEqual({ exitCode: 0 });
      // A second resume finds the claim (or the result) and sends nothing more.
      const again = await orchestrator(clock);
      const twice = await again.start('unsent');
      expect(await twice.done).toEqual({ exitCode: 0 });
      expect(dispatchesOf('unsent')).toBe(1);
    },
    scaled(60_000),
  );

  it(
    'a re-attached attempt that is stopped (cancelled, past its deadline) cancels the workflow run of the job that claimed it',
    async () => {
      const first = await orchestrator();
      void first.start('stopped');
      await eventually('the worker job to claim stopped’s attempt', () => s.onGitHub(refs.claim('r-1', 'stopped', 1)));
      first.die();

      const next = await orchestrator();
      expect(await next.target.canResume('r-1', 'stopped', 1)).toBe(true);
      const stop = new AbortController();
      const resumed = await next.start('stopped', stop.signal);
      await next.lookedTwice('stopped’s attempt', resumed.outcome);
      stop.abort('cancelled by the test');
      expect(await resumed.done).toEqual({ exitCode: null, reason: 'stopped' });
      // No webhook of the job reached this process: the claim names its workflow run.
      const job = s.jobsOf('stopped')[0]!;
      await eventually('the claimant’s workflow run to be cancelled', () => s.w.sim.sim.actions.runs.get(job.runId)?.conclusion === 'cancelled');
      expect(dispatchesOf('stopped')).toBe(1);
    },
    scaled(60_000),
  );

  it(
    'handed over (a graceful stop): the job goes on, nothing is cancelled, and the next process collects it',
    async () => {
      const first = await orchestrator();
      const stop = new AbortController();
      const handed = await first.start('handed', stop.signal);
      await eventually('the worker job to claim handed’s attempt', () => s.onGitHub(refs.claim('r-1', 'handed', 1)));
      stop.abort(new HandOver('the agora app is stopping'));
      expect(await handed.done).toEqual({ exitCode: null, reason: 'handed over: the agora app is stopping' });
      expect(first.calls.filter((c) => c.startsWith('cancel'))).toEqual([]);
      first.die();
      const next = await orchestrator();
      expect(await next.target.canResume('r-1', 'handed', 1)).toBe(true);
      const resumed = await next.start('handed');
      await s.open('handed');
      expect(await resumed.done).toEqual({ exitCode: 0 });
      expect(s.jobsOf('handed')).toHaveLength(1);
    },
    scaled(60_000),
  );

  it(
    'ended while no process watched its job (cancelled after a hand-over): the next process cancels the job’s workflow run',
    async () => {
      const first = await orchestrator();
      const stop = new AbortController();
      const handed = await first.start('cancelled-meanwhile', stop.signal);
      await eventually('the worker job to claim the attempt', () => s.onGitHub(refs.claim('r-1', 'cancelled-meanwhile', 1)));
      stop.abort(new HandOver('the agora app is stopping'));
      await handed.done;
      first.die();
      const job = s.jobsOf('cancelled-meanwhile')[0]!;
      expect(s.w.sim.sim.actions.runs.get(job.runId)?.status).not.toBe('completed');
      const next = await orchestrator();
      await next.target.stopElsewhere('r-1', 'cancelled-meanwhile', 1);
      await eventually('the claimant’s workflow run to be cancelled', () => s.w.sim.sim.actions.runs.get(job.runId)?.conclusion === 'cancelled');
      // Again, and for an attempt that never ran: nothing more.
      await next.target.stopElsewhere('r-1', 'cancelled-meanwhile', 1);
      await next.target.stopElsewhere('r-1', 'never', 1);
      expect(next.calls.filter((c) => c.startsWith('cancel'))).toEqual([`cancel ${job.runId}`]);
    },
    scaled(60_000),
  );

  it(
    'the job that claimed it ended without a result while no process ran: the next process asks GitHub, and the runner counts as lost',
    async () => {
      const first = await orchestrator();
      void first.start('lost');
      await eventually('the worker job to claim lost’s attempt', () => s.onGitHub(refs.claim('r-1', 'lost', 1)));
      first.die();
      // Its runner dies mid-job; the job's webhooks reach no process (this one's target hears none).
      s.w.sim.killRunner(s.runner.id);
      await eventually('the worker job to end', () => s.jobsOf('lost')[0]?.status === 'completed');

      const next = await orchestrator();
      expect(await next.target.canResume('r-1', 'lost', 1)).toBe(true);
      const ended = await (await next.start('lost')).done;
      expect(ended).toMatchObject({ exitCode: null, infrastructureFailure: true });
      expect(ended.reason).toMatch(
        /^runner lost: the worker job agora r-1 lost 1 \(workflow run \d+\) ended failure before it pushed a result \(http:\/\/\S+\)$/,
      );
      expect(dispatchesOf('lost')).toBe(1);
    },
    scaled(60_000),
  );
});
