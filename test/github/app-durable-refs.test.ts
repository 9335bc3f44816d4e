import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openLocalStore } from '../../src/git/local-store.js';
import { patchCommitOf } from '../../src/log/result-ref.js';
import { RunRefs } from '../../src/runs/refs.js';
import { readRun } from '../../src/runs/state-store.js';
import { scaled } from '../support/eventually.js';
import { armAppCrash, checkRuns, commandPlan, outcomesOf, restartUntilRunEnds, startAppWorld, until, type AppWorld } from './app-world.js';

/**
 * What GitHub holds is what a replica or a re-run takes a run over from. A state commit names the
 * integration head and each done item's patch commit by id, as text in its tree, so pushing the state
 * ref does not carry those commits: they reach GitHub only with the refs that point at them. The refs a
 * tick moves go in one atomic push, so at no moment does GitHub's state name a commit GitHub lacks.
 */
describe("GitHub's copy of a run after a crash between the tick's pushes", () => {
  let w: AppWorld;
  beforeAll(async () => {
    w = await startAppWorld({ sweepMs: 500 });
  }, scaled(60_000));
  afterAll(async () => w?.close());

  it(
    'the state GitHub holds never names an integration head or patch commit GitHub lacks; a fresh process finishes the run',
    async () => {
      // The second state commit of a one-item run records the item done (the first records it started).
      // The crash comes right after that commit is on GitHub, before anything else of the tick runs.
      const crashed = armAppCrash(w, 'state-committed', 2);
      const text = commandPlan('durable', [{ id: 'one', run: 'echo one > one.txt', locks: ['one.txt'] }]);
      const sha = await w.sim.push(w.fullName, { branch: 'durable', files: { 'plan.json': text }, message: 'Durable plan' });
      const pr = await w.sim.openPullRequest(w.fullName, { head: 'durable', base: 'main', title: 'Durable' });
      const runId = `durable-${sha.slice(0, 12)}`;
      await until('the app to crash once the item is recorded done', async () => crashed(), w);
      await w.quiesce();

      // Read GitHub's repository itself (the simulator's bare repository), as a taking-over replica sees it.
      const github = await openLocalStore(w.sim.repoDir(w.fullName));
      const run = await readRun(github, new RunRefs(), runId);
      expect(run?.state.items.one?.status).toBe('done'); // the crash landed where it was meant to
      const patch = patchCommitOf(run!.state.items.one!.resultRef);
      expect(patch).not.toBeNull();
      expect({ integrationHead: await github.hasObject(run!.state.integrationHead), patch: await github.hasObject(patch!) }).toEqual({
        integrationHead: true,
        patch: true,
      });
      expect(await github.resolveRef(`refs/agora/integration/${runId}`)).toBe(run!.state.integrationHead);
      expect(await github.resolveRef(`refs/agora/patches/${runId}/one`)).toBe(patch);
      expect(w.errors.filter((e) => !e.includes('crashed at state-committed'))).toEqual([]);
      w.errors.length = 0;

      // A fresh process takes the run over from GitHub's refs and finishes it: the item's commit lands on the branch.
      const fresh = await restartUntilRunEnds(w, sha, { open: async () => undefined, remove: async () => undefined });
      expect([...(await checkRuns(w, sha))].filter(([name]) => name === 'agora' || name === 'agora / one').map(([, c]) => c.conclusion)).toEqual([
        'success',
        'success',
      ]);
      expect((await w.octokit.rest.pulls.get({ owner: w.owner, repo: w.repo, pull_number: pr.number })).data.head.sha).toBe(run!.state.integrationHead);
      expect(outcomesOf(fresh).sweeps.flatMap((r) => r.finished)).toEqual([runId]);
      expect(w.errors).toEqual([]);
    },
    scaled(120_000),
  );
});
