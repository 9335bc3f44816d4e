/**
 * bench/local-fanout: a 200-item plan of no-op `command` items (4 lanes of 50 chained items) run by
 * agora on a small repository, beside `make -j2` running the same DAG of the same commands in the same
 * script. Target (issue 2): within 4× of make. Queue concurrency 2, like -j2.
 */
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Plan, WorkItem } from '../src/plan/schema.js';
import { report, timeAsync, timeIt } from './lib.js';
import { removeRepo, runPlan, scratchRepo } from './run-plan.js';

const LANES = 4;
const DEPTH = 50;
const COMMAND = 'true';

function fanoutPlan(): Plan {
  const items: WorkItem[] = [];
  for (let lane = 0; lane < LANES; lane += 1) {
    for (let d = 0; d < DEPTH; d += 1) {
      items.push({
        id: `l${lane}-${d}`,
        executor: 'command',
        inputs: { run: COMMAND },
        depends_on: d === 0 ? [] : [`l${lane}-${d - 1}`],
        resourceLocks: [],
      });
    }
  }
  return { id: 'fanout', queue: 'default', items };
}

function makefile(plan: Plan): string {
  const lines = [`all: ${plan.items.map((i) => i.id).join(' ')}`, '.PHONY: all', ''];
  for (const i of plan.items) {
    lines.push(`${i.id}: ${i.depends_on.join(' ')}`, `\t@${COMMAND}`, `.PHONY: ${i.id}`);
  }
  return `${lines.join('\n')}\n`;
}

export async function benchLocalFanout() {
  const plan = fanoutPlan();
  const repo = scratchRepo({ 'README.md': 'bench\n', 'src/a.ts': 'export {};\n' });
  try {
    writeFileSync(join(repo, '.git', 'bench.mk'), makefile(plan));
    const make = timeIt(() => execFileSync('make', ['-s', '-j2', '-f', join(repo, '.git', 'bench.mk')], { cwd: repo }));
    const agora = await timeAsync(() => runPlan(repo, plan, 2));
    if (agora.value.status !== 'done') throw new Error(`bench run ended ${agora.value.status}: ${agora.value.reason}`);
    const ratio = agora.ms / make.ms;
    return report('local-fanout', {
      items: plan.items.length,
      makeMs: Math.round(make.ms),
      agoraMs: Math.round(agora.ms),
      perItemOverheadMs: Math.round(((agora.ms - make.ms) / plan.items.length) * 10) / 10,
      ratioToMake: Math.round(ratio * 10) / 10,
      target: '≤ 4× make -j2',
      withinTarget: ratio <= 4,
    });
  } finally {
    removeRepo(repo);
  }
}

if (import.meta.url === `file://${process.argv[1]}`) await benchLocalFanout();
