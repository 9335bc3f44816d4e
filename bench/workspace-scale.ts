/**
 * bench/workspace-scale: per-item overhead of a run on a 10,000-file repository vs a 10-file one, for
 * the same plan (items that each change one file). Target (issue 2): ≤ 2× — the cost should grow with
 * the files an item changes, not with the size of the repository.
 */
import type { Plan, WorkItem } from '../src/plan/schema.js';
import { report, timeAsync } from './lib.js';
import { removeRepo, runPlan, scratchRepo } from './run-plan.js';

const ITEMS = 12;

function repoFiles(n: number): Record<string, string> {
  const files: Record<string, string> = {};
  for (let i = 0; i < n; i += 1) files[`pkg${i % 50}/mod${Math.floor(i / 50)}/file${i}.ts`] = `export const v${i} = ${i};\n`;
  for (let k = 0; k < ITEMS; k += 1) files[`edits/e${k}.txt`] = 'before\n';
  return files;
}

function editPlan(): Plan {
  const items: WorkItem[] = [];
  for (let k = 0; k < ITEMS; k += 1) {
    items.push({ id: `edit${k}`, executor: 'command', inputs: { run: `echo after > edits/e${k}.txt` }, depends_on: [], resourceLocks: [`edits/e${k}.txt`] });
  }
  return { id: 'scale', queue: 'default', items };
}

async function perItem(files: number): Promise<number> {
  const repo = scratchRepo(repoFiles(files));
  try {
    const run = await timeAsync(() => runPlan(repo, editPlan(), 2));
    if (run.value.status !== 'done') throw new Error(`run ended ${run.value.status}: ${run.value.reason}`);
    return run.ms / ITEMS;
  } finally {
    removeRepo(repo);
  }
}

export async function benchWorkspaceScale() {
  const small = await perItem(10);
  const large = await perItem(10_000);
  return report('workspace-scale', {
    items: ITEMS,
    perItemMs10Files: Math.round(small),
    perItemMs10kFiles: Math.round(large),
    ratio: Math.round((large / small) * 100) / 100,
    target: '≤ 2×',
    withinTarget: large / small <= 2,
  });
}

if (import.meta.url === `file://${process.argv[1]}`) await benchWorkspaceScale();
