import { loadConfig } from '../../src/config/load.js';
import { openLocalStore } from '../../src/git/local-store.js';
import { submitPlan } from '../../src/runs/inbox.js';
import { RunRefs } from '../../src/runs/refs.js';

/**
 * A run of command items (`id` runs `run`, locking `<id>.txt` unless `locks` says otherwise) submitted to
 * the repository at `repo`, for a test to serve or drive itself: the store, the config and refs it was
 * submitted with, and its id.
 */
export async function submitCommandRun(repo: string, items: ReadonlyArray<{ id: string; run: string; locks?: string[] }>) {
  const store = await openLocalStore(repo);
  const config = await loadConfig({ cwd: repo });
  const refs = new RunRefs(config.refNamespace);
  const plan = {
    id: 'p',
    queue: 'default',
    items: items.map((i) => ({ id: i.id, executor: 'command', inputs: { run: i.run }, depends_on: [], resourceLocks: i.locks ?? [`${i.id}.txt`] })),
  };
  const base = (await store.resolveRef('HEAD'))!;
  const { runId } = await submitPlan(store, refs, { planText: JSON.stringify(plan), planId: plan.id, base, now: Date.now() });
  return { store, config, refs, runId };
}

/** A run of one command item (`only`, which writes out.txt): {@link submitCommandRun}. */
export function submitOneItemRun(repo: string) {
  return submitCommandRun(repo, [{ id: 'only', run: 'echo ran > out.txt', locks: ['out.txt'] }]);
}
