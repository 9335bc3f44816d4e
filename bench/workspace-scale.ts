/**
 * bench/workspace-scale: per-item overhead of a run on a 10,000-file repository vs a 10-file one, for
 * the same plan (items that each change one file). Target (issue 2): ≤ 2× — the cost should grow with
 * the files an item changes, not with the size of the repository.
 *
 * Per item = the marginal cost: (time of a 36-item run − time of a 12-item run) / 24, which leaves out
 * what a server pays once (checking out its first workspaces). The amortised cost of the 12-item run is
 * reported beside it.
 */
import type { Plan, WorkItem } from '../src/plan/schema.js';
import { report, timeAsync } from './lib.js';
import { removeRepo, runPlan, scratchRepo } from './run-plan.js';

const SMALL_RUN = 12;
const LARGE_RUN = 36;

function repoFiles(n: number): Record<string, string> {
  const files: Record<string, string> = {};
  for (let i = 0; i < n; i += 1) files[`pkg${i % 50}/mod${Math.floor(i / 50)}/file${i}.ts`] = `export const v${i} = ${i};\n`;
  for (let k = 0; k < LARGE_RUN; k += 1) files[`edits/e${k}.txt`] = 'before\n';
  return files;
}

function editPlan(count: number): Plan {
  const items: WorkItem[] = [];
  for (let k = 0; k < count; k += 1) {
    items.push({ id: `edit${k}`, executor: 'command', inputs: { run: `echo after > edits/e${k}.txt` }, depends_on: [], resourceLocks: [`edits/e${k}.txt`] });
  }
  return { id: 'scale', queue: 'default', items };
}

async function runMs(files: number, items: number): Promise<number> {
  const repo = scratchRepo(repoFiles(files));
  try {
    const run = await timeAsync(() => runPlan(repo, editPlan(items), 2));
    if (run.value.status !== 'done') throw new Error(`run ended ${run.value.status}: ${run.value.reason}`);
    return run.ms;
  } finally {
    removeRepo(repo);
  }
}

async function perItem(files: number): Promise<{ marginal: number; amortised: number }> {
  const small = await runMs(files, SMALL_RUN);
  const large = await runMs(files, LARGE_RUN);
  return { marginal: (large - small) / (LARGE_RUN - SMALL_RUN), amortised: small / SMALL_RUN };
}

export async function benchWorkspaceScale() {
  const small = await perItem(10);
  const large = await perItem(10_000);
  const ratio = large.marginal / small.marginal;
  return report('workspace-scale', {
    perItemMs10Files: Math.round(small.marginal),
    perItemMs10kFiles: Math.round(large.marginal),
    ratio: Math.round(ratio * 100) / 100,
    amortisedOver12ItemsMs10Files: Math.round(small.amortised),
    amortisedOver12ItemsMs10kFiles: Math.round(large.amortised),
    amortisedRatio: Math.round((large.amortised / small.amortised) * 100) / 100,
    target: '≤ 2× (marginal per item)',
    withinTarget: ratio <= 2,
  });
}

if (import.meta.url === `file://${process.argv[1]}`) await benchWorkspaceScale();
