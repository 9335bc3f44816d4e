import { describe, expect, it } from 'vitest';
import { CHECK_TEXT_LIMIT, conclusionOf, invalidPlanSummary, itemOutput, mermaidDag, runConclusion, runSummary } from '../../src/github/check-text.js';
import type { ItemState, RunState } from '../../src/engine/types.js';
import type { Plan } from '../../src/plan/schema.js';

function world(n: number, status: (i: number) => ItemState['status']): { plan: Plan; state: RunState } {
  const items = Array.from({ length: n }, (_, i) => ({ id: `item-${i}`, executor: 'command', inputs: { run: 'true' }, depends_on: i > 0 ? [`item-${i - 1}`] : [], resourceLocks: [] }));
  const plan = { id: 'p', queue: 'default', items } as unknown as Plan;
  const state = {
    version: 1,
    runId: 'p-1',
    status: 'failed',
    items: Object.fromEntries(items.map((it, i) => [it.id, { id: it.id, status: status(i), attempts: 1, failures: 0, reason: status(i) === 'failed' ? 'exit 3 | see log' : undefined }])),
  } as unknown as RunState;
  return { plan, state };
}

/** The texts people read on GitHub: mapping, colours, and GitHub's size limit. */
describe('check run texts', () => {
  it('maps item states to conclusions as DESIGN §1 says, and a run is success only when done', () => {
    expect(['done', 'failed', 'skipped', 'cancelled', 'running'].map((s) => conclusionOf(s as ItemState['status']))).toEqual(['success', 'failure', 'skipped', 'cancelled', null]);
    expect(runConclusion({ status: 'done' } as RunState)).toBe('success');
    expect(runConclusion({ status: 'failed' } as RunState)).toBe('failure');
    expect(runConclusion({ status: 'cancelled' } as RunState)).toBe('cancelled');
  });

  it('draws the DAG with one class per state present, each node in the class of its state', () => {
    const { plan, state } = world(3, (i) => (['done', 'failed', 'skipped'] as const)[i]!);
    const dag = mermaidDag(plan, state);
    expect(dag).toContain('n0 --> n1');
    expect(dag).toContain('n1 --> n2');
    expect(dag).toMatch(/class n0 done/);
    expect(dag).toMatch(/class n1 failed/);
    expect(dag).toMatch(/class n2 skipped/);
    expect(dag).not.toMatch(/classDef running/);
  });

  it('keeps a huge run summary, item summary and problem list under 65,535 characters, saying it was cut', () => {
    const { plan, state } = world(5000, (i) => (i % 2 ? 'done' : 'failed'));
    const summary = runSummary(plan, state);
    expect(summary.length).toBeLessThanOrEqual(CHECK_TEXT_LIMIT);
    expect(summary).toMatch(/cut to fit/);
    expect(summary).toContain('| `item-0` | failed | 1 | exit 3 \\| see log |');
    const problems = Array.from({ length: 3000 }, (_, i) => ({ path: `$.items[${i}].id`, message: 'x'.repeat(40) }));
    expect(invalidPlanSummary('plan.json', problems).length).toBeLessThanOrEqual(CHECK_TEXT_LIMIT);
    const item = { id: 'a', status: 'failed', attempts: 2, failures: 2, reason: 'boom' } as ItemState;
    const out = itemOutput('p-1', item, { changes: [], logTail: 'y'.repeat(100_000) });
    expect(out.summary.length).toBeLessThanOrEqual(CHECK_TEXT_LIMIT);
    expect(out.title).toBe('a: failed — boom');
    expect(out.summary).toContain('after 2 attempts');
  });
});
