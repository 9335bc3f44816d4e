import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { runsOfHead } from '../../src/action/pull-request-runs.js';
import { openLocalStore } from '../../src/git/local-store.js';
import { agoraIdentity } from '../../src/git/identity.js';
import type { GitStore } from '../../src/git/types.js';
import { RunRefs } from '../../src/runs/refs.js';
import { checkRuns, commandPlan, outcomesOf, startAppWorld, until, type AppWorld } from './app-world.js';
import { scaled } from '../support/eventually.js';
import { workerGate } from '../support/gate.js';

/**
 * Anyone who may push can write refs under refs/agora/runs/ that hold no run: a name Agora never makes
 * (nested, `runs/a-1/x`), a plain commit, a blob, a commit whose plan.json is not JSON. Every loop over
 * the listed runs (the sweep, superseding older runs, cancelling a closed pull request's runs, the
 * Action's look for a head's runs) skips such a ref with a warning naming it, and goes on with the runs
 * listed after it. Each junk name sorts before the real run's, so the loop meets the junk first.
 */

const UNREADABLE = 'is not a run Agora can read; skipped';

describe('refs under refs/agora/runs/ that hold no run', () => {
  let w: AppWorld;
  let sim: GitStore;
  const refs = new RunRefs();
  /** Objects anyone could push: the default branch's commit, a blob, a commit whose plan.json is not JSON. */
  let junk: { commit: string; blob: string; badPlan: string };

  // A world for each test: a run one test leaves going must not hold the queue's slots in the next.
  beforeEach(async () => {
    w = await startAppWorld();
    sim = await openLocalStore(w.sim.repoDir(w.fullName));
    const commit = (await sim.resolveRef('refs/heads/main'))!;
    const blob = await sim.writeBlob('not a run\n');
    const plan = await sim.writeBlob('{ "id": ');
    const who = agoraIdentity(Date.now());
    const tree = await sim.writeTree([{ mode: '100644', path: 'plan.json', oid: plan, type: 'blob' }]);
    const badPlan = await sim.writeCommit({ tree, parents: [commit], message: 'not a state commit\n', author: who, committer: who });
    junk = { commit, blob, badPlan };
  }, scaled(60_000));
  afterEach(async () => w?.close());

  /** Points each of `names` (under refs/agora/runs/) at its object, in the world's repository on GitHub. */
  async function plant(names: Record<string, string>): Promise<string[]> {
    for (const [name, oid] of Object.entries(names)) expect(await sim.casRef(refs.run(name), oid, null)).toBe(true);
    return Object.keys(names).map((n) => refs.run(n));
  }

  /** The warnings about unreadable run refs so far; every other error or warning is a failure. */
  function junkWarnings(): string[] {
    expect(w.errors.filter((e) => !e.includes(UNREADABLE))).toEqual([]);
    return w.errors.filter((e) => e.includes(UNREADABLE));
  }

  /** A running run whose one item waits at a gate: its run id and plan commit. */
  async function runningRun(id: string, gate: { wait: string }) {
    const text = commandPlan(id, [{ id: 'hold', run: `${gate.wait}; echo ${id} > ${id}.txt`, locks: [`${id}.txt`] }]);
    const sha = await w.sim.push(w.fullName, { branch: id, files: { 'plan.json': text }, message: `${id} plan` });
    await until(`the ${id} item to run`, async () => (await checkRuns(w, sha)).get('agora / hold')?.status === 'in_progress', w);
    return { sha, runId: `${id}-${sha.slice(0, 12)}` };
  }

  it('the sweep skips them, resumes the run listed after them, and says each once per process', async () => {
    const gate = workerGate();
    try {
      const { sha, runId } = await runningRun('swept', gate);
      await w.agora.kill(); // the run stays `running` on GitHub, and nobody drives it
      const planted = await plant({
        [`a-${junk.commit.slice(0, 12)}`]: junk.commit,
        'a-1/x': junk.commit,
        [`b-${junk.blob.slice(0, 12)}`]: junk.blob,
        [`c-${junk.badPlan.slice(0, 12)}`]: junk.badPlan,
      });
      w.errors.length = 0;
      const fresh = await w.restartApp();
      // Sweeps until one takes the run over (the killed process's lease has to run out first) or fails.
      await until(
        'a sweep to resume the run, or to fail',
        async () => {
          const report = await fresh.sweep();
          return report.resumed.length > 0 || report.errors.length > 0;
        },
        w,
      );
      const sweeps = outcomesOf(fresh).sweeps;
      expect(sweeps.flatMap((r) => r.errors)).toEqual([]);
      expect(sweeps.flatMap((r) => r.resumed)).toEqual([runId]);
      expect(await fresh.sweep()).toMatchObject({ errors: [], resumed: [] }); // each junk ref met once more
      const warned = junkWarnings();
      for (const ref of planted) expect(warned.filter((m) => m.includes(`"${ref}"`))).toHaveLength(1); // said once
      expect(warned.find((m) => m.includes('"refs/agora/runs/a-1/x"'))).toContain('not a run id Agora makes');

      await gate.open();
      await until('the resumed run to end', async () => (await checkRuns(w, sha)).get('agora')?.status === 'completed', w);
      await w.quiesce();
      expect((await checkRuns(w, sha)).get('agora')).toMatchObject({ conclusion: 'success' });
      junkWarnings();
    } finally {
      await gate.remove();
    }
  });

  it('a new plan commit supersedes the older run though junk refs are named after the older commit', async () => {
    const gate = workerGate();
    try {
      const older = await runningRun('superseded', gate);
      const short = older.sha.slice(0, 12);
      const planted = await plant({ [`a-${short}`]: junk.commit, [`a-1/x-${short}`]: junk.commit });
      const newer = await w.sim.push(w.fullName, {
        branch: 'superseded',
        files: { 'plan.json': commandPlan('superseded', [{ id: 'hold', run: 'echo new > superseded.txt', locks: ['superseded.txt'] }]) },
        message: 'newer plan',
      });
      await until(
        'the newer plan commit to be handled',
        async () => outcomesOf(w.agora).plans.some((o) => 'runId' in o && o.runId.endsWith(newer.slice(0, 12))) || w.errors.some((e) => e.includes(newer)),
        w,
      );
      expect(outcomesOf(w.agora).plans).toContainEqual({ kind: 'started', runId: `superseded-${newer.slice(0, 12)}` });
      await until('the older run to end', async () => (await checkRuns(w, older.sha)).get('agora')?.status === 'completed', w);
      const checks = await checkRuns(w, older.sha);
      expect(checks.get('agora')).toMatchObject({ conclusion: 'cancelled' });
      expect(checks.get('agora / hold')!.output.summary).toContain(`superseded by a new plan commit ${newer.slice(0, 12)}`);
      await gate.open();
      await w.quiesce();
      expect((await checkRuns(w, newer)).get('agora')).toMatchObject({ status: 'completed', conclusion: 'success' });
      const warned = junkWarnings();
      for (const ref of planted) expect(warned.filter((m) => m.includes(`"${ref}"`))).toHaveLength(1);
    } finally {
      await gate.remove();
    }
  });

  it("closing a pull request cancels its head's run though junk refs are named after the head", async () => {
    const gate = workerGate();
    try {
      const { sha, runId } = await runningRun('closing', gate);
      const pr = await w.sim.openPullRequest(w.fullName, { head: 'closing', base: 'main', title: 'Closing' });
      const short = sha.slice(0, 12);
      const planted = await plant({ [`a-${short}`]: junk.blob, [`a-1/y-${short}`]: junk.commit, [`b-${short}`]: junk.badPlan });
      await w.sim.setPullRequestState(w.fullName, pr.number, 'closed');
      await until(
        'the close to be handled',
        async () => outcomesOf(w.agora).actions.some((o) => 'runId' in o && o.runId === runId) || w.errors.some((e) => e.includes('was closed')),
        w,
      );
      expect(outcomesOf(w.agora).actions).toContainEqual(expect.objectContaining({ kind: 'recorded', runId, event: 'cancel-run' }));
      await until('the run to end', async () => (await checkRuns(w, sha)).get('agora')?.status === 'completed', w);
      expect((await checkRuns(w, sha)).get('agora')).toMatchObject({ conclusion: 'cancelled' });
      await gate.open();
      await w.quiesce();
      const warned = junkWarnings();
      for (const ref of planted) expect(warned.filter((m) => m.includes(`"${ref}"`))).toHaveLength(1);
    } finally {
      await gate.remove();
    }
  });

  it("the Action's look for a head's runs fails, naming the ref, when one named for the plan commit holds no run", async () => {
    const text = commandPlan('verified', [{ id: 'one', run: 'echo one > one.txt', locks: ['one.txt'] }]);
    const sha = await w.sim.push(w.fullName, { branch: 'verified', files: { 'plan.json': text }, message: 'verified plan' });
    await until('the run to end', async () => (await checkRuns(w, sha)).get('agora')?.status === 'completed', w);
    await w.quiesce();
    const short = sha.slice(0, 12);
    expect((await runsOfHead(sim, refs, sha)).runs.map((r) => r.runId)).toEqual([`verified-${short}`]);
    // Named for another commit, or not a run id: never read.
    await plant({ 'a-000000000000': junk.commit, [`a-${short}/x`]: junk.commit });
    expect((await runsOfHead(sim, refs, sha)).runs.map((r) => r.runId)).toEqual([`verified-${short}`]);
    const [ref] = await plant({ [`b-${short}`]: junk.blob });
    const failure = await runsOfHead(sim, refs, sha).then(
      () => undefined,
      (e: unknown) => e as Error & { code: string },
    );
    expect(failure).toMatchObject({ code: 'state-corrupt', message: expect.stringContaining(`"${ref}"`) as unknown });
    // A failure, not a skip: the text says why, and never that the ref was skipped.
    expect(failure!.message).toContain('is not a run Agora can read; the problem: ');
    expect(failure!.message).not.toContain('skipped');
  });
});
