/**
 * A request (cancel, retry, a check-run button) is recorded only when it changes the run by itself: a
 * request that changes nothing, received by an App replica after the run's deadline passed, must not
 * write the deadline's settling in the driving process's place.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { openLocalStore } from '../../src/git/local-store.js';
import { parsePlanText } from '../../src/plan/parse.js';
import type { Plan } from '../../src/plan/schema.js';
import { RunRefs } from '../../src/runs/refs.js';
import { recordRequest } from '../../src/runs/requests.js';
import { readRun, writeNewRun } from '../../src/runs/state-store.js';
import { gitSync, initRepo } from '../git/git-fixtures.js';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

const refs = new RunRefs();
const T0 = 1_800_000_000_000;
const PLAN_TEXT = `${JSON.stringify({
  id: 'p',
  queue: 'default',
  timeoutSeconds: 5,
  items: [
    { id: 'a', executor: 'command', inputs: { run: 'true' }, depends_on: [], resourceLocks: [] },
    { id: 'b', executor: 'command', inputs: { run: 'true' }, depends_on: ['a'], resourceLocks: [] },
  ],
})}\n`;

async function newRun() {
  const r = await initRepo({ bare: false });
  cleanups.push(r.cleanup);
  gitSync(r.dir, ['commit', '--allow-empty', '-q', '-m', 'base']);
  const store = await openLocalStore(r.dir);
  const base = gitSync(r.dir, ['rev-parse', 'HEAD']).trim();
  const plan = parsePlanText(PLAN_TEXT, 'plan.json') as Plan;
  const run = await writeNewRun(store, refs, { runId: 'p-1', plan, planText: PLAN_TEXT, base, concurrency: 1, now: T0 });
  expect(run).not.toBeNull();
  return store;
}

describe('recordRequest', () => {
  it('a retry of an item that is not failed records nothing, though the deadline has passed', async () => {
    const store = await newRun();
    const before = await store.resolveRef(refs.run('p-1'));
    const outcome = await recordRequest(store, refs, 'p-1', { type: 'retry-item', itemId: 'a', reason: 'retried by @someone' }, () => T0 + 60_000);
    expect(outcome.kind).toBe('no-change');
    expect(await store.resolveRef(refs.run('p-1'))).toBe(before);
    expect((await readRun(store, refs, 'p-1'))!.state.status).toBe('running');
  });

  it('a cancel that changes the run is recorded with what the step settles with it', async () => {
    const store = await newRun();
    const outcome = await recordRequest(store, refs, 'p-1', { type: 'cancel-run', reason: 'closed' }, () => T0 + 1_000);
    expect(outcome.kind).toBe('recorded');
    const run = (await readRun(store, refs, 'p-1'))!;
    expect(run.state.cancelRequested).toMatchObject({ reason: 'closed' });
  });
});
