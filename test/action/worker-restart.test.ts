import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HttpError } from '@agora/github-sim/http';
import { CONTAINER_GATE_WAIT, containerGate, engineClient, managedContainers, uniqueRunId } from '../docker/engine.js';
import { eventually, scaled } from '../support/eventually.js';
import { checkRuns, commandPlan, outcomesOf, runBound, until, type AppWorld } from '../github/app-world.js';
import { actionsConfig, startWorkerWorld } from './worker-world.js';

/**
 * The App dies while an attempt on the `actions` target is out on a runner, end to end on the simulator
 * (the shipped worker workflow, the committed action/dist under Node 24, the item in a Podman container held
 * at a gate). What the attempt is, is on GitHub (its dispatch record, claim and result refs), so the next
 * App process re-attaches to it when it takes the run over: the item is done after its one attempt and the
 * runner runs it once, whether the job still runs at the restart or pushed its result while no App ran.
 */
describe('the actions target when the App restarts', () => {
  let w: AppWorld;
  const docker = engineClient();
  const runIds: string[] = [];
  beforeAll(async () => {
    // A killed App's runs are taken over by the next process's sweep once their lease has run out.
    w = await startWorkerWorld(actionsConfig(), { sweepMs: 500 });
  }, scaled(120_000));
  afterAll(async () => {
    await w?.close();
    // A failed case may leave its item's container behind: never let it outlive the suite.
    for (const id of runIds) for (const c of await managedContainers(docker, id)) await docker.getContainer(c.Id).remove({ force: true, v: true });
  });

  const git = () => w.sim.sim.repo(w.fullName).git;

  /**
   * Pushes a plan of one item, `slow`, that waits at the container gate, and waits until a runner's
   * container runs it. The plan id is unique to this process, so the gate opens only this run's containers.
   */
  async function heldItem(branch: string) {
    const planId = uniqueRunId(branch);
    const text = commandPlan(planId, [{ id: 'slow', run: `${CONTAINER_GATE_WAIT}; echo slow > slow.txt`, locks: ['slow.txt'] }]);
    const sha = await w.sim.push(w.fullName, { branch, files: { 'plan.json': text }, message: `Add the ${branch} plan` });
    const runId = `${planId}-${sha.slice(0, 12)}`;
    runIds.push(runId);
    await eventually('the worker job to run slow in its container', async () => (await managedContainers(docker, runId)).some((c) => c.State === 'running'), {
      within: runBound(1, 2),
    });
    return { sha, runId, branch, gate: containerGate(docker, runId) };
  }

  /**
   * The App dies as a crashed process does: nothing of it reaches GitHub any more, not even the cancel of
   * its attempts' workflow runs that stopping them would send (GitHub never hears of a crash).
   */
  async function crash(): Promise<void> {
    w.sim.setFaults({
      beforeRequest: (r) => {
        if (r.method === 'POST' && r.route === '/repos/{owner}/{repo}/actions/runs/{run_id}/cancel') throw new HttpError(503, 'Service Unavailable');
      },
    });
    await w.agora.kill();
    w.sim.setFaults({});
  }

  /**
   * Starts a fresh App process and waits until the run ended, the gate held open meanwhile in every
   * container of the run (one of a second attempt too, should the restarted App run the item again).
   */
  async function restartUntilEnded(run: { sha: string; runId: string; gate: ReturnType<typeof containerGate> }) {
    const fresh = await w.restartApp();
    await until('the restarted App to take the run over', async () => outcomesOf(fresh).sweeps.some((r) => r.resumed.includes(run.runId)), w, runBound(1));
    await until(
      'the run to end',
      async () => {
        await run.gate.open().catch(() => 0); // no container of the run running now
        return (await checkRuns(w, run.sha)).get('agora')?.status === 'completed';
      },
      w,
      runBound(1, 3),
    );
    await w.quiesce();
  }

  /** The run ended green after one attempt of slow, run by one worker job, its file on the branch. */
  async function ranOnce(run: { sha: string; runId: string; branch: string }, errors: string[] = []) {
    const checks = await checkRuns(w, run.sha);
    const slow = checks.get('agora / slow');
    expect(slow?.conclusion, slow?.output.summary ?? '').toBe('success');
    expect(slow?.output.summary).toContain('**done** after 1 attempt.');
    expect(checks.get('agora')?.conclusion).toBe('success');
    const jobs = [...w.sim.sim.actions.jobs.values()].filter((j) => j.name.startsWith(`agora ${run.runId} `));
    expect(jobs.map((j) => [j.name.slice(`agora ${run.runId} `.length), j.conclusion])).toEqual([['slow 1', 'success']]);
    const results = [...(await git().refs()).keys()].filter((r) => r.startsWith(`refs/agora/results/${run.runId}/`));
    expect(results).toEqual([`refs/agora/results/${run.runId}/slow/1`]);
    expect(await git().text(['show', `refs/heads/${run.branch}:slow.txt`])).toBe('slow\n');
    expect(w.sim.contractViolations).toEqual([]);
    expect(w.errors).toEqual(errors);
  }

  it(
    'dies while the worker job runs the item: the restarted App re-attaches to the attempt and collects its result',
    async () => {
      const runner = w.sim.addRunner({ labels: ['agora'], name: 'while-running' });
      const run = await heldItem('while-running');
      await crash();
      await restartUntilEnded(run);
      await ranOnce(run);
      await w.sim.sim.actions.idle();
      w.sim.removeRunner(runner.id);
    },
    scaled(runBound(2, 5)),
  );

  it(
    'dies, and the worker job pushes its result while no App runs: the restarted App collects it',
    async () => {
      const runner = w.sim.addRunner({ labels: ['agora'], name: 'while-down' });
      const run = await heldItem('while-down');
      await crash();
      await run.gate.open();
      await until('the worker job to push the result', async () => !!(await git().resolve(`refs/agora/results/${run.runId}/slow/1`, 'commit')), w, runBound(1));
      await restartUntilEnded(run);
      await ranOnce(run);
      await w.sim.sim.actions.idle();
      w.sim.removeRunner(runner.id);
    },
    scaled(runBound(2, 5)),
  );

  it(
    'is stopped gracefully (a deploy) while the worker job runs: it hands the attempt over, cancels nothing, and the next App collects it',
    async () => {
      const runner = w.sim.addRunner({ labels: ['agora'], name: 'handed-over' });
      const run = await heldItem('handed-over');
      await w.agora.close();
      const cancels = w.sim.requests.filter((r) => r.method === 'POST' && r.route === '/repos/{owner}/{repo}/actions/runs/{run_id}/cancel');
      expect(cancels).toEqual([]);
      // The job still runs the item, its attempt still running in the state, the lease given back.
      expect((await managedContainers(docker, run.runId)).some((c) => c.State === 'running')).toBe(true);
      await restartUntilEnded(run);
      await ranOnce(run);
      await w.sim.sim.actions.idle();
      w.sim.removeRunner(runner.id);
    },
    scaled(runBound(2, 5)),
  );

  it(
    'cannot read the attempt on GitHub when it takes the run over: it leaves the run to the next sweep, which re-attaches',
    async () => {
      const runner = w.sim.addRunner({ labels: ['agora'], name: 'unreadable' });
      const run = await heldItem('unreadable');
      await crash();
      // The restarted App lists the run's checks just before it recovers the run: the git fetch after that
      // (the attempt's refs, or the run's derived refs) is answered 503, once.
      let listed = false;
      let failed = 0;
      w.sim.setFaults({
        beforeRequest: (r) => {
          if (r.route === '/repos/{owner}/{repo}/commits/{ref}/check-runs' && r.params.ref === run.sha) listed = true;
        },
        beforeGitRequest: (r) => {
          if (!listed || failed > 0 || r.service !== 'upload-pack') return;
          failed += 1;
          throw new HttpError(503, 'Service Unavailable');
        },
      });
      try {
        await restartUntilEnded(run);
      } finally {
        w.sim.setFaults({});
      }
      expect(failed).toBe(1);
      const recoveryFailed = w.errors.filter((e) => e.includes(`${run.runId}: its running attempts could not be recovered`));
      expect(recoveryFailed).toHaveLength(1);
      await ranOnce(run, recoveryFailed);
      await w.sim.sim.actions.idle();
      w.sim.removeRunner(runner.id);
    },
    scaled(runBound(2, 5)),
  );
});
