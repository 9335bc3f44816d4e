import { ChildProcess, execFileSync } from 'node:child_process';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { loadConfig } from '../src/config/load.js';
import { createLocalTarget } from '../src/executors/local-target.js';
import { SPAWN_CHANNEL } from '../src/executors/launcher.js';
import type { OrchConfig } from '../src/config/types.js';
import { openLocalStore, type LocalGitStore } from '../src/git/local-store.js';
import type { Plan } from '../src/plan/schema.js';
import { submitPlan } from '../src/runs/inbox.js';
import { RunRefs } from '../src/runs/refs.js';
import { Server } from '../src/runs/server.js';
import { WorkspacePool } from '../src/runs/workspace-pool.js';
import type { RunState } from '../src/engine/types.js';

/** Benchmark plumbing: scratch repositories, and a plan run in-process by the real server. */

export function scratchRepo(files: Record<string, string>): string {
  const repo = mkdtempSync(join(tmpdir(), 'agora-bench-'));
  for (const [p, c] of Object.entries(files)) {
    mkdirSync(dirname(join(repo, p)), { recursive: true });
    writeFileSync(join(repo, p), c);
  }
  const env = { ...process.env, GIT_AUTHOR_NAME: 'b', GIT_AUTHOR_EMAIL: 'b@b', GIT_COMMITTER_NAME: 'b', GIT_COMMITTER_EMAIL: 'b@b' };
  execFileSync('git', ['init', '-q', '-b', 'main'], { cwd: repo });
  execFileSync('git', ['add', '-A'], { cwd: repo, env });
  // No `gc --auto` left running in the background beside what is measured: a commit of 10,000 files
  // (past gc.auto's 6,700 loose objects) would start one that packs them while the run goes on. The
  // objects are packed here instead, as a clone's are.
  execFileSync('git', ['-c', 'gc.auto=0', '-c', 'maintenance.auto=false', 'commit', '-q', '--allow-empty', '-m', 'base'], { cwd: repo, env });
  execFileSync('git', ['repack', '-adq'], { cwd: repo, env });
  return repo;
}

export function removeRepo(repo: string): void {
  rmSync(repo, { recursive: true, force: true });
}

/** `onTick` sees the run's state after each of the server's ticks (a benchmark's clock for its progress). */
export async function runPlan(repo: string, plan: Plan, concurrency: number, onTick?: (state: RunState) => void): Promise<RunState> {
  const store = await openLocalStore(repo);
  const config = { ...(await loadConfig({ cwd: repo })), defaultConcurrency: concurrency, queues: {} };
  const refs = new RunRefs(config.refNamespace);
  const base = (await store.resolveRef('HEAD'))!;
  const { runId } = await submitPlan(store, refs, { planText: JSON.stringify(plan), planId: plan.id, base, now: Date.now() });
  return serveRun(store, refs, config, runId, onTick);
}

/** Serves run `runId` in-process with the real server and local workers until it has ended; its final state. */
export async function serveRun(store: LocalGitStore, refs: RunRefs, config: OrchConfig, runId: string, onTick?: (state: RunState) => void): Promise<RunState> {
  const scratchDir = join(store.gitdir, 'agora');
  const server = new Server({
    store,
    refs,
    config,
    targets: { local: createLocalTarget({ stateDir: join(scratchDir, 'pids') }) },
    scratchDir,
    workspaces: WorkspacePool.outsideRepository(store),
    environment: {},
    clock: Date.now,
    only: runId,
    pollMs: 50,
  });
  await server.start();
  await server.serve(new AbortController().signal, (s) => {
    const r = s.run(runId);
    if (r !== undefined) onTick?.(r.state);
    return r !== undefined && r.state.status !== 'running' && s.activeRuns === 0;
  });
  return server.run(runId)!.state;
}

/**
 * What Node was asked to start: the program, its arguments, and who started it (`orchestrator`: this process,
 * through ChildProcess.prototype.spawn; `launcher`: a worker started by src/executors/launcher.ts's launcher
 * process, seen on its diagnostics channel).
 */
export interface SpawnSeen {
  file: string;
  args: readonly string[];
  by: 'orchestrator' | 'launcher';
}

/** Runs `fn` and lists every process Node started meanwhile (in this process). */
export async function recordingSpawns<T>(fn: () => Promise<T>): Promise<{ value: T; spawns: SpawnSeen[] }> {
  const proto = ChildProcess.prototype as unknown as { spawn: (o: { file: string; args: readonly string[] }) => unknown };
  const original = proto.spawn;
  const spawns: SpawnSeen[] = [];
  proto.spawn = function (this: unknown, o) {
    spawns.push({ file: o.file, args: [...o.args], by: 'orchestrator' });
    return original.call(this, o);
  };
  // The launcher's starts are published, with the program as given and no argv[0] in args.
  const onLauncherStart = (message: unknown) => {
    const { file, args } = message as { file: string; args: readonly string[] };
    spawns.push({ file, args: [file, ...args], by: 'launcher' });
  };
  subscribe(SPAWN_CHANNEL, onLauncherStart);
  try {
    return { value: await fn(), spawns };
  } finally {
    proto.spawn = original;
    unsubscribe(SPAWN_CHANNEL, onLauncherStart);
  }
}
