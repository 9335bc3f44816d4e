import Docker from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LABEL_RUN } from '../../src/executors/docker-target.js';
import { eventually, scaled } from '../support/eventually.js';
import { checkRuns, commandPlan, runBound, until, type AppWorld } from '../github/app-world.js';
import { engineClient } from '../docker/engine.js';
import { actionsConfig, startWorkerWorld, workerApi } from './worker-world.js';

/**
 * The App's `actions` target when things go wrong, end to end on the simulator (the shipped worker
 * workflow, the committed action/dist under Node 24, items in Podman containers): a worker that writes
 * outside its scope or tries to reach the repository from the item, a runner killed mid-job, and a run
 * cancelled while its job runs. One world; each case registers the runners it needs.
 */
describe('the actions target: faults a user meets', () => {
  let w: AppWorld;
  beforeAll(async () => {
    w = await startWorkerWorld(actionsConfig());
  }, scaled(120_000));
  /** Runs whose item containers a killed runner may leave behind (a dead runner's host keeps them too). */
  const leftBehind: string[] = [];
  afterAll(async () => {
    await w?.close();
    const docker = engineClient();
    for (const run of leftBehind) {
      const containers = await docker.listContainers({ all: true, filters: { label: [`${LABEL_RUN}=${run}`] } });
      for (const c of containers) await docker.getContainer(c.Id).remove({ force: true, v: true });
    }
  });

  const git = () => w.sim.sim.repo(w.fullName).git;
  const refsUnder = async (prefix: string) => [...(await git().refs()).keys()].filter((r) => r.startsWith(prefix));
  /** Takes runners away once every job is done, so that the next case's jobs go to its own runners. */
  const retire = async (...runners: Array<{ id: number }>) => {
    await w.sim.sim.actions.idle();
    for (const r of runners) w.sim.removeRunner(r.id);
  };
  /** The simulator's record of the worker job for `run`'s `item`, once one is in progress with its item started. */
  const itemRunning = (runPrefix: string, item: string, runner: string) =>
    eventually(
      `the worker job of ${item} running the item on ${runner}`,
      async () => {
        const job = [...w.sim.sim.actions.jobs.values()].find((j) => j.name.startsWith(`agora ${runPrefix}-`) && j.name.endsWith(` ${item} 1`));
        return job?.status === 'in_progress' && job.runner?.name === runner && job.log.some((l) => l.includes(`/${item} attempt 1 in `)) ? job : undefined;
      },
      { within: scaled(runBound(1, 2)) },
    );

  it(
    'a worker that writes outside its scope, or tries to reach GitHub from the item, lands nothing of it',
    async () => {
      const runners = [w.sim.addRunner({ labels: ['agora'], name: 'scope-1' }), w.sim.addRunner({ labels: ['agora'], name: 'scope-2' })];
      const gitUrl = w.sim.sim.urls.git;
      const plan = commandPlan('scope', [
        {
          id: 'sneaky',
          run: 'echo in > in.txt; echo out > out.txt; mkdir -p .github/workflows; echo "on: push" > .github/workflows/evil.yml',
          locks: ['in.txt'],
        },
        {
          id: 'pusher',
          // What the item can see of credentials, and whether it can reach the repository's host at all.
          run: `(env; cat /proc/1/environ /proc/self/environ 2>/dev/null | tr '\\0' '\\n') | sort -u > seen.txt; if wget -q -T 5 -O /dev/null "${gitUrl}" 2>/dev/null; then echo reached >> seen.txt; else echo unreachable >> seen.txt; fi`,
          locks: ['seen.txt'],
        },
      ]);
      const plansha = await w.sim.push(w.fullName, { branch: 'scope', files: { 'plan.json': plan }, message: 'Add the scope plan' });
      await until('the run check to complete', async () => (await checkRuns(w, plansha)).get('agora')?.status === 'completed', w, runBound(2, 3));
      const checks = await checkRuns(w, plansha);
      const sneaky = checks.get('agora / sneaky')!;
      expect(sneaky.conclusion).toBe('failure');
      expect(sneaky.output.summary).toContain('out.txt');
      expect(sneaky.output.summary).toContain('.github/workflows/evil.yml');
      expect(checks.get('agora / pusher')?.conclusion, checks.get('agora / pusher')?.output.summary ?? '').toBe('success');
      await w.quiesce();
      const head = (await git().resolve('refs/heads/scope', 'commit'))!;
      expect(head).toBe(plansha);
      const tree = (await git().text(['ls-tree', '-r', '--name-only', head])).split('\n');
      expect(tree).not.toContain('out.txt');
      expect(tree).not.toContain('in.txt');
      expect(tree).not.toContain('.github/workflows/evil.yml');
      // What the item saw, from its patch (a failed run lands no patch on the branch).
      const pusher = (await refsUnder('refs/agora/patches/scope-')).find((r) => r.endsWith('/pusher'));
      const seen = await git().text(['show', `${pusher}:seen.txt`]);
      expect(seen).toMatch(/^unreachable$/m);
      expect(seen).not.toMatch(/TOKEN|ghs_|ACTIONS_|GITHUB_/);
      // The worker jobs pushed only their claims and results; no branch or tag came from them (the App's
      // release of the run's audit bundle is the one tag).
      const outside = [...(await git().refs()).keys()].filter(
        (r) => !r.startsWith('refs/agora/') && !r.startsWith('refs/tags/agora-run-scope-') && !['refs/heads/main', 'refs/heads/scope'].includes(r),
      );
      expect(outside).toEqual([]);
      await retire(...runners);
    },
    scaled(runBound(2, 5)),
  );

  it(
    'a runner killed mid-job: the item is retried per its policy, the reason saying the runner was lost',
    async () => {
      const doomed = w.sim.addRunner({ labels: ['agora'], name: 'doomed' });
      const plan = JSON.parse(commandPlan('lost', [{ id: 'slow', run: 'echo started; sleep 6; echo slow > slow.txt', locks: ['slow.txt'] }])) as {
        items: Array<Record<string, unknown>>;
      };
      plan.items[0]!.retry = { maxAttempts: 2, backoff: { initialSeconds: 0 } };
      const plansha = await w.sim.push(w.fullName, {
        branch: 'lost',
        files: { 'plan.json': `${JSON.stringify(plan, null, 2)}\n` },
        message: 'Add the lost plan',
      });
      await itemRunning('lost', 'slow', 'doomed');
      leftBehind.push(`lost-${plansha.slice(0, 12)}`);
      w.sim.killRunner(doomed.id);
      const spare = w.sim.addRunner({ labels: ['agora'], name: 'spare' });
      await until('the slow check to complete', async () => (await checkRuns(w, plansha)).get('agora / slow')?.status === 'completed', w, runBound(2, 3));
      const check = (await checkRuns(w, plansha)).get('agora / slow')!;
      expect(check.conclusion, check.output.summary ?? '').toBe('success');
      expect(check.output.summary).toContain('after 2 attempts');
      // The job that ran attempt 2 is the one linked; attempt 1's job failed on the lost runner.
      const jobs = [...w.sim.sim.actions.jobs.values()].filter((j) => j.name.startsWith('agora lost-'));
      expect(jobs.map((j) => [j.name.replace(/^agora lost-\S+ /, ''), j.runner?.name, j.conclusion])).toEqual([
        ['slow 1', 'doomed', 'failure'],
        ['slow 2', 'spare', 'success'],
      ]);
      expect(check.details_url).toMatch(new RegExp(`/actions/runs/${jobs[1]!.runId}/job/${jobs[1]!.id}$`));
      // Why attempt 1 did not count: the run's audit entries, as `agora orch report` shows them.
      const [runRef] = await refsUnder('refs/agora/runs/lost-');
      const chain = (await git().text(['rev-list', runRef!])).trim().split('\n');
      const entries = (
        await Promise.all(
          chain.map((c) =>
            git()
              .text(['show', `${c}:entries.jsonl`])
              .catch(() => ''),
          ),
        )
      ).join('\n');
      expect(entries).toMatch(/runner lost: the worker job agora lost-\S+ slow 1 on runner doomed ended failure before it pushed a result/);
      await retire(spare);
    },
    scaled(runBound(2, 5)),
  );

  it(
    "closing the pull request cancels the run: the worker job's workflow run is cancelled, no result is recorded",
    async () => {
      const runner = w.sim.addRunner({ labels: ['agora'], name: 'stoppable' });
      const plansha = await w.sim.push(w.fullName, {
        branch: 'stop',
        files: { 'plan.json': commandPlan('stop', [{ id: 'long', run: 'echo started; sleep 120', locks: ['long.txt'] }]) },
        message: 'Add the stop plan',
      });
      const pr = await w.sim.openPullRequest(w.fullName, { head: 'stop', base: 'main', title: 'Stop' });
      const job = await itemRunning('stop', 'long', 'stoppable');
      await w.sim.setPullRequestState(w.fullName, pr.number, 'closed');
      await until('the worker run to be cancelled', async () => w.sim.sim.actions.runs.get(job.runId)!.conclusion === 'cancelled', w, runBound(1));
      await until('the long check to complete', async () => (await checkRuns(w, plansha)).get('agora / long')?.status === 'completed', w, runBound(1));
      expect((await checkRuns(w, plansha)).get('agora / long')?.conclusion).toBe('cancelled');
      await w.sim.sim.actions.idle();
      expect(await workerApi(w).logOf(job.id)).toMatch(/stop-\S+\/long attempt 1 was stopped: no result/);
      expect(await refsUnder('refs/agora/results/stop-')).toEqual([]);
      // The item's container was stopped and removed before the runner killed the step.
      const left = await new Docker().listContainers({ all: true, filters: { label: [`${LABEL_RUN}=${job.name.split(' ')[1]}`] } });
      expect(left.map((c) => c.Names)).toEqual([]);
      await retire(runner);
    },
    scaled(runBound(1, 4)),
  );
});
