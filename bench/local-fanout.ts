/**
 * bench/local-fanout: a 200-item plan of no-op `command` items (4 lanes of 50 chained items) run by
 * agora on a small repository, beside `make -j2` running the same DAG of the same commands in the same
 * script, and beside Node itself spawning `sh -c true` 200 times at concurrency 2 (the floor for a Node
 * scheduler). Targets (issue 16): within 10× of make and 8× of the floor. Queue concurrency 2, like -j2.
 * It also times the same 200 starts through Agora's launcher (src/executors/launcher.ts, which starts
 * the local target's workers): what is left of agora's time beyond that is its own per-item work.
 * It also counts the processes Node started during the run (every start goes through
 * ChildProcess.prototype.spawn), by program, per item.
 */
import { execFileSync, spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Plan, WorkItem } from '../src/plan/schema.js';
import { spawnFromLauncher } from '../src/executors/launcher.js';
import { report, timeAsync, timeIt } from './lib.js';
import { recordingSpawns, removeRepo, runPlan, scratchRepo, type SpawnSeen } from './run-plan.js';

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

/** Node's own floor: `sh -c true` spawned `n` times, two at a time. */
async function nodeFloor(n: number): Promise<void> {
  let started = 0;
  const one = () => new Promise<void>((done) => spawn('/bin/sh', ['-c', COMMAND], { stdio: ['pipe', 'pipe', 'pipe'] }).on('close', () => done()));
  const lane = async () => {
    while (started < n) {
      started += 1;
      await one();
    }
  };
  await Promise.all([lane(), lane()]);
}

/** The same starts through Agora's launcher, as the local target makes them (own group, empty environment). */
async function launcherFloor(n: number, cwd: string): Promise<void> {
  let started = 0;
  const lane = async () => {
    while (started < n) {
      started += 1;
      const child = await spawnFromLauncher('/bin/sh', ['-c', COMMAND], { cwd, env: {}, detached: true });
      child.stdin.end();
      child.stdout.resume();
      child.stderr.resume();
      await child.closed;
    }
  };
  await Promise.all([lane(), lane()]);
}

/** A started process by kind: a git sequence's own shell, a long-lived git shell, a worker, or the program. */
function kindOf(o: SpawnSeen): string {
  if (o.args[3] === 'agora-git') return 'git sequence (sh)';
  if (o.args[3] === 'agora-git-shell') return 'long-lived git shell';
  return o.args[1] === '-c' && o.args[2] === COMMAND ? 'worker (sh -c true)' : o.file;
}

export async function benchLocalFanout() {
  const plan = fanoutPlan();
  const repo = scratchRepo({ 'README.md': 'bench\n', 'src/a.ts': 'export {};\n' });
  try {
    writeFileSync(join(repo, '.git', 'bench.mk'), makefile(plan));
    const make = timeIt(() => execFileSync('make', ['-s', '-j2', '-f', join(repo, '.git', 'bench.mk')], { cwd: repo }));
    const floor = await timeAsync(() => nodeFloor(plan.items.length));
    await launcherFloor(2, repo); // the launcher itself started before timing, as agora's run finds it
    const viaLauncher = await timeAsync(() => launcherFloor(plan.items.length, repo));
    const agora = await timeAsync(() => recordingSpawns(() => runPlan(repo, plan, 2)));
    if (agora.value.value.status !== 'done') throw new Error(`bench run ended ${agora.value.value.status}: ${agora.value.value.reason}`);
    const ratio = agora.ms / make.ms;
    const toFloor = agora.ms / floor.ms;
    const spawns: Record<string, number> = {};
    for (const o of agora.value.spawns) spawns[kindOf(o)] = (spawns[kindOf(o)] ?? 0) + 1;
    const total = agora.value.spawns.length;
    return report('local-fanout', {
      items: plan.items.length,
      makeMs: Math.round(make.ms),
      nodeFloorMs: Math.round(floor.ms),
      launcherFloorMs: Math.round(viaLauncher.ms),
      agoraMs: Math.round(agora.ms),
      agoraBeyondLauncherMsPerItem: Math.round(((agora.ms - viaLauncher.ms) / plan.items.length) * 10) / 10,
      perItemOverheadMs: Math.round(((agora.ms - make.ms) / plan.items.length) * 10) / 10,
      ratioToMake: Math.round(ratio * 10) / 10,
      ratioToNodeFloor: Math.round(toFloor * 10) / 10,
      nodeSpawns: spawns,
      nodeSpawnsPerItem: Math.round((total / plan.items.length) * 100) / 100,
      target: '≤ 10× make -j2, ≤ 8× the Node floor',
      withinTarget: ratio <= 10 && toFloor <= 8,
    });
  } finally {
    removeRepo(repo);
  }
}

if (import.meta.url === `file://${process.argv[1]}`) await benchLocalFanout();
