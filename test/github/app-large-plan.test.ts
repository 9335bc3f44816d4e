import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { itemCheckName, RUN_CHECK_NAME } from '../../src/github/check-names.js';
import { scaled } from '../support/eventually.js';
import { commandPlan, startAppWorld, type AppWorld } from './app-world.js';

/**
 * GitHub allows an installation about 500 content-creating requests an hour, and creating a check run is
 * one. A plan over the App's itemChecksUpTo shows its items in the `agora` check and gives only failed
 * items a check of their own. Here the limit is scaled down with the plan: 20 items, 12 creations an
 * hour, checks for at most 8 items; one check per item could not fit.
 */
describe('a plan larger than the check-run budget', () => {
  const LIMIT = 12;
  let w: AppWorld;
  beforeAll(async () => {
    w = await startAppWorld({ limits: { contentCreationPerHour: LIMIT }, agoraOptions: { itemChecksUpTo: 8 } });
  }, scaled(60_000));
  afterAll(async () => w?.close());

  it('runs to the end within the limit, with one check for its failure (with Retry) and the rest in the agora check', async () => {
    const items = [...Array.from({ length: 19 }, (_, i) => ({ id: `ok-${String(i + 1).padStart(2, '0')}`, run: 'true' })), { id: 'broken', run: 'exit 3' }];
    expect(items.length).toBeGreaterThan(LIMIT);
    const from = w.sim.requests.length;
    const sha = await w.sim.push(w.fullName, { branch: 'large', files: { 'plan.json': commandPlan('large', items) }, message: 'A plan of 20 items' });
    await w.quiesce();

    const checks = [...w.sim.sim.state.checkRuns.values()].filter((c) => c.headSha === sha);
    const names = checks.map((c) => c.name).sort();
    expect(names).toEqual([RUN_CHECK_NAME, 'agora / audit', itemCheckName('broken')].sort());
    const broken = checks.find((c) => c.name === itemCheckName('broken'))!;
    expect(broken).toMatchObject({ status: 'completed', conclusion: 'failure' });
    expect(broken.actions.map((a: { identifier: string }) => a.identifier)).toEqual(['agora-retry']);
    const run = checks.find((c) => c.name === RUN_CHECK_NAME)!;
    expect(run).toMatchObject({ status: 'completed', conclusion: 'failure' });
    expect(run.output.summary).toContain('ok-19');
    expect(run.output.summary).toContain('broken');

    const mine = w.sim.requests.slice(from).filter((r) => r.actor === `installation:${w.installationId}`);
    expect(mine.filter((r) => r.status === 403)).toEqual([]);
    expect(mine.filter((r) => r.contentCreation).length).toBeLessThanOrEqual(LIMIT);
    // While it ran, the agora check showed progress counts.
    expect(mine.some((r) => r.method === 'PATCH' && r.path.endsWith(`/check-runs/${run.id}`))).toBe(true);

    // Retry on the failure's check: the item runs again and the same check shows the outcome.
    w.sim.clickCheckRunButton(w.fullName, broken.id, 'agora-retry', 'octocat');
    await w.quiesce();
    const after = [...w.sim.sim.state.checkRuns.values()].filter((c) => c.headSha === sha && c.name === itemCheckName('broken'));
    expect(after.map((c) => c.id)).toEqual([broken.id]);
    expect(after[0]).toMatchObject({ status: 'completed', conclusion: 'failure' });
    expect(after[0]!.output.summary).toContain('after 2 attempts');
    expect(w.errors).toEqual([]);
  });
});
