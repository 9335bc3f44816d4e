import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Octokit, PlanEvent } from '../../src/github/agora-github.js';
import { scaled } from '../support/eventually.js';
import { armAppCrash, checkRuns, commandPlan, runReleases, startAppWorld, until, type AppWorld } from './app-world.js';

/**
 * `takeOver` is how the Action's `mode: run` carries on the run of its head when the workflow runs again
 * (src/action/run.ts). The earlier job may have died after the run's final state commit but before its
 * finish (patches pushed, audit released, gate set): the re-run must finish it, not report it ended.
 * The take-over runs in a driver that, like the Action's job, is behind no webhook URL and never sweeps,
 * so only the take-over can finish the run (an App process's sweep at boot would race it once the dead
 * process's lease lapsed).
 */
describe('taking over a run whose earlier driver died', () => {
  let w: AppWorld;
  beforeAll(async () => {
    w = await startAppWorld();
  }, scaled(60_000));
  afterAll(async () => w?.close());

  it(
    'an ended run whose finish never happened is finished by the take-over, once its lease runs out',
    async () => {
      const crashed = armAppCrash(w, 'run-ended', 1);
      const text = commandPlan('taken', [{ id: 'one', run: 'echo one > one.txt', locks: ['one.txt'] }]);
      const sha = await w.sim.push(w.fullName, { branch: 'taken', files: { 'plan.json': text }, message: 'Taken plan' });
      const pr = await w.sim.openPullRequest(w.fullName, { head: 'taken', base: 'main', title: 'Taken' });
      const runId = `taken-${sha.slice(0, 12)}`;
      await until('the app to crash once the run ended', async () => crashed(), w);
      await w.quiesce();
      expect((await checkRuns(w, sha)).get('agora')?.status).not.toBe('completed');
      w.errors.length = 0;

      // A fresh process (the re-run's job) is handed the head and takes the run over, as mode: run does.
      const fresh = await w.startDriver();
      const appClient = (await w.probot.auth()) as unknown as Octokit;
      const ev: PlanEvent = {
        octokit: w.octokit as unknown as Octokit,
        owner: w.owner,
        repo: w.repo,
        cloneUrl: `${w.sim.gitUrl}/${w.fullName}.git`,
        repositoryId: w.repositoryId,
        htmlUrl: `https://github.example/${w.fullName}`,
        branch: 'taken',
        headSha: sha,
        token: async () => (await appClient.rest.apps.createInstallationAccessToken({ installation_id: w.installationId })).data.token,
      };
      // The dead process's lease (1.5 s) is still live at first: the take-over waits for it, then finishes.
      expect(await fresh.takeOver(ev, runId, Date.now() + scaled(60_000))).toEqual({ kind: 'resumed' });
      await fresh.idle();
      await w.quiesce();
      const checks = await checkRuns(w, sha);
      for (const name of ['agora', 'agora / one']) expect(checks.get(name)).toMatchObject({ status: 'completed', conclusion: 'success' });
      const commits = (await w.octokit.rest.pulls.listCommits({ owner: w.owner, repo: w.repo, pull_number: pr.number })).data;
      expect(commits.map((c) => c.commit.message.split('\n')[0])).toEqual(['Taken plan', expect.stringMatching(/^one: /)]);
      expect((await checkRuns(w, commits.at(-1)!.sha)).get('agora / audit')).toMatchObject({ status: 'completed', conclusion: 'success' });
      expect(await runReleases(w, runId)).toHaveLength(1);
      expect(w.errors).toEqual([]);

      // Taken over again (another re-run), the finished run is ended: nothing more is done.
      expect(await fresh.takeOver(ev, runId, Date.now() + scaled(60_000))).toEqual({ kind: 'ended' });
      await fresh.idle();
      expect(await runReleases(w, runId)).toHaveLength(1);
    },
    scaled(120_000),
  );
});
