/**
 * bench/workspace-scale: per-item overhead of a run on a 10,000-file repository vs a 10-file one, for
 * the same plan (items that each change one file). Target (issue 2): ≤ 2× — the cost should grow with
 * the files an item changes, not with the size of the repository.
 *
 * Per item = the marginal cost: (time of a 36-item run − time of a 12-item run) / 24, which leaves out
 * what a server pays once (checking out its first workspaces). The amortised cost of the 12-item run is
 * reported beside it. Both are given in wall time and in CPU time (this process and the processes it
 * waited for, and the live processes under it with theirs: git, in the long-lived git shells, and the
 * workers), which a machine busy with other work disturbs much less.
 */
import type { Plan, WorkItem } from '../src/plan/schema.js';
import { readdirSync, readFileSync } from 'node:fs';
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

/** utime, stime, cutime, cstime (fields 14–17 of stat(5)) of a process, and its parent's pid; null once it is gone. */
function procTimes(pid: string): { ppid: string; own: number; children: number } | null {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return { ppid: fields[1]!, own: Number(fields[11]) + Number(fields[12]), children: Number(fields[13]) + Number(fields[14]) };
  } catch {
    return null;
  }
}

/**
 * CPU ms used so far by this process and every process under it (Linux: /proc, 100 ticks/s): its own
 * time, the children it has waited for, and the live descendants with the children they waited for.
 * The long-lived git shells outlive a run, so the git processes they ran are counted through them.
 */
function cpuMs(): number {
  const own = process.cpuUsage();
  const self = procTimes('self')!;
  const parents = new Map<string, string>();
  const times = new Map<string, number>();
  for (const pid of readdirSync('/proc').filter((n) => /^\d+$/.test(n))) {
    const t = procTimes(pid);
    if (!t) continue;
    parents.set(pid, t.ppid);
    times.set(pid, t.own + t.children);
  }
  const me = String(process.pid);
  const under = (pid: string): boolean => {
    for (let p = parents.get(pid); p !== undefined && p !== '0'; p = parents.get(p)) if (p === me) return true;
    return false;
  };
  let descendants = 0;
  for (const [pid, ticks] of times) if (under(pid)) descendants += ticks;
  return (own.user + own.system) / 1000 + (self.children + descendants) * 10;
}

interface Cost {
  ms: number;
  cpuMs: number;
}

async function runCost(files: number, items: number): Promise<Cost> {
  const repo = scratchRepo(repoFiles(files));
  try {
    const cpu0 = cpuMs();
    const run = await timeAsync(() => runPlan(repo, editPlan(items), 2));
    const cpu = cpuMs() - cpu0;
    if (run.value.status !== 'done') throw new Error(`run ended ${run.value.status}: ${run.value.reason}`);
    return { ms: run.ms, cpuMs: cpu };
  } finally {
    removeRepo(repo);
  }
}

async function perItem(files: number): Promise<{ marginal: Cost; amortised: Cost }> {
  const small = await runCost(files, SMALL_RUN);
  const large = await runCost(files, LARGE_RUN);
  const per = (k: keyof Cost) => (large[k] - small[k]) / (LARGE_RUN - SMALL_RUN);
  return { marginal: { ms: per('ms'), cpuMs: per('cpuMs') }, amortised: { ms: small.ms / SMALL_RUN, cpuMs: small.cpuMs / SMALL_RUN } };
}

const r2 = (x: number) => Math.round(x * 100) / 100;

export async function benchWorkspaceScale() {
  const small = await perItem(10);
  const large = await perItem(10_000);
  const ratio = large.marginal.ms / small.marginal.ms;
  return report('workspace-scale', {
    perItemMs10Files: Math.round(small.marginal.ms),
    perItemMs10kFiles: Math.round(large.marginal.ms),
    ratio: r2(ratio),
    perItemCpuMs10Files: Math.round(small.marginal.cpuMs),
    perItemCpuMs10kFiles: Math.round(large.marginal.cpuMs),
    cpuRatio: r2(large.marginal.cpuMs / small.marginal.cpuMs),
    amortisedOver12ItemsMs10Files: Math.round(small.amortised.ms),
    amortisedOver12ItemsMs10kFiles: Math.round(large.amortised.ms),
    amortisedRatio: r2(large.amortised.ms / small.amortised.ms),
    amortisedCpuRatio: r2(large.amortised.cpuMs / small.amortised.cpuMs),
    target: '≤ 2× (marginal per item)',
    withinTarget: ratio <= 2,
  });
}

if (import.meta.url === `file://${process.argv[1]}`) await benchWorkspaceScale();
