/**
 * bench/matrix: a matrix of 10,000 combinations (100 × 100), expanded and validated, against validating
 * the same 10,000 items written out by hand (the expanded plan as plain JSON). Target (issue 17): ≤ 1.5×.
 * Both go through validatePlan from a freshly parsed value, medians of several rounds, alternating. A third
 * arm reads both lists from matrix files (`{ "file": … }`), resolved by validatePlanAt from the files' text
 * (the git read itself, two small blobs, is left out: it does not grow with the combinations).
 */
import type { MatrixFileRead } from '../src/plan/matrix-file.js';
import { validatePlanAt } from '../src/plan/validate-at.js';
import { validatePlan, type ValidationContext } from '../src/plan/validate.js';
import { median, report, timeIt } from './lib.js';

const ctx: ValidationContext = { subagents: {}, shapes: {} };

export function matrixPlan(side = 100): unknown {
  const values = Array.from({ length: side }, (_, i) => String(i).padStart(3, '0'));
  return {
    id: 'wide',
    queue: 'default',
    items: [
      {
        id: 'work',
        executor: 'command',
        inputs: { run: 'process part-{{matrix.a}}-{{matrix.b}}', env: { PART: '{{matrix.a}}{{matrix.b}}' } },
        matrix: { a: values, b: values },
        depends_on: [],
        resourceLocks: ['out/{{matrix.a}}/{{matrix.b}}.json'],
      },
    ],
  };
}

/** The same plan with both lists in files: the plan's text and what an adapter would read. */
function filePlan(side = 100): { text: string; reads: Map<string, MatrixFileRead> } {
  const plan = matrixPlan(side) as { items: Array<{ matrix: Record<string, unknown> }> };
  const lists = plan.items[0]!.matrix;
  const reads = new Map<string, MatrixFileRead>(
    Object.entries(lists).map(([key, values]) => [`ci/${key}.json`, { kind: 'text', text: JSON.stringify(values) }]),
  );
  plan.items[0]!.matrix = Object.fromEntries(Object.keys(lists).map((key) => [key, { file: `ci/${key}.json` }]));
  return { text: JSON.stringify(plan), reads };
}

export function benchMatrix(rounds = 7) {
  const matrixText = JSON.stringify(matrixPlan());
  const files = filePlan();
  const first = validatePlan(JSON.parse(matrixText), ctx);
  if (!first.ok) throw new Error(JSON.stringify(first.problems.slice(0, 3)));
  const handText = JSON.stringify(first.plan);
  const expanded: number[] = [];
  const byHand: number[] = [];
  const fromFiles: number[] = [];
  for (let r = 0; r < rounds; r++) {
    const m = timeIt(() => validatePlan(JSON.parse(matrixText), ctx));
    const h = timeIt(() => validatePlan(JSON.parse(handText), ctx));
    const f = timeIt(() => validatePlanAt(JSON.parse(files.text), files.text, ctx, files.reads, 'at base commit (bench)').result);
    if (!m.value.ok || !h.value.ok || !f.value.ok) throw new Error('a plan is invalid');
    if (m.value.plan.items.length !== h.value.plan.items.length || f.value.plan.items.length !== h.value.plan.items.length) throw new Error('the plans differ');
    expanded.push(m.ms);
    byHand.push(h.ms);
    fromFiles.push(f.ms);
  }
  const matrixMs = median(expanded);
  const handMs = median(byHand);
  return report('matrix', {
    combinations: first.plan.items.length,
    expandAndValidateMs: Math.round(matrixMs),
    validateByHandMs: Math.round(handMs),
    ratio: Number((matrixMs / handMs).toFixed(2)),
    fromFilesMs: Math.round(median(fromFiles)),
    fromFilesRatio: Number((median(fromFiles) / handMs).toFixed(2)),
    target: 1.5,
  });
}

if (import.meta.url === `file://${process.argv[1]}`) benchMatrix();
