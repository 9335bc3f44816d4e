import { describe, expect, it } from 'vitest';
import {
  CHECK_TEXT_LIMIT,
  conclusionOf,
  fitCheckText,
  invalidPlanSummary,
  itemOutput,
  mermaidDag,
  runConclusion,
  runSummary,
} from '../../src/github/check-text.js';
import type { ItemState, RunState } from '../../src/engine/types.js';
import type { Plan } from '../../src/plan/schema.js';
import { activeConstructs, codeSpanContent, fencedBlock, renderedText, tableCells } from './markdown-reader.js';

function world(n: number, status: (i: number) => ItemState['status']): { plan: Plan; state: RunState } {
  const items = Array.from({ length: n }, (_, i) => ({
    id: `item-${i}`,
    executor: 'command',
    inputs: { run: 'true' },
    depends_on: i > 0 ? [`item-${i - 1}`] : [],
    resourceLocks: [],
  }));
  const plan = { id: 'p', queue: 'default', items } as unknown as Plan;
  const state = {
    version: 1,
    runId: 'p-1',
    status: 'failed',
    items: Object.fromEntries(
      items.map((it, i) => [
        it.id,
        { id: it.id, status: status(i), attempts: 1, failures: 0, reason: status(i) === 'failed' ? 'exit 3 | see log' : undefined },
      ]),
    ),
  } as unknown as RunState;
  return { plan, state };
}

/** The texts people read on GitHub: mapping, colours, and GitHub's size limit. */
describe('check run texts', () => {
  it('maps item states to conclusions as DESIGN §1 says, and a run is success only when done', () => {
    expect(['done', 'failed', 'skipped', 'cancelled', 'running'].map((s) => conclusionOf(s as ItemState['status']))).toEqual([
      'success',
      'failure',
      'skipped',
      'cancelled',
      null,
    ]);
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

  it('cuts on UTF-8 bytes at a character boundary: a summary of multi-byte text fits 65,535 bytes and ends whole', () => {
    const { plan, state } = world(2000, () => 'failed');
    for (const item of Object.values(state.items)) item.reason = 'exit 3 — ünïcödé ✓ 🙂 … '.repeat(3);
    const summary = runSummary(plan, state);
    expect(Buffer.byteLength(summary, 'utf8')).toBeLessThanOrEqual(CHECK_TEXT_LIMIT);
    expect(summary).toMatch(/cut to fit/);
    expect(summary).not.toContain('\ufffd'); // no character cut in half
    for (let k = 0; k < 8; k++) {
      const text = `${'a'.repeat(k)}${'🙂'.repeat(20_000)}`; // 4-byte characters at every alignment
      const cut = fitCheckText(text);
      expect(Buffer.byteLength(cut, 'utf8')).toBeLessThanOrEqual(CHECK_TEXT_LIMIT);
      expect(Buffer.byteLength(cut, 'utf8')).toBeGreaterThan(CHECK_TEXT_LIMIT - 4);
      expect(cut).not.toContain('\ufffd');
    }
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

/** Plan keys, reasons, paths and logs are written by whoever pushes the plan or runs in a worker. */
describe('check run texts with hostile input', () => {
  const LINK = 'see [the fix](https://evil.example/x) ![pixel](https://evil.example/p.png) @someone #1 <img src=x> **now**';

  it('keeps an unknown plan key full of backticks and pipes inside its code span and its row', () => {
    const key = 'a`b``c | d';
    const problems = [{ path: `$.items[0][${JSON.stringify(key)}]`, message: `unknown field ${JSON.stringify(key)}; ${LINK}` }];
    const summary = invalidPlanSummary('plans/`x`.json', problems);
    const row = summary.split('\n').find((l) => l.startsWith('| ') && l.includes('unknown field'))!;
    const cells = tableCells(row);
    expect(cells).toHaveLength(2);
    expect(codeSpanContent(cells[0]!)).toBe(problems[0]!.path);
    expect(activeConstructs(cells[1]!, 'table cell')).toEqual([]);
    expect(renderedText(cells[1]!)).toBe(problems[0]!.message);
    expect(codeSpanContent(summary.split(' is not a valid plan')[0]!)).toBe('plans/`x`.json');
  });

  it("renders an item's reason, changed paths and log as text: no links, images, mentions or HTML", () => {
    const item = { id: 'a', status: 'failed', attempts: 1, failures: 1, reason: `exited with code 1: ${LINK}` } as ItemState;
    const log = ['building', '```', LINK, '````', '  ~~~', 'done'].join('\n');
    const out = itemOutput('p-1', item, { changes: [{ path: 'odd `name` | [x](y).txt', after: 'f'.repeat(40) } as never], logTail: log });
    const lines = out.summary.split('\n');
    const reason = lines.find((l) => l.startsWith('Reason: '))!.slice('Reason: '.length);
    expect(activeConstructs(reason)).toEqual([]);
    expect(renderedText(reason)).toBe(item.reason);
    expect(codeSpanContent(lines.find((l) => l.startsWith('- A '))!.slice(4))).toBe('odd `name` | [x](y).txt');
    const start = lines.indexOf('Log (tail):') + 2;
    const block = fencedBlock(lines, start);
    expect(block?.body).toBe(log);
    expect(block?.next).toBe(lines.length);
  });

  it("keeps an item's multi-line reason in its table cell, and the run's reason as text", () => {
    const { plan, state } = world(2, (i) => (i === 0 ? 'failed' : 'skipped'));
    state.items['item-0']!.reason = `exited with code 1 | boom\n| forged | row |\n${LINK}`;
    (state as { reason?: string }).reason = LINK;
    const summary = runSummary(plan, state);
    const row = summary.split('\n').find((l) => l.startsWith('| `item-0`'))!;
    const cells = tableCells(row);
    expect(cells).toHaveLength(4);
    expect(activeConstructs(cells[3]!, 'table cell')).toEqual([]);
    expect(renderedText(cells[3]!)).toBe('exited with code 1 | boom ⏎ | forged | row | ⏎ ' + LINK);
    const head = summary.split('\n')[0]!;
    const reason = head.slice(head.indexOf(' — ') + 3, head.lastIndexOf(': '));
    expect(activeConstructs(reason)).toEqual([]);
  });
});
