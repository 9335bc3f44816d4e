import { randomUUID } from 'node:crypto';
import { rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { git } from '@agora/github-sim/harness';
import { signWebhook } from '@agora/github-sim';
import type { Octokit } from '../../src/github/agora-github.js';
import { commandPlan, checkRuns, startAppWorld, until, type AppWorld, outcomesOf } from './app-world.js';
import { scaled } from '../support/eventually.js';

/** What a user sees when things go wrong: invalid plans, failing items, superseded runs, forged and repeated webhooks. */
describe('the app when things go wrong', () => {
  let w: AppWorld;
  beforeAll(async () => {
    w = await startAppWorld();
  }, scaled(60_000));
  afterAll(async () => w?.close());

  async function redeliverPush(sha: string): Promise<void> {
    const d = w.sim.webhookDeliveries.find((x) => x.event === 'push' && (JSON.parse(x.body) as { after: string }).after === sha);
    expect(d).toBeDefined();
    const appClient = (await w.probot.auth()) as Octokit;
    await appClient.request('POST /app/hook/deliveries/{delivery_id}/attempts', { delivery_id: d!.id });
    await w.quiesce();
  }

  it('an invalid plan gets one failed agora check naming every problem by JSON path, and nothing is scheduled', async () => {
    const text = JSON.stringify({
      id: 'bad',
      queue: 'default',
      items: [{ id: 'a', executor: 'dispatch', inputs: { subagent: 'nope' }, depends_on: ['ghost'], resourceLocks: [] }],
    });
    const sha = await w.sim.push(w.fullName, { branch: 'bad-plan', files: { 'plan.json': text }, message: 'A broken plan' });
    await w.quiesce();
    await redeliverPush(sha); // a repeated delivery changes nothing
    const checks = await checkRuns(w, sha);
    expect([...checks.keys()]).toEqual(['agora']);
    const agora = checks.get('agora')!;
    expect(agora).toMatchObject({ status: 'completed', conclusion: 'failure' });
    expect(agora.output.title).toBe('Invalid plan: 2 problems');
    expect(agora.output.summary).toContain('`$.items[0].depends_on[0]`');
    expect(agora.output.summary).toContain('`$.items[0].inputs.subagent`');
    expect(await git(['for-each-ref', 'refs/agora/runs/'], w.sim.repoDir(w.fullName))).toBe('');
    expect(w.errors).toEqual([]);
  });

  it('a failing item fails its check, its dependent is skipped, nothing is pushed, and the gate is red', async () => {
    const text = commandPlan('fails', [
      { id: 'breaks', run: 'echo about to fail; exit 3' },
      { id: 'after', run: 'echo never', depends_on: ['breaks'] },
    ]);
    const sha = await w.sim.push(w.fullName, { branch: 'failing', files: { 'plan.json': text }, message: 'A plan that fails' });
    await w.quiesce();
    const checks = await checkRuns(w, sha);
    expect(checks.get('agora / breaks')).toMatchObject({ status: 'completed', conclusion: 'failure' });
    expect(checks.get('agora / breaks')!.output.summary).toContain('about to fail');
    expect(checks.get('agora / after')).toMatchObject({ status: 'completed', conclusion: 'skipped' });
    expect(checks.get('agora / after')!.output.summary).toContain('breaks');
    expect(checks.get('agora')).toMatchObject({ status: 'completed', conclusion: 'failure' });
    const gate = checks.get('agora / audit')!;
    expect(gate).toMatchObject({ status: 'completed', conclusion: 'failure' });
    expect(gate.output.summary).toContain('the run is failed');
    expect((await git(['rev-parse', 'refs/heads/failing'], w.sim.repoDir(w.fullName))).trim()).toBe(sha);
    expect(w.errors).toEqual([]);
  });

  it('after a restart (empty cache, no memory) a redelivered webhook finds the run on GitHub and starts nothing', async () => {
    const sha = (await git(['rev-parse', 'refs/heads/failing'], w.sim.repoDir(w.fullName))).trim();
    const before = (await w.octokit.rest.checks.listForRef({ owner: w.owner, repo: w.repo, ref: sha })).data.total_count;
    const fresh = await w.restartApp();
    await redeliverPush(sha);
    expect(outcomesOf(fresh).plans).toEqual([{ kind: 'exists', runId: `fails-${sha.slice(0, 12)}` }]);
    expect((await w.octokit.rest.checks.listForRef({ owner: w.owner, repo: w.repo, ref: sha })).data.total_count).toBe(before);
  });

  it('a new plan commit on the branch cancels the older run; its checks end cancelled with the reason', async () => {
    const first = await w.sim.push(w.fullName, {
      branch: 'changing',
      files: { 'plan.json': commandPlan('slow', [{ id: 'wait', run: 'sleep 600' }]) },
      message: 'Slow plan',
    });
    await until('the wait item to run', async () => (await checkRuns(w, first)).get('agora / wait')?.status === 'in_progress', w);
    const second = await w.sim.push(w.fullName, {
      branch: 'changing',
      files: { 'plan.json': commandPlan('slow', [{ id: 'wait', run: 'true' }]) },
      message: 'Faster plan',
    });
    await w.quiesce();
    const old = await checkRuns(w, first);
    expect(old.get('agora / wait')).toMatchObject({ status: 'completed', conclusion: 'cancelled' });
    expect(old.get('agora / wait')!.output.summary).toContain(`superseded by a new plan commit ${second.slice(0, 12)}`);
    expect(old.get('agora')).toMatchObject({ status: 'completed', conclusion: 'cancelled' });
    const next = await checkRuns(w, second);
    expect(next.get('agora / wait')).toMatchObject({ status: 'completed', conclusion: 'success' });
    expect(w.errors).toEqual([]);
  });

  it("a plan commit on a branch made from another branch's running plan commit leaves that run alone", async () => {
    const marker = join(tmpdir(), `agora-fork-${randomUUID()}`);
    const wait = `while [ ! -e ${marker} ]; do sleep 0.1; done`;
    const kept = await w.sim.push(w.fullName, {
      branch: 'kept',
      files: { 'plan.json': commandPlan('kept', [{ id: 'hold', run: wait }]) },
      message: 'Waiting plan',
    });
    await until('the item to run', async () => (await checkRuns(w, kept)).get('agora / hold')?.status === 'in_progress', w);
    // Someone branches off the running plan commit and changes the plan there: `kept` still has its head.
    const forked = await w.sim.push(w.fullName, {
      branch: 'forked',
      parent: kept,
      files: { 'plan.json': commandPlan('forked', [{ id: 'other', run: 'true' }]) },
      message: 'Another plan',
    });
    await until('the forked run to end', async () => (await checkRuns(w, forked)).get('agora')?.status === 'completed', w);
    expect((await checkRuns(w, kept)).get('agora / hold')?.status).toBe('in_progress');
    await writeFile(marker, '');
    await w.quiesce();
    await rm(marker, { force: true });
    expect((await checkRuns(w, kept)).get('agora / hold')).toMatchObject({ status: 'completed', conclusion: 'success' });
    expect((await checkRuns(w, kept)).get('agora')).toMatchObject({ conclusion: 'success' });
    expect(w.errors).toEqual([]);
  });

  it('a webhook with a bad signature is refused with 400 and nothing is done', async () => {
    const body = w.sim.webhookDeliveries.find((d) => d.event === 'push')!.body;
    const checksBefore = w.sim.sim.state.checkRuns.size;
    const outcomesBefore = outcomesOf(w.agora).plans.length;
    const post = (signature: string) =>
      fetch(w.webhookUrl, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-github-event': 'push', 'x-github-delivery': 'forged-1', 'x-hub-signature-256': signature },
        body,
      });
    expect((await post(signWebhook('not-the-secret', body))).status).toBe(400);
    expect((await post('sha256=00')).status).toBe(400);
    await w.quiesce();
    expect(outcomesOf(w.agora).plans.length).toBe(outcomesBefore);
    expect(w.sim.sim.state.checkRuns.size).toBe(checksBefore);
  });
});
