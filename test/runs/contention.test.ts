import { afterEach, describe, expect, it } from 'vitest';
import { openLocalStore } from '../../src/git/local-store.js';
import type { GitStore } from '../../src/git/types.js';
import { ContentionError } from '../../src/retry-on-conflict.js';
import { cancelRun } from '../../src/runs/cancel.js';
import { submitPlan } from '../../src/runs/inbox.js';
import { RunRefs } from '../../src/runs/refs.js';
import { gitSync, initRepo } from '../git/git-fixtures.js';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

const refs = new RunRefs();
const T0 = 1_800_000_000_000;
const PLAN = JSON.stringify({ version: 1, id: 'p', items: [{ id: 'a', executor: 'command', inputs: { command: 'true' } }] });

/** A real repository whose every compare-and-swap loses, as if another writer always got there first. */
async function alwaysOutraced(): Promise<{ store: GitStore; raw: GitStore; base: string }> {
  const r = await initRepo({ bare: false });
  cleanups.push(r.cleanup);
  gitSync(r.dir, ['commit', '--allow-empty', '-q', '-m', 'base']);
  const raw = await openLocalStore(r.dir);
  const store = new Proxy(raw, {
    get(target, prop, receiver) {
      if (prop === 'casRef' || prop === 'casRefs' || prop === 'deleteRef') return async () => false;
      const value = Reflect.get(target, prop, receiver) as unknown;
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
  return { store, raw, base: gitSync(r.dir, ['rev-parse', 'HEAD']).trim() };
}

describe('a compare-and-swap that keeps losing', () => {
  it('cancel ends in a typed contention error naming the run, not an internal error', async () => {
    const { store, raw, base } = await alwaysOutraced();
    const { runId } = await submitPlan(raw, refs, { planText: PLAN, planId: 'p', base, now: T0 });
    const err = await cancelRun(store, refs, runId, 'stop', () => T0).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ContentionError);
    expect(err).toMatchObject({ code: 'contended', exitCode: 1 });
    expect((err as Error).message).toContain(`run ${runId}`);
  });

  it('submit ends in the same error naming the plan whose run ids kept moving', async () => {
    const { store, base } = await alwaysOutraced();
    const err = await submitPlan(store, refs, { planText: PLAN, planId: 'p', base, now: T0 }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'contended', subject: 'the run ids of plan p' });
  });
});
