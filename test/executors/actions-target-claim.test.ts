import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startWorld, type World } from '@agora/github-sim/harness';
import { workerJobName } from '../../src/executors/actions-job.js';
import { ActionsTarget } from '../../src/executors/actions-target.js';
import { createLogSink } from '../../src/executors/log-sink.js';
import type { WorkerResult } from '../../src/executors/types.js';
import { mirrorRef } from '../../src/git/refspec.js';
import { actionsApi } from '../../src/github/actions-api.js';
import { MirroredGitStore } from '../../src/github/mirrored-store.js';
import type { Octokit } from '../../src/github/octokit.js';
import { RemoteMirror } from '../../src/github/remote-sync.js';
import { RunRefs } from '../../src/runs/refs.js';
import { eventually, scaled } from '../support/eventually.js';
import { standInWorker } from './actions-stand-in.js';

/**
 * The worker job's first act is to push the attempt's claim ref; its `workflow_job` webhooks may reach
 * another replica of the App, or be lost. A stand-in for the worker (the shipped workflow's inputs and job
 * name, bash steps instead of the Agora Action: claim, the item held at a gate, result) runs on the
 * simulator's Actions runtime, and the target is wired as the App wires it (its REST calls, the mirror's
 * fetch). The webhooks of the job reach the target only as each case hands them over; the start timeout
 * passes on the target's clock while the job is held in its item, at a gate per item (a file the test writes).
 */
describe('the actions target when the job’s webhooks do not reach it', () => {
  let w: World;
  let dir: string;
  const refs = new RunRefs('refs/agora/');
  let store: MirroredGitStore;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'agora-actions-claim-'));
    await mkdir(join(dir, 'gates'));
    w = await startWorld({ files: { 'README.md': '# demo\n', '.github/workflows/agora-worker.yml': standInWorker(join(dir, 'gates')) } });
    w.sim.addRunner({ labels: ['agora'], name: 'held' });
    store = new MirroredGitStore(await RemoteMirror.open(join(dir, 'mirror.git'), `${w.sim.gitUrl}/octo/demo.git`, () => w.token()), refs.ns);
    await store.fetch([mirrorRef('refs/heads/main')]);
  }, scaled(60_000));
  afterAll(async () => {
    if (dir) for (const item of ['slow', 'other']) await writeFile(join(dir, 'gates', item), '');
    await w?.sim.actionsIdle();
    await w?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  /**
   * Starts attempt 1 of `item` on a target wired as the App wires it, its clock in the test's hands, and
   * waits until the worker job claimed the attempt (and is held in the item). Returns the job as its
   * `queued` webhook names it, which the case may hand to the target or not.
   */
  async function claimedAttempt(item: string) {
    const clock = { now: Date.now() };
    const counts = { looks: 0 };
    const target = new ActionsTarget({
      config: { workflow: 'agora-worker.yml', labels: ['self-hosted', 'agora'], startTimeoutSeconds: 1 },
      api: async () => actionsApi(() => w.octokit as unknown as Octokit, 'octo', 'demo'),
      store,
      refs,
      fetchRefs: async (refspecs) => {
        await store.fetch(refspecs);
        counts.looks++;
      },
      pollMs: 50,
      clock: () => clock.now,
    });
    const workspaceDir = join(dir, `workspace-${item}`);
    await mkdir(workspaceDir);
    const log = createLogSink({ secrets: [] });
    const outcome: { ended?: WorkerResult } = {};
    const running = target
      .run(
        { runId: 'r-1', itemId: item, attempt: 1, workspaceDir, base: w.repo.headSha, command: ['/bin/sh', '-c', 'true'], env: {}, secrets: {}, log },
        new AbortController().signal,
      )
      .then((r) => (outcome.ended = r));
    await eventually(`the worker job to claim ${item}'s attempt`, () => w.sim.sim.repo('octo/demo').git.resolve(refs.claim('r-1', item, 1), 'commit'));
    const name = workerJobName('r-1', item, 1);
    const queued = await eventually(`the queued webhook of ${name}`, () =>
      w.receiver.received.find((d) => d.name === 'workflow_job' && d.payload.action === 'queued' && (d.payload.workflow_job as { name: string }).name === name),
    );
    const job = queued.payload.workflow_job as { id: number; run_id: number; name: string; html_url: string };
    /** Waits until the target looked at the attempt twice from now (a whole look began after this call), or ended it. */
    const lookedTwice = async (when: string) => {
      const before = counts.looks;
      await eventually(`the target to look at ${item}'s attempt twice ${when}`, () => outcome.ended !== undefined || counts.looks >= before + 2);
    };
    /** Passes the start timeout on the target's clock, then waits until the target looked at the attempt twice. */
    const pastStartTimeout = async () => {
      clock.now += 60_000;
      await lookedTwice('past its start timeout');
    };
    return { target, job, running, outcome, log, workspaceDir, lookedTwice, pastStartTimeout, open: () => writeFile(join(dir, 'gates', item), '') };
  }

  it(
    'counts a claimed attempt as started past the start timeout and collects its result, cancelling nothing',
    async () => {
      const a = await claimedAttempt('slow');
      // Of the job's webhooks only `queued` reaches this target; `in_progress` went to another replica.
      a.target.observe({
        name: a.job.name,
        jobId: a.job.id,
        workflowRunId: a.job.run_id,
        action: 'queued',
        conclusion: null,
        runnerName: null,
        htmlUrl: a.job.html_url,
      });
      await a.pastStartTimeout();
      expect(a.outcome.ended?.reason).toBeUndefined();
      expect(w.sim.sim.actions.runs.get(a.job.run_id)?.status).not.toBe('completed');

      await a.open();
      expect(await a.running).toEqual({ exitCode: 0 });
      expect(await readFile(join(a.workspaceDir, 'out.txt'), 'utf8')).toBe('made on the runner\n');
      expect(a.log.tail()).toBe('the item ran\n');
      await w.sim.actionsIdle();
      expect(w.sim.sim.actions.runs.get(a.job.run_id)?.conclusion).toBe('success');
      expect(a.target.jobUrl('r-1', 'slow', 1)).toBe(a.job.html_url);
    },
    scaled(60_000),
  );

  it(
    'a job that lost the claim completed, the claimant’s webhooks went elsewhere: no lost runner, the result is collected',
    async () => {
      const a = await claimedAttempt('other');
      await a.lookedTwice('since the claim was pushed');
      // A second job of the attempt (a dispatch sent twice) found the claim taken and ended; its webhooks
      // are the only ones that reach this target.
      const loser = { name: a.job.name, jobId: a.job.id + 1000, workflowRunId: a.job.run_id + 1000, runnerName: 'spare', htmlUrl: null };
      a.target.observe({ ...loser, action: 'queued', conclusion: null });
      a.target.observe({ ...loser, action: 'in_progress', conclusion: null });
      a.target.observe({ ...loser, action: 'completed', conclusion: 'success' });
      await a.pastStartTimeout();
      expect(a.outcome.ended?.reason).toBeUndefined();

      await a.open();
      expect(await a.running).toEqual({ exitCode: 0 });
      expect(await readFile(join(a.workspaceDir, 'out.txt'), 'utf8')).toBe('made on the runner\n');
      await w.sim.actionsIdle();
      expect(w.sim.sim.actions.runs.get(a.job.run_id)?.conclusion).toBe('success');
    },
    scaled(60_000),
  );
});
