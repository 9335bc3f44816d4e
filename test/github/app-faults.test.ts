import { afterEach, describe, expect, it } from 'vitest';
import { trailers } from '../../src/github/plan-commit.js';
import { checkRuns, examplePlan, runBound, startAppWorld, type AppWorld, outcomesOf } from './app-world.js';
import type { RequestLogEntry } from '@agora/github-sim';
import { scaled } from '../support/eventually.js';

/**
 * The app under GitHub's bad days: injected 5xx on the REST API, and secondary-limit 403s with
 * `retry-after`. The app runs with Octokit's throttling and retry plugins as `agora app` configures them
 * (waits scaled by 1/100); a user must see exactly what a healthy run shows, and the request log must
 * show that the failed requests were retried until they succeeded.
 */

const ITEMS = ['edit-alpha', 'edit-beta', 'edit-shared', 'verify'];

/** Runs the fan-out plan on `branch` and opens its PR; returns the plan commit and the PR number. */
async function pushPlan(w: AppWorld, branch: string): Promise<{ planSha: string; pr: number }> {
  const planSha = await w.sim.push(w.fullName, { branch, files: { 'plan.json': await examplePlan() }, message: `Add the fan-out plan (${branch})` });
  const pr = (await w.sim.openPullRequest(w.fullName, { head: branch, base: 'main', title: `Fan out on ${branch}` })).number;
  return { planSha, pr };
}

/** What a user sees: every item check success, 3 Agora commits on the PR, the gate green on the new head. */
async function expectGreen(w: AppWorld, planSha: string, pr: number): Promise<void> {
  const checks = await checkRuns(w, planSha);
  for (const item of ITEMS) expect(checks.get(`agora / ${item}`), item).toMatchObject({ status: 'completed', conclusion: 'success' });
  expect(checks.get('agora')).toMatchObject({ status: 'completed', conclusion: 'success' });
  const commits = (await w.octokit.rest.pulls.listCommits({ owner: w.owner, repo: w.repo, pull_number: pr })).data;
  expect(commits[0]!.sha).toBe(planSha);
  expect(
    commits
      .slice(1)
      .map((c) => trailers(c.commit.message).get('Agora-Item'))
      .sort(),
  ).toEqual(['edit-alpha', 'edit-beta', 'edit-shared']);
  const head = commits.at(-1)!.sha;
  expect((await checkRuns(w, head)).get('agora / audit')).toMatchObject({ status: 'completed', conclusion: 'success' });
}

/** REST requests (not git) by the app: with its JWT or its installation token (the test reads nothing meanwhile). */
function appRest(log: RequestLogEntry[]): RequestLogEntry[] {
  return log.filter((r) => r.route !== 'git-http' && (r.actor?.startsWith('app:') || r.actor?.startsWith('installation:')));
}

/**
 * Every failed request (by `status`), and those never asked again with an answer that is not a server
 * error: a retry answered 404 (a release not published yet, say) is GitHub answering, and recovered.
 */
function retriedToSuccess(log: RequestLogEntry[], failed: (r: RequestLogEntry) => boolean): { failures: RequestLogEntry[]; unrecovered: RequestLogEntry[] } {
  const failures: RequestLogEntry[] = [];
  const unrecovered: RequestLogEntry[] = [];
  log.forEach((r, i) => {
    if (!failed(r)) return;
    failures.push(r);
    if (!log.slice(i + 1).some((s) => s.method === r.method && s.path === r.path && s.status < 500)) unrecovered.push(r);
  });
  return { failures, unrecovered };
}

describe('the app survives GitHub faults', () => {
  let w: AppWorld | undefined;
  afterEach(async () => {
    await w?.close();
    w = undefined;
  });

  it(
    'with 15% of REST requests answered 5xx, the run still ends green and every failed request was retried',
    async () => {
      w = await startAppWorld({ plugins: true, seed: 7 });
      const from = w.sim.requests.length;
      w.sim.setFaults({ serverErrorRate: 0.15 });
      const { planSha, pr } = await pushPlan(w, 'run-fanout');
      await w.quiesce();
      w.sim.setFaults({}); // the assertions' own reads see a healthy API
      const log = appRest(w.sim.requests.slice(from));

      await expectGreen(w, planSha, pr);
      const { failures, unrecovered } = retriedToSuccess(log, (r) => r.status >= 500);
      if (process.env.AGORA_TEST_LOG)
        console.log(
          `retried: ${failures.length} failed requests, e.g. ${failures
            .slice(0, 3)
            .map((r) => `${r.status} ${r.method} ${r.route}`)
            .join('; ')}`,
        );
      expect(failures.length).toBeGreaterThan(0);
      expect(failures.every((r) => [500, 502, 503].includes(r.status))).toBe(true);
      expect(unrecovered).toEqual([]);
      expect(outcomesOf(w.agora).plans.filter((o) => o.kind === 'started')).toHaveLength(1);
      expect(w.sim.contractViolations).toEqual([]);
      expect(w.errors).toEqual([]);
    },
    scaled(runBound(ITEMS.length, 2)),
  );

  it(
    'with secondary limits tight (1 concurrent request) and another client polling, the app meets 403 + retry-after and still ends green',
    async () => {
      // Octokit's throttling serialises the app's own writes per installation, so the concurrency limit is
      // reached when someone else uses the same installation at the same time: here a dashboard polling the checks.
      w = await startAppWorld({ plugins: true, limits: { concurrentRequests: 1 } });
      const world = w;
      const from = w.sim.requests.length;
      w.sim.setFaults({ latencyMs: [5, 20] }); // requests take a while, so the poller's and the app's overlap
      const { planSha, pr } = await pushPlan(w, 'run-fanout');
      // Two pollers keep a request of theirs in flight most of the time (their repeated GETs are conditional and
      // answered 304, which still occupies a concurrency slot), so the app's writes meet the limit in every run,
      // not only when the timing happens to line up. They stop once the app's writes met it three times: a
      // write's 5 retries then always find a free slot, however the timing falls on a loaded machine.
      const limitedWrites = () => appRest(world.sim.requests.slice(from)).filter((r) => r.write && r.status === 403).length;
      let polling = true;
      const pollers = [0, 1].map(async () => {
        while (polling && limitedWrites() < 3) {
          await world.octokit.rest.checks.listForRef({ owner: world.owner, repo: world.repo, ref: planSha }).catch(() => undefined);
          await new Promise((r) => setTimeout(r, 10));
        }
      });
      await w.quiesce();
      polling = false;
      await Promise.all(pollers);
      w.sim.setFaults({});
      const writes = appRest(w.sim.requests.slice(from)).filter((r) => r.write); // the poller only reads

      expect(w.errors).toEqual([]);
      await expectGreen(w, planSha, pr);
      const { failures, unrecovered } = retriedToSuccess(writes, (r) => r.status === 403);
      if (process.env.AGORA_TEST_LOG)
        console.log(
          `retried: ${failures.length} failed requests, e.g. ${failures
            .slice(0, 3)
            .map((r) => `${r.status} ${r.method} ${r.route}`)
            .join('; ')}`,
        );
      expect(failures.length).toBeGreaterThan(0);
      expect(unrecovered).toEqual([]);
      expect(outcomesOf(w.agora).plans.filter((o) => o.kind === 'started')).toHaveLength(1);
      expect(w.sim.contractViolations).toEqual([]);
      expect(w.errors).toEqual([]);
    },
    scaled(runBound(ITEMS.length, 2)),
  );
});
