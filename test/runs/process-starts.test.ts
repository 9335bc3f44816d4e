import { afterAll, describe, expect, it } from 'vitest';
import type { Plan } from '../../src/plan/schema.js';
import { recordingSpawns, runPlan } from '../../bench/run-plan.js';
import { cleanupTempDirs, makeRepo } from '../support/repo.js';

/**
 * Issue 16, Must-have 2: what an item costs in processes Node starts. Every start from Node goes through
 * ChildProcess.prototype.spawn, which is recorded while the real server (as the benchmarks run it) runs
 * no-op items on the local target. Forking the large Node process is what costs (tens of ms each on a
 * loaded machine); the workspace's git sequences run in the long-lived shells of src/git/git-shell.ts,
 * so an item costs one start: its worker. That one is started by a small launcher process
 * (src/executors/launcher.ts), so that the orchestrator forks nothing per item.
 */
describe('process starts per item', () => {
  afterAll(() => cleanupTempDirs());

  it('starts the worker and nothing else from Node for each item, past the first few', async () => {
    const items = 12;
    const plan: Plan = {
      id: 'starts',
      queue: 'default',
      items: Array.from({ length: items }, (_, i) => ({
        id: `item-${i}`,
        executor: 'command' as const,
        inputs: { run: 'true' },
        depends_on: i < 2 ? [] : [`item-${i - 2}`],
        resourceLocks: [],
      })),
    };
    const repo = makeRepo({ 'README.md': 'starts\n', 'src/a.ts': 'export {};\n' });
    const { value: state, spawns } = await recordingSpawns(() => runPlan(repo, plan, 2));
    expect(state.status).toBe('done');
    const isWorker = (s: { args: readonly string[] }) => s.args[1] === '-c' && s.args[2] === 'true';
    expect(spawns.filter(isWorker)).toHaveLength(items);
    expect(
      spawns.filter(isWorker).filter((s) => s.by !== 'launcher'),
      'workers the orchestrator forked itself',
    ).toEqual([]);
    const others = spawns.filter((s) => !isWorker(s)).map((s) => s.args.slice(0, 4).join(' ').slice(0, 80));
    // Before the long-lived shells: two git sequences per item (24 here). Now: a few shells and probes, and the launcher, once.
    expect(others.length, others.join('\n')).toBeLessThanOrEqual(5);
  });
});
