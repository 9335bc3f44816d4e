import { loadConfig } from '../../src/config/load.js';
import { openLocalStore } from '../../src/git/local-store.js';
import { submitPlan } from '../../src/runs/inbox.js';
import { RunRefs } from '../../src/runs/refs.js';

/**
 * A run of one command item (`only`, which writes out.txt) submitted to the repository at `repo`, for a
 * test to serve with its own Server: the store, the config and refs it was submitted with, and its id.
 */
export async function submitOneItemRun(repo: string) {
  const store = await openLocalStore(repo);
  const config = await loadConfig({ cwd: repo });
  const refs = new RunRefs(config.refNamespace);
  const plan = {
    id: 'p',
    queue: 'default',
    items: [{ id: 'only', executor: 'command', inputs: { run: 'echo ran > out.txt' }, depends_on: [], resourceLocks: ['out.txt'] }],
  };
  const base = (await store.resolveRef('HEAD'))!;
  const { runId } = await submitPlan(store, refs, { planText: JSON.stringify(plan), planId: plan.id, base, now: Date.now() });
  return { store, config, refs, runId };
}
