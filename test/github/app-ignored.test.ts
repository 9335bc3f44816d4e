import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkRuns, commandPlan, startAppWorld, type AppWorld, outcomesOf } from './app-world.js';
import { scaled } from '../support/eventually.js';

/** The app's own pushes (refs/agora/*, the patch commits on the branch) start nothing. */
describe('pushes the app ignores', () => {
  let w: AppWorld;
  beforeAll(async () => {
    // Even if GitHub sent push webhooks for refs/agora/* (it does not), they must start nothing.
    w = await startAppWorld({ customRefWebhooks: true });
  }, scaled(60_000));
  afterAll(async () => w?.close());

  it('refs/agora/* pushes and the pushed patch commits start no run and create no check', async () => {
    const text = commandPlan('own', [{ id: 'one', run: 'echo one > one.txt', locks: ['one.txt'] }]);
    const planSha = await w.sim.push(w.fullName, { branch: 'own', files: { 'plan.json': text }, message: 'A plan' });
    await w.quiesce();
    const agoraPushes = w.sim.webhookDeliveries.filter((d) => d.event === 'push' && (JSON.parse(d.body) as { ref: string }).ref.startsWith('refs/agora/'));
    expect(agoraPushes.length).toBeGreaterThan(0);
    expect(agoraPushes.every((d) => d.statusCode === 200)).toBe(true);

    const branchPushes = w.sim.webhookDeliveries.filter((d) => d.event === 'push' && (JSON.parse(d.body) as { ref: string }).ref === 'refs/heads/own');
    const heads = branchPushes.map((d) => (JSON.parse(d.body) as { after: string }).after);
    expect(heads).toHaveLength(2); // the person's plan commit, then the app's patch commit
    const patchHead = heads[1]!;
    expect(outcomesOf(w.agora).plans).toContainEqual({ kind: 'ignored', code: 'agora-commit', why: 'a commit written by Agora' });
    expect(outcomesOf(w.agora).plans.filter((o) => o.kind === 'started')).toEqual([{ kind: 'started', runId: `own-${planSha.slice(0, 12)}` }]);
    expect([...(await checkRuns(w, patchHead)).keys()]).toEqual(['agora / audit']);
    expect((await checkRuns(w, planSha)).get('agora')).toMatchObject({ conclusion: 'success' });
    expect(w.errors).toEqual([]);
  });
});
