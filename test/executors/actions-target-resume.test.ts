import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SimRunner } from '@agora/github-sim';
import { startWorld, type World } from '@agora/github-sim/harness';
import { dispatchedJob, dispatchRecord } from '../../src/executors/actions-job.js';
import { ActionsTarget, workerJobName } from '../../src/executors/actions-target.js';
import { createLogSink } from '../../src/executors/log-sink.js';
import type { WorkerJob, WorkerResult } from '../../src/executors/types.js';
import { mirrorRef } from '../../src/git/refspec.js';
import { actionsApi } from '../../src/github/actions-api.js';
import { MirroredGitStore } from '../../src/github/mirrored-store.js';
import type { Octokit } from '../../src/github/octokit.js';
import { RemoteMirror } from '../../src/github/remote-sync.js';
import { RunRefs } from '../../src/runs/refs.js';
import { eventually, scaled } from '../support/eventually.js';
import { standInWorker } from './actions-stand-in.js';

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
  let w: World;
  let dir: string;
  let runner: SimRunner;
  const refs = new RunRefs('refs/agora/');
  const items = ['held', 'meanwhile', 'unsent', 'stopped', 'lost'];
  let processes = 0;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'agora-actions-resume-'));
    await mkdir(join(dir, 'gates'));
    w = await startWorld({ files: { 'README.md': '# demo\n', '.github/workflows/agora-worker.yml': standInWorker(join(dir, 'gates')) } });
    runner = w.sim.addRunner({ labels: ['agora'], name: 'runner' });
  }, scaled(60_000));
  afterAll(async () => {
    if (dir) for (const item of items) await writeFile(join(dir, 'gates', item), '');
    await w?.sim.actionsIdle();
    await w?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const open = (item: string) => writeFile(join(dir, 'gates', item), '');
  const onGitHub = (ref: string) => w.sim.sim.repo('octo/demo').git.resolve(ref, 'commit');
  /** The workflow_dispatch requests of the worker workflow for `item`, as the simulator recorded them. */
  const dispatchesOf = (item: string) => w.sim.dispatches.filter((d) => d.kind === 'workflow_dispatch' && d.inputs?.item === item).length;

  /**
   * One orchestrator process: a mirror of its own and an actions target on it, its clock in the test's
   * hands. `die()` is its crash: from then on it neither fetches nor calls GitHub, and what it was waiting
   * for never ends.
   */
  async function orchestrator(clock = { now: Date.now() }) {
    processes += 1;
    const store = new MirroredGitStore(
      await RemoteMirror.open(join(dir, `mirror-${processes}.git`), `${w.sim.gitUrl}/octo/demo.git`, () => w.token()),
      refs.ns,
    );
    await store.fetch([mirrorRef('refs/heads/main')]);
    let dead = false;
    const never = new Promise<never>(() => undefined);
    const counts = { looks: 0 };
    const target = new ActionsTarget({
      config: { workflow: 'agora-worker.yml', labels: ['self-hosted', 'agora'], startTimeoutSeconds: 1 },
      api: async () => (dead ? never : actionsApi(() => w.octokit as unknown as Octokit, 'octo', 'demo')),
      store,
      refs,
      fetchRefs: async (refspecs) => {
        if (dead) return never;
        await store.fetch(refspecs);
        counts.looks++;
      },
      pollMs: 50,
      clock: () => clock.now,
    });
    let runs = 0;
    /** Runs attempt 1 of `item` in a workspace of its own, as the driver does after a start (or a resume). */
    const start = async (item: string, signal = new AbortController().signal) => {
      runs += 1;
      const workspaceDir = join(dir, `workspace-${processes}-${item}-${runs}`);
      await mkdir(workspaceDir);
      const job = jobOf(item, workspaceDir);
      const outcome: { ended?: WorkerResult } = {};
      const done = target.run(job, signal).then((r) => (outcome.ended = r));
      return { done, outcome, workspaceDir, log: job.log };
    };
    /** Waits until the target looked at the attempt's refs twice from now (a whole look began after this call), or ended it. */
    const lookedTwice = async (what: string, outcome: { ended?: WorkerResult }) => {
      const before = counts.looks;
      await eventually(`the target to look at ${what} twice`, () => outcome.ended !== undefined || counts.looks >= before + 2);
    };
    return { target, store, clock, start, lookedTwice, die: () => void (dead = true) };
  }

  function jobOf(item: string, workspaceDir: string): WorkerJob {
    const log = createLogSink({ secrets: [] });
    return { runId: 'r-1', itemId: item, attempt: 1, workspaceDir, base: w.repo.headSha, command: ['/bin/sh', '-c', 'true'], env: {}, secrets: {}, log };
  }

  it(
    'dies while the job runs the item: the next process re-attaches, dispatches nothing, and collects the result',
    async () => {
      const first = await orchestrator();
      void first.start('held');
      await eventually('the worker job to claim held’s attempt', () => onGitHub(refs.claim('r-1', 'held', 1)));
      first.die();

      const next = await orchestrator();
      expect(await next.target.canResume('r-1', 'held', 1)).toBe(true);
      const resumed = await next.start('held');
      await next.lookedTwice('held’s attempt', resumed.outcome);
      expect(resumed.outcome.ended).toBeUndefined(); // waiting for the job, not failed as unstarted
      await open('held');
      expect(await resumed.done).toEqual({ exitCode: 0 });
      expect(await readFile(join(resumed.workspaceDir, 'out.txt'), 'utf8')).toBe('made on the runner\n');
      expect(resumed.log.tail()).toBe('the item ran\n');
      // One dispatch, one workflow run: the runner ran the item once.
      expect(dispatchesOf('held')).toBe(1);
      const name = workerJobName('r-1', 'held', 1);
      expect([...w.sim.sim.actions.jobs.values()].filter((j) => j.name === name)).toHaveLength(1);
    },
    scaled(60_000),
  );

  it(
    'the job pushed its result while no process ran: collected at once, and again harmlessly by a second resume',
    async () => {
      const first = await orchestrator();
      void first.start('meanwhile');
      await eventually('the worker job to claim meanwhile’s attempt', () => onGitHub(refs.claim('r-1', 'meanwhile', 1)));
      first.die();
      await open('meanwhile');
      await eventually('the worker job to push meanwhile’s result', () => onGitHub(refs.result('r-1', 'meanwhile', 1)));

      const next = await orchestrator();
      expect(await next.target.canResume('r-1', 'meanwhile', 1)).toBe(true);
      const resumed = await next.start('meanwhile');
      expect(await resumed.done).toEqual({ exitCode: 0 });
      expect(await readFile(join(resumed.workspaceDir, 'out.txt'), 'utf8')).toBe('made on the runner\n');
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
      const job = jobOf('unsent', dir);
      const text = JSON.stringify(dispatchedJob(job));
      const record = await dispatchRecord(first.store, workerJobName('r-1', 'unsent', 1), text, clock.now);
      expect(await first.store.casRef(refs.dispatch('r-1', 'unsent', 1), record, null)).toBe(true);
      first.die();

      const next = await orchestrator(clock);
      expect(await next.target.canResume('r-1', 'unsent', 1)).toBe(true);
      const resumed = await next.start('unsent');
      // Nothing of it on GitHub: no claim, no result. Before, it waited out its start timeout and failed.
      await eventually('the recorded job to be dispatched again', () => dispatchesOf('unsent') === 1 || undefined);
      expect(w.sim.dispatches.find((d) => d.kind === 'workflow_dispatch' && d.inputs?.item === 'unsent')?.inputs?.job).toBe(text);
      await open('unsent');
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
      await eventually('the worker job to claim stopped’s attempt', () => onGitHub(refs.claim('r-1', 'stopped', 1)));
      first.die();

      const next = await orchestrator();
      expect(await next.target.canResume('r-1', 'stopped', 1)).toBe(true);
      const stop = new AbortController();
      const resumed = await next.start('stopped', stop.signal);
      await next.lookedTwice('stopped’s attempt', resumed.outcome);
      stop.abort('cancelled by the test');
      expect(await resumed.done).toEqual({ exitCode: null, reason: 'stopped' });
      // No webhook of the job reached this process: the claim names its workflow run.
      const job = [...w.sim.sim.actions.jobs.values()].find((j) => j.name === workerJobName('r-1', 'stopped', 1))!;
      await eventually('the claimant’s workflow run to be cancelled', () => w.sim.sim.actions.runs.get(job.runId)?.conclusion === 'cancelled');
      expect(dispatchesOf('stopped')).toBe(1);
    },
    scaled(60_000),
  );

  it(
    'the job that claimed it ended without a result while no process ran: the next process asks GitHub, and the runner counts as lost',
    async () => {
      const first = await orchestrator();
      void first.start('lost');
      await eventually('the worker job to claim lost’s attempt', () => onGitHub(refs.claim('r-1', 'lost', 1)));
      first.die();
      // Its runner dies mid-job; the job's webhooks reach no process (this one's target hears none).
      w.sim.killRunner(runner.id);
      await eventually(
        'the worker job to end',
        () => [...w.sim.sim.actions.jobs.values()].find((j) => j.name === workerJobName('r-1', 'lost', 1))?.status === 'completed',
      );

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
