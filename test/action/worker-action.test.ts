import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BUSYBOX } from '../docker/engine.js';
import { scaled } from '../support/eventually.js';
import { checkRuns, commandPlan, runBound, until, type AppWorld } from '../github/app-world.js';
import { actionsConfig, startWorkerWorld, workerApi } from './worker-world.js';

/**
 * The App's `actions` target end to end on the simulator: every attempt is a workflow_dispatch of the
 * shipped examples/workflows/agora-worker.yml, whose step runs the committed action/dist (`mode: worker`)
 * under Node 24 on a simulated self-hosted runner, the item in a Podman container. Every webhook is
 * delivered twice.
 */
describe('the App with the actions target', () => {
  let w: AppWorld;
  const config = actionsConfig({
    subagents: {
      gpu: { command: ['/bin/sh', '-c', 'echo never'], target: 'actions', docker: { image: BUSYBOX }, actions: { labels: ['self-hosted', 'gpu'] } },
    },
  });
  beforeAll(async () => {
    w = await startWorkerWorld(config);
    w.sim.setFaults({ duplicateWebhookRate: 1 });
  }, scaled(120_000));
  afterAll(async () => w?.close());

  const workerRuns = () => workerApi(w).runs();
  const jobsOf = (runId: number) => workerApi(w).jobsOf(runId);
  const logOf = (jobId: number) => workerApi(w).logOf(jobId);

  it(
    'runs a 3-item plan as dispatched jobs on two runners; a second job for one attempt runs nothing; one result each',
    async () => {
      const plan = commandPlan(
        'trio',
        ['a', 'b', 'c'].map((id) => ({ id, run: `echo ${id} > ${id}.txt; echo wrote ${id}`, locks: [`${id}.txt`] })),
      );
      const plansha = await w.sim.push(w.fullName, { branch: 'trio', files: { 'plan.json': plan }, message: 'Add the trio plan' });
      // No runner yet: the three jobs wait queued, and a fourth for item a's attempt is dispatched as a
      // dispatch retried after a lost response would.
      await until('three worker jobs queued', async () => (await workerRuns()).length === 3, w, runBound(1));
      const first = w.sim.sim.actions.runs.get(
        Number((await workerRuns()).find((r) => JSON.stringify(w.sim.sim.actions.runs.get(Number(r.id))!.inputs).includes('"item":"a"'))!.id),
      )!;
      await w.octokit.request('POST /repos/{owner}/{repo}/actions/workflows/{workflow_id}/dispatches', {
        owner: w.owner,
        repo: w.repo,
        workflow_id: 'agora-worker.yml',
        ref: 'main',
        inputs: first.inputs as Record<string, string>,
      });
      w.sim.addRunner({ labels: ['agora'], name: 'runner-1' });
      w.sim.addRunner({ labels: ['agora'], name: 'runner-2' });
      let head = plansha;
      await until(
        'the audit gate on the patched head',
        async () => {
          head = (await w.sim.sim.repo(w.fullName).git.resolve('refs/heads/trio', 'commit'))!;
          return (await checkRuns(w, head)).get('agora / audit')?.status === 'completed';
        },
        w,
        runBound(4, 3),
      );
      await w.sim.sim.actions.idle();
      const runs = await workerRuns();
      const jobs = (await Promise.all(runs.map((r) => jobsOf(Number(r.id))))).flat();
      const logs = await Promise.all(jobs.map((j) => logOf(Number(j.id))));
      jobs.forEach((j, n) => expect(j.conclusion, logs[n]).toBe('success'));
      const checks = await checkRuns(w, plansha);
      for (const id of ['a', 'b', 'c'])
        expect(checks.get(`agora / ${id}`)?.conclusion, `${id}: ${checks.get(`agora / ${id}`)?.output.summary}`).toBe('success');
      // Each item check links to the job that ran its attempt (not item a's job that lost the claim).
      for (const id of ['a', 'b', 'c']) {
        const ran = jobs[logs.findIndex((l) => new RegExp(`agora: trio-\\S+/${id} attempt 1 succeeded`).test(l))]!;
        expect(checks.get(`agora / ${id}`)?.details_url).toBe(ran.html_url);
        expect(checks.get(`agora / ${id}`)?.output.summary).toContain(`[attempt 1 and its log](${ran.html_url})`);
      }
      expect((await checkRuns(w, head)).get('agora / audit')?.conclusion).toBe('success');
      const git = w.sim.sim.repo(w.fullName).git;
      for (const id of ['a', 'b', 'c']) expect(await git.text(['show', `${head}:${id}.txt`])).toBe(`${id}\n`);
      // Four jobs for three attempts, on both runners; exactly one ran each item.
      expect(runs).toHaveLength(4);
      expect(new Set(jobs.map((j) => j.runner_name))).toEqual(new Set(['runner-1', 'runner-2']));
      expect(logs.filter((l) => /agora: trio-\S+\/a attempt 1 succeeded/.test(l))).toHaveLength(1);
      expect(logs.filter((l) => /agora: trio-\S+\/a attempt 1 (is claimed by another job|is not current)[^\n]*nothing was run/.test(l))).toHaveLength(1);
      const results = [...(await git.refs()).keys()].filter((ref) => ref.startsWith('refs/agora/results/trio-'));
      expect(results.map((ref) => ref.replace(/^refs\/agora\/results\/[^/]+\//, '')).sort()).toEqual(['a/1', 'b/1', 'c/1']);
    },
    scaled(runBound(4, 6)),
  );

  it(
    'an item emits an item from its container: it comes back in the result and joins the run as its own job; an unreadable one fails its emitter',
    async () => {
      const leaf = {
        id: 'leaf',
        executor: 'command',
        inputs: { run: 'mkdir -p out && echo leaf > out/leaf.txt' },
        depends_on: [],
        resourceLocks: ['out/leaf.txt'],
      };
      const plan = commandPlan('emit', [
        { id: 'fan', run: 'cp frag.json "$AGORA_EMIT/items.json"', locks: ['out/'] },
        { id: 'bad', run: 'echo "not json" > "$AGORA_EMIT/items.json"', locks: ['bad/'] },
      ]);
      const plansha = await w.sim.push(w.fullName, {
        branch: 'emit',
        files: { 'plan.json': plan, 'frag.json': JSON.stringify({ items: [leaf] }) },
        message: 'Add the emit plan',
      });
      w.sim.addRunner({ labels: ['agora'], name: 'runner-emit' });
      // bad fails, so the run fails and its patches are not pushed: they are read from the run's refs.
      await until('the agora check to complete', async () => (await checkRuns(w, plansha)).get('agora')?.status === 'completed', w, runBound(3, 3));
      const checks = await checkRuns(w, plansha);
      const text = (name: string) => `${checks.get(name)?.output.title} ${checks.get(name)?.output.summary}`;
      expect(checks.get('agora / fan')?.conclusion, text('agora / fan')).toBe('success');
      expect(checks.get('agora / leaf')?.conclusion, text('agora / leaf')).toBe('success');
      expect(checks.get('agora / bad')?.conclusion).toBe('failure');
      expect(text('agora / bad')).toContain('$AGORA_EMIT/items.json of item bad attempt 1');
      const git = w.sim.sim.repo(w.fullName).git;
      const refs = [...(await git.refs()).keys()];
      const leafPatch = refs.filter((r) => /^refs\/agora\/patches\/emit-[^/]+\/leaf$/.test(r));
      expect(leafPatch).toHaveLength(1);
      expect(await git.text(['show', `${leafPatch[0]}:out/leaf.txt`])).toBe('leaf\n');
      // The emitted file travelled in fan's result commit, beside its workspace.
      const results = refs.filter((r) => /^refs\/agora\/results\/emit-[^/]+\/fan\/1$/.test(r));
      expect(results).toHaveLength(1);
      expect(JSON.parse(await git.text(['show', `${results[0]}:items.json`]))).toEqual({ items: [leaf] });
    },
    scaled(runBound(3, 3) + 20_000),
  );

  it(
    'fails an item whose labels no runner has after its start timeout, naming the labels, and cancels the job',
    async () => {
      const plan = `${JSON.stringify({ id: 'gpu', queue: 'default', items: [{ id: 'train', executor: 'dispatch', inputs: { subagent: 'gpu', workerInput: {} }, depends_on: [], resourceLocks: [] }] }, null, 2)}\n`;
      const plansha = await w.sim.push(w.fullName, { branch: 'gpu', files: { 'plan.json': plan }, message: 'Add the gpu plan' });
      await until(
        'the train check to complete',
        async () => (await checkRuns(w, plansha)).get('agora / train')?.status === 'completed',
        w,
        runBound(1, 3) + scaled(20_000),
      );
      const check = (await checkRuns(w, plansha)).get('agora / train')!;
      expect(check.conclusion).toBe('failure');
      expect(`${check.output.title} ${check.output.summary}`).toContain('[self-hosted, gpu]');
      const queued = (await workerRuns()).filter((r) => JSON.stringify(w.sim.sim.actions.runs.get(Number(r.id))!.inputs).includes('"item":"train"'));
      expect(queued).toHaveLength(1);
      // The check links to the job that waited for a runner.
      expect(check.details_url).toBe((await jobsOf(Number(queued[0]!.id)))[0]!.html_url);
      await until('the never-started worker run to be cancelled', async () => w.sim.sim.actions.runs.get(Number(queued[0]!.id))!.conclusion === 'cancelled', w);
    },
    scaled(runBound(2, 4) + 20_000),
  );
});
