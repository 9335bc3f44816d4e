import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkRuns, examplePlan, outcomesOf, startAppWorld, type AppWorld } from './app-world.js';
import { scaled } from '../support/eventually.js';

/**
 * A commit pushed by hand above an audited head re-evaluates the gate. A plan event fetches only the
 * runs' state refs, so an app process that did not drive the run (restarted, another replica, a fresh
 * cache) has none of its patch commits: the re-gate must fetch them itself.
 */
describe('the gate after a hand edit, in a process that did not drive the run', () => {
  let w: AppWorld;
  beforeAll(async () => {
    w = await startAppWorld({});
    await w.sim.push(w.fullName, { branch: 'run-fanout', files: { 'plan.json': await examplePlan() }, message: 'Add the fan-out plan' });
    await w.sim.openPullRequest(w.fullName, { head: 'run-fanout', base: 'main', title: 'Fan out' });
    await w.quiesce();
  }, scaled(120_000));
  afterAll(async () => w?.close());

  it('turns red, naming the unaudited commit', async () => {
    const fresh = await w.restartApp();
    const human = await w.sim.push(w.fullName, {
      branch: 'run-fanout',
      files: { 'README.md': '# demo\n\nedited by hand\n' },
      message: 'Hand edit after the run',
    });
    await w.quiesce();
    const gate = (await checkRuns(w, human)).get('agora / audit');
    expect(gate).toMatchObject({ status: 'completed', conclusion: 'failure' });
    expect(gate!.output.summary).toContain(human.slice(0, 12));
    expect(outcomesOf(fresh).plans).toContainEqual(expect.objectContaining({ kind: 'regated' }));
    expect(w.errors).toEqual([]);
  });

  it('ignores an Agora-Run trailer a pusher wrote that names no run Agora could make', async () => {
    await w.sim.push(w.fullName, { branch: 'run-fanout', files: { 'notes.txt': 'forged\n' }, message: 'Forged\n\nAgora-Run: x/../y\n' });
    const above = await w.sim.push(w.fullName, { branch: 'run-fanout', files: { 'notes.txt': 'edited\n' }, message: 'An edit above it' });
    await w.quiesce();
    expect(outcomesOf(w.agora).plans).toContainEqual(expect.objectContaining({ kind: 'ignored', code: 'plan-unchanged' }));
    expect((await checkRuns(w, above)).has('agora / audit')).toBe(false);
    expect(w.errors).toEqual([]);
  });
});
